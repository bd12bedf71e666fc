package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/onion"
)

// charge2K is what a 2 KiB onion packet is charged against the onion
// budget: twice the request body, the packet and its 5-byte CBOR head
// (onion_budget.go).
const charge2K = 2 * (2<<10 + 5)

// pending runs a round trip in the background.
func pending(ctx context.Context, t *testing.T, oc *onionClient, path []onion.Hop, req []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := oc.roundTrip(ctx, t, path, req)
		done <- err
	}()
	return done
}

func waitInUse(t *testing.T, nd *node.Node, want int64) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool { b, _ := nd.OnionBudgetInUse(); return b == want }, "the onion budget to settle")
}

// TestOnionPeerBudget: a previous hop holding its whole budget (one long-
// poll here) gets its next packet refused at once with 429, while the
// long-poll is still pending; another previous hop is served; once the
// long-poll is answered the first hop is served again and nothing stays
// charged.
func TestOnionPeerBudget(t *testing.T) {
	tn := startNetCfg(t, 3, func(i int, c *node.Config) {
		c.Onion.PeerBudget = charge2K
	})
	nd := tn.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := newOnionClient(t), newOnionClient(t)
	path := []onion.Hop{a.hop(t, nd)}
	b.hop(t, nd)
	poll := pending(ctx, t, a, path, longPoll(t, 3*time.Second))
	waitInUse(t, nd, charge2K)
	_, err := a.roundTrip(ctx, t, path, junkRequest())
	if wireCode(err) != 429 {
		t.Fatalf("second packet from a hop at its budget: %v, want 429", err)
	}
	select {
	case err := <-poll:
		t.Fatalf("the long-poll ended (%v) before the refusal was checked; the refusal was not immediate", err)
	default:
	}
	if _, err := b.roundTrip(ctx, t, path, junkRequest()); err != nil {
		t.Fatalf("another previous hop: %v", err)
	}
	if err := <-poll; err != nil {
		t.Fatalf("long-poll: %v", err)
	}
	if _, err := a.roundTrip(ctx, t, path, junkRequest()); err != nil {
		t.Fatalf("after the long-poll: %v", err)
	}
	waitInUse(t, nd, 0)
	if _, peers := nd.OnionBudgetInUse(); peers != 0 {
		t.Fatalf("%d previous hops still charged", peers)
	}
}

// TestOnionNodeBudget: requests may hold three quarters of the node
// budget; past that every previous hop is refused at once, and the
// replies of the waiting requests still fit the last quarter.
func TestOnionNodeBudget(t *testing.T) {
	tn := startNetCfg(t, 3, func(i int, c *node.Config) {
		c.Onion.NodeBudget = 3 * charge2K // requests: 2.25 packets; replies: the rest
	})
	nd := tn.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b, c := newOnionClient(t), newOnionClient(t), newOnionClient(t)
	path := []onion.Hop{a.hop(t, nd)}
	b.hop(t, nd)
	c.hop(t, nd)
	pa := pending(ctx, t, a, path, longPoll(t, 2*time.Second))
	waitInUse(t, nd, charge2K)
	pb := pending(ctx, t, b, path, longPoll(t, 4*time.Second))
	waitInUse(t, nd, 2*charge2K)
	if _, err := c.roundTrip(ctx, t, path, junkRequest()); wireCode(err) != 429 {
		t.Fatalf("packet past the node budget: %v, want 429", err)
	}
	for name, p := range map[string]<-chan error{"first": pa, "second": pb} {
		if err := <-p; err != nil {
			t.Fatalf("%s long-poll: %v (its reply did not fit the budget)", name, err)
		}
	}
	if _, err := c.roundTrip(ctx, t, path, junkRequest()); err != nil {
		t.Fatalf("after the long-polls: %v", err)
	}
	waitInUse(t, nd, 0)
}
