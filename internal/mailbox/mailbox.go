// Package mailbox holds mailbox keys and the signatures that authenticate
// requests on a mailbox. A mailbox ID is the Ed25519 public key of its key
// pair; whoever holds the secret may read and delete the mailbox.
package mailbox

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/umbra-im/umbra/internal/wire"
)

// ID is a 32-byte mailbox identifier.
type ID [32]byte

// String is the lowercase hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses a 64-character hex mailbox ID.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("mailbox ID must be 64 hex characters, got %q", s)
	}
	copy(id[:], b)
	return id, nil
}

// Key is a mailbox key pair.
type Key struct {
	priv ed25519.PrivateKey
}

// NewKey makes a fresh random mailbox key.
func NewKey() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mailbox: generate key: %w", err)
	}
	return &Key{priv: priv}, nil
}

// KeyFromSeed builds a key from a 32-byte seed (derived keys use this).
func KeyFromSeed(seed []byte) (*Key, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("mailbox: seed must be %d bytes", ed25519.SeedSize)
	}
	return &Key{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// ParseSecret parses the hex seed printed by `umbra mailbox new`.
func ParseSecret(s string) (*Key, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.SeedSize {
		return nil, errors.New("mailbox secret must be 64 hex characters")
	}
	return KeyFromSeed(b)
}

// ID returns the mailbox ID (the public key).
func (k *Key) ID() ID {
	var id ID
	copy(id[:], k.priv.Public().(ed25519.PublicKey))
	return id
}

// Secret is the hex seed.
func (k *Key) Secret() string { return hex.EncodeToString(k.priv.Seed()) }

// Methods that can be authenticated.
const (
	MethodRetrieve = "retrieve"
	MethodDelete   = "delete"
)

// NonceSize is the length of the random nonce a request signature covers.
const NonceSize = 16

// SigSize is the length of a request signature as Sign makes it and nodes
// accept it: the Ed25519 signature (64 bytes), then the NonceSize-byte
// random nonce it covers.
const SigSize = ed25519.SignatureSize + NonceSize

// SignedBytes is what a request signature covers: a domain tag, the method,
// the mailbox, the timestamp, the nonce and a digest of the method's own
// fields. An empty nonce gives the v1 form (no nonce), that of signed
// deletions made before timestamps were coarse, which nodes still keep and
// pass on.
func SignedBytes(method string, mbox ID, ts int64, nonce, fields []byte) []byte {
	h := sha256.Sum256(fields)
	b := make([]byte, 0, 64+len(method)+len(mbox)+8+len(nonce)+len(h))
	if len(nonce) == 0 {
		b = append(b, "umbra/auth/v1\x00"...)
	} else {
		b = append(b, "umbra/auth/v2\x00"...)
	}
	b = append(b, method...)
	b = append(b, 0)
	b = append(b, mbox[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	if len(nonce) > 0 {
		b = append(b, nonce...) // fixed length (NonceSize): no separator needed
	}
	return append(b, h[:]...)
}

// Sign signs a request at time now. The timestamp is coarse
// (wire.CoarseTime: now rounded down to the minute), so the nodes that
// check it learn the time of a read or delete only to the minute. Two
// requests with the same fields within a minute would then sign the same
// bytes, and nodes refuse a signature they have seen (replay protection):
// a fresh random nonce, covered by the signature and sent after it, keeps
// every request's signature its own. sig is SigSize bytes.
func (k *Key) Sign(method string, now time.Time, fields []byte) (ts int64, sig []byte) {
	ts = wire.CoarseTime(now.UnixMilli())
	nonce := make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		panic("mailbox: no randomness: " + err.Error()) // crypto/rand does not fail on supported platforms
	}
	sig = ed25519.Sign(k.priv, SignedBytes(method, k.ID(), ts, nonce, fields))
	return ts, append(sig, nonce...)
}

// MaxSkew is how far a request timestamp may be ahead of the node's clock,
// and how far behind it beyond the coarseness of timestamps: the clock
// difference between a client and a node that requests tolerate.
const MaxSkew = 60 * time.Second

// MaxAge is how far a request timestamp may be behind the node's clock: a
// coarse timestamp is up to wire.TimeGranularity older than the client's
// clock, on top of MaxSkew, so a client whose clock is MaxSkew behind the
// node's is still served at the end of its minute.
const MaxAge = MaxSkew + wire.TimeGranularity

// ErrAuth is returned for any failed request authentication.
var ErrAuth = errors.New("mailbox signature invalid or expired")

// Verify checks a request signature and its freshness against now: the
// timestamp must be coarse (wire.IsCoarse), at most MaxSkew ahead of now
// and at most MaxAge behind it, and the signature must carry a nonce
// (SigSize bytes). A request that verifies stays acceptable until
// Expires(ts): a replay cache must keep it that long.
func Verify(method string, mbox ID, ts int64, fields, sig []byte, now time.Time) error {
	if !wire.IsCoarse(ts) {
		return fmt.Errorf("%w: timestamp is not rounded to %s", ErrAuth, wire.TimeGranularity)
	}
	d := now.Sub(time.UnixMilli(ts))
	if d > MaxAge || d < -MaxSkew {
		return fmt.Errorf("%w: timestamp %s off the node clock", ErrAuth, d.Round(time.Second))
	}
	if len(sig) != SigSize {
		return ErrAuth
	}
	return VerifySig(method, mbox, ts, fields, sig)
}

// Expires is when a request timestamped ts stops passing Verify.
func Expires(ts int64) time.Time { return time.UnixMilli(ts).Add(MaxAge) }

// VerifySig checks a request signature without its freshness: a signed
// deletion passed on between nodes stays the owner's proof after the
// request itself is old. It takes both forms: SigSize bytes (signature
// and nonce) and a bare Ed25519 signature (v1, no nonce; deletions signed
// before timestamps were coarse).
func VerifySig(method string, mbox ID, ts int64, fields, sig []byte) error {
	var nonce []byte
	switch len(sig) {
	case ed25519.SignatureSize:
	case SigSize:
		sig, nonce = sig[:ed25519.SignatureSize], sig[ed25519.SignatureSize:]
	default:
		return ErrAuth
	}
	if !ed25519.Verify(ed25519.PublicKey(mbox[:]), SignedBytes(method, mbox, ts, nonce, fields), sig) {
		return ErrAuth
	}
	return nil
}

// A message in a mailbox's public namespace (prekey bundles) carries the
// mailbox key's signature, so every node (not only the one a client
// reaches) can tell the owner's messages from junk, replicas and repairs
// included: data = signature (64 bytes) ‖ payload, signed over
// "umbra/public/v1\0" ‖ mailbox ‖ be64(timestamp ms) ‖ be64(expiry ms) ‖
// payload. Timestamp and expiry are the stored message's.
const publicTag = "umbra/public/v1\x00"

func publicSigned(mbox ID, ts, expiry int64, payload []byte) []byte {
	b := make([]byte, 0, len(publicTag)+len(mbox)+16+len(payload))
	b = append(b, publicTag...)
	b = append(b, mbox[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	b = binary.BigEndian.AppendUint64(b, uint64(expiry))
	return append(b, payload...)
}

// SignPublic returns the data of a public-namespace message: the
// signature, then payload.
func (k *Key) SignPublic(ts, expiry int64, payload []byte) []byte {
	sig := ed25519.Sign(k.priv, publicSigned(k.ID(), ts, expiry, payload))
	return append(sig, payload...)
}

// ErrPublicSig is returned for a public-namespace message whose signature
// does not verify.
var ErrPublicSig = errors.New("public namespace message is not signed by the mailbox key")

// OpenPublic checks a public-namespace message's signature and returns
// its payload.
func OpenPublic(mbox ID, ts, expiry int64, data []byte) ([]byte, error) {
	if len(data) < ed25519.SignatureSize {
		return nil, ErrPublicSig
	}
	sig, payload := data[:ed25519.SignatureSize], data[ed25519.SignatureSize:]
	if !ed25519.Verify(ed25519.PublicKey(mbox[:]), publicSigned(mbox, ts, expiry, payload), sig) {
		return nil, ErrPublicSig
	}
	return payload, nil
}
