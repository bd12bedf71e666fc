package swarm_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/umbra-im/umbra/internal/swarm"
)

func cands(keys [][]byte, subnet func(i int) string, aged func(i int) bool) []swarm.Candidate {
	out := make([]swarm.Candidate, len(keys))
	for i, k := range keys {
		out[i] = swarm.Candidate{Key: k, Subnets: []string{subnet(i)}, Aged: aged(i)}
	}
	return out
}

func keysOf(c []swarm.Candidate, order []int) []string {
	out := make([]string, len(order))
	for i, j := range order {
		out[i] = string(c[j].Key)
	}
	return out
}

// TestPlaceOrderIndependent: every node and client computes the same
// placement from the same set, in whatever order it holds it.
func TestPlaceOrderIndependent(t *testing.T) {
	r := rng(7)
	keys := randNodes(r, 40)
	c := cands(keys, func(i int) string { return fmt.Sprint(i % 13) }, func(i int) bool { return i%5 != 0 })
	mb := randMailbox(r)
	want := keysOf(c, swarm.Place(mb, c, 5))
	for trial := 0; trial < 20; trial++ {
		perm := r.Perm(len(c))
		pc := make([]swarm.Candidate, len(c))
		for i, j := range perm {
			pc[i] = c[j]
		}
		if got := keysOf(pc, swarm.Place(mb, pc, 5)); !slices.Equal(got, want) {
			t.Fatal("placement depends on the order of the candidates")
		}
	}
	if len(want) != len(c) {
		t.Fatalf("Place returned %d of %d", len(want), len(c))
	}
}

// TestPlaceAgedFirst: while R aged nodes exist, no young node holds a seat,
// whatever its score; with fewer, young ones fill the swarm.
func TestPlaceAgedFirst(t *testing.T) {
	r := rng(8)
	for trial := 0; trial < 200; trial++ {
		keys := randNodes(r, 20)
		nAged := 3 + r.IntN(15)
		c := cands(keys, func(i int) string { return fmt.Sprint(i) }, func(i int) bool { return i < nAged })
		order := swarm.Place(randMailbox(r), c, 5)
		for pos, i := range order {
			if aged := i < nAged; aged != (pos < nAged) {
				t.Fatalf("trial %d: position %d holds an aged=%v node with %d aged", trial, pos, aged, nAged)
			}
		}
	}
}

// TestPlaceSubnetCap: no subnet holds more than ⌊R/2⌋ seats of a swarm,
// however well its nodes score, while other subnets can fill it; a network
// of one subnet still gets full swarms.
func TestPlaceSubnetCap(t *testing.T) {
	r := rng(9)
	const R = 5
	for trial := 0; trial < 300; trial++ {
		keys := randNodes(r, 30)
		// 20 nodes in one subnet, 10 in their own.
		c := cands(keys, func(i int) string {
			if i < 20 {
				return "1.2.3.0/24"
			}
			return fmt.Sprint("own", i)
		}, func(int) bool { return true })
		order := swarm.Place(randMailbox(r), c, R)
		same := 0
		for _, i := range order[:R] {
			if i < 20 {
				same++
			}
		}
		if same > swarm.SubnetCap(R) {
			t.Fatalf("trial %d: one subnet holds %d of %d seats", trial, same, R)
		}
	}
	keys := randNodes(r, 8)
	c := cands(keys, func(int) string { return "one" }, func(int) bool { return true })
	if order := swarm.Place(randMailbox(r), c, R); len(order) != 8 {
		t.Fatalf("a one-subnet network: %d nodes placed", len(order))
	}
	if swarm.SubnetCap(5) != 2 || swarm.SubnetCap(1) != 1 || swarm.SubnetCap(7) != 3 {
		t.Fatal("SubnetCap")
	}
}
