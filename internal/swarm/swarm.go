// Package swarm places mailboxes on nodes by rendezvous (highest random
// weight) hashing and defines message hashes. It is pure: every node and
// client computes the same swarm from the same node list.
package swarm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"sort"
)

// DefaultReplication is R, the swarm size, unless the network says otherwise.
const DefaultReplication = 5

// Quorum is the write quorum W for a swarm of r nodes: a majority.
func Quorum(r int) int { return r/2 + 1 }

// Score is the rendezvous weight of node for mailbox.
func Score(mailbox [32]byte, node []byte) uint64 {
	h := sha256.New()
	h.Write([]byte("umbra/hrw/v1"))
	h.Write(mailbox[:])
	h.Write(node)
	var sum [32]byte
	h.Sum(sum[:0])
	return binary.BigEndian.Uint64(sum[:8])
}

// Rank returns nodes ordered by descending weight for mailbox (ties broken
// by node bytes). The first R are the swarm; the rest are fallbacks in order.
// nodes is not modified.
func Rank(mailbox [32]byte, nodes [][]byte) [][]byte {
	type scored struct {
		id []byte
		s  uint64
	}
	sc := make([]scored, len(nodes))
	for i, n := range nodes {
		sc[i] = scored{n, Score(mailbox, n)}
	}
	sort.Slice(sc, func(i, j int) bool {
		if sc[i].s != sc[j].s {
			return sc[i].s > sc[j].s
		}
		return bytes.Compare(sc[i].id, sc[j].id) < 0
	})
	out := make([][]byte, len(sc))
	for i, s := range sc {
		out[i] = s.id
	}
	return out
}

// Members returns the first r of Rank.
func Members(mailbox [32]byte, nodes [][]byte, r int) [][]byte {
	ranked := Rank(mailbox, nodes)
	if len(ranked) > r {
		ranked = ranked[:r]
	}
	return ranked
}

// MessageHash is the content hash that names a message everywhere. It covers
// the mailbox, namespace, sender timestamp, expiry and data, so a sender's
// retry of the same message is idempotent.
func MessageHash(mailbox [32]byte, namespace int32, ts, expiry int64, data []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("umbra/msg/v1"))
	h.Write(mailbox[:])
	var b [20]byte
	binary.BigEndian.PutUint32(b[0:], uint32(namespace))
	binary.BigEndian.PutUint64(b[4:], uint64(ts))
	binary.BigEndian.PutUint64(b[12:], uint64(expiry))
	h.Write(b[:])
	h.Write(data)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// ReceiptBytes is what a node signs to say it holds a message on disk.
func ReceiptBytes(hash, mailbox [32]byte, expiry int64) []byte {
	b := make([]byte, 0, 16+32+32+8)
	b = append(b, "umbra/receipt/v1"...)
	b = append(b, hash[:]...)
	b = append(b, mailbox[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(expiry))
}
