package swarm_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/umbra-im/umbra/internal/swarm"
)

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func randNodes(r *rand.Rand, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, 38) // the size of an Ed25519 peer ID
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		out[i] = b
	}
	return out
}

func randMailbox(r *rand.Rand) [32]byte {
	var m [32]byte
	for i := range m {
		m[i] = byte(r.Uint32())
	}
	return m
}

func equal(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func clone(nodes [][]byte) [][]byte { return append([][]byte(nil), nodes...) }

func TestQuorum(t *testing.T) {
	for _, tc := range []struct{ r, w int }{{1, 1}, {2, 2}, {3, 2}, {4, 3}, {5, 3}, {6, 4}, {7, 4}, {15, 8}} {
		if got := swarm.Quorum(tc.r); got != tc.w {
			t.Errorf("Quorum(%d) = %d, want %d", tc.r, got, tc.w)
		}
		// Any two write quorums intersect.
		if 2*swarm.Quorum(tc.r) <= tc.r {
			t.Errorf("Quorum(%d) is not a majority", tc.r)
		}
	}
}

func TestRankDeterministicAndOrderIndependent(t *testing.T) {
	r := rng(1)
	nodes := randNodes(r, 20)
	for i := 0; i < 100; i++ {
		mb := randMailbox(r)
		want := swarm.Rank(mb, nodes)
		if len(want) != len(nodes) {
			t.Fatalf("Rank returned %d of %d nodes", len(want), len(nodes))
		}
		// same input, same answer
		if got := swarm.Rank(mb, nodes); !equal(got, want) {
			t.Fatal("Rank is not deterministic")
		}
		// any permutation of the input, same answer
		perm := clone(nodes)
		r.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
		before := clone(perm)
		if got := swarm.Rank(mb, perm); !equal(got, want) {
			t.Fatal("Rank depends on input order")
		}
		if !equal(perm, before) {
			t.Fatal("Rank modified its input")
		}
		// ordered by descending score
		for j := 1; j < len(want); j++ {
			if swarm.Score(mb, want[j-1]) < swarm.Score(mb, want[j]) {
				t.Fatalf("Rank not ordered by score at %d", j)
			}
		}
		// copies of node IDs (different backing arrays) rank the same
		copies := make([][]byte, len(nodes))
		for j, n := range nodes {
			copies[j] = bytes.Clone(n)
		}
		if got := swarm.Rank(mb, copies); !equal(got, want) {
			t.Fatal("Rank depends on slice identity")
		}
	}
}

func TestRankEdgeCases(t *testing.T) {
	mb := [32]byte{1}
	if got := swarm.Rank(mb, nil); len(got) != 0 {
		t.Fatalf("Rank(nil) = %v", got)
	}
	if got := swarm.Members(mb, nil, 5); len(got) != 0 {
		t.Fatalf("Members of no nodes = %v", got)
	}
	// Duplicate IDs tie on score; both are kept, next to each other.
	got := swarm.Rank(mb, [][]byte{[]byte("same"), []byte("other"), []byte("same")})
	if len(got) != 3 {
		t.Fatalf("len %d", len(got))
	}
	i := 0
	for i < 3 && string(got[i]) != "same" {
		i++
	}
	if i > 1 || string(got[i+1]) != "same" {
		t.Fatalf("duplicates not adjacent: %q", got)
	}
}

func TestMembersIsPrefixOfRank(t *testing.T) {
	r := rng(2)
	nodes := randNodes(r, 12)
	for i := 0; i < 200; i++ {
		mb := randMailbox(r)
		ranked := swarm.Rank(mb, nodes)
		for _, k := range []int{0, 1, 3, 5, 11, 12, 13, 100} {
			got := swarm.Members(mb, nodes, k)
			want := ranked
			if k < len(want) {
				want = want[:k]
			}
			if !equal(got, want) {
				t.Fatalf("Members(r=%d) is not the first %d of Rank", k, k)
			}
		}
	}
}

// Removing a node moves only the mailboxes whose swarm held it, and each of
// those gains exactly the next-ranked node.
func TestRemoveNodeMinimalMovement(t *testing.T) {
	const R = 5
	r := rng(3)
	nodes := randNodes(r, 12)
	for victim := range nodes {
		rest := make([][]byte, 0, len(nodes)-1)
		rest = append(rest, nodes[:victim]...)
		rest = append(rest, nodes[victim+1:]...)
		moved := 0
		for i := 0; i < 1000; i++ {
			mb := randMailbox(r)
			ranked := swarm.Rank(mb, nodes)
			old := ranked[:R]
			var want [][]byte
			in := false
			for _, n := range old {
				if bytes.Equal(n, nodes[victim]) {
					in = true
					continue
				}
				want = append(want, n)
			}
			if in {
				want = append(want, ranked[R]) // the next-ranked node fills in
				moved++
			}
			got := swarm.Members(mb, rest, R)
			if !equal(got, want) {
				t.Fatalf("victim %d, mailbox %x: swarm %x, want %x", victim, mb[:4], got, want)
			}
		}
		// The victim is in ~5/12 of swarms; make sure the check did work.
		if moved == 0 || moved == 1000 {
			t.Fatalf("victim %d was in %d of 1000 swarms", victim, moved)
		}
	}
}

// Adding a node is the mirror image: a swarm changes only if the new node
// joins it, displacing the last member.
func TestAddNodeMinimalMovement(t *testing.T) {
	const R = 5
	r := rng(4)
	nodes := randNodes(r, 11)
	newcomer := randNodes(r, 1)[0]
	all := append(clone(nodes), newcomer)
	for i := 0; i < 1000; i++ {
		mb := randMailbox(r)
		old := swarm.Members(mb, nodes, R)
		got := swarm.Members(mb, all, R)
		joined := false
		for _, n := range got {
			if bytes.Equal(n, newcomer) {
				joined = true
			}
		}
		if !joined {
			if !equal(got, old) {
				t.Fatal("swarm changed without the newcomer joining it")
			}
			continue
		}
		// old minus its last member, plus the newcomer somewhere.
		var rest [][]byte
		for _, n := range got {
			if !bytes.Equal(n, newcomer) {
				rest = append(rest, n)
			}
		}
		if !equal(rest, old[:R-1]) {
			t.Fatal("newcomer displaced a member other than the last")
		}
	}
}

func TestDistributionBalanced(t *testing.T) {
	const (
		N      = 12
		R      = 5
		swarms = 2000
	)
	r := rng(5)
	nodes := randNodes(r, N)
	count := map[string]int{}
	for i := 0; i < swarms; i++ {
		m := swarm.Members(randMailbox(r), nodes, R)
		if len(m) != R {
			t.Fatalf("swarm of %d", len(m))
		}
		seen := map[string]bool{}
		for _, n := range m {
			if seen[string(n)] {
				t.Fatal("node twice in one swarm")
			}
			seen[string(n)] = true
			count[string(n)]++
		}
	}
	for i, n := range nodes {
		share := float64(count[string(n)]) / swarms
		if share < 0.25 || share > 0.60 {
			t.Errorf("node %d is in %.1f%% of swarms (expected ~%.1f%%)", i, 100*share, 100.0*R/N)
		}
	}
}

func TestScoreDependsOnBoth(t *testing.T) {
	mb1, mb2 := [32]byte{1}, [32]byte{2}
	n1, n2 := []byte("node-1"), []byte("node-2")
	if swarm.Score(mb1, n1) == swarm.Score(mb2, n1) {
		t.Error("score ignores the mailbox")
	}
	if swarm.Score(mb1, n1) == swarm.Score(mb1, n2) {
		t.Error("score ignores the node")
	}
	if swarm.Score(mb1, n1) != swarm.Score(mb1, bytes.Clone(n1)) {
		t.Error("score not deterministic")
	}
}

func TestMessageHash(t *testing.T) {
	mb := [32]byte{1, 2, 3}
	base := swarm.MessageHash(mb, 7, 1000, 2000, []byte("data"))
	if base != swarm.MessageHash(mb, 7, 1000, 2000, []byte("data")) {
		t.Fatal("MessageHash not deterministic")
	}
	other := mb
	other[31] = 1
	variants := []struct {
		name string
		h    [32]byte
	}{
		{"mailbox", swarm.MessageHash(other, 7, 1000, 2000, []byte("data"))},
		{"namespace", swarm.MessageHash(mb, 8, 1000, 2000, []byte("data"))},
		{"negative namespace", swarm.MessageHash(mb, -7, 1000, 2000, []byte("data"))},
		{"timestamp", swarm.MessageHash(mb, 7, 1001, 2000, []byte("data"))},
		{"expiry", swarm.MessageHash(mb, 7, 1000, 2001, []byte("data"))},
		{"timestamp and expiry swapped", swarm.MessageHash(mb, 7, 2000, 1000, []byte("data"))},
		{"data", swarm.MessageHash(mb, 7, 1000, 2000, []byte("datb"))},
		{"data longer", swarm.MessageHash(mb, 7, 1000, 2000, []byte("data\x00"))},
		{"data empty", swarm.MessageHash(mb, 7, 1000, 2000, nil)},
	}
	seen := map[[32]byte]string{base: "base"}
	for _, v := range variants {
		if prev, ok := seen[v.h]; ok {
			t.Errorf("changing %s gives the same hash as %s", v.name, prev)
		}
		seen[v.h] = v.name
	}
}

func TestReceiptBytes(t *testing.T) {
	h, mb := [32]byte{1}, [32]byte{2}
	base := swarm.ReceiptBytes(h, mb, 100)
	if len(base) != 16+32+32+8 {
		t.Fatalf("len %d", len(base))
	}
	for name, b := range map[string][]byte{
		"hash":    swarm.ReceiptBytes([32]byte{3}, mb, 100),
		"mailbox": swarm.ReceiptBytes(h, [32]byte{3}, 100),
		"expiry":  swarm.ReceiptBytes(h, mb, 101),
		"swapped": swarm.ReceiptBytes(mb, h, 100),
	} {
		if bytes.Equal(b, base) {
			t.Errorf("changing %s leaves the receipt bytes unchanged", name)
		}
	}
}
