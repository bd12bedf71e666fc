package senderkey

import (
	"bytes"
	"testing"
)

func reportUS(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/op")
}

// BenchmarkEncrypt1KiB: one group message of 1 KiB (chain step, HKDF,
// AES-GCM, Ed25519 signature, CBOR).
func BenchmarkEncrypt1KiB(b *testing.B) {
	own, _ := newChains(b, 50)
	pt := bytes.Repeat([]byte("a"), 1024)
	var size int
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		m, err := own.Encrypt(pt, groupA)
		if err != nil {
			b.Fatal(err)
		}
		size = len(m)
	}
	reportUS(b)
	b.ReportMetric(float64(size-len(pt)), "overhead-B")
}

// BenchmarkDecrypt1KiB: one in-order 1 KiB message (parse, Ed25519
// verification, chain step, HKDF, AES-GCM).
func BenchmarkDecrypt1KiB(b *testing.B) {
	own, peer := newChains(b, 51)
	pt := bytes.Repeat([]byte("a"), 1024)
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i] = mustEncrypt(b, own, pt, groupA)
	}
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := peer.Decrypt(msgs[i], groupA); err != nil {
			b.Fatal(err)
		}
	}
	reportUS(b)
}

// BenchmarkDecryptSkip1000: a 1 KiB message after 1,000 lost ones: 1,001
// chain steps and 1,000 stored keys.
func BenchmarkDecryptSkip1000(b *testing.B) {
	own, peer := newChains(b, 52)
	state := peerState(b, peer)
	pt := bytes.Repeat([]byte("a"), 1024)
	var m []byte
	for range 1001 {
		m = mustEncrypt(b, own, pt, groupA)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		p, err := UnmarshalPeerChain(state)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := p.Decrypt(m, groupA); err != nil {
			b.Fatal(err)
		}
		if p.SkippedKeys() != 1000 {
			b.Fatal("wrong skip")
		}
	}
	reportUS(b)
}
