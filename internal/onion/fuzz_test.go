package onion

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/umbra-im/umbra/internal/wire"
)

// fuzzPath is a fixed 3-hop path with deterministic keys, so that corpus
// entries stay meaningful from one run to the next.
type fuzzPath struct {
	keys []*ecdh.PrivateKey // guard, middle, exit
	hops []Hop
}

func newFuzzPath(t testing.TB) fuzzPath {
	var fp fuzzPath
	for i, name := range []string{"guard", "middle", "exit"} {
		k := detKey(t, name)
		fp.keys = append(fp.keys, k)
		fp.hops = append(fp.hops, Hop{ID: []byte{'h', byte(i)}, OnionKey: k.PublicKey().Bytes()})
	}
	return fp
}

func mustBuild(t testing.TB, hops []Hop, req []byte) ([]byte, *Circuit) {
	t.Helper()
	p, c, err := Build(hops, req)
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

// checkPeel checks the invariants of one Peel result.
func checkPeel(t *testing.T, in []byte, l *Layer, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrPacket) {
			t.Fatalf("Peel error %v does not wrap ErrPacket", err)
		}
		if l != nil {
			t.Fatal("Peel returned a layer and an error")
		}
		return
	}
	if !inSizes(len(in)) {
		t.Fatalf("Peel accepted a %d-byte packet", len(in))
	}
	if len(l.ReplyKey) != 32 {
		t.Fatalf("reply key of %d bytes", len(l.ReplyKey))
	}
	if len(l.Next) != 0 {
		if len(l.Packet) != len(in) {
			t.Fatalf("forwarded %d bytes, received %d", len(l.Packet), len(in))
		}
		if l.Request != nil {
			t.Fatal("a relay layer carries a request")
		}
	} else if l.Packet != nil {
		t.Fatal("an exit layer carries a packet")
	}
}

func FuzzPeel(f *testing.F) {
	fp := newFuzzPath(f)
	prev := detKey(f, "previous")
	for _, req := range [][]byte{nil, []byte("r"), bytes.Repeat([]byte{7}, 1500)} {
		for hops := 1; hops <= 3; hops++ {
			// Paths starting at the guard: seeds that reach the guard
			// and, once peeled, the middle and the exit.
			p, _ := mustBuild(f, fp.hops[:hops], req)
			f.Add(p)
			f.Add(p[:len(p)-1])
			f.Add(p[:lenPrefix+layerOver])
			f.Add(p[:3])
			n := int(binary.BigEndian.Uint32(p))
			for _, i := range []int{0, 3, lenPrefix, lenPrefix + encSize - 1, lenPrefix + encSize, lenPrefix + n - 1, lenPrefix + n} {
				if i < len(p) {
					q := bytes.Clone(p)
					q[i] ^= 0x80
					f.Add(q)
				}
			}
			q := bytes.Clone(p)
			binary.BigEndian.PutUint32(q, uint32(len(q)))
			f.Add(q)
		}
	}
	guard := fp.hops[0]
	// A packet to the guard's previous key (rotation).
	rot := fp
	rot.hops = append([]Hop{{ID: guard.ID, OnionKey: prev.PublicKey().Bytes()}}, fp.hops[1:]...)
	p, _ := mustBuild(f, rot.hops, []byte("rotated"))
	f.Add(p)
	// A client's packet: the exit's layer asks a reply size.
	if p, _, err := BuildWith(fp.hops, []byte("client"), ClientOptions); err == nil {
		f.Add(p)
	} else {
		f.Fatal(err)
	}
	f.Add(make([]byte, Sizes[0]))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, packet []byte) {
		keys := []*ecdh.PrivateKey{fp.keys[0], prev}
		l, err := Peel(keys, packet)
		checkPeel(t, packet, l, err)
		if err != nil {
			return
		}
		// Peeling again (a replay) gives the same layer and tag, in place
		// or not.
		l2, err := PeelInPlace(keys, bytes.Clone(packet))
		if err != nil || l2.Tag != l.Tag || !bytes.Equal(l2.Next, l.Next) || !bytes.Equal(l2.ReplyKey, l.ReplyKey) ||
			!bytes.Equal(l2.Request, l.Request) || len(l2.Packet) != len(l.Packet) || l2.KeyIndex != l.KeyIndex || l2.ReplySize != l.ReplySize {
			t.Fatalf("a second peel differs: %v", err)
		}
		// Follow the packet down the path as far as it goes.
		for _, k := range fp.keys[1:] {
			if len(l.Next) == 0 {
				return
			}
			in := l.Packet
			l, err = Peel([]*ecdh.PrivateKey{k}, in)
			checkPeel(t, in, l, err)
			if err != nil {
				return
			}
		}
	})
}

// FuzzPeelLayer seals arbitrary plaintext as a valid HPKE layer to the
// guard, so the fuzzer reaches the CBOR decoding and re-framing that
// follow decryption.
func FuzzPeelLayer(f *testing.F) {
	fp := newFuzzPath(f)
	for _, b := range []layerBody{
		{Next: []byte("next"), Inner: []byte("inner")},
		{Inner: []byte("request")},
		{Inner: nil},
		{Next: []byte{1}, Inner: bytes.Repeat([]byte{1}, 2000)},
		{Next: []byte{1}, Inner: bytes.Repeat([]byte{1}, 2100)},
		{Delay: []byte{0, 0, 1, 0xf4}, Next: []byte("next"), Inner: []byte("inner")},
		{Delay: []byte{0, 0, 0, 0}, Inner: []byte("request")},
		{Delay: []byte{0xff, 0xff, 0xff, 0xff}, Inner: []byte("request")}, // capped
		{Delay: []byte{1, 2, 3}, Inner: []byte("request")},                // wrong length
		{ReplySize: 8 << 10, Inner: []byte("request")},
		{ReplySize: 1280 << 10, Inner: []byte("request")},
		{ReplySize: 8 << 10, Next: []byte("next"), Inner: []byte("inner")},                            // a relay's layer asking a reply size
		{ReplySize: 1000, Inner: []byte("request")},                                                   // not a packet size
		{Delay: []byte{0, 0, 1, 0xf4}, Inner: []byte("request"), ReplySize: 8 << 10},                  // a mixed exit asking a reply size
		{Delay: []byte{0, 0, 0, 0}, Next: []byte("next"), Inner: []byte("inner"), ReplySize: 8 << 10}, // a mixed relay asking one
	} {
		pt, err := wire.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pt, uint8(0))
		f.Add(pt, uint8(1))
	}
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{0xa0}, uint8(0))
	f.Add([]byte{0xa2, 0x01, 0x41, 0x00, 0x02, 0x5a, 0xff, 0xff, 0xff, 0xff}, uint8(0)) // claims a 4 GiB inner
	f.Add([]byte{0xa2, 0x01, 0xf6, 0x02, 0xf6}, uint8(0))                               // nulls
	f.Add([]byte{0xa1, 0x04, 0x40}, uint8(0))                                           // unknown key
	f.Add([]byte{0xa2, 0x02, 0x40, 0x03, 0x40}, uint8(0))                               // reply size of the wrong type

	pub, err := hpke.NewDHKEMPublicKey(fp.keys[0].PublicKey())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pt []byte, sel uint8) {
		size := Sizes[int(sel)%2] // the two small sizes keep the fuzzer fast
		if lenPrefix+layerOver+len(pt) > size {
			return
		}
		p := sealTestLayer(t, pub, pt, size)
		l, err := Peel(fp.keys[:1], p)
		checkPeel(t, p, l, err)
		var body layerBody
		valid := wire.Unmarshal(pt, &body) == nil && len(body.Next) <= MaxNextLen &&
			(len(body.Delay) == 0 || len(body.Delay) == delayLen) &&
			(body.ReplySize == 0 || len(body.Next) == 0 && inSizes(body.ReplySize))
		if (err == nil) != valid {
			t.Fatalf("Peel: %v; the body decodes within bounds: %v", err, valid)
		}
		if err != nil {
			return
		}
		var want time.Duration
		if len(body.Delay) == delayLen {
			want = min(MaxDelay, time.Duration(binary.BigEndian.Uint32(body.Delay))*time.Millisecond)
		}
		if l.Delay != want || l.Delay < 0 || l.Delay > MaxDelay {
			t.Fatalf("Delay %v, want %v (body %x)", l.Delay, want, body.Delay)
		}
		if !bytes.Equal(l.Next, body.Next) {
			t.Fatal("Next differs from the body")
		}
		if l.ReplySize != body.ReplySize {
			t.Fatalf("reply size %d, the body says %d", l.ReplySize, body.ReplySize)
		}
		if len(body.Next) == 0 && !bytes.Equal(l.Request, body.Inner) {
			t.Fatal("request differs from the body")
		}
		if len(body.Next) != 0 {
			got, err := unpad(l.Packet)
			if err != nil || !bytes.Equal(got, body.Inner) {
				t.Fatalf("forwarded packet does not frame the inner layer: %v", err)
			}
		}
	})
}

// fuzzCircuit is a 3-hop circuit with fixed reply keys.
func fuzzCircuit() (*Circuit, [][]byte) {
	keys := make([][]byte, 3)
	for i := range keys {
		keys[i] = bytes.Repeat([]byte{byte(0x10 + i)}, 32)
	}
	return &Circuit{replyKeys: keys}, keys
}

func checkOpen(t *testing.T, got []byte, err error) {
	t.Helper()
	var he *HopError
	switch {
	case err == nil:
		if got == nil {
			t.Fatal("Open returned neither a response nor an error")
		}
	case errors.As(err, &he):
		if he.Hop < 0 || he.Hop > 2 {
			t.Fatalf("HopError from hop %d of 3", he.Hop)
		}
	case errors.Is(err, ErrPacket):
	default:
		t.Fatalf("Open error %v is neither a HopError nor ErrPacket", err)
	}
}

func FuzzCircuitOpen(f *testing.F) {
	circ, keys := fuzzCircuit()
	wrap := func(p []byte, from int) []byte {
		for i := from; i >= 0; i-- {
			var err error
			if p, err = WrapReply(keys[i], p); err != nil {
				f.Fatal(err)
			}
		}
		return p
	}
	for _, resp := range [][]byte{nil, []byte("ok"), bytes.Repeat([]byte{3}, 1990)} {
		final, err := FinalReply(keys[2], resp)
		if err != nil {
			f.Fatal(err)
		}
		good := wrap(final, 1)
		f.Add(good)
		f.Add(final)
		f.Add(good[:len(good)-1])
		q := bytes.Clone(good)
		q[lenPrefix] ^= 1
		f.Add(q)
		q = bytes.Clone(good)
		binary.BigEndian.PutUint32(q, 0xffffffff)
		f.Add(q)
	}
	for hop := 0; hop < 3; hop++ {
		er, err := ErrorReply(keys[hop], "hop failed")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wrap(er, hop-1))
	}
	f.Add(make([]byte, Sizes[0]))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, reply []byte) {
		got, err := circ.Open(reply)
		checkOpen(t, got, err)
		if err == nil || isHopError(err) {
			// Only a packet that authenticates gets this far: it must
			// have a valid size.
			if !inSizes(len(reply)) {
				t.Fatalf("Open accepted a %d-byte reply", len(reply))
			}
		}
	})
}

func isHopError(err error) bool {
	var he *HopError
	return errors.As(err, &he)
}

// FuzzReplyLayers builds authentic nested reply boxes with fuzzed types and
// depth, so the fuzzer reaches every branch of Circuit.Open, and checks the
// result against a model.
func FuzzReplyLayers(f *testing.F) {
	circ, keys := fuzzCircuit()
	f.Add([]byte{replyInner, replyInner, replyFinal}, []byte("resp"))
	f.Add([]byte{replyInner, replyError}, []byte("middle down"))
	f.Add([]byte{replyError}, []byte("guard down"))
	f.Add([]byte{replyFinal}, []byte("early final"))
	f.Add([]byte{replyInner, replyInner, replyInner}, []byte("too deep"))
	f.Add([]byte{replyInner, 0}, []byte{})
	f.Add([]byte{}, []byte("no box"))

	f.Fuzz(func(t *testing.T, types, data []byte) {
		if len(types) > 3 {
			types = types[:3]
		}
		if len(types) == 0 {
			return
		}
		size, err := bucket(lenPrefix + len(data) + len(types)*replyOver)
		if err != nil {
			return
		}
		box := boxBytes(t, keys[len(types)-1], types[len(types)-1], data, size)
		for i := len(types) - 2; i >= 0; i-- {
			box = boxBytes(t, keys[i], types[i], box, size)
		}
		p, err := pad(box, size)
		if err != nil {
			t.Fatal(err)
		}
		got, err := circ.Open(p)
		checkOpen(t, got, err)

		// Model: walk the types until one that is not replyInner.
		for i, typ := range types {
			last := i == len(types)-1
			switch typ {
			case replyInner:
				if last {
					// The innermost box is data, read as a box under
					// the next key: it does not authenticate (or the
					// path runs out).
					if err == nil {
						t.Fatal("Open accepted a reply whose last layer is an inner box")
					}
					return
				}
				continue
			case replyFinal:
				if i != 2 || !last {
					if err == nil {
						t.Fatalf("Open accepted a final reply from hop %d", i)
					}
					return
				}
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("final reply: got %q, %v; want %q", got, err, data)
				}
				return
			case replyError:
				var he *HopError
				if !errors.As(err, &he) || he.Hop != i {
					t.Fatalf("error reply from hop %d: %v", i, err)
				}
				if last && he.Msg != string(data) {
					t.Fatalf("error text %q, want %q", he.Msg, data)
				}
				return
			default:
				if err == nil || isHopError(err) {
					t.Fatalf("reply type %d from hop %d: %v", typ, i, err)
				}
				return
			}
		}
	})
}

// FuzzUnpad frames arbitrary content with an arbitrary length prefix into
// packets of arbitrary size (including every packet size and its
// neighbours) and feeds them to Peel, WrapReply and Circuit.Open.
func FuzzUnpad(f *testing.F) {
	fp := newFuzzPath(f)
	circ, keys := fuzzCircuit()
	for i := range Sizes {
		f.Add(uint16(3*i+1), uint32(0), []byte{})
		f.Add(uint16(3*i), uint32(10), []byte("0123456789"))
		f.Add(uint16(3*i+2), uint32(10), []byte("0123456789"))
		f.Add(uint16(3*i+1), uint32(Sizes[i]-lenPrefix), []byte("x"))
		f.Add(uint16(3*i+1), uint32(Sizes[i]-lenPrefix+1), []byte("x"))
		f.Add(uint16(3*i+1), uint32(0xffffffff), []byte("x"))
	}
	f.Add(uint16(3*len(Sizes)+3), uint32(1), []byte{1})
	f.Add(uint16(3*len(Sizes)), uint32(0), []byte{})

	f.Fuzz(func(t *testing.T, sel uint16, prefix uint32, content []byte) {
		var size int
		if s := int(sel); s < 3*len(Sizes) {
			size = Sizes[s/3] + s%3 - 1
		} else {
			size = (s - 3*len(Sizes)) % (Sizes[0] + 8)
		}
		p := make([]byte, size)
		var pre [lenPrefix]byte
		binary.BigEndian.PutUint32(pre[:], prefix)
		n := copy(p, pre[:])
		copy(p[n:], content)

		valid := inSizes(size) && uint64(prefix) <= uint64(size-lenPrefix)

		body, err := unpad(p)
		if (err == nil) != valid {
			t.Fatalf("unpad(size %d, prefix %d): %v; valid = %v", size, prefix, err, valid)
		}
		if err == nil && len(body) != int(prefix) {
			t.Fatalf("unpad returned %d bytes, prefix says %d", len(body), prefix)
		}

		l, err := Peel(fp.keys[:1], p)
		checkPeel(t, p, l, err)
		if err == nil && !valid {
			t.Fatal("Peel accepted an invalid frame")
		}

		out, err := WrapReply(keys[0], p)
		if err == nil {
			if !valid {
				t.Fatal("WrapReply accepted an invalid frame")
			}
			if len(out) != size {
				t.Fatalf("WrapReply changed the size from %d to %d", size, len(out))
			}
			inner, err := unpad(out)
			if err != nil || len(inner) != int(prefix)+replyOver {
				t.Fatalf("WrapReply framed %d bytes for a %d-byte box: %v", len(inner), prefix, err)
			}
		} else if valid && lenPrefix+int(prefix)+replyOver <= size {
			t.Fatalf("WrapReply refused a valid frame with room: %v", err)
		}

		got, err := circ.Open(p)
		checkOpen(t, got, err)
	})
}

// FuzzLayerBody: the fast path for canonical layer bodies agrees with the
// general CBOR decoder on every input it accepts, and accepts every
// canonical body it is meant for.
func FuzzLayerBody(f *testing.F) {
	for _, b := range []layerBody{{Inner: []byte("x")}, {Next: []byte("peer"), Inner: make([]byte, 300)}, {Next: make([]byte, 38), Inner: make([]byte, 70000)},
		{Delay: []byte{0, 0, 0, 7}, Inner: []byte("x")}, {Delay: []byte{0, 0, 0x13, 0x88}, Next: []byte("peer"), Inner: make([]byte, 300)}, {Delay: []byte{9}, Inner: []byte("x")}} {
		enc, err := wire.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte{0xa2, 0x01, 0x58, 0x01, 0x00, 0x02, 0x40}) // non-canonical length
	f.Add([]byte{0xa1, 0x04, 0x40})                         // unknown key
	f.Add([]byte{0xa2, 0x01, 0x40, 0x00, 0x44, 0, 0, 0, 1}) // keys out of order
	f.Add([]byte{0xa2, 0x00, 0x44, 0, 0, 0, 1, 0x00, 0x40}) // duplicate key
	for _, b := range []layerBody{{ReplySize: 8 << 10, Inner: []byte("x")}, {ReplySize: 1280 << 10, Next: []byte("peer"), Inner: make([]byte, 300)}, {ReplySize: 23, Inner: nil},
		{Delay: []byte{0, 0, 0, 0}, ReplySize: 8 << 10, Inner: make([]byte, 8000)}, {Delay: []byte{0, 0, 0, 1}, Next: []byte("peer"), Inner: []byte("x"), ReplySize: 1 << 31}} {
		enc, err := wire.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte{0xa2, 0x02, 0x40, 0x03, 0x18, 0x05})                   // non-canonical reply size
	f.Add([]byte{0xa2, 0x03, 0x19, 0x20, 0x00, 0x02, 0x40})             // reply size before inner: keys out of order
	f.Add([]byte{0xa2, 0x02, 0x40, 0x03, 0x20})                         // negative reply size
	f.Add([]byte{0xa2, 0x02, 0x40, 0x03, 0x1a, 0x80, 0x00, 0x00, 0x01}) // reply size above 2^31
	f.Add([]byte{0xa2, 0x02, 0x40, 0x03, 0x40})                         // reply size of the wrong type
	f.Add([]byte{0xa1, 0x00, 0x44, 0, 0, 0, 1})                         // no inner
	f.Fuzz(func(t *testing.T, in []byte) {
		fast, ok := fastLayerBody(in)
		var slow layerBody
		serr := wire.Unmarshal(in, &slow)
		if !ok {
			// The fast path takes every canonical body of its range
			// (what Build makes), so relays do not copy those.
			if serr == nil && slow.Inner != nil && (len(slow.Delay) == 0 || len(slow.Delay) == delayLen) &&
				slow.ReplySize >= 0 && slow.ReplySize <= 1<<31 {
				if re, err := wire.Marshal(slow); err == nil && bytes.Equal(re, in) {
					t.Fatalf("fast path refused the canonical body %x", in[:min(len(in), 32)])
				}
			}
			return
		}
		if serr != nil {
			t.Fatalf("fast path accepted what the decoder refuses: %v", serr)
		}
		if !bytes.Equal(fast.Next, slow.Next) || !bytes.Equal(fast.Inner, slow.Inner) || !bytes.Equal(fast.Delay, slow.Delay) || fast.ReplySize != slow.ReplySize {
			t.Fatalf("fast path %x/%x/%x/%d, decoder %x/%x/%x/%d", fast.Delay, fast.Next, fast.Inner, fast.ReplySize, slow.Delay, slow.Next, slow.Inner, slow.ReplySize)
		}
		if len(fast.Delay) != 0 && len(fast.Delay) != delayLen {
			t.Fatalf("fast path accepted a delay of %d bytes", len(fast.Delay))
		}
	})
}

// sealTestLayer seals pt as the body of a valid layer to pub in a packet of
// size bytes, as Build would seal a layer body.
func sealTestLayer(t testing.TB, pub hpke.PublicKey, pt []byte, size int) []byte {
	t.Helper()
	enc, s, err := hpke.NewSender(pub, kdf, aead, info)
	if err != nil {
		t.Fatal(err)
	}
	layerKey, err := s.Export(labelLayer, keySize)
	if err != nil {
		t.Fatal(err)
	}
	confirm, err := s.Export(labelConfirm, confirmSize)
	if err != nil {
		t.Fatal(err)
	}
	a, err := chacha20poly1305.New(layerKey)
	if err != nil {
		t.Fatal(err)
	}
	layer := append(append(enc, confirm...), a.Seal(nil, make([]byte, a.NonceSize()), pt, layerAAD(size))...)
	p, err := pad(layer, size)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FuzzPacketData: the relay's decoding of a wire.OnionPacket agrees with
// the general CBOR decoder on every input.
func FuzzPacketData(f *testing.F) {
	for _, d := range [][]byte{nil, {}, []byte("x"), make([]byte, 300), make([]byte, 70000)} {
		enc, err := wire.Marshal(&wire.OnionPacket{Data: d})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
		f.Add(append(bytes.Clone(enc), 0))
	}
	f.Add([]byte{0xa1, 0x01, 0x58, 0x01, 0x00})             // non-canonical length
	f.Add([]byte{0xa1, 0x01, 0x5a, 0xff, 0xff, 0xff, 0xff}) // claims 4 GiB
	f.Add([]byte{0xa2, 0x01, 0x40, 0x01, 0x40})             // duplicate key
	f.Add([]byte{0xa1, 0x02, 0x40})                         // unknown key
	f.Add([]byte{0xa1, 0x01, 0xf6})                         // null
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := PacketData(in)
		var pkt wire.OnionPacket
		werr := wire.Unmarshal(in, &pkt)
		if (err == nil) != (werr == nil) {
			t.Fatalf("PacketData: %v; the decoder: %v", err, werr)
		}
		if err == nil && !bytes.Equal(got, pkt.Data) {
			t.Fatalf("PacketData %x, decoder %x", got, pkt.Data)
		}
	})
}
