package ratchet

import (
	"crypto/ed25519"
	"crypto/mlkem"
	"encoding/binary"
	"fmt"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// BundleVersion is the version of the prekey bundle encoding.
const BundleVersion = 1

// Limits on a bundle, so a peer cannot make us allocate or verify without
// bound.
const (
	MaxOneTimePrekeys = 100
	MaxOneTimeKEMs    = 10
	MaxBundleSize     = 32 << 10
)

// Bundle is an account's published prekey bundle (PQXDH spec §3.2). It is
// public; fetch it, ParseBundle it, and pass it to Initiate, which verifies
// it. Among several copies of one account's bundle, prefer the one with the
// highest SignedPrekey.ID (IDs only grow).
type Bundle struct {
	Version  uint                    `cbor:"1,keyasint"`
	Identity identity.PublicIdentity `cbor:"2,keyasint"`
	// SignedPrekey is SPK_B, signed by the identity.
	SignedPrekey SignedPrekey `cbor:"3,keyasint"`
	// OneTimePrekeys are OPK_B candidates (unsigned, per the spec).
	OneTimePrekeys []OneTimePrekey `cbor:"4,keyasint,omitempty"`
	// LastResortKEM is the signed last-resort ML-KEM-768 prekey.
	LastResortKEM KEMPrekey `cbor:"5,keyasint"`
	// OneTimeKEMs are signed one-time ML-KEM-768 prekeys, used before the
	// last-resort one when present.
	OneTimeKEMs []KEMPrekey `cbor:"6,keyasint,omitempty"`
}

// SignedPrekey is an X25519 prekey with its identity signature.
type SignedPrekey struct {
	ID        uint32 `cbor:"1,keyasint"`
	Key       []byte `cbor:"2,keyasint"` // X25519 public key
	Signature []byte `cbor:"3,keyasint"` // Ed25519 over signedPrekeyMessage
}

// OneTimePrekey is an X25519 one-time prekey.
type OneTimePrekey struct {
	ID  uint32 `cbor:"1,keyasint"`
	Key []byte `cbor:"2,keyasint"`
}

// KEMPrekey is an ML-KEM-768 encapsulation key with its identity signature.
type KEMPrekey struct {
	ID        uint32 `cbor:"1,keyasint"`
	Key       []byte `cbor:"2,keyasint"` // 1184-byte encapsulation key
	Signature []byte `cbor:"3,keyasint"` // Ed25519 over kemPrekeyMessage
}

const (
	signedPrekeyContext = "Umbra_SignedPrekey_v1"
	kemPrekeyContext    = "Umbra_KEMPrekey_v1"
)

// signedPrekeyMessage is what the identity signs for a signed prekey: the
// spec's Encode(SPK) with a context string and the prekey ID.
func signedPrekeyMessage(id uint32, pub []byte) []byte {
	m := []byte(signedPrekeyContext)
	m = binary.BigEndian.AppendUint32(m, id)
	return append(m, encodeEC(pub)...)
}

// kemPrekeyMessage is what the identity signs for an ML-KEM prekey; the
// last-resort flag is signed so a one-time key cannot be replayed as a
// last-resort one.
func kemPrekeyMessage(id uint32, lastResort bool, pub []byte) []byte {
	m := []byte(kemPrekeyContext)
	m = binary.BigEndian.AppendUint32(m, id)
	if lastResort {
		m = append(m, 1)
	} else {
		m = append(m, 0)
	}
	return append(m, encodeKEM(pub)...)
}

// Encode returns the bundle's CBOR encoding.
func (b *Bundle) Encode() ([]byte, error) {
	out, err := wire.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("ratchet: encode bundle: %w", err)
	}
	if len(out) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes encoded, limit %d", ErrBadBundle, len(out), MaxBundleSize)
	}
	return out, nil
}

// ParseBundle decodes a bundle and checks its structure (version, key
// sizes, counts, unique IDs). It does not check signatures: Verify does.
func ParseBundle(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadBundle, len(data), MaxBundleSize)
	}
	var b Bundle
	if err := wire.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBundle, err)
	}
	if err := b.checkStructure(); err != nil {
		return nil, err
	}
	return &b, nil
}

func (b *Bundle) checkStructure() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadBundle}, a...)...)
	}
	if b.Version != BundleVersion {
		return bad("version %d (this client understands %d)", b.Version, BundleVersion)
	}
	if len(b.Identity.SigningKey) != ed25519.PublicKeySize || len(b.Identity.AgreementKey) != keySize || len(b.Identity.Binding) != sigSize {
		return bad("identity key sizes")
	}
	if len(b.OneTimePrekeys) > MaxOneTimePrekeys || len(b.OneTimeKEMs) > MaxOneTimeKEMs {
		return bad("too many one-time prekeys")
	}
	ids := map[uint32]bool{}
	useID := func(id uint32) error {
		if id == 0 || ids[id] {
			return bad("prekey ID %d is zero or repeated", id)
		}
		ids[id] = true
		return nil
	}
	if err := useID(b.SignedPrekey.ID); err != nil {
		return err
	}
	if len(b.SignedPrekey.Key) != keySize || len(b.SignedPrekey.Signature) != sigSize {
		return bad("signed prekey sizes")
	}
	for _, k := range b.OneTimePrekeys {
		if err := useID(k.ID); err != nil {
			return err
		}
		if len(k.Key) != keySize {
			return bad("one-time prekey %d size", k.ID)
		}
	}
	for _, k := range append([]KEMPrekey{b.LastResortKEM}, b.OneTimeKEMs...) {
		if err := useID(k.ID); err != nil {
			return err
		}
		if len(k.Key) != kemKeySize || len(k.Signature) != sigSize {
			return bad("ML-KEM prekey %d sizes", k.ID)
		}
	}
	return nil
}

// Verify checks the bundle's structure, that it belongs to want, and every
// signature: the identity binding, the signed prekey and each ML-KEM
// prekey. A bundle that fails must not be used.
func (b *Bundle) Verify(want identity.AccountID) error {
	if err := b.checkStructure(); err != nil {
		return err
	}
	if b.Identity.ID() != want {
		return fmt.Errorf("%w: bundle is for %s, not %s", ErrBadBundle, b.Identity.ID(), want)
	}
	if err := b.Identity.Verify(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadBundle, err)
	}
	pub := ed25519.PublicKey(b.Identity.SigningKey)
	if !ed25519.Verify(pub, signedPrekeyMessage(b.SignedPrekey.ID, b.SignedPrekey.Key), b.SignedPrekey.Signature) {
		return fmt.Errorf("%w: bad signature on signed prekey %d", ErrBadBundle, b.SignedPrekey.ID)
	}
	if !ed25519.Verify(pub, kemPrekeyMessage(b.LastResortKEM.ID, true, b.LastResortKEM.Key), b.LastResortKEM.Signature) {
		return fmt.Errorf("%w: bad signature on last-resort ML-KEM prekey %d", ErrBadBundle, b.LastResortKEM.ID)
	}
	for _, k := range b.OneTimeKEMs {
		if !ed25519.Verify(pub, kemPrekeyMessage(k.ID, false, k.Key), k.Signature) {
			return fmt.Errorf("%w: bad signature on one-time ML-KEM prekey %d", ErrBadBundle, k.ID)
		}
	}
	// Parse every key once so Initiate cannot fail half-way on a bad one.
	for _, k := range append([]KEMPrekey{b.LastResortKEM}, b.OneTimeKEMs...) {
		if _, err := mlkem.NewEncapsulationKey768(k.Key); err != nil {
			return fmt.Errorf("%w: ML-KEM prekey %d: %v", ErrBadBundle, k.ID, err)
		}
	}
	return nil
}
