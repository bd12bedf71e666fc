package senderkey

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"math"
	"slices"

	"github.com/umbra-im/umbra/internal/wire"
)

// ChainID names a sending chain. It is random, not secret, and travels in
// every message so a receiver can pick the right PeerChain.
type ChainID [chainIDSize]byte

func (id ChainID) String() string { return hex.EncodeToString(id[:]) }

// bodyWire is the signed part of a sender message.
type bodyWire struct {
	Version    uint   `cbor:"1,keyasint"`
	ChainID    []byte `cbor:"2,keyasint"`
	Iteration  uint32 `cbor:"3,keyasint"`
	Ciphertext []byte `cbor:"4,keyasint"`
}

// messageWire is an encoded sender message: the body as the exact bytes
// that were signed (so fields a later version adds are signed too), and
// the Ed25519 signature.
type messageWire struct {
	Body      []byte `cbor:"1,keyasint"`
	Signature []byte `cbor:"2,keyasint"`
}

// Message is a parsed sender message. Parsing checks sizes only; the
// signature and ciphertext are checked by PeerChain.Decrypt.
type Message struct {
	Version    uint
	ChainID    ChainID
	Iteration  uint32
	Ciphertext []byte
	Signature  []byte

	body []byte // as signed
}

// Encode returns the message's encoding.
func (m *Message) Encode() ([]byte, error) {
	return wire.Marshal(messageWire{Body: m.body, Signature: m.Signature})
}

// ParseMessage decodes a sender message.
func ParseMessage(data []byte) (*Message, error) {
	if len(data) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(data), MaxMessageSize)
	}
	var w messageWire
	if err := wire.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(w.Signature) != sigSize {
		return nil, fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(w.Signature))
	}
	var b bodyWire
	if err := wire.Unmarshal(w.Body, &b); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrMalformed, err)
	}
	switch {
	case b.Version != MessageVersion:
		return nil, fmt.Errorf("%w: message version %d", ErrMalformed, b.Version)
	case len(b.ChainID) != chainIDSize:
		return nil, fmt.Errorf("%w: chain ID of %d bytes", ErrMalformed, len(b.ChainID))
	case b.Iteration == math.MaxUint32:
		return nil, fmt.Errorf("%w: iteration out of range", ErrMalformed) // a chain never uses it
	case len(b.Ciphertext) < tagSize:
		return nil, fmt.Errorf("%w: ciphertext too short", ErrMalformed)
	}
	m := &Message{
		Version: b.Version, Iteration: b.Iteration, Ciphertext: b.Ciphertext,
		Signature: w.Signature, body: w.Body,
	}
	copy(m.ChainID[:], b.ChainID)
	return m, nil
}

// encodeMessage encodes and signs a message.
func encodeMessage(priv ed25519.PrivateKey, ad []byte, id ChainID, iteration uint32, ct []byte) ([]byte, error) {
	body, err := wire.Marshal(bodyWire{Version: MessageVersion, ChainID: id[:], Iteration: iteration, Ciphertext: ct})
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(priv, signInput(ad, body))
	return wire.Marshal(messageWire{Body: body, Signature: sig})
}

// verify checks m's signature under pub with associated data ad.
func (m *Message) verify(pub ed25519.PublicKey, ad []byte) bool {
	return ed25519.Verify(pub, signInput(ad, m.body), m.Signature)
}

// Distribution is what a member sends every other member, over the
// pairwise sessions, so they can decrypt its messages from Iteration on:
// the chain ID, the chain key at Iteration and the signing public key. It
// holds a secret (the chain key): send it only inside an end-to-end
// encrypted session and bind it there to the group and the sender.
type Distribution struct {
	ChainID    ChainID
	Iteration  uint32
	ChainKey   []byte
	SigningKey ed25519.PublicKey
}

type distributionWire struct {
	Version    uint   `cbor:"1,keyasint"`
	ChainID    []byte `cbor:"2,keyasint"`
	Iteration  uint32 `cbor:"3,keyasint"`
	ChainKey   []byte `cbor:"4,keyasint"`
	SigningKey []byte `cbor:"5,keyasint"`
}

// Encode returns the distribution's encoding (CBOR).
func (d *Distribution) Encode() ([]byte, error) {
	b, err := wire.Marshal(distributionWire{
		Version: DistributionVersion, ChainID: d.ChainID[:], Iteration: d.Iteration,
		ChainKey: d.ChainKey, SigningKey: d.SigningKey,
	})
	if err != nil {
		return nil, fmt.Errorf("senderkey: encode distribution: %w", err)
	}
	return b, nil
}

// Wipe zeroes the distribution's chain key.
func (d *Distribution) Wipe() { clear(d.ChainKey) }

// ParseDistribution decodes a distribution. It checks sizes only: the
// pairwise session it arrived in says who sent it.
func ParseDistribution(data []byte) (*Distribution, error) {
	if len(data) > MaxDistributionSize {
		return nil, fmt.Errorf("%w: distribution of %d bytes, limit %d", ErrMalformed, len(data), MaxDistributionSize)
	}
	var w distributionWire
	if err := wire.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: distribution: %v", ErrMalformed, err)
	}
	if err := checkDistribution(w.Version, w.ChainID, w.ChainKey, w.SigningKey); err != nil {
		return nil, err
	}
	d := &Distribution{Iteration: w.Iteration, ChainKey: w.ChainKey, SigningKey: w.SigningKey}
	copy(d.ChainID[:], w.ChainID)
	return d, nil
}

func checkDistribution(version uint, id, ck, pub []byte) error {
	switch {
	case version != DistributionVersion:
		return fmt.Errorf("%w: distribution version %d", ErrMalformed, version)
	case len(id) != chainIDSize:
		return fmt.Errorf("%w: distribution chain ID of %d bytes", ErrMalformed, len(id))
	case len(ck) != keySize:
		return fmt.Errorf("%w: distribution chain key of %d bytes", ErrMalformed, len(ck))
	case len(pub) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: distribution signing key of %d bytes", ErrMalformed, len(pub))
	}
	return nil
}

func (d *Distribution) clone() *Distribution {
	return &Distribution{
		ChainID: d.ChainID, Iteration: d.Iteration,
		ChainKey: slices.Clone(d.ChainKey), SigningKey: slices.Clone(d.SigningKey),
	}
}
