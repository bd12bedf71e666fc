package mailbox_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
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
			if ts != now.UnixMilli() {
				t.Fatalf("ts = %d, want %d", ts, now.UnixMilli())
			}
			if len(sig) != ed25519.SignatureSize {
				t.Fatalf("sig len %d", len(sig))
			}
			if err := mailbox.Verify(method, k.ID(), ts, fields, sig, now); err != nil {
				t.Fatalf("%s: Verify: %v", method, err)
			}
			// The mailbox ID is the Ed25519 public key.
			id := k.ID()
			if !ed25519.Verify(ed25519.PublicKey(id[:]), mailbox.SignedBytes(method, k.ID(), ts, fields), sig) {
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
		{"signature too short", mailbox.MethodRetrieve, k.ID(), ts, fields, sig[:63], now},
		{"signature too long", mailbox.MethodRetrieve, k.ID(), ts, fields, append(bytes.Clone(sig), 0), now},
		{"empty signature", mailbox.MethodRetrieve, k.ID(), ts, fields, nil, now},
		{"zero signature", mailbox.MethodRetrieve, k.ID(), ts, fields, make([]byte, 64), now},
		{"too old", mailbox.MethodRetrieve, k.ID(), ts, fields, sig, now.Add(mailbox.MaxSkew + time.Millisecond)},
		{"much too old", mailbox.MethodRetrieve, k.ID(), ts, fields, sig, now.Add(24 * time.Hour)},
		{"too far ahead", mailbox.MethodRetrieve, k.ID(), ts, fields, sig, now.Add(-mailbox.MaxSkew - time.Millisecond)},
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
	for _, d := range []time.Duration{0, time.Millisecond, -time.Millisecond, mailbox.MaxSkew, -mailbox.MaxSkew, mailbox.MaxSkew - time.Millisecond} {
		if err := mailbox.Verify(mailbox.MethodRetrieve, k.ID(), ts, nil, sig, now.Add(d)); err != nil {
			t.Errorf("clock offset %v: %v", d, err)
		}
	}
	// Timestamps at the int64 extremes must be refused, not overflow into
	// acceptance.
	for _, ts := range []int64{1<<63 - 1, -1 << 63, 0, -1} {
		_, sig := k.Sign(mailbox.MethodRetrieve, time.UnixMilli(ts), nil)
		if err := mailbox.Verify(mailbox.MethodRetrieve, k.ID(), ts, nil, sig, now); err == nil {
			t.Errorf("timestamp %d accepted at %v", ts, now)
		}
	}
}

func TestSignedBytesDomainSeparation(t *testing.T) {
	id := mailbox.ID{1}
	base := mailbox.SignedBytes("retrieve", id, 5, []byte("x"))
	if !bytes.HasPrefix(base, []byte("umbra/auth/v1\x00")) {
		t.Fatal("no domain tag")
	}
	for name, b := range map[string][]byte{
		"method":  mailbox.SignedBytes("delete", id, 5, []byte("x")),
		"mailbox": mailbox.SignedBytes("retrieve", mailbox.ID{2}, 5, []byte("x")),
		"ts":      mailbox.SignedBytes("retrieve", id, 6, []byte("x")),
		"fields":  mailbox.SignedBytes("retrieve", id, 5, []byte("y")),
		// a method that swallows the separator cannot collide
		"method+sep": mailbox.SignedBytes("retrieve\x00", id, 5, []byte("x")),
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
	// Signatures are deterministic too.
	_, s1 := a.Sign(mailbox.MethodDelete, now, []byte("h"))
	_, s2 := b.Sign(mailbox.MethodDelete, now, []byte("h"))
	if !bytes.Equal(s1, s2) {
		t.Fatal("same key, same input, different signatures")
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
