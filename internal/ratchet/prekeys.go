package ratchet

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// Prekeys is the responder's secret side of its prekey bundle: the private
// keys behind every prekey it has published and not yet consumed or
// retired. It is not safe for concurrent use; persist it (encrypted) with
// Marshal after every change, together with any session Respond created.
type Prekeys struct {
	// Newest last. Older signed prekeys and last-resort KEM keys are kept
	// (up to retainRotated) so messages sent against a recently replaced
	// bundle still decrypt.
	signed     []signedSecret
	lastResort []kemSecret
	oneTime    []oneTimeSecret
	oneTimeKEM []kemSecret
	nextID     uint32
	// One-time prekeys consumed within SpentGrace, kept so that first
	// messages from several senders who read the same bundle at once (a
	// bundle is public: nothing hands each key out once, as Signal's
	// server does) all open. Oldest first, at most maxSpent of each.
	spentOneTime []spentSecret
	spentKEM     []spentKEM
}

// SpentGrace is how long a consumed one-time prekey still opens first
// messages. It trades a little forward secrecy (the key lives that much
// longer) for not losing messages of senders who raced for the same key.
const SpentGrace = time.Hour

// maxSpent bounds the consumed one-time prekeys kept, of each kind.
const maxSpent = 64

type spentSecret struct {
	Secret oneTimeSecret `cbor:"1,keyasint"`
	At     int64         `cbor:"2,keyasint"` // unix seconds
}

type spentKEM struct {
	Secret kemSecret `cbor:"1,keyasint"`
	At     int64     `cbor:"2,keyasint"`
}

// retainRotated is how many signed prekeys / last-resort KEM keys are kept,
// the current one included.
const retainRotated = 3

// Bounds on a serialized Prekeys (see UnmarshalPrekeys).
const (
	maxPrekeysSize = 1 << 20
	maxOneTimeHeld = 1000
)

type signedSecret struct {
	ID        uint32 `cbor:"1,keyasint"`
	Private   []byte `cbor:"2,keyasint"`
	Signature []byte `cbor:"3,keyasint"`
}

type oneTimeSecret struct {
	ID      uint32 `cbor:"1,keyasint"`
	Private []byte `cbor:"2,keyasint"`
}

type kemSecret struct {
	ID        uint32 `cbor:"1,keyasint"`
	Seed      []byte `cbor:"2,keyasint"` // 64-byte ML-KEM decapsulation key seed
	Signature []byte `cbor:"3,keyasint"`
}

// GeneratePrekeys makes a signed prekey, a last-resort ML-KEM prekey,
// oneTime X25519 one-time prekeys and oneTimeKEM ML-KEM one-time prekeys,
// signed by acct. rnd supplies all key material (crypto/rand when nil).
func GeneratePrekeys(rnd io.Reader, acct *identity.Account, oneTime, oneTimeKEM int) (*Prekeys, error) {
	p := &Prekeys{nextID: 1}
	if err := p.RotateSignedPrekey(rnd, acct); err != nil {
		return nil, err
	}
	if err := p.RotateLastResortKEM(rnd, acct); err != nil {
		return nil, err
	}
	if err := p.AddOneTime(rnd, oneTime); err != nil {
		return nil, err
	}
	if err := p.AddOneTimeKEM(rnd, acct, oneTimeKEM); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Prekeys) newID() uint32 {
	id := p.nextID
	p.nextID++
	if p.nextID == 0 {
		p.nextID = 1
	}
	return id
}

// RotateSignedPrekey makes a new signed prekey the current one; the oldest
// beyond the retention window is deleted. Rotate periodically (e.g. weekly)
// and republish the bundle.
func (p *Prekeys) RotateSignedPrekey(rnd io.Reader, acct *identity.Account) error {
	k, err := newX25519(orDefault(rnd))
	if err != nil {
		return fmt.Errorf("ratchet: rotate signed prekey: %w", err)
	}
	id := p.newID()
	p.signed = append(p.signed, signedSecret{
		ID:        id,
		Private:   k.Bytes(),
		Signature: acct.Sign(signedPrekeyMessage(id, k.PublicKey().Bytes())),
	})
	p.signed = dropOldest(p.signed, retainRotated)
	return nil
}

// RotateLastResortKEM makes a new last-resort ML-KEM prekey current.
func (p *Prekeys) RotateLastResortKEM(rnd io.Reader, acct *identity.Account) error {
	k, err := p.newKEM(rnd, acct, true)
	if err != nil {
		return fmt.Errorf("ratchet: rotate last-resort KEM prekey: %w", err)
	}
	p.lastResort = dropOldest(append(p.lastResort, k), retainRotated)
	return nil
}

// AddOneTime adds n X25519 one-time prekeys.
func (p *Prekeys) AddOneTime(rnd io.Reader, n int) error {
	if n < 0 || len(p.oneTime)+n > maxOneTimeHeld {
		return fmt.Errorf("ratchet: add one-time prekeys: would hold %d, limit %d", len(p.oneTime)+n, maxOneTimeHeld)
	}
	rnd = orDefault(rnd)
	for range n {
		k, err := newX25519(rnd)
		if err != nil {
			return fmt.Errorf("ratchet: add one-time prekeys: %w", err)
		}
		p.oneTime = append(p.oneTime, oneTimeSecret{ID: p.newID(), Private: k.Bytes()})
	}
	return nil
}

// AddOneTimeKEM adds n signed one-time ML-KEM prekeys.
func (p *Prekeys) AddOneTimeKEM(rnd io.Reader, acct *identity.Account, n int) error {
	if n < 0 || len(p.oneTimeKEM)+n > maxOneTimeHeld {
		return fmt.Errorf("ratchet: add one-time KEM prekeys: would hold %d, limit %d", len(p.oneTimeKEM)+n, maxOneTimeHeld)
	}
	for range n {
		k, err := p.newKEM(rnd, acct, false)
		if err != nil {
			return fmt.Errorf("ratchet: add one-time KEM prekeys: %w", err)
		}
		p.oneTimeKEM = append(p.oneTimeKEM, k)
	}
	return nil
}

func (p *Prekeys) newKEM(rnd io.Reader, acct *identity.Account, lastResort bool) (kemSecret, error) {
	dk, err := newMLKEM(orDefault(rnd))
	if err != nil {
		return kemSecret{}, err
	}
	id := p.newID()
	return kemSecret{
		ID:        id,
		Seed:      dk.Bytes(),
		Signature: acct.Sign(kemPrekeyMessage(id, lastResort, dk.EncapsulationKey().Bytes())),
	}, nil
}

func dropOldest[T any](s []T, keep int) []T {
	if len(s) <= keep {
		return s
	}
	return slices.Clone(s[len(s)-keep:])
}

// OneTimeCount returns how many X25519 and ML-KEM one-time prekeys remain.
// Refill (and republish) when they run low.
func (p *Prekeys) OneTimeCount() (x25519, kem int) { return len(p.oneTime), len(p.oneTimeKEM) }

// Bundle returns the public bundle for the current keys: the newest signed
// and last-resort prekeys and up to MaxOneTimePrekeys / MaxOneTimeKEMs
// unconsumed one-time prekeys.
func (p *Prekeys) Bundle(acct *identity.Account) (*Bundle, error) {
	if len(p.signed) == 0 || len(p.lastResort) == 0 {
		return nil, fmt.Errorf("ratchet: bundle: no signed or last-resort prekey")
	}
	spk := p.signed[len(p.signed)-1]
	spkPriv, err := ecdh.X25519().NewPrivateKey(spk.Private)
	if err != nil {
		return nil, fmt.Errorf("ratchet: bundle: %w", err)
	}
	b := &Bundle{
		Version:  BundleVersion,
		Identity: acct.Public(),
		SignedPrekey: SignedPrekey{
			ID: spk.ID, Key: spkPriv.PublicKey().Bytes(), Signature: slices.Clone(spk.Signature),
		},
	}
	if b.LastResortKEM, err = p.lastResort[len(p.lastResort)-1].public(); err != nil {
		return nil, fmt.Errorf("ratchet: bundle: %w", err)
	}
	for _, k := range p.oneTime[:min(len(p.oneTime), MaxOneTimePrekeys)] {
		priv, err := ecdh.X25519().NewPrivateKey(k.Private)
		if err != nil {
			return nil, fmt.Errorf("ratchet: bundle: %w", err)
		}
		b.OneTimePrekeys = append(b.OneTimePrekeys, OneTimePrekey{ID: k.ID, Key: priv.PublicKey().Bytes()})
	}
	for _, k := range p.oneTimeKEM[:min(len(p.oneTimeKEM), MaxOneTimeKEMs)] {
		pub, err := k.public()
		if err != nil {
			return nil, fmt.Errorf("ratchet: bundle: %w", err)
		}
		b.OneTimeKEMs = append(b.OneTimeKEMs, pub)
	}
	return b, nil
}

func (k kemSecret) decapsulationKey() (*mlkem.DecapsulationKey768, error) {
	return mlkem.NewDecapsulationKey768(k.Seed)
}

func (k kemSecret) public() (KEMPrekey, error) {
	dk, err := k.decapsulationKey()
	if err != nil {
		return KEMPrekey{}, err
	}
	return KEMPrekey{ID: k.ID, Key: dk.EncapsulationKey().Bytes(), Signature: slices.Clone(k.Signature)}, nil
}

// lookup finds the secrets an initial message names. oneTimeKEM reports
// whether the KEM key is a one-time one (to be consumed).
func (p *Prekeys) lookup(spkID, opkID, kemID uint32) (spk, opk *ecdh.PrivateKey, dk *mlkem.DecapsulationKey768, oneTimeKEM bool, err error) {
	i := slices.IndexFunc(p.signed, func(s signedSecret) bool { return s.ID == spkID })
	if i < 0 {
		return nil, nil, nil, false, fmt.Errorf("%w: signed prekey %d", ErrUnknownPrekey, spkID)
	}
	if spk, err = ecdh.X25519().NewPrivateKey(p.signed[i].Private); err != nil {
		return nil, nil, nil, false, err
	}
	p.pruneSpent(time.Now())
	if opkID != 0 {
		var priv []byte
		if i := slices.IndexFunc(p.oneTime, func(s oneTimeSecret) bool { return s.ID == opkID }); i >= 0 {
			priv = p.oneTime[i].Private
		} else if i := slices.IndexFunc(p.spentOneTime, func(s spentSecret) bool { return s.Secret.ID == opkID }); i >= 0 {
			priv = p.spentOneTime[i].Secret.Private
		} else {
			return nil, nil, nil, false, fmt.Errorf("%w: one-time prekey %d", ErrUnknownPrekey, opkID)
		}
		if opk, err = ecdh.X25519().NewPrivateKey(priv); err != nil {
			return nil, nil, nil, false, err
		}
	}
	var ks *kemSecret
	if i := slices.IndexFunc(p.oneTimeKEM, func(s kemSecret) bool { return s.ID == kemID }); i >= 0 {
		ks, oneTimeKEM = &p.oneTimeKEM[i], true
	} else if i := slices.IndexFunc(p.spentKEM, func(s spentKEM) bool { return s.Secret.ID == kemID }); i >= 0 {
		ks, oneTimeKEM = &p.spentKEM[i].Secret, true
	} else if i := slices.IndexFunc(p.lastResort, func(s kemSecret) bool { return s.ID == kemID }); i >= 0 {
		ks = &p.lastResort[i]
	} else {
		return nil, nil, nil, false, fmt.Errorf("%w: ML-KEM prekey %d", ErrUnknownPrekey, kemID)
	}
	if dk, err = ks.decapsulationKey(); err != nil {
		return nil, nil, nil, false, err
	}
	return spk, opk, dk, oneTimeKEM, nil
}

// consume moves the one-time prekeys an initial message used out of the
// bundle, into the spent lists (see SpentGrace).
func (p *Prekeys) consume(opkID, kemID uint32) {
	now := time.Now()
	if opkID != 0 {
		if i := slices.IndexFunc(p.oneTime, func(s oneTimeSecret) bool { return s.ID == opkID }); i >= 0 {
			p.spentOneTime = append(p.spentOneTime, spentSecret{Secret: p.oneTime[i], At: now.Unix()})
			p.oneTime = slices.Delete(p.oneTime, i, i+1)
		}
	}
	if i := slices.IndexFunc(p.oneTimeKEM, func(s kemSecret) bool { return s.ID == kemID }); i >= 0 {
		p.spentKEM = append(p.spentKEM, spentKEM{Secret: p.oneTimeKEM[i], At: now.Unix()})
		p.oneTimeKEM = slices.Delete(p.oneTimeKEM, i, i+1)
	}
	p.pruneSpent(now)
}

// pruneSpent erases the spent one-time prekeys older than SpentGrace, and
// the oldest beyond maxSpent.
func (p *Prekeys) pruneSpent(now time.Time) {
	cutoff := now.Add(-SpentGrace).Unix()
	for len(p.spentOneTime) > 0 && (p.spentOneTime[0].At < cutoff || len(p.spentOneTime) > maxSpent) {
		clear(p.spentOneTime[0].Secret.Private)
		p.spentOneTime = p.spentOneTime[1:]
	}
	for len(p.spentKEM) > 0 && (p.spentKEM[0].At < cutoff || len(p.spentKEM) > maxSpent) {
		clear(p.spentKEM[0].Secret.Seed)
		p.spentKEM = p.spentKEM[1:]
	}
}

// PruneSpent erases consumed one-time prekeys whose grace has passed
// (persist afterwards). Respond also prunes.
func (p *Prekeys) PruneSpent(now time.Time) { p.pruneSpent(now) }

// PrekeysVersion is the version of the Prekeys serialization.
const PrekeysVersion = 1

type prekeysWire struct {
	Version    uint            `cbor:"1,keyasint"`
	Signed     []signedSecret  `cbor:"2,keyasint"`
	LastResort []kemSecret     `cbor:"3,keyasint"`
	OneTime    []oneTimeSecret `cbor:"4,keyasint,omitempty"`
	OneTimeKEM []kemSecret     `cbor:"5,keyasint,omitempty"`
	NextID     uint32          `cbor:"6,keyasint"`
	SpentOne   []spentSecret   `cbor:"7,keyasint,omitempty"`
	SpentKEM   []spentKEM      `cbor:"8,keyasint,omitempty"`
}

// Marshal serializes the prekey secrets (CBOR). The output is secret.
func (p *Prekeys) Marshal() ([]byte, error) {
	b, err := wire.Marshal(prekeysWire{
		Version: PrekeysVersion, Signed: p.signed, LastResort: p.lastResort,
		OneTime: p.oneTime, OneTimeKEM: p.oneTimeKEM, NextID: p.nextID,
		SpentOne: p.spentOneTime, SpentKEM: p.spentKEM,
	})
	if err != nil {
		return nil, fmt.Errorf("ratchet: marshal prekeys: %w", err)
	}
	return b, nil
}

// UnmarshalPrekeys restores prekey secrets saved by Marshal.
func UnmarshalPrekeys(data []byte) (*Prekeys, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: prekeys: "+format, append([]any{ErrBadState}, a...)...)
	}
	if len(data) > maxPrekeysSize {
		return nil, bad("%d bytes", len(data))
	}
	var w prekeysWire
	if err := wire.Unmarshal(data, &w); err != nil {
		return nil, bad("%v", err)
	}
	if w.Version != PrekeysVersion {
		return nil, bad("version %d", w.Version)
	}
	if len(w.Signed) == 0 || len(w.Signed) > retainRotated || len(w.LastResort) == 0 || len(w.LastResort) > retainRotated ||
		len(w.OneTime) > maxOneTimeHeld || len(w.OneTimeKEM) > maxOneTimeHeld || w.NextID == 0 ||
		len(w.SpentOne) > maxSpent || len(w.SpentKEM) > maxSpent {
		return nil, bad("counts")
	}
	for _, s := range w.SpentOne {
		if len(s.Secret.Private) != keySize {
			return nil, bad("spent one-time prekey %d", s.Secret.ID)
		}
	}
	for _, s := range w.SpentKEM {
		if len(s.Secret.Seed) != kemSeedSize || len(s.Secret.Signature) != sigSize {
			return nil, bad("spent KEM prekey %d", s.Secret.ID)
		}
	}
	for _, s := range w.Signed {
		if len(s.Private) != keySize || len(s.Signature) != sigSize {
			return nil, bad("signed prekey %d", s.ID)
		}
	}
	for _, s := range w.OneTime {
		if len(s.Private) != keySize {
			return nil, bad("one-time prekey %d", s.ID)
		}
	}
	for _, s := range append(slices.Clone(w.LastResort), w.OneTimeKEM...) {
		if len(s.Seed) != kemSeedSize || len(s.Signature) != sigSize {
			return nil, bad("KEM prekey %d", s.ID)
		}
	}
	return &Prekeys{signed: w.Signed, lastResort: w.LastResort, oneTime: w.OneTime, oneTimeKEM: w.OneTimeKEM, nextID: w.NextID,
		spentOneTime: w.SpentOne, spentKEM: w.SpentKEM}, nil
}
