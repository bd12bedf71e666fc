package client

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/privnet"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

// keyNodes holds the verified node list (swarmclient.NodeList) kept across
// runs, in the encrypted database like everything else of the account:
// never in a clear-text file, since the list and its time tell when the
// account last ran.
const keyNodes = "nodes"

// netClock is the clock the node list's age is judged by (tests move it).
var netClock = time.Now

// netOptions are the swarm client's options for this home: the node list
// and guards of the last run, so that a start within swarmclient.MaxListAge
// of the last refresh asks no bootstrap node directly, and a hook that
// keeps every refreshed list.
func (e *Engine) netOptions() swarmclient.Options {
	o := swarmclient.Options{Direct: e.cfg.Direct, OnRefresh: e.saveNodes, Now: netClock, Mix: e.cfg.mixFor()}
	var stored swarmclient.NodeList
	if ok, err := e.d.getJSON(keyNodes, &stored); err != nil {
		e.log.Warn("load the stored node list", "err", err)
	} else if ok {
		o.Stored = &stored
	}
	var guards []string
	if ok, err := e.d.getJSON(keyGuards, &guards); err == nil && ok {
		for _, s := range guards {
			if id, err := peer.Decode(s); err == nil {
				o.Guards = append(o.Guards, id)
			}
		}
	}
	return o
}

// saveNodes keeps a refreshed node list for the next run.
func (e *Engine) saveNodes(l swarmclient.NodeList) {
	if err := e.d.putJSON(keyNodes, l); err != nil {
		e.log.Warn("save the node list", "err", err)
	}
}

// keyNodesNetwork holds the SHA-256 of the network file the stored node
// list and guards were found through.
const keyNodesNetwork = "nodes-network"

// forgetOtherNetwork drops the stored node list and guards when the home's
// network file changed since they were kept ('umbra network set', 'umbra
// daemon --network'): they belong to the old network. A home that kept a
// list before the file's hash was recorded keeps it.
func (e *Engine) forgetOtherNetwork(nf *privnet.File) {
	sum := sha256.Sum256(nf.Format())
	old, ok, err := e.kv.Get(keyNodesNetwork)
	if err != nil {
		e.log.Warn("load the stored network hash", "err", err)
		return
	}
	if ok && bytes.Equal(old, sum[:]) {
		return
	}
	if ok {
		for _, k := range []string{keyNodes, keyGuards} {
			if err := e.kv.Delete(k); err != nil {
				e.log.Warn("forget the old network's nodes", "key", k, "err", err)
				return
			}
		}
		e.log.Info("the network file changed: the old network's node list and guards are dropped")
	}
	if err := e.kv.Put(keyNodesNetwork, sum[:]); err != nil {
		e.log.Warn("save the network hash", "err", err)
	}
}

// UnreachableError is the one line a user is shown when no node of the
// home's network file answers; Err keeps the dial errors (logged at debug
// level).
type UnreachableError struct {
	File  string // the network file
	Nodes int    // addresses it lists
	Asked int    // nodes asked, at most Nodes
	Err   error
}

func (u *UnreachableError) Error() string {
	switch {
	case u.Nodes == 1:
		return fmt.Sprintf("can't reach the node in %s (is it running? --log-level debug shows why)", u.File)
	case u.Asked < u.Nodes:
		return fmt.Sprintf("can't reach any of the %d nodes tried of the %d in %s (are they running? --log-level debug shows why)", u.Asked, u.Nodes, u.File)
	default:
		return fmt.Sprintf("can't reach any of the %d nodes in %s (are they running? --log-level debug shows why)", u.Nodes, u.File)
	}
}

func (u *UnreachableError) Unwrap() error { return u.Err }

// dialError turns the swarm client's failure to reach any bootstrap node
// into an UnreachableError, logging the details at debug level; other
// errors keep their text.
func (e *Engine) dialError(nf *privnet.File, err error) error {
	var na *swarmclient.NoAnswerError
	if !errors.As(err, &na) {
		return fmt.Errorf("cannot reach the Umbra network: %w", err)
	}
	e.log.Debug("no node answered", "err", err)
	return &UnreachableError{File: NetworkPath(e.cfg.Home), Nodes: len(nf.Addrs), Asked: min(na.Asked, len(nf.Addrs)), Err: err}
}
