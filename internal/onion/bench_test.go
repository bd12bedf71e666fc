package onion

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// benchSizes are the packet sizes the hop benchmarks run at.
var benchSizes = []int{2 << 10, 32 << 10, 320 << 10}

func sizeName(s int) string { return fmt.Sprintf("size=%dKiB", s>>10) }

// hopBench is what a middle relay handles for one request of one size: the
// request packet as the guard forwards it, and the reply packet as the exit
// sends it back. Both fill their packet (the worst case for the AEAD, and
// the same number of AEAD bytes as the raw benchmark).
type hopBench struct {
	size  int
	key   *ecdh.PrivateKey // the middle's onion key
	req   []byte           // request packet the middle receives
	reply []byte           // reply packet the middle receives from the exit

	reqBuf, replyBuf []byte // where the packets "arrive"
}

func newHopBench(b *testing.B, size int) *hopBench {
	b.Helper()
	rs := newRelays(b, 3)
	hops := hopsOf(rs)
	n := maxRequest(b, hops, size)
	pkt, _, err := Build(hops, randBytes(b, n))
	if err != nil {
		b.Fatal(err)
	}
	lg, err := Peel([]*ecdh.PrivateKey{rs[0].key}, pkt)
	if err != nil {
		b.Fatal(err)
	}
	lm, err := Peel([]*ecdh.PrivateKey{rs[1].key}, lg.Packet)
	if err != nil {
		b.Fatal(err)
	}
	le, err := Peel([]*ecdh.PrivateKey{rs[2].key}, lm.Packet)
	if err != nil {
		b.Fatal(err)
	}
	resp := randBytes(b, size-lenPrefix-MaxHops*replyOver)
	reply, err := FinalReply(le.ReplyKey, resp)
	if err != nil {
		b.Fatal(err)
	}
	if len(lg.Packet) != size || len(reply) != size {
		b.Fatalf("packets of %d and %d bytes, want %d", len(lg.Packet), len(reply), size)
	}
	return &hopBench{size: size, key: rs[1].key, req: lg.Packet, reply: reply,
		reqBuf: make([]byte, size), replyBuf: make([]byte, size)}
}

// hop is one middle hop's full processing of one request and its reply,
// as a relay does it: peeled and re-wrapped in the buffers the packets
// arrived in (the copies into them stand for the arrival, and are timed).
func (h *hopBench) hop(b *testing.B) {
	copy(h.reqBuf, h.req)
	l, err := PeelInPlace([]*ecdh.PrivateKey{h.key}, h.reqBuf)
	if err != nil {
		b.Fatal(err)
	}
	if len(l.Packet) != h.size {
		b.Fatal("bad forward")
	}
	copy(h.replyBuf, h.reply)
	if err := WrapReplyInPlace(l.ReplyKey, h.replyBuf); err != nil {
		b.Fatal(err)
	}
}

// rawBench is the cost floor of one layer: one X25519 key agreement, one
// ChaCha20-Poly1305 open of a packet-sized ciphertext and one seal of a
// reply-sized box.
type rawBench struct {
	priv           *ecdh.PrivateKey
	peer           *ecdh.PublicKey
	k1, k2         []byte
	nonce          []byte
	ct, pt         []byte // ciphertext to open, plaintext to seal
	openBuf, sbBuf []byte
	aad            []byte
}

func newRawBench(b *testing.B, size int) *rawBench {
	b.Helper()
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	r := &rawBench{
		priv:  priv,
		peer:  eph.PublicKey(),
		k1:    randBytes(b, 32),
		k2:    randBytes(b, 32),
		nonce: make([]byte, chacha20poly1305.NonceSize),
		pt:    randBytes(b, size-lenPrefix-nonceSize-aeadOver), // a reply box filling the packet
	}
	a, _ := chacha20poly1305.New(r.k1)
	// A request layer filling the packet: its ciphertext is everything
	// but the length prefix, the encapsulated key and the confirmation.
	r.aad = layerAAD(size)
	r.ct = a.Seal(nil, r.nonce, randBytes(b, size-lenPrefix-layerOver), r.aad)
	r.openBuf = make([]byte, 0, len(r.ct))
	r.sbBuf = make([]byte, 0, len(r.pt)+aeadOver)
	return r
}

func (r *rawBench) raw(b *testing.B) {
	if _, err := r.priv.ECDH(r.peer); err != nil {
		b.Fatal(err)
	}
	a, err := chacha20poly1305.New(r.k1)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Open(r.openBuf[:0], r.nonce, r.ct, r.aad); err != nil {
		b.Fatal(err)
	}
	a2, err := chacha20poly1305.New(r.k2)
	if err != nil {
		b.Fatal(err)
	}
	_ = a2.Seal(r.sbBuf[:0], r.nonce, r.pt, nil)
}

// BenchmarkHop: per op, what a middle relay does for one request: Peel a
// request packet and WrapReply the reply packet, both of the given size.
func BenchmarkHop(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(sizeName(s), func(b *testing.B) {
			h := newHopBench(b, s)
			b.SetBytes(int64(2 * s))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.hop(b)
			}
		})
	}
}

// BenchmarkRawLayer: per op, one X25519 key agreement, one
// ChaCha20-Poly1305 open of a packet-sized ciphertext and one seal of a
// reply-sized box, into reused buffers.
func BenchmarkRawLayer(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(sizeName(s), func(b *testing.B) {
			r := newRawBench(b, s)
			b.SetBytes(int64(2 * s))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.raw(b)
			}
		})
	}
}

// BenchmarkHopVsRaw measures a hop and the raw primitives alternately in
// the same loop and reports both per-op times and their ratio (the target
// is ratio ≤ 2).
func BenchmarkHopVsRaw(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(sizeName(s), func(b *testing.B) {
			h := newHopBench(b, s)
			r := newRawBench(b, s)
			h.hop(b) // warm up both
			r.raw(b)
			var hopT, rawT time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				h.hop(b)
				t1 := time.Now()
				r.raw(b)
				t2 := time.Now()
				hopT += t1.Sub(t0)
				rawT += t2.Sub(t1)
			}
			b.StopTimer()
			hopNs := float64(hopT.Nanoseconds()) / float64(b.N)
			rawNs := float64(rawT.Nanoseconds()) / float64(b.N)
			b.ReportMetric(hopNs, "hop_ns")
			b.ReportMetric(rawNs, "raw_ns")
			b.ReportMetric(hopNs/rawNs, "ratio")
		})
	}
}

// BenchmarkHopParts splits a hop into its two halves, to see where the
// time goes (each in place, after a copy into the arrival buffer).
func BenchmarkHopParts(b *testing.B) {
	for _, s := range benchSizes {
		h := newHopBench(b, s)
		b.Run("peel/"+sizeName(s), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				copy(h.reqBuf, h.req)
				if _, err := PeelInPlace([]*ecdh.PrivateKey{h.key}, h.reqBuf); err != nil {
					b.Fatal(err)
				}
			}
		})
		l, err := Peel([]*ecdh.PrivateKey{h.key}, h.req)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("wrapreply/"+sizeName(s), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				copy(h.replyBuf, h.reply)
				if err := WrapReplyInPlace(l.ReplyKey, h.replyBuf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
