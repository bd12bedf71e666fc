package node

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-yamux/v5"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/p2p"
)

// Failure detection. A connection to a crashed, frozen or cut-off node
// stays "connected" until libp2p's keepalive gives up (30 s and more), and
// the probe of a connected node succeeds at once, so without a check of
// its own a node would keep a dead peer in its live set, and in its
// swarms, for that long. Every livenessInterval this node pings, over the
// connection it has, the livenessPeers nodes nearest to it in placement
// order (those it shares swarms with) and livenessRandom others: a yamux
// ping, one 12-byte frame each way. A ping not answered within
// livenessTimeout closes the connection, and the probe that follows (a
// fresh dial, given one second) marks the node down if it cannot be
// reached. A dead node is thus marked down by its neighbours within
// livenessInterval + livenessTimeout + 1 s (3.5 s); other nodes ping it
// when a call to it fails (probeLoop) and mark it down 2.5 s later.
const (
	livenessInterval = time.Second
	livenessTimeout  = 1500 * time.Millisecond
	livenessPeers    = 6
	livenessRandom   = 1
)

// livenessLoop runs the pings.
func (n *Node) livenessLoop(ctx context.Context) {
	tick := time.NewTicker(livenessInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, p := range n.watched() {
			n.goCheckAlive(ctx, p)
		}
	}
}

// goCheckAlive runs checkAlive(p) unless one runs already. It is called
// from the node's loops only (the wait group is above zero).
func (n *Node) goCheckAlive(ctx context.Context, p peer.ID) {
	if _, inFlight := n.pinging.LoadOrStore(p, true); inFlight {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.pinging.Delete(p)
		n.checkAlive(ctx, p)
	}()
}

// watched returns the nodes to ping (see nearest).
func (n *Node) watched() []peer.ID {
	return nearest(n.table.Live(), n.host.ID(), livenessPeers, livenessRandom)
}

// nearest returns, of the nodes in live other than self, the k nearest to
// self in placement order (half before it, half after it, around the
// ring) and extra others at random: all of them if there are no more than
// k+extra.
func nearest(live []*member.Node, self peer.ID, k, extra int) []peer.ID {
	others := make([]*member.Node, 0, len(live))
	var me *member.Node
	for _, nd := range live {
		if nd.ID == self {
			me = nd
		} else {
			others = append(others, nd)
		}
	}
	if len(others) <= k+extra {
		out := make([]peer.ID, len(others))
		for i, nd := range others {
			out[i] = nd.ID
		}
		return out
	}
	l := len(others)
	picked := make(map[int]bool, k+extra)
	if me == nil { // not in its own table: k+extra at random
		k, extra = 0, k+extra
	}
	sort.Slice(others, func(i, j int) bool { return bytes.Compare(others[i].Pos[:], others[j].Pos[:]) < 0 })
	at := 0
	if me != nil {
		at = sort.Search(l, func(i int) bool { return bytes.Compare(others[i].Pos[:], me.Pos[:]) >= 0 })
	}
	for j := 0; len(picked) < k; j++ {
		if j%2 == 0 {
			picked[(at+j/2)%l] = true // after
		} else {
			picked[((at-1-j/2)%l+l)%l] = true // before
		}
	}
	for len(picked) < k+extra {
		picked[rand.IntN(l)] = true
	}
	out := make([]peer.ID, 0, len(picked))
	for i := range picked {
		out = append(out, others[i].ID)
	}
	return out
}

// checkAlive pings p over each connection to it. If one does not answer
// in time, p's connections are closed and p probed at once (a fresh dial: a node
// merely slow to answer over a congested connection is not marked down);
// with no connection p is probed through probeLoop (the probe dials it,
// and marks it down if that fails).
func (n *Node) checkAlive(ctx context.Context, p peer.ID) {
	conns := n.host.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		n.requestProbe(p)
		return
	}
	for _, c := range conns {
		var sess *yamux.Session
		if !c.As(&sess) {
			continue // not yamux (QUIC has keepalives of its own)
		}
		done := make(chan error, 1)
		go func() {
			_, err := sess.Ping() // bounded by yamux's write timeout
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(livenessTimeout):
			err = context.DeadlineExceeded
		case <-ctx.Done():
			return
		}
		if err == nil {
			continue
		}
		n.m.liveMisses.Inc()
		n.log.Debug("liveness ping failed; closing the connections", "peer", p2p.ShortID(p), "err", err)
		// All of them: the probe would take another stale one for an
		// answer.
		_ = n.host.Network().ClosePeer(p)
		// Probe at once (a fresh dial) rather than through probeLoop's
		// queue, which may be busy with down nodes.
		n.probe(ctx, p)
		return
	}
}

// retryLost tries to gossip with one node whose record expired
// (member.Table.Lost): if it is back, or was only on the other side of a
// network split, the exchange brings its half of the network back. One
// at a time, so dials to nodes that are gone do not hold up gossip.
func (n *Node) retryLost(ctx context.Context) {
	if !n.lostBusy.CompareAndSwap(false, true) {
		return
	}
	lost := n.table.Lost(1)
	if len(lost) == 0 || lost[0].ID == n.host.ID() {
		n.lostBusy.Store(false)
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.lostBusy.Store(false)
		n.host.Peerstore().AddAddrs(lost[0].ID, lost[0].Addrs, time.Minute)
		n.gossipWith(network.WithForceDirectDial(ctx, "lost"), lost[0].ID)
	}()
}
