package node

import (
	"fmt"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
)

func ringNodes(n int) []*member.Node {
	out := make([]*member.Node, n)
	for i := range out {
		nd := &member.Node{ID: peer.ID(fmt.Sprintf("node-%02d", i))}
		nd.Pos[0] = byte(i * 8)
		out[i] = nd
	}
	// Live is sorted by peer ID, not by position: shuffle the order.
	slices.Reverse(out)
	return out
}

// The nodes a node pings are its neighbours in placement order, around
// the ring, and a bounded number of others.
func TestNearest(t *testing.T) {
	live := ringNodes(20)
	id := func(i int) peer.ID { return peer.ID(fmt.Sprintf("node-%02d", i)) }
	for _, c := range []struct {
		self int
		want []int
	}{
		{10, []int{8, 9, 11, 12}},
		{0, []int{18, 19, 1, 2}},
		{19, []int{17, 18, 0, 1}},
	} {
		for try := 0; try < 20; try++ {
			got := nearest(live, id(c.self), 4, 1)
			if len(got) != 5 {
				t.Fatalf("self %d: %d nodes, want 5: %v", c.self, len(got), got)
			}
			if slices.Contains(got, id(c.self)) {
				t.Fatalf("self %d: pings itself", c.self)
			}
			for _, w := range c.want {
				if !slices.Contains(got, id(w)) {
					t.Fatalf("self %d: %v lacks neighbour %d", c.self, got, w)
				}
			}
		}
	}
	// A small network: every other node.
	small := ringNodes(5)
	if got := nearest(small, id(2), 4, 1); len(got) != 4 || slices.Contains(got, id(2)) {
		t.Fatalf("small network: %v", got)
	}
	// Self not in the table: k+extra at random.
	if got := nearest(small, "other", 4, 1); len(got) != 5 {
		t.Fatalf("self unknown, small network: %v", got)
	}
	if got := nearest(live, "other", 4, 1); len(got) != 5 {
		t.Fatalf("self unknown: %v", got)
	}
}
