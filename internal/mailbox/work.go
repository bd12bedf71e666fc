package mailbox

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"

	"github.com/umbra-im/umbra/internal/pow"
)

// First-contact messages (the request namespace, wire.RequestNamespace,
// and the shared buckets of the drop namespace, wire.DropNamespace)
// carry a proof-of-work bound to the message, which every node checks
// before it stores one and the recipient checks before it opens one:
//
//	data   = be64(nonce) ‖ payload
//	digest = sha256("umbra/reqwork/v2\0" ‖ mailbox ‖ be64(ts ms) ‖ be64(expiry ms) ‖ sha256(payload) ‖ be64(nonce))
//
// and the work is the number of leading zero bits of digest. Binding the
// timestamp and expiry makes every stored message cost its own work (the
// message hash covers both), so one solved junk message cannot be stored
// again under other timestamps.
const (
	// RequestWorkBase is the work every first-contact message carries:
	// 2^14 hashes, milliseconds for a sender.
	RequestWorkBase = 14
	// RequestWorkMax bounds what a node may ask for.
	RequestWorkMax = 24
	// requestWorkStep: a node asks for one more bit of work each time the
	// first-contact messages waiting in a mailbox double past it.
	requestWorkStep = 256
)

const requestWorkTag = "umbra/reqwork/v2\x00"

func requestWorkPrefix(mb ID, ts, expiry int64, payload []byte) []byte {
	sum := sha256.Sum256(payload)
	p := make([]byte, 0, len(requestWorkTag)+len(mb)+16+len(sum))
	p = append(p, requestWorkTag...)
	p = append(p, mb[:]...)
	p = binary.BigEndian.AppendUint64(p, uint64(ts))
	p = binary.BigEndian.AppendUint64(p, uint64(expiry))
	return append(p, sum[:]...)
}

// SealRequest returns the data of a first-contact message: payload with a
// proof of at least bits of work for mailbox mb, timestamp and expiry.
// Expected cost: 2^bits hashes.
func SealRequest(mb ID, ts, expiry int64, payload []byte, bits int) []byte {
	nonce, _ := pow.Solve(requestWorkPrefix(mb, ts, expiry, payload), bits, nil) // no stop: it always ends
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(payload)), nonce), payload...)
}

// ErrRequestWork is returned for first-contact data too short to carry a
// proof of work.
var ErrRequestWork = errors.New("first-contact message carries no proof-of-work")

// RequestWork returns the work (leading zero bits) that a first-contact
// message's data proves for mailbox mb, timestamp and expiry, and its
// payload. One hash: a node or recipient checks it before anything else.
func RequestWork(mb ID, ts, expiry int64, data []byte) (int, []byte, error) {
	if len(data) < 8 {
		return 0, nil, ErrRequestWork
	}
	payload := data[8:]
	d := pow.Digest(requestWorkPrefix(mb, ts, expiry, payload), binary.BigEndian.Uint64(data[:8]))
	return pow.Zeros(d), payload, nil
}

// RequiredRequestWork is the work a node asks of a new first-contact
// message for a mailbox that already holds waiting of them: the base, and
// one more bit each time waiting doubles past 256, up to RequestWorkMax.
// Filling a mailbox's first-contact quota so costs an attacker far more
// than a sender pays while the mailbox is read.
func RequiredRequestWork(waiting int) int {
	if waiting < requestWorkStep {
		return RequestWorkBase
	}
	return min(RequestWorkMax, RequestWorkBase+bits.Len(uint(waiting/requestWorkStep)))
}
