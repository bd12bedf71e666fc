package node

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// onionCharge is what an onion packet of n bytes is charged while this node
// works on it: the packet itself (peeled or wrapped in place) and one
// encoding of it on its way out. The p2p layer's frame buffers are its own
// to account for.
func onionCharge(n int) int64 { return 2 * int64(n) }

// onionBudget bounds the bytes of onion work held at once, per node and
// per previous hop. Acquiring never waits: over budget the caller answers
// at once (429) rather than queueing.
type onionBudget struct {
	node, peer int64 // limits

	mu     sync.Mutex
	used   int64
	byPeer map[peer.ID]int64

	inUse   prometheus.Gauge
	refused prometheus.Counter

	mix *mixPool // requests held for their mix delay (charged here too)
}

func newOnionBudget(l OnionLimits, reg prometheus.Registerer) *onionBudget {
	b := &onionBudget{node: l.NodeBudget, peer: l.PeerBudget, byPeer: make(map[peer.ID]int64),
		inUse: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "umbra", Name: "onion_budget_bytes",
			Help: "Bytes of onion work held (charged against the onion budget)."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "umbra", Name: "onion_busy_total",
			Help: "Onion requests and replies refused over the onion budget."}),
	}
	if reg != nil {
		reg.MustRegister(b.inUse, b.refused)
	}
	b.mix = newMixPool(mixLimits{maxDelay: l.MixMaxDelay, packets: l.MixHeldPackets, peerPackets: l.MixPeerPackets,
		bytes: l.MixHeldBytes, peerBytes: l.MixPeerBytes}, time.Now, reg)
	return b
}

// requestLimit is the part of the node budget requests may hold: the
// rest is kept for the replies they wait for, so that waiting requests
// never starve their own answers.
func (b *onionBudget) requestLimit() int64 { return b.node - b.node/4 }

// acquireRequest charges n bytes for a request from p, within the
// request part of the node budget and p's budget.
func (b *onionBudget) acquireRequest(p peer.ID, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.requestLimit() || b.byPeer[p]+n > b.peer {
		b.refused.Inc()
		return false
	}
	b.used += n
	b.byPeer[p] += n
	b.inUse.Set(float64(b.used))
	return true
}

// releaseRequest returns what acquireRequest charged.
func (b *onionBudget) releaseRequest(p peer.ID, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.byPeer[p] -= n; b.byPeer[p] <= 0 {
		delete(b.byPeer, p)
	}
	b.inUse.Set(float64(b.used))
}

// acquireReply charges n bytes for a reply being wrapped, within the
// whole node budget (replies are short-lived and already paid for by the
// request's sender, so only the node bound applies).
func (b *onionBudget) acquireReply(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.node {
		b.refused.Inc()
		return false
	}
	b.used += n
	b.inUse.Set(float64(b.used))
	return true
}

// releaseReply returns what acquireReply charged.
func (b *onionBudget) releaseReply(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.inUse.Set(float64(b.used))
}

// inUseBytes is the bytes currently charged.
func (b *onionBudget) inUseBytes() (node int64, peers int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, len(b.byPeer)
}

// OnionBudgetInUse is the bytes of onion work this node holds now, and for
// how many previous hops (tests and the admin view).
func (n *Node) OnionBudgetInUse() (bytes int64, peers int) { return n.obudget.inUseBytes() }
