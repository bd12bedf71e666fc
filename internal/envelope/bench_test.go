package envelope

import (
	"strings"
	"testing"
)

// BenchmarkSeal and BenchmarkOpen measure a 200-byte text through every
// layer (content, signature, padding, ratchet, envelope) in an
// established session.
func BenchmarkSeal(b *testing.B) {
	alice, bob := newParty(b, 1), newParty(b, 2)
	as := start(b, alice, bob)
	o, err := open(b, bob, nil, seal(b, alice, as, text(b, "x")))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := open(b, alice, as, seal(b, bob, o.Session, text(b, "y"))); err != nil {
		b.Fatal(err)
	}
	c := text(b, strings.Repeat("a", 200))
	var size int
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		env, err := Seal(alice.acct, as, c)
		if err != nil {
			b.Fatal(err)
		}
		size = len(env)
	}
	b.ReportMetric(float64(size), "wire-B")
}

func BenchmarkOpen(b *testing.B) {
	alice, bob := newParty(b, 1), newParty(b, 2)
	as := start(b, alice, bob)
	o, err := open(b, bob, nil, seal(b, alice, as, text(b, "x")))
	if err != nil {
		b.Fatal(err)
	}
	bs := o.Session
	if _, err := open(b, alice, as, seal(b, bob, bs, text(b, "y"))); err != nil {
		b.Fatal(err)
	}
	c := text(b, strings.Repeat("a", 200))
	envs := make([]*Envelope, b.N)
	for i := range envs {
		envs[i] = mustParse(b, seal(b, alice, as, c))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := OpenRatchet(bob.acct, bs, envs[i]); err != nil {
			b.Fatal(err)
		}
	}
}
