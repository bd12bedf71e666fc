package client

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

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
