package swarm

import (
	"bytes"
	"sort"
)

// Candidate is a node as placement sees it.
type Candidate struct {
	Key     []byte   // placement position (member.Position): costs a proof-of-work to choose
	Subnets []string // diversity keys of the node's addresses (member.Subnets)
	Aged    bool     // reachable for at least the network's minimum age
}

// SubnetCap is how many members of one swarm of r may share a subnet:
// ⌊r/2⌋ (at least 1), so no one /24 or /48 can hold a write quorum.
func SubnetCap(r int) int { return max(1, r/2) }

// ScopeExtra is k in "top R+k": how far past the swarm a node may rank
// and still take part in a mailbox's writes, repair and receipts. It
// covers sloppy-quorum hand-off while up to k of the first R+k nodes are
// down.
func ScopeExtra(r int) int { return r }

// Place returns the indices of cands in placement order for mailbox mb:
// the first r are the mailbox's swarm, the rest fallbacks in order.
//
// Nodes old enough to take placements (Aged) come first, ranked by
// rendezvous weight of their position; younger nodes follow, ranked the
// same way, so they only hold a mailbox when fewer than r aged nodes are
// up. The swarm is the first r nodes in that order that keep every subnet
// at or under SubnetCap(r) members; nodes passed over for the cap follow
// the swarm. In a network too small or too concentrated to fill a swarm
// within the cap, the first passed-over nodes fill it anyway. cands is not
// modified; equal inputs give equal outputs on every node and client.
func Place(mb [32]byte, cands []Candidate, r int) []int {
	idx := make([]int, len(cands))
	scores := make([]uint64, len(cands))
	for i := range cands {
		idx[i] = i
		scores[i] = Score(mb, cands[i].Key)
	}
	sort.Slice(idx, func(a, b int) bool {
		ca, cb := &cands[idx[a]], &cands[idx[b]]
		if ca.Aged != cb.Aged {
			return ca.Aged
		}
		if sa, sb := scores[idx[a]], scores[idx[b]]; sa != sb {
			return sa > sb
		}
		return bytes.Compare(ca.Key, cb.Key) < 0
	})
	limit := SubnetCap(r)
	count := make(map[string]int)
	out := make([]int, 0, len(idx))
	var passed []int
	for _, i := range idx {
		if len(out) < r && fits(cands[i].Subnets, count, limit) {
			for _, k := range cands[i].Subnets {
				count[k]++
			}
			out = append(out, i)
			continue
		}
		passed = append(passed, i)
	}
	if short := r - len(out); short > 0 && len(passed) > 0 {
		short = min(short, len(passed))
		out = append(out, passed[:short]...)
		passed = passed[short:]
	}
	return append(out, passed...)
}

func fits(keys []string, count map[string]int, limit int) bool {
	for _, k := range keys {
		if count[k] >= limit {
			return false
		}
	}
	return true
}
