// Package identity holds Umbra accounts: the long-term identity keys, the
// account ID (the text form of the public signing key that people copy, paste
// and scan), and the BIP39 recovery phrase that restores an account.
//
// An account is fully determined by a 32-byte master seed. Two keys are
// derived from it with HKDF-SHA256, each under its own info string:
//
//   - an Ed25519 key pair: the identity, which signs prekeys and messages and
//     whose public key is the account ID;
//   - an X25519 key pair: the identity key used for key agreement (PQXDH's
//     IK, and the key sealed-sender initial messages are encrypted to).
//
// The X25519 public key is bound to the account by an Ed25519 signature (see
// PublicIdentity), so a peer who knows only the account ID can check an
// X25519 identity key it is handed.
//
// The recovery phrase is the master seed as 256 bits of BIP39 entropy: 24
// English words, the last carrying an 8-bit checksum.
package identity

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// SeedSize is the size of an account's master seed.
const SeedSize = 32

// HKDF parameters of the key derivation from the master seed. Changing any of
// them changes every account; they are part of the protocol.
const (
	seedSalt      = "Umbra_Identity_v1"
	infoSigning   = "Umbra_Identity_Ed25519"
	infoAgreement = "Umbra_Identity_X25519"
)

// Account is a user's identity: the master seed and the keys derived from
// it. It holds secrets; keep it in memory only as long as needed and persist
// it only through an encrypted store (see the keystore package). An Account
// is immutable and safe for concurrent use.
type Account struct {
	seed [SeedSize]byte
	sign ed25519.PrivateKey
	dh   *ecdh.PrivateKey
	pub  PublicIdentity
}

// New creates a fresh account from 32 bytes read from rnd (crypto/rand when
// rnd is nil).
func New(rnd io.Reader) (*Account, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	seed := make([]byte, SeedSize)
	if _, err := io.ReadFull(rnd, seed); err != nil {
		return nil, fmt.Errorf("identity: new account: read random seed: %w", err)
	}
	return FromSeed(seed)
}

// FromSeed rebuilds the account with the given 32-byte master seed.
func FromSeed(seed []byte) (*Account, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("identity: master seed must be %d bytes, got %d", SeedSize, len(seed))
	}
	a := &Account{}
	copy(a.seed[:], seed)

	edSeed, err := hkdf.Key(sha256.New, seed, []byte(seedSalt), infoSigning, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("identity: derive signing key: %w", err)
	}
	a.sign = ed25519.NewKeyFromSeed(edSeed)
	clear(edSeed)

	dhScalar, err := hkdf.Key(sha256.New, seed, []byte(seedSalt), infoAgreement, 32)
	if err != nil {
		return nil, fmt.Errorf("identity: derive agreement key: %w", err)
	}
	a.dh, err = ecdh.X25519().NewPrivateKey(dhScalar)
	clear(dhScalar)
	if err != nil {
		return nil, fmt.Errorf("identity: derive agreement key: %w", err)
	}

	a.pub = PublicIdentity{
		SigningKey:   append([]byte(nil), a.sign.Public().(ed25519.PublicKey)...),
		AgreementKey: a.dh.PublicKey().Bytes(),
	}
	a.pub.Binding = ed25519.Sign(a.sign, bindingMessage(a.pub.AgreementKey))
	return a, nil
}

// Restore rebuilds an account from its 24-word recovery phrase. Errors name
// the problem for the user: an unknown word and its position (a
// *PhraseWordError), a wrong word count (ErrPhraseLength) or a checksum that
// does not match (ErrPhraseChecksum).
func Restore(phrase string) (*Account, error) {
	seed, err := SeedFromPhrase(phrase)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return FromSeed(seed)
}

// Seed returns a copy of the 32-byte master seed. It is the whole account:
// treat it like the recovery phrase.
func (a *Account) Seed() []byte { return append([]byte(nil), a.seed[:]...) }

// Phrase returns the 24-word BIP39 recovery phrase of the account.
func (a *Account) Phrase() string {
	p, err := NewMnemonic(a.seed[:])
	if err != nil {
		panic("identity: 32-byte seed must always encode: " + err.Error())
	}
	return p
}

// ID returns the account ID.
func (a *Account) ID() AccountID {
	var id AccountID
	copy(id[:], a.pub.SigningKey)
	return id
}

// Public returns the account's public identity (signing key, agreement key
// and the signature binding them). The returned value is a copy.
func (a *Account) Public() PublicIdentity { return a.pub.Clone() }

// SigningKey returns the Ed25519 identity private key.
func (a *Account) SigningKey() ed25519.PrivateKey { return a.sign }

// AgreementKey returns the X25519 identity private key.
func (a *Account) AgreementKey() *ecdh.PrivateKey { return a.dh }

// Sign signs msg with the Ed25519 identity key. Callers must domain-separate
// msg (prefix it with a context string no other protocol message uses).
func (a *Account) Sign(msg []byte) []byte { return ed25519.Sign(a.sign, msg) }

// PublicIdentity is the public half of an account, as carried in prekey
// bundles and initial messages. Its CBOR form uses integer keys.
type PublicIdentity struct {
	// SigningKey is the Ed25519 public key (32 bytes): the account ID.
	SigningKey []byte `cbor:"1,keyasint"`
	// AgreementKey is the X25519 identity public key (32 bytes).
	AgreementKey []byte `cbor:"2,keyasint"`
	// Binding is SigningKey's Ed25519 signature over
	// "Umbra_IdentityBinding_v1" ‖ AgreementKey.
	Binding []byte `cbor:"3,keyasint"`
}

const bindingContext = "Umbra_IdentityBinding_v1"

func bindingMessage(agreementKey []byte) []byte {
	return append([]byte(bindingContext), agreementKey...)
}

// ErrBadIdentity is returned (wrapped) by PublicIdentity.Verify.
var ErrBadIdentity = errors.New("identity: invalid public identity")

// Verify checks key sizes and that Binding is a valid signature of the
// signing key over the agreement key. A PublicIdentity received from a peer
// must be verified before use.
func (p PublicIdentity) Verify() error {
	if len(p.SigningKey) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: signing key is %d bytes, want %d", ErrBadIdentity, len(p.SigningKey), ed25519.PublicKeySize)
	}
	if len(p.AgreementKey) != 32 {
		return fmt.Errorf("%w: agreement key is %d bytes, want 32", ErrBadIdentity, len(p.AgreementKey))
	}
	if len(p.Binding) != ed25519.SignatureSize {
		return fmt.Errorf("%w: binding signature is %d bytes, want %d", ErrBadIdentity, len(p.Binding), ed25519.SignatureSize)
	}
	if !ed25519.Verify(ed25519.PublicKey(p.SigningKey), bindingMessage(p.AgreementKey), p.Binding) {
		return fmt.Errorf("%w: agreement key is not signed by the account key", ErrBadIdentity)
	}
	return nil
}

// ID returns the account ID of p. It does not verify p.
func (p PublicIdentity) ID() AccountID {
	var id AccountID
	copy(id[:], p.SigningKey)
	return id
}

// AgreementPublicKey parses the X25519 key. Call Verify first.
func (p PublicIdentity) AgreementPublicKey() (*ecdh.PublicKey, error) {
	k, err := ecdh.X25519().NewPublicKey(p.AgreementKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadIdentity, err)
	}
	return k, nil
}

// Equal reports whether p and q are the same identity (constant time over
// the keys; the binding signature is deterministic and not compared).
func (p PublicIdentity) Equal(q PublicIdentity) bool {
	return subtle.ConstantTimeCompare(p.SigningKey, q.SigningKey) == 1 &&
		subtle.ConstantTimeCompare(p.AgreementKey, q.AgreementKey) == 1
}

// Clone returns a deep copy of p.
func (p PublicIdentity) Clone() PublicIdentity {
	return PublicIdentity{
		SigningKey:   append([]byte(nil), p.SigningKey...),
		AgreementKey: append([]byte(nil), p.AgreementKey...),
		Binding:      append([]byte(nil), p.Binding...),
	}
}
