package onion

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/umbra-im/umbra/internal/files"
	"github.com/umbra-im/umbra/internal/wire"
)

// TestClassesAreSizes: every class is a packet size relays accept, in
// ascending order, and the largest class is the largest packet.
func TestClassesAreSizes(t *testing.T) {
	for i, c := range Classes {
		if !inSizes(c) {
			t.Fatalf("class %d is not a packet size", c)
		}
		if i > 0 && c <= Classes[i-1] {
			t.Fatalf("classes not ascending: %v", Classes)
		}
	}
	if Classes[len(Classes)-1] != MaxPacket || Everyday != Classes[0] {
		t.Fatalf("classes %v, everyday %d, max packet %d", Classes, Everyday, MaxPacket)
	}
}

// TestClientRequestClasses: with ClientOptions every request up to the
// everyday room is exactly Everyday bytes on every link, one byte more
// takes the next class, and the exit (only) learns the reply size.
func TestClientRequestClasses(t *testing.T) {
	rs := newRelays(t, 3)
	hops := hopsOf(rs)
	fits := func(n int) int {
		p, _, err := BuildWith(hops, make([]byte, n), ClientOptions)
		if err != nil {
			t.Fatal(err)
		}
		return len(p)
	}
	// The largest request that fits the everyday class.
	lo, hi := 0, Everyday
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; fits(mid) == Everyday {
			lo = mid
		} else {
			hi = mid
		}
	}
	if lo < Everyday-400 {
		t.Fatalf("only %d bytes of request fit a %d-byte packet", lo, Everyday)
	}
	for _, n := range []int{0, 1, 300, 1200, 4300, lo} {
		req := randBytes(t, n)
		p, _, err := BuildWith(hops, req, ClientOptions)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != Everyday {
			t.Fatalf("a %d-byte request built a %d-byte packet, want %d", n, len(p), Everyday)
		}
		layers, links := peelPath(t, rs, p, req)
		for i, l := range links {
			if len(l) != Everyday {
				t.Fatalf("link %d carried %d bytes", i, len(l))
			}
		}
		if layers[2].ReplySize != Everyday || layers[0].ReplySize != 0 || layers[1].ReplySize != 0 {
			t.Fatalf("reply sizes learned: %d %d %d", layers[0].ReplySize, layers[1].ReplySize, layers[2].ReplySize)
		}
	}
	for n, want := range map[int]int{lo + 1: Classes[1], 60 << 10: Classes[1], 200 << 10: Classes[2]} {
		if got := fits(n); got != want {
			t.Fatalf("a %d-byte request built a %d-byte packet, want %d", n, got, want)
		}
	}
	// Without options, the old buckets.
	if p, _, err := Build(hops, []byte("x")); err != nil || len(p) != Sizes[0] {
		t.Fatalf("Build: %d bytes, %v", len(p), err)
	}
	// Options must name packet sizes.
	for _, o := range []Options{{Sizes: []int{4096}}, {ReplySize: 4096}, {ReplySize: -1}} {
		if _, _, err := BuildWith(hops, []byte("x"), o); err == nil {
			t.Fatalf("BuildWith(%+v) accepted", o)
		}
	}
}

// TestExitReplyClasses: the exit pads a reply to the size the client
// asked whatever it holds (an empty read and a full one look the same),
// takes the next class when it does not fit, and sizes by content when
// the client asked nothing. Every reply opens at the client.
func TestExitReplyClasses(t *testing.T) {
	rs := newRelays(t, 3)
	room := ReplyRoom(Everyday)
	cases := []struct {
		opt  Options
		resp int
		want int
	}{
		{ClientOptions, 0, Everyday},
		{ClientOptions, 10, Everyday},
		{ClientOptions, room, Everyday},
		{ClientOptions, room + 1, Classes[1]},
		{ClientOptions, 60 << 10, Classes[1]},
		{ClientOptions, ReplyRoom(Classes[1]) + 1, Classes[2]},
		{Options{Sizes: Classes, ReplySize: Classes[1]}, 10, Classes[1]},
		{Options{}, 10, Sizes[0]},
		{Options{}, room, Sizes[1]},
	}
	for _, c := range cases {
		req := []byte("request")
		p, circ, err := BuildWith(hopsOf(rs), req, c.opt)
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := peelPath(t, rs, p, req)
		resp := randBytes(t, c.resp)
		final, err := layers[2].FinalReply(resp)
		if err != nil {
			t.Fatal(err)
		}
		if len(final) != c.want {
			t.Fatalf("%+v, %d-byte response: a %d-byte reply, want %d", c.opt, c.resp, len(final), c.want)
		}
		links := replyChain(t, layers, final)
		for i, l := range links {
			if len(l) != c.want {
				t.Fatalf("reply link %d carried %d bytes", i, len(l))
			}
		}
		got, err := circ.Open(links[len(links)-1])
		if err != nil || !bytes.Equal(got, resp) {
			t.Fatalf("Open: %v", err)
		}
		// An error from the exit has the asked size too.
		er, err := layers[2].ErrorReply("no")
		if err != nil {
			t.Fatal(err)
		}
		if want := max(c.opt.ReplySize, Sizes[0]); len(er) != want {
			t.Fatalf("%+v: exit error reply of %d bytes, want %d", c.opt, len(er), want)
		}
		var he *HopError
		if _, err := circ.Open(replyChain(t, layers, er)[2]); !errors.As(err, &he) || he.Hop != 2 {
			t.Fatalf("exit error: %v", err)
		}
	}
	// A relay's error is always the everyday size.
	p, circ, err := BuildWith(hopsOf(rs), []byte("r"), ClientOptions)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := peelPath(t, rs, p, []byte("r"))
	er, err := ErrorReply(layers[1].ReplyKey, "middle down")
	if err != nil || len(er) != Everyday {
		t.Fatalf("relay error reply: %d bytes, %v", len(er), err)
	}
	out, err := WrapReply(layers[0].ReplyKey, er)
	if err != nil {
		t.Fatal(err)
	}
	var he *HopError
	if _, err := circ.Open(out); !errors.As(err, &he) || he.Hop != 1 {
		t.Fatalf("middle error: %v", err)
	}
	// Too large for any class.
	if _, err := layers[2].FinalReply(make([]byte, ReplyRoom(MaxPacket)+1)); err == nil {
		t.Fatal("a reply larger than the largest packet was sealed")
	}
}

// TestReplySizeField: the hand-made layer body (head ‖ inner ‖ tail) is
// the canonical CBOR of layerBody, with or without a delay; a reply size
// in a relay's layer, or one that is not a packet size, is refused.
func TestReplySizeField(t *testing.T) {
	for _, b := range []layerBody{
		{ReplySize: Everyday, Inner: []byte("req")},
		{ReplySize: MaxPacket, Inner: make([]byte, 300)},
		{ReplySize: 20, Inner: []byte{}},
		{Next: []byte("next hop"), Inner: make([]byte, 70000)},
		{Delay: []byte{0, 0, 1, 0xf4}, ReplySize: Everyday, Inner: make([]byte, 7000)},
		{Delay: []byte{0, 0, 0, 0}, Next: []byte("next hop"), Inner: make([]byte, 300)},
		{Delay: []byte{0, 0, 0x13, 0x88}, Inner: []byte("req")},
	} {
		want, err := wire.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		got := appendBodyHead(nil, b.Delay, b.Next, b.ReplySize, len(b.Inner))
		if len(got) != bodyHeadLen(b.Delay != nil, len(b.Next), len(b.Inner)) {
			t.Fatal("bodyHeadLen disagrees")
		}
		got = appendBodyTail(append(got, b.Inner...), b.ReplySize)
		if !bytes.Equal(got, want) {
			t.Fatalf("%x/%d/%x: body %x, canonical %x", b.Delay, b.ReplySize, b.Next, got[:min(len(got), 16)], want[:min(len(want), 16)])
		}
		if len(got)-len(b.Inner) != bodyHeadLen(b.Delay != nil, len(b.Next), len(b.Inner))+bodyTailLen(b.ReplySize) {
			t.Fatal("bodyTailLen disagrees")
		}
		fast, ok := fastLayerBody(got)
		if !ok || fast.ReplySize != b.ReplySize || !bytes.Equal(fast.Delay, b.Delay) || !bytes.Equal(fast.Next, b.Next) || len(fast.Inner) != len(b.Inner) {
			t.Fatalf("fast path: %v %+v", ok, fast.ReplySize)
		}
	}
	r := newRelay(t)
	pub, err := hpke.NewDHKEMPublicKey(r.key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		body layerBody
		ok   bool
	}{
		{layerBody{ReplySize: Everyday, Inner: []byte("req")}, true},
		{layerBody{ReplySize: Sizes[2], Inner: []byte("req")}, true},
		{layerBody{ReplySize: 4096, Inner: []byte("req")}, false},
		{layerBody{ReplySize: -Everyday, Inner: []byte("req")}, false},
		{layerBody{ReplySize: Everyday, Next: []byte("next"), Inner: []byte("layer")}, false},
	} {
		pt, err := wire.Marshal(c.body)
		if err != nil {
			t.Fatal(err)
		}
		l, err := Peel([]*ecdh.PrivateKey{r.key}, sealTestLayer(t, pub, pt, Sizes[1]))
		if (err == nil) != c.ok {
			t.Fatalf("reply size %d, next %q: %v", c.body.ReplySize, c.body.Next, err)
		}
		if err == nil && l.ReplySize != c.body.ReplySize {
			t.Fatalf("reply size %d read as %d", c.body.ReplySize, l.ReplySize)
		}
		if err != nil && !errors.Is(err, ErrPacket) {
			t.Fatalf("refusal is not ErrPacket: %v", err)
		}
	}
	// The reply size is authenticated with the layer: flipping a byte of
	// it (like any byte of the body) makes the peel fail.
	p, _, err := BuildWith([]Hop{r.hop}, []byte("req"), ClientOptions)
	if err != nil {
		t.Fatal(err)
	}
	q := bytes.Clone(p)
	q[lenPrefix+int(binary.BigEndian.Uint32(p))-aeadOver-1] ^= 0x01 // inside {..., 3: 8192}, after the request
	if _, err := Peel([]*ecdh.PrivateKey{r.key}, q); err == nil {
		t.Fatal("a packet with a changed reply size was peeled")
	}
}

// TestShareFitsClass: a request storing the largest file share
// (files.MaxShareSize, with its address, expiry and work) goes in the
// 128 KiB class through 3 hops, not in the 1280 KiB one.
func TestShareFitsClass(t *testing.T) {
	hops := hopsOf(newRelays(t, 3))
	req, err := wire.EncodeMsg(wire.KindSharePutReq, &wire.SharePutReq{Addr: make([]byte, 32), Expiry: 1 << 50, Work: 1 << 60, Data: make([]byte, files.MaxShareSize)})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := BuildWith(hops, req, ClientOptions)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != Classes[1] {
		t.Fatalf("a %d-byte share request takes a %d-byte packet, want %d", len(req), len(p), Classes[1])
	}
}
