package member

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/wire"
)

// Gossip digests. A gossip round used to open with the whole version list
// (about 50 bytes per node, every round, however little had changed). Now
// it opens with bucket sums: the table's nodes are split into buckets by
// a hash of their ID, and each bucket is summed (SumSize bytes: the XOR
// of a hash of each (node, seq) in it). Two tables that agree exchange
// only the sums; where they differ, only the differing buckets' versions
// are sent. The XOR is not a defence against a hostile peer crafting
// collisions: a peer that lies about its sums only keeps itself from
// learning records (the records it gives are verified as always).
const (
	// SumSize is the size of one bucket's sum.
	SumSize = 8
	// MaxBuckets bounds the buckets of a digest (a power of two).
	MaxBuckets = 256
	// nodesPerBucket is the bucket size DigestBuckets aims for.
	nodesPerBucket = 8
)

// ErrBadSums is returned for a digest whose sums are not a power-of-two
// count of SumSize-byte sums of at most MaxBuckets.
var ErrBadSums = errors.New("member: digest sums must be a power of two of 8-byte sums, at most 256")

// DigestBuckets is the number of buckets for a table of n nodes: a power
// of two giving about nodesPerBucket nodes each, at least 1, at most
// MaxBuckets.
func DigestBuckets(n int) int {
	b := max(1, n/nodesPerBucket)
	b = 1 << bits.Len(uint(b-1)) // the next power of two
	return min(b, MaxBuckets)
}

// bucketOf is id's bucket of buckets (a power of two).
func bucketOf(id peer.ID, buckets int) int {
	h := sha256.Sum256([]byte(id))
	return int(h[0]) & (buckets - 1)
}

// sumOf is a (node, seq)'s share of its bucket's sum.
func sumOf(id peer.ID, seq uint64) uint64 {
	h := sha256.New()
	h.Write([]byte(id))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	h.Write(b[:])
	var out [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(out[:0]))
}

// bucketCount checks a digest's sums and returns how many buckets they
// are.
func bucketCount(sums []byte) (int, error) {
	n := len(sums) / SumSize
	if n == 0 || len(sums)%SumSize != 0 || n > MaxBuckets || n&(n-1) != 0 {
		return 0, ErrBadSums
	}
	return n, nil
}

// Sums returns the table's bucket sums over buckets buckets (a power of
// two, at most MaxBuckets), covering the same records as Versions.
func (t *Table) Sums(buckets int) []byte {
	acc := make([]uint64, buckets)
	t.mu.RLock()
	for id, e := range t.nodes {
		acc[bucketOf(id, buckets)] ^= sumOf(id, e.node.Record.Seq)
	}
	t.mu.RUnlock()
	out := make([]byte, 0, buckets*SumSize)
	for _, s := range acc {
		out = binary.BigEndian.AppendUint64(out, s)
	}
	return out
}

// Differ compares a peer's sums with the table's: the buckets that differ
// (as bucket indexes), and the table's versions in them.
func (t *Table) Differ(theirs []byte) (buckets []uint16, versions []wire.MemberVersion, err error) {
	n, err := bucketCount(theirs)
	if err != nil {
		return nil, nil, err
	}
	ours := t.Sums(n)
	in := make([]bool, n)
	for i := 0; i < n; i++ {
		if string(ours[i*SumSize:(i+1)*SumSize]) != string(theirs[i*SumSize:(i+1)*SumSize]) {
			buckets = append(buckets, uint16(i))
			in[i] = true
		}
	}
	if len(buckets) == 0 {
		return nil, nil, nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for id, e := range t.nodes {
		if in[bucketOf(id, n)] {
			versions = append(versions, wire.MemberVersion{Node: []byte(id), Seq: e.node.Record.Seq})
		}
	}
	return buckets, versions, nil
}

// InBuckets returns a filter for Delta: true for the nodes in the named
// buckets of n (a bucket count as DigestBuckets gives). Bucket indexes out
// of range are ignored.
func InBuckets(n int, buckets []uint16) func(peer.ID) bool {
	in := make([]bool, n)
	for _, b := range buckets {
		if int(b) < n {
			in[b] = true
		}
	}
	return func(id peer.ID) bool { return in[bucketOf(id, n)] }
}
