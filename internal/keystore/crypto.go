package keystore

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/umbra-im/umbra/internal/wire"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Argon2Params are argon2id's cost parameters.
type Argon2Params struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // parallelism
}

// DefaultArgon2 is used for new stores: about a quarter of a second on a
// laptop core, 64 MiB, so each passphrase guess costs an attacker as much.
var DefaultArgon2 = Argon2Params{Time: 3, MemoryKiB: 64 * 1024, Threads: 2}

// LightArgon2 is for tests only: it makes passphrase guessing cheap.
var LightArgon2 = Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

// Upper bounds on stored parameters, so a damaged or hostile database file
// cannot make Open allocate or spin without limit.
const (
	maxArgonTime    = 64
	maxArgonMemory  = 4 * 1024 * 1024 // 4 GiB
	maxArgonThreads = 64
	saltSize        = 16
)

func (p Argon2Params) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxArgonTime:
		return fmt.Errorf("argon2 time %d outside 1..%d", p.Time, maxArgonTime)
	case p.Threads < 1 || p.Threads > maxArgonThreads:
		return fmt.Errorf("argon2 threads %d outside 1..%d", p.Threads, maxArgonThreads)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxArgonMemory:
		return fmt.Errorf("argon2 memory %d KiB outside %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxArgonMemory)
	}
	return nil
}

// kdfRecord is the stored key-derivation record (meta key "kdf").
type kdfRecord struct {
	Algorithm string `cbor:"1,keyasint"` // "argon2id"
	Salt      []byte `cbor:"2,keyasint"`
	Time      uint32 `cbor:"3,keyasint"`
	MemoryKiB uint32 `cbor:"4,keyasint"`
	Threads   uint8  `cbor:"5,keyasint"`
}

const algArgon2id = "argon2id"

func newKDFRecord(p Argon2Params) (kdfRecord, error) {
	if err := p.validate(); err != nil {
		return kdfRecord{}, err
	}
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return kdfRecord{}, err
	}
	return kdfRecord{Algorithm: algArgon2id, Salt: salt, Time: p.Time, MemoryKiB: p.MemoryKiB, Threads: p.Threads}, nil
}

func (r kdfRecord) params() Argon2Params {
	return Argon2Params{Time: r.Time, MemoryKiB: r.MemoryKiB, Threads: r.Threads}
}

// parseKDFRecord decodes and checks a stored record.
func parseKDFRecord(b []byte) (kdfRecord, error) {
	var r kdfRecord
	if len(b) > 1024 {
		return r, errors.New("kdf record too large")
	}
	if err := wire.Unmarshal(b, &r); err != nil {
		return r, err
	}
	if r.Algorithm != algArgon2id {
		return r, fmt.Errorf("unknown key derivation %q", r.Algorithm)
	}
	if len(r.Salt) != saltSize {
		return r, fmt.Errorf("salt of %d bytes", len(r.Salt))
	}
	return r, r.params().validate()
}

// keys are the subkeys derived from the passphrase.
type keys struct {
	value cipher // values, AAD = entry name
	name  cipher // entry names, AAD = entry ID
	check cipher // the check value
	index []byte // HMAC key: entry name → entry ID
}

type cipher = interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	NonceSize() int
	Overhead() int
}

// deriveKeys runs argon2id over the passphrase and expands the result with
// HKDF-SHA-256 into independent subkeys.
func deriveKeys(passphrase string, r kdfRecord) (*keys, error) {
	master := argon2.IDKey([]byte(passphrase), r.Salt, r.Time, r.MemoryKiB, r.Threads, 32)
	defer clear(master)
	sub := func(info string) ([]byte, error) {
		return hkdf.Key(sha256.New, master, nil, "Umbra_Keystore_"+info, 32)
	}
	k := &keys{}
	for _, c := range []struct {
		info string
		out  *cipher
	}{{"Value", &k.value}, {"Name", &k.name}, {"Check", &k.check}} {
		key, err := sub(c.info)
		if err != nil {
			return nil, err
		}
		aead, err := chacha20poly1305.NewX(key)
		clear(key)
		if err != nil {
			return nil, err
		}
		*c.out = aead
	}
	var err error
	if k.index, err = sub("Index"); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *keys) wipe() { clear(k.index) }

// entryID is the stored, opaque ID of an entry name.
func (k *keys) entryID(name string) []byte {
	m := hmac.New(sha256.New, k.index)
	m.Write([]byte(name))
	return m.Sum(nil)
}

// seal encrypts with a random 24-byte nonce and returns nonce ‖ ciphertext.
func seal(c cipher, plaintext, aad []byte) ([]byte, error) {
	nonce := make([]byte, c.NonceSize(), c.NonceSize()+len(plaintext)+c.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return c.Seal(nonce, nonce, plaintext, aad), nil
}

var errAuth = errors.New("authentication failed")

func open(c cipher, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < c.NonceSize()+c.Overhead() {
		return nil, errAuth
	}
	pt, err := c.Open(nil, sealed[:c.NonceSize()], sealed[c.NonceSize():], aad)
	if err != nil {
		return nil, errAuth
	}
	return pt, nil
}

// checkPlaintext is encrypted under the check key when a store is created;
// decrypting it tells a right passphrase from a wrong one.
const checkPlaintext = "Umbra key store check v1"

var checkAAD = []byte("check")
