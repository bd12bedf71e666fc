package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// detRand is a deterministic random source for reproducible tests.
func detRand(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func newTestAccount(t testing.TB, seed byte) *Account {
	t.Helper()
	a, err := New(detRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRestoreGivesSameAccount(t *testing.T) {
	for i := range 20 {
		a := newTestAccount(t, byte(i))
		phrase := a.Phrase()
		if n := len(strings.Fields(phrase)); n != PhraseWords {
			t.Fatalf("phrase has %d words", n)
		}
		b, err := Restore(phrase)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if a.ID() != b.ID() || a.ID().String() != b.ID().String() {
			t.Fatalf("restored ID %s, want %s", b.ID(), a.ID())
		}
		if !bytes.Equal(a.Seed(), b.Seed()) {
			t.Fatal("restored seed differs")
		}
		if !a.Public().Equal(b.Public()) || !bytes.Equal(a.AgreementKey().Bytes(), b.AgreementKey().Bytes()) {
			t.Fatal("restored agreement key differs")
		}
		// Messy input: upper case, extra whitespace, newlines.
		messy := "  " + strings.ToUpper(strings.ReplaceAll(phrase, " ", " \n\t ")) + "\n"
		c, err := Restore(messy)
		if err != nil || c.ID() != a.ID() {
			t.Fatalf("restore of messy phrase: %v", err)
		}
	}
}

func TestAccountsDiffer(t *testing.T) {
	a, b := newTestAccount(t, 1), newTestAccount(t, 2)
	if a.ID() == b.ID() {
		t.Fatal("two seeds gave one ID")
	}
	c, err := New(nil) // crypto/rand
	if err != nil {
		t.Fatal(err)
	}
	if c.ID() == a.ID() {
		t.Fatal("random account equals a fixed one")
	}
}

func TestKeysDomainSeparated(t *testing.T) {
	a := newTestAccount(t, 3)
	if bytes.Equal(a.SigningKey().Seed(), a.AgreementKey().Bytes()) {
		t.Fatal("Ed25519 seed and X25519 scalar are equal")
	}
	if bytes.Equal(a.SigningKey().Seed(), a.Seed()) || bytes.Equal(a.AgreementKey().Bytes(), a.Seed()) {
		t.Fatal("a derived key equals the master seed")
	}
	if _, err := FromSeed(make([]byte, 31)); err == nil {
		t.Fatal("31-byte seed accepted")
	}
}

func TestPublicIdentityVerify(t *testing.T) {
	a, b := newTestAccount(t, 4), newTestAccount(t, 5)
	p := a.Public()
	if err := p.Verify(); err != nil {
		t.Fatal(err)
	}
	if p.ID() != a.ID() {
		t.Fatal("ID mismatch")
	}
	if _, err := p.AgreementPublicKey(); err != nil {
		t.Fatal(err)
	}
	// Someone else's agreement key under a's signing key.
	q := p.Clone()
	q.AgreementKey = b.Public().AgreementKey
	if err := q.Verify(); !errors.Is(err, ErrBadIdentity) {
		t.Fatalf("swapped agreement key: %v", err)
	}
	// a's agreement key claimed by b.
	q = p.Clone()
	q.SigningKey = b.Public().SigningKey
	if err := q.Verify(); !errors.Is(err, ErrBadIdentity) {
		t.Fatalf("swapped signing key: %v", err)
	}
	q = p.Clone()
	q.Binding[0] ^= 1
	if err := q.Verify(); !errors.Is(err, ErrBadIdentity) {
		t.Fatalf("flipped binding: %v", err)
	}
	for _, mut := range []func(*PublicIdentity){
		func(q *PublicIdentity) { q.SigningKey = q.SigningKey[:31] },
		func(q *PublicIdentity) { q.AgreementKey = append(q.AgreementKey, 0) },
		func(q *PublicIdentity) { q.Binding = nil },
	} {
		q := p.Clone()
		mut(&q)
		if err := q.Verify(); !errors.Is(err, ErrBadIdentity) {
			t.Fatalf("bad size accepted: %v", err)
		}
	}
	// Clone is deep.
	q = p.Clone()
	q.SigningKey[0] ^= 1
	if a.Public().SigningKey[0] == q.SigningKey[0] {
		t.Fatal("Clone shares memory")
	}
	msg := []byte("Umbra_Test hello")
	if !ed25519.Verify(a.ID().PublicKey(), msg, a.Sign(msg)) {
		t.Fatal("Sign does not verify under the account ID")
	}
}

func TestAccountIDRoundTrip(t *testing.T) {
	for i := range 50 {
		id := newTestAccount(t, byte(i)).ID()
		s := id.String()
		if len(s) != AccountIDLen || !strings.HasPrefix(s, AccountIDPrefix) {
			t.Fatalf("bad text form %q", s)
		}
		if strings.ToLower(s) != s {
			t.Fatalf("not lower case: %q", s)
		}
		for _, in := range []string{s, "  " + s + "\n", strings.ToUpper(s), "\t" + strings.ToUpper(s[:20]) + s[20:] + " "} {
			got, err := ParseAccountID(in)
			if err != nil {
				t.Fatalf("parse %q: %v", in, err)
			}
			if got != id || !got.Equal(id) {
				t.Fatalf("parse %q gave another ID", in)
			}
		}
		var u AccountID
		txt, _ := id.MarshalText()
		if err := u.UnmarshalText(txt); err != nil || u != id {
			t.Fatalf("text round trip: %v", err)
		}
	}
}

// Every single-character substitution anywhere in the body must be caught:
// by the alphabet check, or else by the checksum with the user-facing
// message.
func TestAccountIDSingleTypoRejected(t *testing.T) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	for seed := range 5 {
		s := newTestAccount(t, byte(seed)).ID().String()
		checked := 0
		for pos := len(AccountIDPrefix); pos < len(s); pos++ {
			for _, c := range alphabet {
				if byte(c) == s[pos] {
					continue
				}
				typo := s[:pos] + string(c) + s[pos+1:]
				_, err := ParseAccountID(typo)
				if err == nil {
					t.Fatalf("typo at %d (%q→%q) accepted", pos, s[pos], c)
				}
				if !errors.Is(err, ErrAccountIDChecksum) || err.Error() != "this account ID has a typo: checksum mismatch" {
					t.Fatalf("typo at %d: error %q", pos, err)
				}
				if !errors.Is(err, ErrInvalidAccountID) {
					t.Fatal("checksum error does not wrap ErrInvalidAccountID")
				}
				checked++
			}
		}
		if checked != 58*31 {
			t.Fatalf("checked %d typos", checked)
		}
	}
}

func TestAccountIDTranspositionRejected(t *testing.T) {
	s := newTestAccount(t, 9).ID().String()
	for pos := len(AccountIDPrefix); pos < len(s)-1; pos++ {
		if s[pos] == s[pos+1] {
			continue
		}
		b := []byte(s)
		b[pos], b[pos+1] = b[pos+1], b[pos]
		if _, err := ParseAccountID(string(b)); !errors.Is(err, ErrAccountIDChecksum) {
			t.Fatalf("transposition at %d: %v", pos, err)
		}
	}
}

func TestAccountIDMalformed(t *testing.T) {
	s := newTestAccount(t, 7).ID().String()
	cases := map[string]string{
		"":                       "starts with",
		"umbra2" + s[6:]:         "starts with",
		s[:len(s)-1]:             "characters long",
		s + "a":                  "characters long",
		s[:10] + "0" + s[11:]:    `'0' at position 11`,
		s[:10] + "1" + s[11:]:    `'1' at position 11`,
		s[:30] + "-" + s[31:]:    "cannot appear",
		s[:30] + " " + s[31:]:    "cannot appear",
		s[:20] + "é" + s[22:]:    "cannot appear",
		"umbra1" + s[7:] + "=":   "cannot appear",
		"bitcoin1" + s[8:]:       "starts with",
		strings.Repeat("a", 500): "starts with",
	}
	for in, want := range cases {
		_, err := ParseAccountID(in)
		if err == nil {
			t.Fatalf("%q accepted", in)
		}
		if !errors.Is(err, ErrInvalidAccountID) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: error %q, want it to contain %q", in, err, want)
		}
	}
}
