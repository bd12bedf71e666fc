package files

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
)

// score is the rendezvous weight of node for a share: the highest
// scoring node holds the share. Addresses are hashes of encrypted shares,
// so a node cannot steer which shares come to it.
func score(a Address, node []byte) uint64 {
	h := sha256.New()
	h.Write(a[:])
	h.Write(node)
	var sum [32]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// Rank is nodes' indexes in rendezvous order for a: where to store a
// share, and where else to try when a node refuses it.
func Rank(a Address, nodes [][]byte) []int {
	scores := make([]uint64, len(nodes))
	idx := make([]int, len(nodes))
	for i, n := range nodes {
		scores[i], idx[i] = score(a, n), i
	}
	slices.SortFunc(idx, func(x, y int) int {
		switch {
		case scores[x] > scores[y]:
			return -1
		case scores[x] < scores[y]:
			return 1
		}
		return x - y
	})
	return idx
}

// Place puts one stripe's shares on distinct nodes: share j goes to the
// highest scoring node for its address among those the stripe does not
// use yet (with more shares than nodes, every node is used again once all
// are). skip, if set, leaves a node out (one that refused or failed).
// It returns the node index of each share, -1 when no node is left.
func Place(stripe []Address, nodes [][]byte, skip func(node int) bool) []int {
	used := make([]bool, len(nodes))
	pick := func(a Address) int {
		best, bestScore := -1, uint64(0)
		for i, n := range nodes {
			if used[i] || (skip != nil && skip(i)) {
				continue
			}
			if s := score(a, n); best < 0 || s > bestScore {
				best, bestScore = i, s
			}
		}
		return best
	}
	out := make([]int, len(stripe))
	for j, a := range stripe {
		best := pick(a)
		if best < 0 { // every usable node holds one: start again
			clear(used)
			best = pick(a)
		}
		out[j] = best
		if best >= 0 {
			used[best] = true
		}
	}
	return out
}
