package files

import (
	"encoding/binary"
	"math/bits"

	"github.com/umbra-im/umbra/internal/pow"
)

// Anyone can store shares, through onion paths that hide who, so what
// one uploader can make the network store is bounded by proof-of-work
// bound to each share and its expiry, priced per byte, and by each
// node's quota, past half of which the price doubles every 1/16 of the
// quota (docs/files.md has the cost per GB).
const (
	// WorkPerMiB is the base work per MiB of shares, in leading zero
	// bits: 2^18 SHA-256 hashes, ≈ 50 ms of one core.
	WorkPerMiB = 18
	// MinShareWork is the least work of any share.
	MinShareWork = 8
	// MaxShareWork bounds what a node may ask of one share.
	MaxShareWork = 30
	// MaxShareTTL is the longest a node keeps a share: the longest a
	// message lives.
	MaxShareTTL = 30 * 24 * 60 * 60 * 1000 // ms
)

const shareWorkTag = "umbra/share-work/v1\x00"

// WorkPrefix is what a share's proof-of-work covers: its address and
// expiry (Unix ms), so that work done for one share or one expiry cannot
// be spent on another.
func WorkPrefix(a Address, expiry int64) []byte {
	b := append([]byte(shareWorkTag), a[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(expiry))
}

// ShareWork is the work (bits) a node asks for a share of size bytes
// when it holds used of quota bytes of shares: WorkPerMiB scaled to the
// share's size, plus one bit per 1/32 of the quota used past half (so at
// a full node, 16 more bits: 65,536 times the base price).
func ShareWork(size int, used, quota int64) int {
	// log2(size/MiB × 2^WorkPerMiB), rounded up.
	hashes := (uint64(max(size, 1))<<WorkPerMiB + (1<<20 - 1)) >> 20
	w := bits.Len64(hashes - 1)
	if quota > 0 && used > quota/2 {
		w += int(min(16, (used-quota/2)*32/quota))
	}
	return min(max(w, MinShareWork), MaxShareWork)
}

// SolveWork finds the proof of bits of work for share a with expiry,
// or returns pow.ErrInterrupted when stop closes first.
func SolveWork(a Address, expiry int64, bits int, stop <-chan struct{}) (uint64, error) {
	return pow.Solve(WorkPrefix(a, expiry), bits, stop)
}

// CheckWork reports whether nonce proves bits of work for a and expiry.
func CheckWork(a Address, expiry int64, nonce uint64, bits int) bool {
	return pow.Check(WorkPrefix(a, expiry), nonce, bits)
}

const receiptTag = "umbra/share-receipt/v1\x00"

// ReceiptMessage is what a node signs when it holds share a until
// expiry.
func ReceiptMessage(a Address, expiry int64) []byte {
	b := append([]byte(receiptTag), a[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(expiry))
}
