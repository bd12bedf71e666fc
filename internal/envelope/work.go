package envelope

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"

	"github.com/umbra-im/umbra/internal/pow"
)

// RequestWorkBits is the proof-of-work every first-contact (TypeInitial)
// envelope carries: 2^14 SHA-256 hashes, a few milliseconds for a sender,
// so that filling someone's public request mailbox costs real CPU, while
// the recipient checks it with one hash before any decryption. The work is
// bound to the recipient's request mailbox (their Ed25519 account key) and
// to the envelope body, so it cannot be reused for another message or
// another recipient.
const RequestWorkBits = 14

const workTag = "umbra/reqwork/v1\x00"

// workPrefix is "umbra/reqwork/v1\0" ‖ recipient account key ‖ sha256(body).
func workPrefix(recipient ed25519.PublicKey, body []byte) []byte {
	sum := sha256.Sum256(body)
	p := make([]byte, 0, len(workTag)+len(recipient)+len(sum))
	p = append(p, workTag...)
	p = append(p, recipient...)
	return append(p, sum[:]...)
}

// solveWork returns the 8-byte nonce proving bits of work for body to
// recipient.
func solveWork(recipient ed25519.PublicKey, body []byte, bits int) []byte {
	n, _ := pow.Solve(workPrefix(recipient, body), bits, nil) // no stop: it always ends
	return binary.BigEndian.AppendUint64(nil, n)
}

// checkWork reports whether nonce proves bits of work for body to recipient.
func checkWork(recipient ed25519.PublicKey, body, nonce []byte, bits int) bool {
	if len(nonce) != 8 {
		return bits <= 0
	}
	return pow.Check(workPrefix(recipient, body), binary.BigEndian.Uint64(nonce), bits)
}
