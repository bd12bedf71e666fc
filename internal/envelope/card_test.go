package envelope

import (
	"bytes"
	"errors"
	"testing"
)

func testCard(t testing.TB, p *party) *Card {
	t.Helper()
	b, err := p.pk.Bundle(p.acct)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return &Card{Bundle: enc, PeriodSec: 86400, Buckets: 16}
}

func TestCard(t *testing.T) {
	alice, bob := newParty(t, 1), newParty(t, 2)
	c := testCard(t, alice)
	enc, err := c.Encode(alice.acct)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.Encode(alice.acct)
	if !bytes.Equal(enc, again) {
		t.Fatal("an unchanged card encodes differently")
	}
	got, err := ParseCard(enc, alice.acct.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.Buckets != 16 || got.PeriodSec != 86400 || !bytes.Equal(got.Bundle, c.Bundle) {
		t.Fatalf("parsed %+v", got)
	}
	if _, err := ParseCard(enc, bob.acct.ID()); !errors.Is(err, ErrCardSignature) {
		t.Fatalf("someone else's card: %v", err)
	}
	bad := bytes.Clone(enc)
	bad[len(bad)/2] ^= 1
	if _, err := ParseCard(bad, alice.acct.ID()); err == nil {
		t.Fatal("a tampered card parsed")
	}
	c.Buckets = 0
	if _, err := c.Encode(alice.acct); err == nil {
		t.Fatal("a card without buckets encoded")
	}
}

func FuzzParseCard(f *testing.F) {
	alice := newParty(f, 1)
	enc, err := testCard(f, alice).Encode(alice.acct)
	if err != nil {
		f.Fatal(err)
	}
	addVariants(f, enc)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseCard(in, alice.acct.ID())
		if err != nil {
			return
		}
		if c.check() != nil {
			t.Fatal("a parsed card fails its checks")
		}
	})
}
