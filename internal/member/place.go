package member

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/swarm"
)

// Place orders nodes for mailbox mb by the network's placement rule
// (swarm.Place): the first r are the mailbox's swarm. aged says whether a
// node has been reachable for the network's minimum age. Nodes and clients
// call it with their own views; equal views give equal answers.
func Place(mb [32]byte, nodes []*Node, aged func(peer.ID) bool, r int) []*Node {
	cands := make([]swarm.Candidate, len(nodes))
	for i, n := range nodes {
		cands[i] = swarm.Candidate{Key: n.Pos[:], Subnets: n.Subnets, Aged: aged(n.ID)}
	}
	order := swarm.Place(mb, cands, r)
	out := make([]*Node, len(order))
	for i, j := range order {
		out[i] = nodes[j]
	}
	return out
}

// InScope reports whether id ranks within the first r+k of placed, the
// nodes that may hold, repair and acknowledge mailbox writes (k is
// swarm.ScopeExtra: sloppy-quorum hand-off).
func InScope(placed []*Node, id peer.ID, r int) bool {
	limit := r + swarm.ScopeExtra(r)
	for i, n := range placed {
		if i >= limit {
			return false
		}
		if n.ID == id {
			return true
		}
	}
	return false
}
