package ratchet

import (
	"bytes"
	"slices"
	"testing"
)

// BenchmarkSessionSetup measures PQXDH on both sides: parse and verify the
// bundle, Initiate (4 X25519 + ML-KEM-768 encapsulation), encrypt and
// encode the initial message, then parse it and Respond (4 X25519 + ML-KEM
// decapsulation + the first ratchet step and decryption).
func BenchmarkSessionSetup(b *testing.B) {
	alice, bob := newAccount(b, 1), newAccount(b, 2)
	pk, _ := GeneratePrekeys(nil, bob, 1, 0)
	bundle, _ := pk.Bundle(bob)
	benc, _ := bundle.Encode()
	opk := pk.oneTime[0]
	opkPriv := bytes.Clone(opk.Private)
	var initialSize int
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		parsed, err := ParseBundle(benc)
		if err != nil {
			b.Fatal(err)
		}
		a, err := Initiate(nil, alice, bob.ID(), parsed)
		if err != nil {
			b.Fatal(err)
		}
		m, _ := a.Encrypt(make([]byte, 200))
		im, _ := a.InitialMessage(m)
		enc, _ := im.Encode()
		initialSize = len(enc)
		im2, err := ParseInitialMessage(enc)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := Respond(nil, bob, pk, im2); err != nil {
			b.Fatal(err)
		}
		// Put the consumed one-time prekey back for the next round.
		pk.oneTime = []oneTimeSecret{{ID: opk.ID, Private: slices.Clone(opkPriv)}}
	}
	b.ReportMetric(float64(initialSize), "initial-B")
}

func BenchmarkEncrypt(b *testing.B) {
	p := setup(b, 1, 0)
	mustDecrypt(b, p.a, mustEncrypt(b, p.b, []byte("x")), []byte("x"))
	pt := bytes.Repeat([]byte("a"), 200)
	var size int
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		m, err := p.a.Encrypt(pt)
		if err != nil {
			b.Fatal(err)
		}
		size = len(m)
	}
	b.ReportMetric(float64(size-len(pt)), "overhead-B")
}

func BenchmarkDecrypt(b *testing.B) {
	p := setup(b, 1, 0)
	mustDecrypt(b, p.a, mustEncrypt(b, p.b, []byte("x")), []byte("x"))
	pt := bytes.Repeat([]byte("a"), 200)
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i] = mustEncrypt(b, p.a, pt)
	}
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := p.b.Decrypt(msgs[i]); err != nil {
			b.Fatal(err)
		}
	}
}
