package ratchet

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// detRand is a deterministic random source for reproducible tests.
func detRand(seed uint64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	s[31] = 0x5a
	return rand.NewChaCha8(s)
}

func newAccount(t testing.TB, seed uint64) *identity.Account {
	t.Helper()
	a, err := identity.New(detRand(seed + 1000))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type pair struct {
	alice, bob *identity.Account
	pk         *Prekeys
	bundle     *Bundle
	a, b       *Session // initiator, responder
	first      []byte   // plaintext of the initial message
	initial    []byte   // encoded initial message
}

// setup runs PQXDH between fresh accounts; oneTime/oneTimeKEM are the
// numbers of one-time prekeys Bob publishes.
func setup(t testing.TB, oneTime, oneTimeKEM int) *pair {
	t.Helper()
	p := &pair{alice: newAccount(t, 1), bob: newAccount(t, 2), first: []byte("hello Bob")}
	var err error
	if p.pk, err = GeneratePrekeys(nil, p.bob, oneTime, oneTimeKEM); err != nil {
		t.Fatal(err)
	}
	if p.bundle, err = p.pk.Bundle(p.bob); err != nil {
		t.Fatal(err)
	}
	enc, err := p.bundle.Encode()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseBundle(enc)
	if err != nil {
		t.Fatal(err)
	}
	if p.a, err = Initiate(nil, p.alice, p.bob.ID(), parsed); err != nil {
		t.Fatal(err)
	}
	msg, err := p.a.Encrypt(p.first)
	if err != nil {
		t.Fatal(err)
	}
	im, err := p.a.InitialMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if p.initial, err = im.Encode(); err != nil {
		t.Fatal(err)
	}
	im2, err := ParseInitialMessage(p.initial)
	if err != nil {
		t.Fatal(err)
	}
	var pt []byte
	if p.b, pt, err = Respond(nil, p.bob, p.pk, im2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pt, p.first) {
		t.Fatalf("first plaintext %q", pt)
	}
	return p
}

func mustEncrypt(t testing.TB, s *Session, pt []byte) []byte {
	t.Helper()
	m, err := s.Encrypt(pt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustDecrypt(t testing.TB, s *Session, m, want []byte) {
	t.Helper()
	pt, err := s.Decrypt(m)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	if !bytes.Equal(pt, want) {
		t.Fatalf("decrypted %q, want %q", pt, want)
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

// clone copies a session through its serialization, as an attacker who
// copied the state (or a device backup) would.
func clone(t testing.TB, s *Session) *Session {
	t.Helper()
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := UnmarshalSession(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withUnknownField adds an integer-keyed field no version defines to a
// CBOR map, to check decoders skip it.
func withUnknownField(t testing.TB, enc []byte) []byte {
	t.Helper()
	var m map[uint64]cbor.RawMessage
	if err := wire.Unmarshal(enc, &m); err != nil {
		t.Fatal(err)
	}
	m[60] = cbor.RawMessage{0x63, 'n', 'e', 'w'}
	out, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
