package member_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/wire"
)

// TestTableAdmit: with an admission rule, records of refused nodes are
// not taken by any path, and Purge drops nodes the rule stops admitting.
func TestTableAdmit(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	a, b, c := newIdent(t), newIdent(t), newIdent(t)
	var mu sync.Mutex
	allowed := map[peer.ID]bool{a.id: true, b.id: true}
	tb.SetAdmit(func(id peer.ID) bool { mu.Lock(); defer mu.Unlock(); return allowed[id] })

	upsert(t, tb, signedAt(t, a, 1, time.Minute, addrA))
	if ok, err := tb.Upsert(signedAt(t, c, 1, time.Minute, "/ip4/127.0.0.3/tcp/1")); ok || !errors.Is(err, member.ErrNotAdmitted) {
		t.Fatalf("Upsert of a refused node: %v %v", ok, err)
	}
	if err := tb.Restore(signedAt(t, c, 1, time.Minute, "/ip4/127.0.0.3/tcp/1"), t0); !errors.Is(err, member.ErrNotAdmitted) {
		t.Fatalf("Restore of a refused node: %v", err)
	}
	if res, _ := tb.Offer(signedAt(t, c, 2, time.Minute, "/ip4/127.0.0.3/tcp/1"), a.id); res != member.OfferIgnored {
		t.Fatalf("Offer of a refused node: %v", res)
	}
	if res, _ := tb.Offer(signedAt(t, b, 2, time.Minute, "/ip4/127.0.0.2/tcp/1"), a.id); res != member.OfferPending {
		t.Fatalf("Offer of an admitted node: %v", res)
	}
	_, want := tb.Delta([]wire.MemberVersion{{Node: []byte(c.id), Seq: 9}}, a.id, nil)
	if len(want) != 0 {
		t.Fatalf("Delta wants a refused node")
	}
	// b is pending; it is removed from the list before its probe ends.
	for _, n := range tb.ToProbe(4) {
		if n.ID != b.id {
			t.Fatalf("probing %v", n.ID)
		}
	}
	mu.Lock()
	delete(allowed, b.id)
	mu.Unlock()
	tb.Probed(b.id, true)
	if _, ok := tb.Get(b.id); ok {
		t.Fatal("a node removed while probed entered the table")
	}
	mu.Lock()
	allowed[b.id] = true
	mu.Unlock()
	upsert(t, tb, signedAt(t, b, 3, time.Minute, "/ip4/127.0.0.2/tcp/1"))
	if tb.Len() != 2 {
		t.Fatalf("Len %d", tb.Len())
	}
	signalled(tb)
	mu.Lock()
	delete(allowed, a.id)
	mu.Unlock()
	if got := tb.Purge(); len(got) != 1 || got[0] != a.id {
		t.Fatalf("Purge dropped %v", got)
	}
	if !signalled(tb) || tb.Len() != 1 || len(tb.Live()) != 1 || tb.Live()[0].ID != b.id {
		t.Fatalf("after purge: %v", liveIDs(tb))
	}
}
