package node

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/p2p"
)

// Reachability probes: of new records (a node enters the table only once
// reached at the address its record claims), of nodes whose connection
// dropped or whose call failed, of down nodes until they answer, and of
// the records restored from the cache at start.

func (n *Node) requestProbe(p peer.ID) {
	select {
	case n.probeReq <- p:
	default:
	}
}

// probeLoop keeps the live set honest: a node whose connection dropped or
// whose call failed is probed (pinged, if it is still connected: see
// checkAlive), marked down if it cannot be reached (so it no
// longer takes placements), and marked up when it answers again. New
// records learned by gossip are probed here too, and only a node reached
// at the address its record claims enters the table.
func (n *Node) probeLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.ProbeInterval)
	defer tick.Stop()
	backoff := make(downBackoff)
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.probeRestored(ctx) }()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-n.probeReq:
			switch {
			case p == n.host.ID():
			case n.host.Network().Connectedness(p) != network.Connected:
				n.probe(ctx, p)
			default:
				// A call failed over a connection that looks fine: it
				// may be stale (a frozen or cut-off node), which a
				// probe would not notice; a liveness ping does.
				n.goCheckAlive(ctx, p)
			}
		case <-n.probeKick:
			n.probeNew(ctx)
		case <-tick.C:
			n.table.Sweep()
			n.probeDown(ctx, backoff)
			n.probeNew(ctx)
		}
	}
}

// downBackoff is when each down node is probed next, and the wait after
// that: it doubles from ProbeInterval to downBackoffFactor ×
// ProbeInterval (10 s by default) while the node stays down. Records
// live 30 minutes, so a node that is gone stays in the table (down) that
// long; without the backoff it was dialled every ProbeInterval all that
// time.
type downBackoff map[peer.ID]struct {
	first time.Time // when probeDown first found it down
	next  time.Time
	wait  time.Duration
}

// downBackoffFactor bounds the wait between probes of a down node, in
// ProbeIntervals: a node that comes back (or a split that heals) is seen
// within it. The backoff starts once a node has been down for
// downBackoffAfter: one marked down by mistake (a ping lost under load)
// is probed every ProbeInterval, as before.
const (
	downBackoffFactor = 5
	downBackoffAfter  = 30 * time.Second
)

// probeDown probes the down nodes that are due (newProbes at once, each
// given a second) and spaces the next probes of those still down.
func (n *Node) probeDown(ctx context.Context, b downBackoff) {
	now := time.Now()
	down := n.downNodes()
	keep := make(map[peer.ID]bool, len(down))
	var due []peer.ID
	for _, p := range down {
		keep[p] = true
		if st, ok := b[p]; !ok || !now.Before(st.next) {
			due = append(due, p)
		}
	}
	for p := range b {
		if !keep[p] {
			delete(b, p)
		}
	}
	for len(due) > 0 && ctx.Err() == nil {
		batch := due[:min(len(due), newProbes)]
		due = due[len(batch):]
		var wg sync.WaitGroup
		for _, p := range batch {
			wg.Add(1)
			go func() { defer wg.Done(); n.probe(ctx, p) }()
		}
		wg.Wait()
		at := time.Now()
		for _, p := range batch {
			st := b[p]
			if st.first.IsZero() {
				st.first = now
			}
			if at.Sub(st.first) < downBackoffAfter {
				st.wait = n.cfg.ProbeInterval
			} else {
				st.wait = min(max(2*st.wait, n.cfg.ProbeInterval), downBackoffFactor*n.cfg.ProbeInterval)
			}
			st.next = at.Add(st.wait)
			b[p] = st
		}
	}
}

// Probing new records: this many at once, each for at most newProbeTimeout.
const (
	newProbes       = 16
	newProbeTimeout = 2 * time.Second
)

// probeNew probes pending records (a few from each source in turn, see
// member.Table.ToProbe) until none is left or the node stops: a node is
// verified only when a dial to its claimed address reaches its peer ID.
func (n *Node) probeNew(ctx context.Context) {
	for rounds := 0; rounds < 64 && ctx.Err() == nil; rounds++ {
		batch := n.table.ToProbe(newProbes)
		if len(batch) == 0 {
			return
		}
		var wg sync.WaitGroup
		for _, rec := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.m.probes.Inc()
				ok := rec.ID == n.host.ID() || n.reach(ctx, rec, newProbeTimeout) == nil
				if !ok {
					n.m.probesFailed.Inc()
				}
				n.table.Probed(rec.ID, ok)
			}()
		}
		wg.Wait()
	}
}

// reach dials rec's addresses (skipping the dial backoff) and checks that
// the node answering is rec's.
func (n *Node) reach(ctx context.Context, rec *member.Node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n.host.Network().Peerstore().AddAddrs(rec.ID, rec.Addrs, n.cfg.RecordTTL)
	return n.host.Connect(network.WithForceDirectDial(ctx, "probe"), rec.AddrInfo())
}

func (n *Node) downNodes() []peer.ID {
	var out []peer.ID
	for _, v := range n.table.Versions() {
		id := peer.ID(v.Node)
		if n.table.IsDown(id) {
			out = append(out, id)
		}
	}
	return out
}

func (n *Node) probe(ctx context.Context, p peer.ID) {
	rec, ok := n.table.Get(p)
	if !ok {
		return
	}
	// A forced direct dial skips the dial backoff, so a restarted node is
	// seen at once.
	err := n.reach(ctx, rec, time.Second)
	if err != nil && n.ctx.Err() == nil {
		if !n.table.IsDown(p) {
			n.log.Info("node unreachable; marked down", "peer", p2p.ShortID(p))
		}
		n.table.SetDown(p, true)
		return
	}
	if err == nil && n.table.IsDown(p) {
		n.log.Info("node reachable again", "peer", p2p.ShortID(p))
		n.table.SetDown(p, false)
	}
}

// probeRestored probes the records restored from the cache (newProbes at
// once): they live 30 minutes, so after a restart many may name nodes
// that are gone, which would otherwise count as live until a call to them
// failed. Unreachable ones are marked down.
func (n *Node) probeRestored(ctx context.Context) {
	var ids []peer.ID
	for _, nd := range n.table.Live() {
		if nd.ID != n.host.ID() && n.host.Network().Connectedness(nd.ID) != network.Connected {
			ids = append(ids, nd.ID)
		}
	}
	sem := make(chan struct{}, newProbes)
	var wg sync.WaitGroup
	for _, p := range ids {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n.probe(ctx, p)
		}()
	}
	wg.Wait()
}
