package senderkey

import (
	"crypto/ed25519"
	"fmt"
	"slices"

	"github.com/umbra-im/umbra/internal/wire"
)

type ownWire struct {
	Version     uint   `cbor:"1,keyasint"`
	ChainID     []byte `cbor:"2,keyasint"`
	Iteration   uint32 `cbor:"3,keyasint"`
	ChainKey    []byte `cbor:"4,keyasint"`
	SigningSeed []byte `cbor:"5,keyasint"`
}

type skippedWire struct {
	Iteration uint32 `cbor:"1,keyasint"`
	Key       []byte `cbor:"2,keyasint"`
}

type peerWire struct {
	Version    uint          `cbor:"1,keyasint"`
	ChainID    []byte        `cbor:"2,keyasint"`
	Iteration  uint32        `cbor:"3,keyasint"`
	ChainKey   []byte        `cbor:"4,keyasint"`
	SigningKey []byte        `cbor:"5,keyasint"`
	Base       uint32        `cbor:"6,keyasint"`
	Skipped    []skippedWire `cbor:"7,keyasint,omitempty"` // ascending iterations
}

func badState(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadState}, a...)...)
}

// Marshal serializes the chain (CBOR): chain ID, current chain key and
// iteration, and the signing key's seed. The output holds secret keys:
// store it encrypted, and replace the previous copy, which must not be
// used again.
func (c *OwnChain) Marshal() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seed := c.priv.Seed()
	defer clear(seed)
	b, err := wire.Marshal(ownWire{
		Version: StateVersion, ChainID: c.id[:], Iteration: c.iteration,
		ChainKey: c.ck, SigningSeed: seed,
	})
	if err != nil {
		return nil, fmt.Errorf("senderkey: marshal own chain: %w", err)
	}
	return b, nil
}

// UnmarshalOwnChain restores a chain saved by OwnChain.Marshal.
func UnmarshalOwnChain(data []byte) (*OwnChain, error) {
	if len(data) > MaxStateSize {
		return nil, badState("%d bytes, limit %d", len(data), MaxStateSize)
	}
	var w ownWire
	if err := wire.Unmarshal(data, &w); err != nil {
		return nil, badState("%v", err)
	}
	switch {
	case w.Version != StateVersion:
		return nil, badState("version %d (this client understands %d)", w.Version, StateVersion)
	case len(w.ChainID) != chainIDSize || len(w.ChainKey) != keySize || len(w.SigningSeed) != ed25519.SeedSize:
		return nil, badState("key sizes")
	}
	c := &OwnChain{ck: w.ChainKey, iteration: w.Iteration, priv: ed25519.NewKeyFromSeed(w.SigningSeed)}
	clear(w.SigningSeed)
	copy(c.id[:], w.ChainID)
	return c, nil
}

// Marshal serializes the chain (CBOR): chain ID, signing public key, the
// current chain key and iteration, the distribution's iteration, and the
// skipped message keys. It never holds a chain key or message key of an
// iteration already received. The output holds secret keys: store it
// encrypted, and replace the previous copy.
func (p *PeerChain) Marshal() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := peerWire{
		Version: StateVersion, ChainID: p.id[:], Iteration: p.iteration,
		ChainKey: p.ck, SigningKey: p.pub, Base: p.base,
	}
	for _, s := range p.skipped {
		w.Skipped = append(w.Skipped, skippedWire{Iteration: s.iteration, Key: s.mk})
	}
	b, err := wire.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("senderkey: marshal peer chain: %w", err)
	}
	return b, nil
}

// UnmarshalPeerChain restores a chain saved by PeerChain.Marshal.
func UnmarshalPeerChain(data []byte) (*PeerChain, error) {
	if len(data) > MaxStateSize {
		return nil, badState("%d bytes, limit %d", len(data), MaxStateSize)
	}
	var w peerWire
	if err := wire.Unmarshal(data, &w); err != nil {
		return nil, badState("%v", err)
	}
	switch {
	case w.Version != StateVersion:
		return nil, badState("version %d (this client understands %d)", w.Version, StateVersion)
	case len(w.ChainID) != chainIDSize || len(w.ChainKey) != keySize || len(w.SigningKey) != ed25519.PublicKeySize:
		return nil, badState("key sizes")
	case w.Base > w.Iteration:
		return nil, badState("distribution iteration %d after current %d", w.Base, w.Iteration)
	case len(w.Skipped) > MaxSkippedKeys:
		return nil, badState("%d skipped keys, limit %d", len(w.Skipped), MaxSkippedKeys)
	}
	p := &PeerChain{
		pub: slices.Clone(w.SigningKey), ck: w.ChainKey,
		iteration: w.Iteration, base: w.Base,
		skipped: make([]skippedKey, 0, len(w.Skipped)),
	}
	copy(p.id[:], w.ChainID)
	for i, s := range w.Skipped {
		switch {
		case len(s.Key) != keySize:
			return nil, badState("skipped key size")
		case s.Iteration < w.Base || s.Iteration >= w.Iteration:
			return nil, badState("skipped iteration %d outside [%d, %d)", s.Iteration, w.Base, w.Iteration)
		case i > 0 && s.Iteration <= w.Skipped[i-1].Iteration:
			return nil, badState("skipped iterations not ascending")
		}
		p.skipped = append(p.skipped, skippedKey{iteration: s.Iteration, mk: s.Key})
	}
	return p, nil
}
