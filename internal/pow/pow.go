// Package pow is Umbra's hashcash-style proof-of-work: a nonce such that
// sha256(prefix ‖ be64(nonce)) starts with a number of zero bits. Node
// admission binds the prefix to the node key; first-contact envelopes
// bind it to the recipient's request mailbox and the envelope body.
package pow

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"
)

// ErrInterrupted is returned by Solve when stop closes first.
var ErrInterrupted = errors.New("pow: proof-of-work interrupted")

// Digest is sha256(prefix ‖ be64(nonce)).
func Digest(prefix []byte, nonce uint64) [32]byte {
	h := sha256.New()
	h.Write(prefix)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], nonce)
	h.Write(b[:])
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Zeros counts the leading zero bits of h.
func Zeros(h [32]byte) int {
	n := 0
	for _, b := range h {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// Check reports whether nonce proves bits of work for prefix.
func Check(prefix []byte, nonce uint64, bits int) bool {
	return bits <= 0 || Zeros(Digest(prefix, nonce)) >= bits
}

// Solve finds the smallest nonce proving bits of work for prefix; expected
// cost 2^bits hashes. It returns ErrInterrupted if stop (which may be nil)
// closes first.
func Solve(prefix []byte, bits int, stop <-chan struct{}) (uint64, error) {
	for nonce := uint64(0); ; nonce++ {
		if nonce&0xffff == 0 && stop != nil {
			select {
			case <-stop:
				return 0, ErrInterrupted
			default:
			}
		}
		if Check(prefix, nonce, bits) {
			return nonce, nil
		}
	}
}
