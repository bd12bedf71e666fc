package mailbox_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/wire"
)

var now = time.UnixMilli(1_700_000_000_000)

func newKey(t *testing.T) *mailbox.Key {
	t.Helper()
	k, err := mailbox.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignVerifyRoundTrip(t *testing.T) {
	k := newKey(t)
	for _, method := range []string{mailbox.MethodRetrieve, mailbox.MethodDelete} {
		for _, fields := range [][]byte{nil, {}, []byte("cursor"), bytes.Repeat([]byte{1}, 4096)} {
			ts, sig := k.Sign(method, now, fields)
			if want := wire.CoarseTime(now.UnixMilli()); ts != want || ts == now.UnixMilli() {
				t.Fatalf("ts = %d, want %d (now rounded down to the minute)", ts, want)
			}
			if len(sig) != mailbox.SigSize {
				t.Fatalf("sig len %d", len(sig))
			}
			if err := mailbox.Verify(method, k.ID(), ts, fields, sig, now); err != nil {
				t.Fatalf("%s: Verify: %v", method, err)
			}
			// The mailbox ID is the Ed25519 public key.
			id := k.ID()
			sig, nonce := sig[:ed25519.SignatureSize], sig[ed25519.SignatureSize:]
			if !ed25519.Verify(ed25519.PublicKey(id[:]), mailbox.SignedBytes(method, k.ID(), ts, nonce, fields), sig) {
				t.Fatal("signature does not verify with the ID as public key")
			}
		}
	}
	// nil and empty fields are the same request
	ts, sig := k.Sign(mailbox.MethodRetrieve, now, nil)
	if err := mailbox.Verify(mailbox.MethodRetrieve, k.ID(), ts, []byte{}, sig, now); err != nil {
		t.Fatalf("nil vs empty fields: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	k := newKey(t)
	other := newKey(t)
	fields := []byte("fields")
	ts, sig := k.Sign(mailbox.MethodRetrieve, now, fields)
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	tests := []struct {
		name   string
		method string
		mbox   mailbox.ID
		ts     int64
		fields []byte
		sig    []byte
		now    time.Time
	}{
		{"wrong method", mailbox.MethodDelete, k.ID(), ts, fields, sig, now},
		{"unknown method", "retrieve\x00", k.ID(), ts, fields, sig, now},
		{"empty method", "", k.ID(), ts, fields, sig, now},
		{"other mailbox", mailbox.MethodRetrieve, other.ID(), ts, fields, sig, now},
		{"zero mailbox", mailbox.MethodRetrieve, mailbox.ID{}, ts, fields, sig, now},
		{"changed fields", mailbox.MethodRetrieve, k.ID(), ts, []byte("fieldz"), sig, now},
		{"extended fields", mailbox.MethodRetrieve, k.ID(), ts, []byte("fields\x00"), sig, now},
		{"no fields", mailbox.MethodRetrieve, k.ID(), ts, nil, sig, now},
		{"changed timestamp", mailbox.MethodRetrieve, k.ID(), ts + 1, fields, sig, now},
		{"flipped signature", mailbox.MethodRetrieve, k.ID(), ts, fields, flip(sig, 10), now},
		{"flipped last signature byte", mailbox.MethodRetrieve, k.ID(), ts, fields, flip(sig, 63), now},
		{"flipped nonce", mailbox.MethodRetrieve, k.ID(), ts, fields, flip(sig, 70), now},
		{"flipped last nonce byte", mailbox.MethodRetrieve, k.ID(), ts, fields, flip(sig, mailbox.SigSize-1), now},
		{"no nonce", mailbox.MethodRetrieve, k.ID(), ts, fields, sig[:64], now},
		{"signature too short", mailbox.MethodRetrieve, k.ID(), ts, fields, sig[:63], now},
		{"nonce too short", mailbox.MethodRetrieve, k.ID(), ts, fields, sig[:mailbox.SigSize-1], now},
		{"signature too long", mailbox.MethodRetrieve, k.ID(), ts, fields, append(bytes.Clone(sig), 0), now},
		{"empty signature", mailbox.MethodRetrieve, k.ID(), ts, fields, nil, now},
		{"zero signature", mailbox.MethodRetrieve, k.ID(), ts, fields, make([]byte, mailbox.SigSize), now},
		{"too old", mailbox.MethodRetrieve, k.ID(), ts, fields, sig, time.UnixMilli(ts).Add(mailbox.MaxAge + time.Millisecond)},
		{"much too old", mailbox.MethodRetrieve, k.ID(), ts, fields, sig, now.Add(24 * time.Hour)},
		{"too far ahead", mailbox.MethodRetrieve, k.ID(), ts, fields, sig, time.UnixMilli(ts).Add(-mailbox.MaxSkew - time.Millisecond)},
		{"much too far ahead", mailbox.MethodRetrieve, k.ID(), ts, fields, sig, now.Add(-24 * time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := mailbox.Verify(tc.method, tc.mbox, tc.ts, tc.fields, tc.sig, tc.now)
			if err == nil {
				t.Fatal("Verify accepted")
			}
			if !errors.Is(err, mailbox.ErrAuth) {
				t.Fatalf("err = %v, does not wrap ErrAuth", err)
			}
		})
	}
}

func TestVerifySkewBoundaries(t *testing.T) {
	k := newKey(t)
	ts, sig := k.Sign(mailbox.MethodRetrieve, now, nil)
	at := time.UnixMilli(ts)
	// A coarse timestamp is up to a minute behind the client's clock: the
	// node takes it up to MaxSkew ahead of its own clock and MaxAge behind.
	for _, d := range []time.Duration{0, time.Millisecond, -time.Millisecond, mailbox.MaxSkew, -mailbox.MaxSkew,
		mailbox.MaxSkew + wire.TimeGranularity - time.Millisecond, mailbox.MaxAge} {
		if err := mailbox.Verify(mailbox.MethodRetrieve, k.ID(), ts, nil, sig, at.Add(d)); err != nil {
			t.Errorf("clock offset %v: %v", d, err)
		}
	}
	if mailbox.Expires(ts) != at.Add(mailbox.MaxAge) {
		t.Fatalf("Expires = %v, want %v", mailbox.Expires(ts), at.Add(mailbox.MaxAge))
	}
	// A client signing at the last millisecond of a minute, with a clock
	// MaxSkew behind the node's, is still served.
	end := time.UnixMilli(wire.CoarseTime(now.UnixMilli()) + wire.TimeGranularity.Milliseconds() - 1)
	ts2, sig2 := k.Sign(mailbox.MethodRetrieve, end, nil)
	if err := mailbox.Verify(mailbox.MethodRetrieve, k.ID(), ts2, nil, sig2, end.Add(mailbox.MaxSkew)); err != nil {
		t.Errorf("end of minute, client clock MaxSkew behind: %v", err)
	}
	// Timestamps at the int64 extremes must be refused, not overflow into
	// acceptance.
	for _, ts := range []int64{1<<63 - 1, -1 << 63, 0, -1} {
		signed, sig := k.Sign(mailbox.MethodRetrieve, time.UnixMilli(ts), nil)
		if err := mailbox.Verify(mailbox.MethodRetrieve, k.ID(), signed, nil, sig, now); err == nil {
			t.Errorf("timestamp %d accepted at %v", ts, now)
		}
	}
}

func TestSignedBytesDomainSeparation(t *testing.T) {
	id := mailbox.ID{1}
	nonce := bytes.Repeat([]byte{7}, mailbox.NonceSize)
	base := mailbox.SignedBytes("retrieve", id, 5, nonce, []byte("x"))
	if !bytes.HasPrefix(base, []byte("umbra/auth/v2\x00")) {
		t.Fatal("no domain tag")
	}
	if !bytes.HasPrefix(mailbox.SignedBytes("retrieve", id, 5, nil, []byte("x")), []byte("umbra/auth/v1\x00")) {
		t.Fatal("no v1 domain tag without a nonce")
	}
	for name, b := range map[string][]byte{
		"method":  mailbox.SignedBytes("delete", id, 5, nonce, []byte("x")),
		"mailbox": mailbox.SignedBytes("retrieve", mailbox.ID{2}, 5, nonce, []byte("x")),
		"ts":      mailbox.SignedBytes("retrieve", id, 6, nonce, []byte("x")),
		"nonce":   mailbox.SignedBytes("retrieve", id, 5, bytes.Repeat([]byte{8}, mailbox.NonceSize), []byte("x")),
		"fields":  mailbox.SignedBytes("retrieve", id, 5, nonce, []byte("y")),
		"v1":      mailbox.SignedBytes("retrieve", id, 5, nil, []byte("x")),
		// a method that swallows the separator cannot collide
		"method+sep": mailbox.SignedBytes("retrieve\x00", id, 5, nonce, []byte("x")),
	} {
		if bytes.Equal(b, base) {
			t.Errorf("changing %s leaves the signed bytes unchanged", name)
		}
	}
}

func TestParseID(t *testing.T) {
	k := newKey(t)
	id, err := mailbox.ParseID(k.ID().String())
	if err != nil || id != k.ID() {
		t.Fatalf("round trip: %v %v", id, err)
	}
	upper := strings.ToUpper(k.ID().String())
	if id, err := mailbox.ParseID(upper); err != nil || id != k.ID() {
		t.Errorf("upper-case hex: %v %v", id, err)
	}
	if s := k.ID().String(); len(s) != 64 || s != strings.ToLower(s) {
		t.Errorf("String = %q", s)
	}
	for _, s := range []string{
		"",
		"00",
		strings.Repeat("0", 62),
		strings.Repeat("0", 63),
		strings.Repeat("0", 65),
		strings.Repeat("0", 66),
		strings.Repeat("g", 64),
		strings.Repeat("0", 63) + "z",
		" " + strings.Repeat("0", 64),
		strings.Repeat("0", 64) + "\n",
		"0x" + strings.Repeat("0", 62),
	} {
		if _, err := mailbox.ParseID(s); err == nil {
			t.Errorf("ParseID(%q) accepted", s)
		}
	}
}

func TestParseSecret(t *testing.T) {
	k := newKey(t)
	k2, err := mailbox.ParseSecret(k.Secret())
	if err != nil {
		t.Fatal(err)
	}
	if k2.ID() != k.ID() || k2.Secret() != k.Secret() {
		t.Fatal("secret round trip changed the key")
	}
	for _, s := range []string{
		"",
		strings.Repeat("0", 63),
		strings.Repeat("0", 62),
		strings.Repeat("0", 66),
		strings.Repeat("0", 128), // a full private key is not a seed
		strings.Repeat("x", 64),
		k.Secret() + " ",
	} {
		if _, err := mailbox.ParseSecret(s); err == nil {
			t.Errorf("ParseSecret(%q) accepted", s)
		}
	}
}

func TestKeyFromSeed(t *testing.T) {
	seed := bytes.Repeat([]byte{42}, 32)
	a, err := mailbox.KeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mailbox.KeyFromSeed(bytes.Clone(seed))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != b.ID() || a.Secret() != b.Secret() {
		t.Fatal("KeyFromSeed is not deterministic")
	}
	want := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if id := a.ID(); !bytes.Equal(id[:], want) {
		t.Fatal("ID is not the Ed25519 public key of the seed")
	}
	if a.Secret() != strings.Repeat("2a", 32) {
		t.Fatalf("Secret = %s", a.Secret())
	}
	// Signatures carry a fresh nonce: the same request twice in a minute
	// (the same coarse timestamp) is signed differently, and both verify
	// under either key built from the seed.
	ts1, s1 := a.Sign(mailbox.MethodDelete, now, []byte("h"))
	ts2, s2 := b.Sign(mailbox.MethodDelete, now, []byte("h"))
	if ts1 != ts2 || bytes.Equal(s1, s2) || bytes.Equal(s1[ed25519.SignatureSize:], s2[ed25519.SignatureSize:]) {
		t.Fatal("same key, same input, same timestamp: the signatures must differ by their nonces")
	}
	for _, s := range [][]byte{s1, s2} {
		if err := mailbox.Verify(mailbox.MethodDelete, b.ID(), ts1, []byte("h"), s, now); err != nil {
			t.Fatal(err)
		}
	}
	seed2 := bytes.Clone(seed)
	seed2[0] ^= 1
	c, _ := mailbox.KeyFromSeed(seed2)
	if c.ID() == a.ID() {
		t.Fatal("different seeds, same ID")
	}
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := mailbox.KeyFromSeed(make([]byte, n)); err == nil {
			t.Errorf("KeyFromSeed accepted a %d-byte seed", n)
		}
	}
	// NewKey makes distinct keys.
	if newKey(t).ID() == newKey(t).ID() {
		t.Fatal("NewKey repeated a key")
	}
}

// TestVerifyCoarseOnly: nodes take only coarse request timestamps with a
// nonce (Verify), while a signed deletion of any age and form stays the
// owner's proof (VerifySig): the v1 form, a bare signature without a
// nonce, is what nodes kept before timestamps were coarse.
func TestVerifyCoarseOnly(t *testing.T) {
	seed := bytes.Repeat([]byte{9}, 32)
	k, err := mailbox.KeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	fine := now.UnixMilli() // not a whole minute
	if wire.IsCoarse(fine) {
		t.Fatal("test time is coarse")
	}
	nonce := bytes.Repeat([]byte{3}, mailbox.NonceSize)
	v2 := append(ed25519.Sign(priv, mailbox.SignedBytes(mailbox.MethodRetrieve, k.ID(), fine, nonce, nil)), nonce...)
	if err := mailbox.VerifySig(mailbox.MethodRetrieve, k.ID(), fine, nil, v2); err != nil {
		t.Fatalf("a valid signature over a fine timestamp: %v", err)
	}
	if err := mailbox.Verify(mailbox.MethodRetrieve, k.ID(), fine, nil, v2, now); !errors.Is(err, mailbox.ErrAuth) {
		t.Fatalf("Verify took a fine timestamp: %v", err)
	}
	coarse := wire.CoarseTime(fine)
	v1 := ed25519.Sign(priv, mailbox.SignedBytes(mailbox.MethodDelete, k.ID(), coarse, nil, []byte("h")))
	if err := mailbox.VerifySig(mailbox.MethodDelete, k.ID(), coarse, []byte("h"), v1); err != nil {
		t.Fatalf("a v1 signed deletion: %v", err)
	}
	if err := mailbox.Verify(mailbox.MethodDelete, k.ID(), coarse, []byte("h"), v1, now); !errors.Is(err, mailbox.ErrAuth) {
		t.Fatalf("Verify took a request without a nonce: %v", err)
	}
	// A v1 signature does not pass as v2 with a nonce added, nor a v2 one
	// with its nonce cut off.
	if mailbox.VerifySig(mailbox.MethodDelete, k.ID(), coarse, []byte("h"), append(bytes.Clone(v1), nonce...)) == nil {
		t.Fatal("a v1 signature passed with a nonce appended")
	}
	_, s := k.Sign(mailbox.MethodDelete, now, []byte("h"))
	if mailbox.VerifySig(mailbox.MethodDelete, k.ID(), coarse, []byte("h"), s[:ed25519.SignatureSize]) == nil {
		t.Fatal("a v2 signature passed without its nonce")
	}
}
