package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

// TypeGroup: a record of a group's mailbox (a sender-key message, a
// membership op or a chain distribution; the client defines records),
// padded and sealed with AES-256-GCM under the group's mailbox key of the
// time epoch (membership.MailboxKey), with a random 96-bit nonce and the
// mailbox ID as associated data. Every member holds the key; a swarm node
// sees neither which member wrote nor what kind of record it is, only a
// size out of WireSizes, like any other envelope.
const TypeGroup Type = 4

const (
	groupAD = "Umbra_GroupEnvelope_v1"
	// groupReserve: nonce (12), tag (16) and the envelope's CBOR framing,
	// with room to spare for fillTo.
	groupReserve = 64
)

// GroupPaddedSizes are the sizes a group record is padded to.
func GroupPaddedSizes() []int { return PaddedSizes(TypeGroup) }

// MaxGroupRecord is the largest record SealGroup takes.
func MaxGroupRecord() int {
	s := GroupPaddedSizes()
	return s[len(s)-1] - 1
}

// SealGroup pads record and seals it under key (32 bytes) for the mailbox
// box. The envelope's length is one of WireSizes.
func SealGroup(key, box, record []byte) ([]byte, error) {
	padded, err := Pad(record, GroupPaddedSizes())
	if err != nil {
		return nil, err
	}
	aead, err := groupAEAD(key)
	if err != nil {
		return nil, err
	}
	body := make([]byte, aead.NonceSize(), aead.NonceSize()+len(padded)+aead.Overhead())
	rand.Read(body)
	body = aead.Seal(body, body, padded, groupAssociated(box))
	return fillTo(&envelopeWire{Version: Version, Type: TypeGroup, Body: body}, len(padded)+groupReserve)
}

// OpenGroup opens a TypeGroup envelope with key for the mailbox box and
// returns the record. A wrong key, mailbox or tampered body is ErrDecrypt.
func OpenGroup(key, box []byte, env *Envelope) ([]byte, error) {
	if env.Type != TypeGroup {
		return nil, fmt.Errorf("envelope: open: %s envelope given to OpenGroup", env.Type)
	}
	aead, err := groupAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(env.Body) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: group envelope of %d bytes", ErrMalformed, len(env.Body))
	}
	n := aead.NonceSize()
	padded, err := aead.Open(nil, env.Body[:n], env.Body[n:], groupAssociated(box))
	if err != nil {
		return nil, fmt.Errorf("%w: group envelope", ErrDecrypt)
	}
	return Unpad(padded, GroupPaddedSizes())
}

func groupAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("envelope: group key of %d bytes", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func groupAssociated(box []byte) []byte {
	return append([]byte(groupAD), box...)
}
