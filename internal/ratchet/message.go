package ratchet

import (
	"fmt"

	"github.com/umbra-im/umbra/internal/wire"
)

// MessageVersion is the version of the ratchet message encoding.
const MessageVersion = 1

// MaxMessageSize bounds an encoded ratchet message (and so a plaintext):
// the largest message a swarm node stores.
const MaxMessageSize = wire.MaxMessageSize

// MaxOverhead is the most Encrypt adds to a plaintext: header (at most 48
// bytes), AES-GCM tag and CBOR framing. Padding schemes rely on it.
const MaxOverhead = 76

// maxHeaderSize bounds the encoded header (a 32-byte key and two counters,
// plus room for fields a later version may add).
const maxHeaderSize = 256

// Header is the Double Ratchet message header (spec §3.2): the sender's
// current ratchet public key, the length of its previous sending chain, and
// the message number in the current chain.
type Header struct {
	DH []byte `cbor:"1,keyasint"` // X25519 ratchet public key
	PN uint32 `cbor:"2,keyasint"`
	N  uint32 `cbor:"3,keyasint"`
}

// messageWire is the encoded ratchet message. The header is carried as the
// exact bytes that were authenticated (as associated data), so fields a
// later version adds to the header are authenticated too.
type messageWire struct {
	Version    uint   `cbor:"1,keyasint"`
	Header     []byte `cbor:"2,keyasint"`
	Ciphertext []byte `cbor:"3,keyasint"`
}

// Message is a parsed ratchet message.
type Message struct {
	Header      Header
	HeaderBytes []byte // as authenticated
	Ciphertext  []byte
}

func encodeHeader(h Header) ([]byte, error) { return wire.Marshal(h) }

func encodeMessage(headerBytes, ciphertext []byte) ([]byte, error) {
	return wire.Marshal(messageWire{Version: MessageVersion, Header: headerBytes, Ciphertext: ciphertext})
}

// ParseMessage decodes a ratchet message and its header. It checks sizes
// only; authenticity is checked by Session.Decrypt.
func ParseMessage(data []byte) (*Message, error) {
	if len(data) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(data), MaxMessageSize)
	}
	var w messageWire
	if err := wire.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.Version != MessageVersion {
		return nil, fmt.Errorf("%w: message version %d", ErrMalformed, w.Version)
	}
	h, err := ParseHeader(w.Header)
	if err != nil {
		return nil, err
	}
	if len(w.Ciphertext) < 16 {
		return nil, fmt.Errorf("%w: ciphertext too short", ErrMalformed)
	}
	return &Message{Header: *h, HeaderBytes: w.Header, Ciphertext: w.Ciphertext}, nil
}

// ParseHeader decodes a ratchet header.
func ParseHeader(data []byte) (*Header, error) {
	if len(data) > maxHeaderSize {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrMalformed, len(data))
	}
	var h Header
	if err := wire.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if len(h.DH) != keySize {
		return nil, fmt.Errorf("%w: header ratchet key is %d bytes", ErrMalformed, len(h.DH))
	}
	return &h, nil
}
