package node_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/node"
)

// TestOnionGuardReportBlamesNoMiddle: a middle goes down; when a guard
// reports it unreachable, the client's request still succeeds (another
// middle, same call), the middle is not avoided by the client's other
// requests (one guard's word cannot push a node out of every path), and the
// failure is counted in that guard's path-bias record.
func TestOnionGuardReportBlamesNoMiddle(t *testing.T) {
	rec := &recorder{}
	tn := startNetCfg(t, 6, func(_ int, c *node.Config) { c.OnionObserver = rec.add })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := tn.client(ctx)
	first, _ := mailbox.NewKey()
	if _, err := c.Put(ctx, first.ID(), 0, time.Hour, []byte("first")); err != nil {
		t.Fatal(err)
	}
	guards := c.Paths().Guards()
	vi := slices.IndexFunc(tn.nodes, func(nd *node.Node) bool { return !slices.Contains(guards, nd.ID()) })
	victim := tn.nodes[vi].ID()
	// A mailbox whose swarm (5 of the 6 nodes) leaves the victim out, so
	// that it is only ever asked for as a middle, by a guard.
	var key *mailbox.Key
	for key == nil {
		k, _ := mailbox.NewKey()
		if !slices.ContainsFunc(c.Swarm(k.ID()), func(n *member.Node) bool { return n.ID == victim }) {
			key = k
		}
	}
	if err := tn.nodes[vi].Close(); err != nil {
		t.Fatal(err)
	}
	tn.nodes[vi] = nil
	client := c.Host().ID()
	// Middles are drawn at random among about three nodes: within 40
	// requests a guard is asked to forward to the dead one (all but
	// certainly: (2/3)^40 < 1e-7).
	var reporter peer.ID
	for i := 0; i < 40 && reporter == ""; i++ {
		if _, err := c.Put(ctx, key.ID(), 0, time.Hour, []byte("again")); err != nil {
			t.Fatalf("put %d with a middle down: %v", i, err)
		}
		for _, ev := range rec.all() {
			if ev.From == client && ev.Next == victim && ev.ReplyIn == nil {
				reporter = ev.Node
			}
		}
	}
	if reporter == "" {
		t.Fatal("no guard was asked to forward to the stopped node in 40 requests")
	}
	if c.Paths().Avoided(victim) {
		t.Fatal("the middle one guard reported unreachable is avoided on every path")
	}
	st, ok := c.Paths().GuardStats(reporter)
	if !ok || st.Attempts < 1 || st.Successes >= st.Attempts {
		t.Fatalf("guard %s's path-bias record %+v (%v): want its failure counted", reporter, st, ok)
	}
	t.Logf("guard record after reporting the dead middle: %+v", st)
}
