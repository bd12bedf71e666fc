package node

import (
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/onion"
)

func TestOnionBudgetUnit(t *testing.T) {
	b := newOnionBudget(OnionLimits{NodeBudget: 400, PeerBudget: 200}, nil)
	p, q, r := peer.ID("p"), peer.ID("q"), peer.ID("r")
	if b.requestLimit() != 300 {
		t.Fatalf("request limit %d, want three quarters of 400", b.requestLimit())
	}
	if !b.acquireRequest(p, 150) || b.acquireRequest(p, 51) {
		t.Fatal("per-peer bound: 150 then 51 more of 200")
	}
	if !b.acquireRequest(p, 50) {
		t.Fatal("per-peer bound: exactly 200 must fit")
	}
	if !b.acquireRequest(q, 100) || b.acquireRequest(r, 1) {
		t.Fatal("requests must stop at three quarters of the node budget")
	}
	if !b.acquireReply(100) || b.acquireReply(1) {
		t.Fatal("replies may use the whole node budget, and no more")
	}
	b.releaseReply(100)
	b.releaseRequest(p, 150)
	b.releaseRequest(p, 50)
	b.releaseRequest(q, 100)
	if used, peers := b.inUseBytes(); used != 0 || peers != 0 {
		t.Fatalf("after release: %d bytes for %d peers", used, peers)
	}
	// Concurrent use never exceeds the bounds and returns to zero.
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxSeen := int64(0)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := peer.ID([]byte{byte('a' + w%3)})
			for i := 0; i < 500; i++ {
				if b.acquireRequest(id, 60) {
					used, _ := b.inUseBytes()
					mu.Lock()
					maxSeen = max(maxSeen, used)
					mu.Unlock()
					b.releaseRequest(id, 60)
				}
			}
		}()
	}
	wg.Wait()
	if used, peers := b.inUseBytes(); used != 0 || peers != 0 || maxSeen > 300 {
		t.Fatalf("after concurrent use: %d bytes, %d peers; peak %d", used, peers, maxSeen)
	}
}

func TestOnionLimitsDefaults(t *testing.T) {
	var l OnionLimits
	l.setDefaults()
	if l != DefaultOnionLimits {
		t.Fatalf("zero limits became %+v, want the defaults %+v", l, DefaultOnionLimits)
	}
	l = OnionLimits{NodeBudget: 1, PeerBudget: 2, ReplayTagsPerKey: 3, ReplaySyncInterval: 4,
		MixMaxDelay: 5, MixHeldPackets: 6, MixPeerPackets: 7, MixHeldBytes: 8, MixPeerBytes: 9}
	k := l
	k.setDefaults()
	if k != l {
		t.Fatalf("set limits changed: %+v", k)
	}
	// The mix pool's byte bounds follow the budgets they are carved
	// from, and no relay holds longer than the protocol's MaxDelay.
	l = OnionLimits{NodeBudget: 100, PeerBudget: 10, MixMaxDelay: onion.MaxDelay + 1}
	l.setDefaults()
	if l.MixHeldBytes != 50 || l.MixPeerBytes != 5 || l.MixMaxDelay != onion.MaxDelay {
		t.Fatalf("mix bounds %d/%d bytes, delay %v; want 50/5 and %v", l.MixHeldBytes, l.MixPeerBytes, l.MixMaxDelay, onion.MaxDelay)
	}
}
