package onion

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/wire"
)

// TestDelayRoundTrip: each hop reads the delay of its own layer, and only
// that; a hop without one reads 0; the request still arrives intact.
func TestDelayRoundTrip(t *testing.T) {
	rs := newRelays(t, 3)
	hops := hopsOf(rs)
	want := []time.Duration{0, 1234 * time.Millisecond, MaxDelay}
	hops[1].Delay, hops[1].Mix = want[1], true
	hops[2].Delay, hops[2].Mix = want[2], true
	req := randBytes(t, 500)
	pkt, _, err := Build(hops, req)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := peelPath(t, rs, pkt, req)
	for i, l := range layers {
		if l.Delay != want[i] {
			t.Fatalf("hop %d read delay %v, want %v", i, l.Delay, want[i])
		}
	}
	// Sub-millisecond delays round to the nearest millisecond.
	hops[1].Delay = 1500 * time.Microsecond
	pkt, _, err = Build(hops, req)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ = peelPath(t, rs, pkt, req)
	if layers[1].Delay != 2*time.Millisecond {
		t.Fatalf("1.5 ms read back as %v", layers[1].Delay)
	}
}

// TestDelayZeroIsV1: a path without delays builds layers without key 0
// (the length of packets before mix delays), and a mixed layer is 6 bytes
// longer whatever
// its delay, so the length prefix a hop sees says nothing of the delays
// asked of later hops.
func TestDelayZeroIsV1(t *testing.T) {
	rs := newRelays(t, 3)
	req := randBytes(t, 100)
	plain := hopsOf(rs)
	pkt, _, err := Build(plain, req)
	if err != nil {
		t.Fatal(err)
	}
	v1 := int(binary.BigEndian.Uint32(pkt))
	if want := layersLen(plain, len(req), 0); v1 != want {
		t.Fatalf("layer length %d, want %d", v1, want)
	}
	layers, _ := peelPath(t, rs, pkt, req)
	for i, l := range layers {
		if l.Delay != 0 {
			t.Fatalf("hop %d of an unmixed packet read delay %v", i, l.Delay)
		}
	}
	var lens [][]int
	for _, d := range []time.Duration{0, time.Millisecond, 23 * time.Millisecond, 300 * time.Millisecond, MaxDelay} {
		hops := hopsOf(rs)
		for i := 1; i < 3; i++ {
			hops[i].Delay, hops[i].Mix = d, true
		}
		pkt, _, err := Build(hops, req)
		if err != nil {
			t.Fatal(err)
		}
		_, links := peelPath(t, rs, pkt, req)
		var l []int
		for _, p := range links {
			l = append(l, int(binary.BigEndian.Uint32(p)))
		}
		lens = append(lens, l)
	}
	for _, l := range lens[1:] {
		if !equalInts(l, lens[0]) {
			t.Fatalf("link lengths depend on the delays: %v vs %v", l, lens[0])
		}
	}
	if lens[0][0] != v1+2*(2+delayLen) {
		t.Fatalf("mixed packet's layers are %d bytes, v1 %d: want 2×%d more", lens[0][0], v1, 2+delayLen)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDelayCap: Build refuses a delay above MaxDelay or below 0; a layer
// that asks for more than MaxDelay (sealed by hand) is read as MaxDelay; a
// delay field of the wrong length is refused.
func TestDelayCap(t *testing.T) {
	rs := newRelays(t, 3)
	for _, d := range []time.Duration{MaxDelay + time.Millisecond, -time.Millisecond} {
		hops := hopsOf(rs)
		hops[1].Delay = d
		if _, _, err := Build(hops, []byte("x")); err == nil {
			t.Fatalf("Build accepted a delay of %v", d)
		}
	}
	pub, err := hpke.NewDHKEMPublicKey(rs[0].key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		delay []byte
		want  time.Duration
		ok    bool
	}{
		{[]byte{0xff, 0xff, 0xff, 0xff}, MaxDelay, true},
		{[]byte{0, 0, 0x13, 0x89}, MaxDelay, true}, // 5001 ms
		{[]byte{0, 0, 0x13, 0x88}, MaxDelay, true}, // 5000 ms
		{[]byte{0, 0, 0, 42}, 42 * time.Millisecond, true},
		{[]byte{0, 0, 42}, 0, false},
		{[]byte{0, 0, 0, 0, 42}, 0, false},
	} {
		pt, err := wire.Marshal(layerBody{Delay: tc.delay, Inner: []byte("request")})
		if err != nil {
			t.Fatal(err)
		}
		l, err := Peel([]*ecdh.PrivateKey{rs[0].key}, sealTestLayer(t, pub, pt, Sizes[0]))
		if !tc.ok {
			if !errors.Is(err, ErrPacket) {
				t.Fatalf("delay %x: Peel error %v, want ErrPacket", tc.delay, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("delay %x: %v", tc.delay, err)
		}
		if l.Delay != tc.want || !bytes.Equal(l.Request, []byte("request")) {
			t.Fatalf("delay %x read as %v, want %v", tc.delay, l.Delay, tc.want)
		}
	}
}

// TestMixDelaysDraw: draws are exponential with the configured mean
// (below the cap), never negative nor above the cap; Apply leaves the
// guard alone and marks every later hop.
func TestMixDelaysDraw(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	m := MixDelays{Mean: 500 * time.Millisecond, Max: 5 * time.Second}
	const n = 20000
	var sum float64
	for i := 0; i < n; i++ {
		d := m.Draw(r)
		if d < 0 || d > m.Max {
			t.Fatalf("draw %v outside [0, %v]", d, m.Max)
		}
		sum += d.Seconds()
	}
	// Mean 0.5 s, standard error 0.5/√n ≈ 3.5 ms: allow 5 of them.
	if mean := sum / n; math.Abs(mean-0.5) > 5*0.5/math.Sqrt(n) {
		t.Fatalf("mean draw %.4f s, want 0.5", mean)
	}
	capped := MixDelays{Mean: time.Hour, Max: time.Second}
	for i := 0; i < 100; i++ {
		if d := capped.Draw(r); d > time.Second {
			t.Fatalf("draw %v above the 1 s cap", d)
		}
	}
	if d := (MixDelays{Mean: time.Hour, Max: time.Hour}).Draw(r); d > MaxDelay {
		t.Fatalf("draw %v above MaxDelay", d)
	}
	hops := make([]Hop, 3)
	m.Apply(hops, r)
	if hops[0].Mix || hops[0].Delay != 0 || !hops[1].Mix || !hops[2].Mix {
		t.Fatalf("Apply: %+v", hops)
	}
	if got := m.Allowance(3); got != 10*time.Second {
		t.Fatalf("Allowance(3) = %v", got)
	}
}

// FuzzDelayRoundTrip: any delay Build accepts is read back by its hop,
// rounded to the millisecond.
func FuzzDelayRoundTrip(f *testing.F) {
	rs := newRelays(f, 2)
	for _, ms := range []int64{0, 1, 499, 5000, 5001, -1, math.MaxInt64} {
		f.Add(ms * int64(time.Millisecond))
	}
	f.Fuzz(func(t *testing.T, ns int64) {
		hops := hopsOf(rs)
		hops[1].Delay, hops[1].Mix = time.Duration(ns), true
		pkt, _, err := Build(hops, []byte("req"))
		if hops[1].Delay < 0 || hops[1].Delay > MaxDelay {
			if err == nil {
				t.Fatalf("Build accepted delay %v", hops[1].Delay)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		l0, err := Peel([]*ecdh.PrivateKey{rs[0].key}, pkt)
		if err != nil {
			t.Fatal(err)
		}
		l1, err := Peel([]*ecdh.PrivateKey{rs[1].key}, l0.Packet)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(MaxDelay, hops[1].Delay.Round(time.Millisecond)); l1.Delay != want || l0.Delay != 0 {
			t.Fatalf("delay %v read as %v (guard %v)", hops[1].Delay, l1.Delay, l0.Delay)
		}
	})
}

// TestMixedClientPacketsEveryday: with mix delays on (key 0 in the
// middle's and the exit's layers) and ClientOptions (key 3 in the exit's),
// every everyday request and its reply are exactly Everyday bytes on every
// link whatever the delays drawn; the room for a request is 2×6 bytes
// smaller than unmixed, the same for every draw; the middle and the exit
// read their delays and only the exit the reply size.
func TestMixedClientPacketsEveryday(t *testing.T) {
	rs := newRelays(t, 3)
	r := rand.New(rand.NewPCG(3, 4))
	room := func(mix func([]Hop)) int {
		lo, hi := 0, Everyday
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			hops := hopsOf(rs)
			mix(hops)
			p, _, err := BuildWith(hops, make([]byte, mid), ClientOptions)
			if err != nil {
				t.Fatal(err)
			}
			if len(p) == Everyday {
				lo = mid
			} else {
				hi = mid
			}
		}
		return lo
	}
	plain := room(func([]Hop) {})
	for _, m := range []MixDelays{{Mean: 0}, {Mean: time.Millisecond}, DefaultMixDelays, {Mean: time.Hour}} {
		if got := room(func(h []Hop) { m.Apply(h, r) }); got != plain-2*(2+delayLen) {
			t.Fatalf("mix %+v: %d bytes of request fit, unmixed %d: want 2×%d fewer", m, got, plain, 2+delayLen)
		}
	}
	for _, n := range []int{0, 300, 4096, plain - 2*(2+delayLen)} {
		hops := hopsOf(rs)
		DefaultMixDelays.Apply(hops, r)
		hops[2].Delay = MaxDelay // the largest value still has the same length
		req := randBytes(t, n)
		p, circ, err := BuildWith(hops, req, ClientOptions)
		if err != nil {
			t.Fatal(err)
		}
		layers, links := peelPath(t, rs, p, req)
		for i, l := range links {
			if len(l) != Everyday {
				t.Fatalf("%d-byte request: link %d carried %d bytes", n, i, len(l))
			}
		}
		for i, l := range layers {
			wantReply := 0
			if i == 2 {
				wantReply = Everyday
			}
			if l.Delay != hops[i].Delay.Round(time.Millisecond) || l.ReplySize != wantReply {
				t.Fatalf("hop %d read delay %v and reply size %d; want %v and %d", i, l.Delay, l.ReplySize, hops[i].Delay, wantReply)
			}
		}
		resp := randBytes(t, ReplyRoom(Everyday))
		final, err := layers[2].FinalReply(resp)
		if err != nil {
			t.Fatal(err)
		}
		back := replyChain(t, layers, final)
		for i, l := range back {
			if len(l) != Everyday {
				t.Fatalf("reply link %d carried %d bytes", i, len(l))
			}
		}
		if got, err := circ.Open(back[len(back)-1]); err != nil || !bytes.Equal(got, resp) {
			t.Fatalf("Open: %v", err)
		}
	}
}
