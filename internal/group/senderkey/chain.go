package senderkey

import (
	"cmp"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
)

// OwnChain is our sending chain in one group. It is safe for concurrent
// use. Persist it with Marshal after every Encrypt, before the message is
// sent: a chain restored from an older copy would reuse message keys.
type OwnChain struct {
	mu        sync.Mutex
	id        ChainID
	ck        []byte // chain key at iteration
	iteration uint32 // the iteration the next message uses
	priv      ed25519.PrivateKey
}

// NewSenderChain makes a sending chain with a random chain ID, chain key
// and signing key read from rnd (crypto/rand when nil), and returns it with
// its distribution at iteration 0.
func NewSenderChain(rnd io.Reader) (*OwnChain, *Distribution, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var buf [chainIDSize + keySize + ed25519.SeedSize]byte
	defer clear(buf[:])
	if _, err := io.ReadFull(rnd, buf[:]); err != nil {
		return nil, nil, fmt.Errorf("senderkey: new chain: read random: %w", err)
	}
	c := &OwnChain{
		ck:   slices.Clone(buf[chainIDSize : chainIDSize+keySize]),
		priv: ed25519.NewKeyFromSeed(buf[chainIDSize+keySize:]),
	}
	copy(c.id[:], buf[:chainIDSize])
	return c, c.Distribution(), nil
}

// ChainID returns the chain's ID.
func (c *OwnChain) ChainID() ChainID { return c.id }

// SigningKey returns the chain's signing public key.
func (c *OwnChain) SigningKey() ed25519.PublicKey {
	return slices.Clone(c.priv.Public().(ed25519.PublicKey))
}

// Iteration returns the iteration the next message will use.
func (c *OwnChain) Iteration() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.iteration
}

// Distribution returns the chain's distribution at its current iteration:
// a member given it can decrypt our messages from the next one on, and
// none before.
func (c *OwnChain) Distribution() *Distribution {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &Distribution{
		ChainID: c.id, Iteration: c.iteration, ChainKey: slices.Clone(c.ck),
		SigningKey: c.SigningKey(),
	}
}

// Encrypt encrypts plaintext as the chain's next message, bound to the
// associated data ad (the group ID), signs it, and returns the encoded
// message. The caller pads plaintext; Encrypt adds at most MaxOverhead
// bytes.
func (c *OwnChain) Encrypt(plaintext, ad []byte) ([]byte, error) {
	if len(plaintext) > MaxMessageSize-MaxOverhead {
		return nil, fmt.Errorf("senderkey: encrypt: plaintext of %d bytes is too large", len(plaintext))
	}
	if len(ad) > MaxMessageSize {
		return nil, fmt.Errorf("senderkey: encrypt: associated data of %d bytes is too large", len(ad))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.iteration == math.MaxUint32 {
		return nil, fmt.Errorf("senderkey: encrypt: %w", ErrExhausted)
	}
	nextCK, mk := kdfCK(c.ck)
	defer clear(mk)
	ct, err := seal(mk, ad, c.id, c.iteration, plaintext)
	if err != nil {
		clear(nextCK)
		return nil, fmt.Errorf("senderkey: encrypt: %w", err)
	}
	out, err := encodeMessage(c.priv, ad, c.id, c.iteration, ct)
	if err != nil {
		clear(nextCK)
		return nil, fmt.Errorf("senderkey: encrypt: %w", err)
	}
	clear(c.ck)
	c.ck = nextCK
	c.iteration++
	return out, nil
}

// skippedKey is the message key of an iteration not yet received.
type skippedKey struct {
	iteration uint32
	mk        []byte
}

// PeerChain is another member's sending chain as we receive it. It is safe
// for concurrent use. Persist it with Marshal after every successful
// Decrypt.
type PeerChain struct {
	mu        sync.Mutex
	id        ChainID
	pub       ed25519.PublicKey
	ck        []byte // chain key at iteration
	iteration uint32 // the next iteration not yet derived
	base      uint32 // the distribution's iteration: nothing before is readable
	skipped   []skippedKey
}

// NewReceiverChain makes a receiving chain from a peer's distribution. It
// copies the distribution's keys.
func NewReceiverChain(d *Distribution) (*PeerChain, error) {
	if err := checkDistribution(DistributionVersion, d.ChainID[:], d.ChainKey, d.SigningKey); err != nil {
		return nil, fmt.Errorf("senderkey: new receiver chain: %w", err)
	}
	d = d.clone()
	return &PeerChain{id: d.ChainID, pub: d.SigningKey, ck: d.ChainKey, iteration: d.Iteration, base: d.Iteration}, nil
}

// ChainID returns the chain's ID.
func (p *PeerChain) ChainID() ChainID { return p.id }

// SigningKey returns the peer's signing public key for this chain.
func (p *PeerChain) SigningKey() ed25519.PublicKey { return slices.Clone(p.pub) }

// Iteration returns the lowest iteration not yet received or skipped.
func (p *PeerChain) Iteration() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.iteration
}

// SkippedKeys returns how many skipped message keys the chain holds.
func (p *PeerChain) SkippedKeys() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.skipped)
}

// Decrypt verifies an encoded sender message against the chain's signing
// key and the associated data ad (the group ID) and decrypts it. On any
// error the chain is left exactly as it was.
func (p *PeerChain) Decrypt(data, ad []byte) ([]byte, error) {
	m, err := ParseMessage(data)
	if err != nil {
		return nil, fmt.Errorf("senderkey: decrypt: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pt, err := p.decrypt(m, ad)
	if err != nil {
		return nil, fmt.Errorf("senderkey: decrypt: %w", err)
	}
	return pt, nil
}

func (p *PeerChain) decrypt(m *Message, ad []byte) ([]byte, error) {
	if m.ChainID != p.id {
		return nil, ErrWrongChain
	}
	// The signature first: only the chain's owner can make us derive or
	// store keys.
	if !m.verify(p.pub, ad) {
		return nil, ErrDecrypt
	}
	it := m.Iteration
	if it < p.base {
		return nil, ErrBeforeDistribution
	}
	if it < p.iteration {
		i, ok := slices.BinarySearchFunc(p.skipped, it, func(s skippedKey, it uint32) int {
			return cmp.Compare(s.iteration, it)
		})
		if !ok {
			return nil, ErrDuplicate
		}
		pt, err := open(p.skipped[i].mk, ad, m)
		if err != nil {
			return nil, err // keep the key
		}
		clear(p.skipped[i].mk)
		p.skipped = slices.Delete(p.skipped, i, i+1)
		return pt, nil
	}
	if uint64(it)-uint64(p.iteration) > MaxSkip {
		return nil, ErrTooManySkipped
	}

	// Work on copies; commit only once the message authenticates.
	var staged []skippedKey
	wipe := func() {
		for _, s := range staged {
			clear(s.mk)
		}
	}
	ck := slices.Clone(p.ck)
	step := func() []byte {
		next, mk := kdfCK(ck)
		clear(ck)
		ck = next
		return mk
	}
	for n := p.iteration; n < it; n++ {
		staged = append(staged, skippedKey{iteration: n, mk: step()})
	}
	mk := step()
	defer clear(mk)
	pt, err := open(mk, ad, m)
	if err != nil {
		wipe()
		clear(ck)
		return nil, err
	}

	// Commit.
	clear(p.ck)
	p.ck = ck
	p.iteration = it + 1 // it < MaxUint32: ParseMessage refuses the last
	p.addSkipped(staged)
	return pt, nil
}

// addSkipped appends keys of iterations above every stored one, evicting
// (and wiping) the oldest beyond MaxSkippedKeys.
func (p *PeerChain) addSkipped(keys []skippedKey) {
	p.skipped = append(p.skipped, keys...)
	if excess := len(p.skipped) - MaxSkippedKeys; excess > 0 {
		for _, s := range p.skipped[:excess] {
			clear(s.mk)
		}
		p.skipped = slices.Clone(p.skipped[excess:])
	}
}
