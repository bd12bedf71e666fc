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
// swarms, for that long. This node pings, over the connection it has, the
// livenessPeers nodes nearest to it in placement order (those it shares
// swarms with) and livenessRandom others (none), each every livenessInterval (the
// pings are spread over the interval, not sent in one burst): a yamux
// ping, one 12-byte frame each way. A ping not answered within
// livenessTimeout closes the connection, and the probe that follows (a
// fresh dial, given one second) marks the node down if it cannot be
// reached (in a network of at most livenessAll+1 nodes, each watches all
// the others). A dead node is thus marked down by its neighbours within
// livenessInterval + livenessTimeout + 1 s (4 s); other nodes ping it
// when a call to it fails (probeLoop) and mark it down 2 s later.
//
// The interval was 1 s with a 1.5 s timeout, for the 6 nearest nodes and
// 1 at random: pings and their TCP acknowledgements were then two thirds
// of an idle node's traffic (about 3.5 KB/s of 5.2 at 30 nodes, captured
// in the lab). A ping costs about 216 bytes on the wire with its answer
// and acknowledgement, so with 4 nodes watched every 2 s (and watched by
// about as many) a node sends about 430 bytes a second for pings. The
// random extra watcher was dropped for the same reason: the 4 nearest
// are the nodes that hold its swarms' copies, and anyone else notices on
// its first failed call.
const (
	livenessInterval = 2 * time.Second
	livenessTimeout  = time.Second
	livenessTick     = 250 * time.Millisecond
	livenessPeers    = 4
	livenessRandom   = 0
	// livenessAll: a node with at most this many others watches them all
	// (a small network: every node sees every failure within 4 s).
	livenessAll = 8
)

// livenessLoop runs the pings: every livenessTick, those watched nodes
// whose last ping is livenessInterval old (a node newly watched gets a
// random phase).
func (n *Node) livenessLoop(ctx context.Context) {
	tick := time.NewTicker(livenessTick)
	defer tick.Stop()
	last := make(map[peer.ID]time.Time)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		watched := n.watched()
		keep := make(map[peer.ID]time.Time, len(watched))
		for _, p := range watched {
			at, ok := last[p]
			if !ok {
				at = now.Add(-rand.N(livenessInterval))
			}
			if now.Sub(at) >= livenessInterval {
				n.goCheckAlive(ctx, p)
				at = now
			}
			keep[p] = at
		}
		last = keep
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
	live := n.table.Live()
	if len(live) <= livenessAll+1 {
		return nearest(live, n.host.ID(), livenessAll, 0)
	}
	return nearest(live, n.host.ID(), livenessPeers, livenessRandom)
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

// checkAlive pings p over one of its connections (in turn, when two nodes
// that dialled each other at once hold two: pinging both doubled the cost
// for those pairs). If it does not answer in time, p's connections are
// closed and p probed at once (a fresh dial: a node merely slow to answer
// over a congested connection is not marked down); with no connection p
// is probed through probeLoop (the probe dials it, and marks it down if
// that fails).
func (n *Node) checkAlive(ctx context.Context, p peer.ID) {
	conns := n.host.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		n.requestProbe(p)
		return
	}
	if len(conns) > 1 {
		i := int(n.pingTurn.Add(1) % uint64(len(conns)))
		conns = conns[i : i+1]
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
