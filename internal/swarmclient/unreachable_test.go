package swarmclient

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/wire"
)

func fakeNodes(t *testing.T, n int) []*member.Node {
	t.Helper()
	out := make([]*member.Node, n)
	for i := range out {
		_, pub, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = &member.Node{ID: id}
	}
	return out
}

// TestUnreachableAskedLast: a node that could not be reached is asked
// last, by this run and (through the kept list) the next; an answer from
// the node, even an error, is no mark; a success clears it; marks expire.
func TestUnreachableAskedLast(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var kept []NodeList
	c := &Client{now: func() time.Time { return now }, onRefresh: func(l NodeList) { kept = append(kept, l) }}
	nodes := fakeNodes(t, 5)
	dead := nodes[1]
	c.noted(dead, errors.New("failed to dial: all dials failed"))
	c.noted(nodes[2], wire.Errorf(wire.CodeRateLimited, "busy"))
	order := append([]*member.Node(nil), nodes...)
	c.lastIfUnreachable(order)
	if order[len(order)-1] != dead || order[0] != nodes[0] || order[1] != nodes[2] {
		t.Fatalf("order %v; want the dead node last and the rest in their order", order)
	}
	if len(kept) != 1 || kept[0].Unreachable[dead.ID.String()] != now.UnixMilli() || len(kept[0].Unreachable) != 1 {
		t.Fatalf("kept lists %+v; want one with the dead node's mark only", kept)
	}

	// The next run.
	next := &Client{now: func() time.Time { return now.Add(time.Minute) }}
	next.down.restore(kept[0].Unreachable, now.Add(time.Minute))
	order = append([]*member.Node(nil), nodes...)
	next.lastIfUnreachable(order)
	if order[len(order)-1] != dead {
		t.Fatal("the next run forgot the unreachable node")
	}
	next.noted(dead, nil)
	order = append([]*member.Node(nil), nodes...)
	next.lastIfUnreachable(order)
	if order[1] != dead {
		t.Fatal("an answer did not clear the mark")
	}
	late := &Client{now: func() time.Time { return now.Add(UnreachableFor + time.Second) }}
	late.down.restore(kept[0].Unreachable, now.Add(UnreachableFor+time.Second))
	if len(late.down.snapshot(now.Add(UnreachableFor+time.Second))) != 0 {
		t.Fatal("an expired mark was restored")
	}

	// Through onion paths only the relays' word (or silence on two
	// paths) marks a node: a path that failed for another reason does not.
	oc := &Client{now: func() time.Time { return now }, paths: onion.NewPathManager(func() []*member.Node { return nodes })}
	oc.noted(nodes[3], errors.New("onion request failed on 3 paths: no answer"))
	oc.noted(nodes[4], fmt.Errorf("onion request: exit x %w: next hop unreachable", onion.ErrExitUnreachable))
	if oc.down.recent(nodes[3].ID, now) || !oc.down.recent(nodes[4].ID, now) {
		t.Fatal("onion marks: want only the exit the relays reported")
	}
}
