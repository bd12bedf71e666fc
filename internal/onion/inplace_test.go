package onion

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"unsafe"

	"github.com/umbra-im/umbra/internal/wire"
)

// allocated returns the bytes f allocates, averaged over runs.
func allocated(runs int, f func()) uint64 {
	f() // warm up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// TestPeelInPlace: a relay peels in the buffer it received. The packet to
// forward (or the request) is a window of that buffer, the result equals
// Peel's, and a 320 KiB packet costs no packet-sized allocation.
func TestPeelInPlace(t *testing.T) {
	rs := newRelays(t, 3)
	req := randBytes(t, 300<<10)
	pkt, _, err := Build(hopsOf(rs), req)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Peel([]*ecdh.PrivateKey{rs[0].key}, pkt)
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.Clone(pkt)
	got, err := PeelInPlace([]*ecdh.PrivateKey{rs[0].key}, buf)
	if err != nil {
		t.Fatal(err)
	}
	if &got.Packet[0] != &buf[0] || len(got.Packet) != len(buf) {
		t.Fatal("the forwarded packet is not the received buffer")
	}
	if !bytes.Equal(got.Next, want.Next) || got.Tag != want.Tag || !bytes.Equal(got.ReplyKey, want.ReplyKey) {
		t.Fatal("PeelInPlace and Peel disagree")
	}
	// The forwarded packet peels at the middle, then at the exit, in place.
	mid, err := PeelInPlace([]*ecdh.PrivateKey{rs[1].key}, got.Packet)
	if err != nil {
		t.Fatal(err)
	}
	exit, err := PeelInPlace([]*ecdh.PrivateKey{rs[2].key}, mid.Packet)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exit.Request, req) {
		t.Fatal("the request differs after three in-place peels")
	}
	if !sameArray(exit.Request, buf) {
		t.Fatal("the request is not a window of the received buffer")
	}
	// Peel does not touch its input.
	orig := bytes.Clone(pkt)
	if _, err := Peel([]*ecdh.PrivateKey{rs[0].key}, pkt); err != nil || !bytes.Equal(pkt, orig) {
		t.Fatalf("Peel modified its input (%v)", err)
	}

	work := make([]byte, len(pkt))
	perPeel := allocated(20, func() {
		copy(work, pkt)
		if _, err := PeelInPlace([]*ecdh.PrivateKey{rs[0].key}, work); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("PeelInPlace of a %d KiB packet allocates %d bytes", len(pkt)>>10, perPeel)
	if perPeel > 16<<10 {
		t.Fatalf("PeelInPlace of a %d-byte packet allocates %d bytes", len(pkt), perPeel)
	}
	reply, err := FinalReply(randBytes(t, 32), randBytes(t, 300<<10))
	if err != nil {
		t.Fatal(err)
	}
	key := randBytes(t, 32)
	perWrap := allocated(20, func() {
		copy(work, reply)
		if err := WrapReplyInPlace(key, work); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("WrapReplyInPlace of a %d KiB packet allocates %d bytes", len(reply)>>10, perWrap)
	if perWrap > 4<<10 {
		t.Fatalf("WrapReplyInPlace of a %d-byte packet allocates %d bytes", len(reply), perWrap)
	}
}

// sameArray reports whether a lies inside b's bytes.
func sameArray(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa, pb := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return pa >= pb && pa+uintptr(len(a)) <= pb+uintptr(len(b))
}

// TestPeelKeyIndex: the layer says which of the keys opened it (the node
// records its replay tag under that key).
func TestPeelKeyIndex(t *testing.T) {
	rs := newRelays(t, 2)
	other := newRelay(t).key
	pkt, _, err := Build(hopsOf(rs), []byte("r"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		keys []*ecdh.PrivateKey
		want int
	}{
		{[]*ecdh.PrivateKey{rs[0].key}, 0},
		{[]*ecdh.PrivateKey{rs[0].key, other}, 0},
		{[]*ecdh.PrivateKey{other, rs[0].key}, 1},
	} {
		l, err := Peel(c.keys, pkt)
		if err != nil || l.KeyIndex != c.want {
			t.Fatalf("KeyIndex = %v (%v), want %d", l, err, c.want)
		}
	}
}

// TestReplayedPacketFreshNonces: a packet peeled twice (a replay after a
// restart, say) gives the same reply key both times, yet the two replies
// differ and no nonce repeats under that key; the same holds for the
// boxes a relay wraps and for error boxes.
func TestReplayedPacketFreshNonces(t *testing.T) {
	rs := newRelays(t, 3)
	pkt, circ, err := Build(hopsOf(rs), []byte("request"))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := peelPath(t, rs, pkt, []byte("request"))
	again, _ := peelPath(t, rs, pkt, []byte("request"))
	for i := range rs {
		if !bytes.Equal(first[i].ReplyKey, again[i].ReplyKey) {
			t.Fatalf("hop %d: a replay gave another reply key; this test needs the same", i)
		}
	}
	resp := []byte("the same response both times")
	nonces := map[string]bool{}
	note := func(p []byte) {
		t.Helper()
		nonce := string(p[lenPrefix : lenPrefix+nonceSize])
		if nonces[nonce] {
			t.Fatal("a nonce repeats under one reply key")
		}
		nonces[nonce] = true
	}
	var replies [][]byte
	for _, layers := range [][]*Layer{first, again} {
		final, err := FinalReply(layers[2].ReplyKey, resp)
		if err != nil {
			t.Fatal(err)
		}
		note(final)
		links := replyChain(t, layers, final)
		got, err := circ.Open(links[2])
		if err != nil || !bytes.Equal(got, resp) {
			t.Fatalf("Open: %q, %v", got, err)
		}
		replies = append(replies, final)
	}
	n := lenPrefix + int(binary.BigEndian.Uint32(replies[0]))
	if bytes.Equal(replies[0][:n], replies[1][:n]) {
		t.Fatal("two replies to one replayed packet are equal")
	}
	if sharesWindow(replies[0][lenPrefix:n], replies[1][lenPrefix:n], 16) {
		t.Fatal("two replies under one key share 16 bytes of box")
	}
	// Many more boxes under the same key, of each kind: all nonces fresh.
	key := first[2].ReplyKey
	for i := 0; i < 1000; i++ {
		p, err := FinalReply(key, resp)
		if err != nil {
			t.Fatal(err)
		}
		note(p)
		e, err := ErrorReply(key, "down")
		if err != nil {
			t.Fatal(err)
		}
		note(e)
	}
	wrapped := map[string]bool{}
	inner, _ := FinalReply(randBytes(t, 32), resp)
	for i := 0; i < 200; i++ {
		w, err := WrapReply(first[1].ReplyKey, inner)
		if err != nil {
			t.Fatal(err)
		}
		nonce := string(w[lenPrefix : lenPrefix+nonceSize])
		if wrapped[nonce] || nonce == string(make([]byte, nonceSize)) {
			t.Fatal("WrapReply reused a nonce (or used zero)")
		}
		wrapped[nonce] = true
	}
}

// TestNextLenBound: a layer naming a next hop longer than MaxNextLen is
// refused (the node would copy it), and Build refuses such a path.
func TestNextLenBound(t *testing.T) {
	k := newRelay(t).key
	pub, err := hpke.NewDHKEMPublicKey(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{MaxNextLen, MaxNextLen + 1} {
		body, err := wire.Marshal(layerBody{Next: bytes.Repeat([]byte{1}, n), Inner: []byte("inner")})
		if err != nil {
			t.Fatal(err)
		}
		p := sealTestLayer(t, pub, body, Sizes[0])
		_, err = Peel([]*ecdh.PrivateKey{k}, p)
		if (err == nil) != (n <= MaxNextLen) {
			t.Fatalf("next of %d bytes: %v", n, err)
		}
		if err != nil && !errors.Is(err, ErrPacket) {
			t.Fatalf("next of %d bytes: %v, want ErrPacket", n, err)
		}
	}
	hops := hopsOf(newRelays(t, 2))
	hops[1].ID = make([]byte, MaxNextLen+1)
	if _, _, err := Build(hops, []byte("x")); err == nil {
		t.Fatal("Build accepted a hop ID longer than MaxNextLen")
	}
}
