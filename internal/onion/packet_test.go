package onion

import (
	"bytes"
	"crypto/ecdh"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// peelPath peels packet hop by hop along rs and checks what each hop
// learns; it returns the layers (guard first) and the packet on every link
// (links[i] is what hop i received).
func peelPath(t *testing.T, rs []testRelay, packet, request []byte) (layers []*Layer, links [][]byte) {
	t.Helper()
	p := packet
	for i, r := range rs {
		if !inSizes(len(p)) {
			t.Fatalf("hop %d: packet of %d bytes is not a packet size", i, len(p))
		}
		links = append(links, p)
		l, err := Peel([]*ecdh.PrivateKey{r.key}, p)
		if err != nil {
			t.Fatalf("hop %d: Peel: %v", i, err)
		}
		layers = append(layers, l)
		if len(l.ReplyKey) != 32 {
			t.Fatalf("hop %d: reply key of %d bytes", i, len(l.ReplyKey))
		}
		if i < len(rs)-1 {
			if !bytes.Equal(l.Next, []byte(rs[i+1].id)) {
				t.Fatalf("hop %d: Next = %x, want the next hop's ID %x", i, l.Next, []byte(rs[i+1].id))
			}
			if l.Request != nil {
				t.Fatalf("hop %d: a relay learned a request (%d bytes)", i, len(l.Request))
			}
			if len(l.Packet) != len(p) {
				t.Fatalf("hop %d: forwarded %d bytes, received %d", i, len(l.Packet), len(p))
			}
			// The forwarded layer is not this hop's to open again.
			if _, err := Peel([]*ecdh.PrivateKey{r.key}, l.Packet); err == nil {
				t.Fatalf("hop %d: could peel its own forwarded packet", i)
			}
			p = l.Packet
			continue
		}
		if len(l.Next) != 0 {
			t.Fatalf("exit: Next = %x, want none", l.Next)
		}
		if l.Packet != nil {
			t.Fatalf("exit: got a packet to forward (%d bytes)", len(l.Packet))
		}
		if !bytes.Equal(l.Request, request) {
			t.Fatalf("exit: request differs (got %d bytes, want %d)", len(l.Request), len(request))
		}
	}
	return layers, links
}

func TestBuildPeelRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 100, 2000, 8000, 100 << 10, 256<<10 + 1<<10}
	for hops := 1; hops <= MaxHops; hops++ {
		rs := newRelays(t, hops)
		for _, n := range sizes {
			t.Run(fmt.Sprintf("hops=%d/req=%d", hops, n), func(t *testing.T) {
				req := randBytes(t, n)
				pkt, circ, err := Build(hopsOf(rs), req)
				if err != nil {
					t.Fatal(err)
				}
				if circ == nil || len(circ.replyKeys) != hops {
					t.Fatalf("circuit has %d reply keys, want %d", len(circ.replyKeys), hops)
				}
				if !inSizes(len(pkt)) {
					t.Fatalf("packet of %d bytes is not a packet size", len(pkt))
				}
				// The smallest bucket that holds the layers is used.
				if b, _ := bucket(lenPrefix + int(binary.BigEndian.Uint32(pkt))); b != len(pkt) {
					t.Fatalf("packet of %d bytes, the content fits %d", len(pkt), b)
				}
				layers, links := peelPath(t, rs, pkt, req)
				seen := map[[32]byte]bool{}
				for i, l := range layers {
					if seen[l.Tag] {
						t.Fatalf("hop %d: replay tag repeats along the path", i)
					}
					seen[l.Tag] = true
					if !bytes.Equal(l.ReplyKey, circ.replyKeys[i]) {
						t.Fatalf("hop %d: reply key differs from the client's", i)
					}
				}
				// No 32-byte window of a request link appears on another
				// link (skipped for the large sizes: it is slow and the
				// small ones exercise the same code).
				if len(pkt) <= 8<<10 {
					for i := range links {
						for j := i + 1; j < len(links); j++ {
							if sharesWindow(links[i], links[j], 32) {
								t.Fatalf("request links %d and %d share a 32-byte window", i, j)
							}
						}
					}
				}
			})
		}
	}
}

func TestBuildLimits(t *testing.T) {
	rs := newRelays(t, MaxHops)
	if _, _, err := Build(nil, []byte("x")); err == nil {
		t.Fatal("Build accepted an empty path")
	}
	if _, _, err := Build(hopsOf(append(rs, newRelay(t))), []byte("x")); err == nil {
		t.Fatalf("Build accepted a %d-hop path", MaxHops+1)
	}
	bad := hopsOf(rs)
	bad[1].OnionKey = bad[1].OnionKey[:31]
	if _, _, err := Build(bad, []byte("x")); err == nil {
		t.Fatal("Build accepted a 31-byte onion key")
	}
	for hops := 1; hops <= MaxHops; hops++ {
		t.Run(fmt.Sprintf("hops=%d", hops), func(t *testing.T) {
			path := hopsOf(rs[:hops])
			if _, _, err := Build(path, make([]byte, MaxPacket)); err == nil {
				t.Fatalf("Build accepted a %d-byte request", MaxPacket)
			}
			max := maxRequest(t, path, MaxPacket)
			if max < 1<<20 {
				t.Fatalf("the largest packet holds only %d request bytes, want at least 1 MiB", max)
			}
			if _, _, err := Build(path, make([]byte, max+1)); err == nil {
				t.Fatalf("Build accepted %d bytes, one more than the largest that fits", max+1)
			}
			req := randBytes(t, max)
			pkt, _, err := Build(path, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(pkt) != MaxPacket {
				t.Fatalf("a full request gives a %d-byte packet, want %d", len(pkt), MaxPacket)
			}
			peelPath(t, rs[:hops], pkt, req)
		})
	}
}

// TestBucketBoundaries builds requests just below and above every bucket
// boundary: each peels at every hop and the size steps up exactly there.
func TestBucketBoundaries(t *testing.T) {
	rs := newRelays(t, MaxHops)
	path := hopsOf(rs)
	for i, s := range Sizes[:len(Sizes)-1] {
		max := maxRequest(t, path, s)
		for _, n := range []int{max, max + 1} {
			req := randBytes(t, n)
			pkt, _, err := Build(path, req)
			if err != nil {
				t.Fatal(err)
			}
			want := s
			if n > max {
				want = Sizes[i+1]
			}
			if len(pkt) != want {
				t.Fatalf("request of %d bytes: packet of %d, want %d", n, len(pkt), want)
			}
			peelPath(t, rs, pkt, req)
		}
	}
}

func TestPeelRefuses(t *testing.T) {
	rs := newRelays(t, MaxHops)
	wrong := newRelay(t).key
	req := []byte("kind+body of a small request")
	pkt, _, err := Build(hopsOf(rs), req)
	if err != nil {
		t.Fatal(err)
	}
	guard := rs[0].key

	t.Run("wrong key", func(t *testing.T) {
		if _, err := Peel([]*ecdh.PrivateKey{wrong}, pkt); !errors.Is(err, ErrPacket) {
			t.Fatalf("Peel with the wrong key: %v, want ErrPacket", err)
		}
		if _, err := Peel(nil, pkt); !errors.Is(err, ErrPacket) {
			t.Fatalf("Peel with no keys: %v, want ErrPacket", err)
		}
		// The middle's key does not open the guard's layer.
		if _, err := Peel([]*ecdh.PrivateKey{rs[1].key, rs[2].key}, pkt); !errors.Is(err, ErrPacket) {
			t.Fatalf("Peel with later hops' keys: %v, want ErrPacket", err)
		}
	})

	t.Run("rotation", func(t *testing.T) {
		// Current key first, then the previous one the client still used.
		l, err := Peel([]*ecdh.PrivateKey{wrong, guard}, pkt)
		if err != nil {
			t.Fatalf("Peel with [current, previous]: %v", err)
		}
		l2, err := Peel([]*ecdh.PrivateKey{guard}, pkt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(l.Next, l2.Next) || l.Tag != l2.Tag || !bytes.Equal(l.ReplyKey, l2.ReplyKey) {
			t.Fatal("the layer differs depending on the position of the key in the list")
		}
		if _, err := Peel([]*ecdh.PrivateKey{guard, wrong}, pkt); err != nil {
			t.Fatalf("Peel with [right, wrong]: %v", err)
		}
	})

	t.Run("bit flips in the layer", func(t *testing.T) {
		n := int(binary.BigEndian.Uint32(pkt))
		if lenPrefix+n >= len(pkt) {
			t.Fatal("test wants a packet with padding")
		}
		bits := 0
		for i := 0; i < lenPrefix+n; i++ {
			for bit := 0; bit < 8; bit++ {
				p := bytes.Clone(pkt)
				p[i] ^= 1 << bit
				if _, err := Peel([]*ecdh.PrivateKey{guard}, p); err == nil {
					t.Fatalf("Peel accepted a packet with bit %d of byte %d flipped", bit, i)
				}
				bits++
			}
		}
		t.Logf("%d single-bit flips in the length prefix and layer all refused", bits)
	})

	t.Run("padding is not authenticated but keeps the tag", func(t *testing.T) {
		// The padding carries no information; a relay re-padding a packet
		// gives the next hop the same replay tag, so the replay cache
		// still catches it.
		want, err := Peel([]*ecdh.PrivateKey{guard}, pkt)
		if err != nil {
			t.Fatal(err)
		}
		n := int(binary.BigEndian.Uint32(pkt))
		p := bytes.Clone(pkt)
		p[len(p)-1] ^= 0xff
		p[lenPrefix+n] ^= 0x01
		got, err := Peel([]*ecdh.PrivateKey{guard}, p)
		if err != nil {
			t.Fatalf("padding change refused: %v", err)
		}
		if got.Tag != want.Tag {
			t.Fatal("a padding change gives a different replay tag")
		}
	})

	t.Run("size not in Sizes", func(t *testing.T) {
		for _, p := range [][]byte{
			nil,
			{},
			pkt[:3],
			pkt[:lenPrefix],
			pkt[:len(pkt)-1],
			append(bytes.Clone(pkt), 0),
			append(bytes.Clone(pkt), make([]byte, Sizes[1]-len(pkt)-1)...),
		} {
			if _, err := Peel([]*ecdh.PrivateKey{guard}, p); !errors.Is(err, ErrPacket) {
				t.Fatalf("Peel of %d bytes: %v, want ErrPacket", len(p), err)
			}
		}
	})

	t.Run("length prefix", func(t *testing.T) {
		for _, n := range []uint32{
			uint32(len(pkt) - lenPrefix + 1),
			uint32(len(pkt)),
			1 << 31,
			0x7fffffff,
			0xffffffff,
		} {
			p := bytes.Clone(pkt)
			binary.BigEndian.PutUint32(p, n)
			if _, err := Peel([]*ecdh.PrivateKey{guard}, p); !errors.Is(err, ErrPacket) {
				t.Fatalf("length prefix %d in a %d-byte packet: %v, want ErrPacket", n, len(p), err)
			}
		}
		for _, n := range []uint32{0, 1, encSize, encSize + aeadOver - 1} {
			p := bytes.Clone(pkt)
			binary.BigEndian.PutUint32(p, n)
			if _, err := Peel([]*ecdh.PrivateKey{guard}, p); !errors.Is(err, ErrPacket) {
				t.Fatalf("length prefix %d: %v, want ErrPacket", n, err)
			}
		}
		// A prefix exactly filling the packet decodes as a (corrupt) layer.
		p := bytes.Clone(pkt)
		binary.BigEndian.PutUint32(p, uint32(len(p)-lenPrefix))
		if _, err := Peel([]*ecdh.PrivateKey{guard}, p); !errors.Is(err, ErrPacket) {
			t.Fatalf("full-length prefix: %v, want ErrPacket", err)
		}
	})
}

// replyChain runs a reply back along a 3-hop path: the exit's packet, then
// the middle's and the guard's re-encryptions. It returns the packets on the
// links exit→middle, middle→guard, guard→client.
func replyChain(t *testing.T, layers []*Layer, exitReply []byte) [][]byte {
	t.Helper()
	links := [][]byte{exitReply}
	p := exitReply
	for i := len(layers) - 2; i >= 0; i-- {
		var err error
		p, err = WrapReply(layers[i].ReplyKey, p)
		if err != nil {
			t.Fatalf("hop %d: WrapReply: %v", i, err)
		}
		links = append(links, p)
	}
	return links
}

// circuit3 builds and peels a 3-hop request and returns the circuit and the
// layers each hop got.
func circuit3(t *testing.T) (*Circuit, []*Layer) {
	t.Helper()
	rs := newRelays(t, 3)
	req := []byte("request")
	pkt, circ, err := Build(hopsOf(rs), req)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := peelPath(t, rs, pkt, req)
	return circ, layers
}

func TestReplyRoundTrip(t *testing.T) {
	circ, layers := circuit3(t)
	for _, n := range []int{0, 1, 100, 2000, 8000, 100 << 10, 1 << 20} {
		t.Run(fmt.Sprintf("resp=%d", n), func(t *testing.T) {
			resp := randBytes(t, n)
			final, err := FinalReply(layers[2].ReplyKey, resp)
			if err != nil {
				t.Fatal(err)
			}
			links := replyChain(t, layers, final)
			for i, l := range links {
				if !inSizes(len(l)) {
					t.Fatalf("reply link %d: %d bytes is not a packet size", i, len(l))
				}
				if len(l) != len(final) {
					t.Fatalf("reply link %d: %d bytes, the exit sent %d", i, len(l), len(final))
				}
			}
			if len(final) <= 32<<10 {
				for i := range links {
					for j := i + 1; j < len(links); j++ {
						if sharesWindow(links[i], links[j], 32) {
							t.Fatalf("reply links %d and %d share a 32-byte window", i, j)
						}
					}
				}
			}
			got, err := circ.Open(links[2])
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, resp) {
				t.Fatalf("Open returned %d bytes, want the %d-byte response", len(got), len(resp))
			}
		})
	}
}

// TestReplyBucketBoundaries: for every bucket, the largest response that
// the exit puts in it still has room for the two wraps, and one byte more
// moves to the next bucket.
func TestReplyBucketBoundaries(t *testing.T) {
	circ, layers := circuit3(t)
	for i, s := range Sizes {
		max := s - lenPrefix - MaxHops*replyOver
		for _, n := range []int{max, max + 1} {
			resp := randBytes(t, n)
			final, err := FinalReply(layers[2].ReplyKey, resp)
			if i == len(Sizes)-1 && n > max {
				if err == nil {
					t.Fatalf("FinalReply accepted a %d-byte response", n)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			want := s
			if n > max {
				want = Sizes[i+1]
			}
			if len(final) != want {
				t.Fatalf("response of %d bytes: reply of %d, want %d", n, len(final), want)
			}
			links := replyChain(t, layers, final)
			got, err := circ.Open(links[2])
			if err != nil || !bytes.Equal(got, resp) {
				t.Fatalf("response of %d bytes: Open: %v", n, err)
			}
		}
	}
}

func TestReplyErrors(t *testing.T) {
	circ, layers := circuit3(t)

	t.Run("error from the middle", func(t *testing.T) {
		er, err := ErrorReply(layers[1].ReplyKey, "next hop unreachable: 12D3KooW")
		if err != nil {
			t.Fatal(err)
		}
		if !inSizes(len(er)) {
			t.Fatalf("error reply of %d bytes", len(er))
		}
		out, err := WrapReply(layers[0].ReplyKey, er)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(er) {
			t.Fatalf("guard re-encrypted %d bytes into %d", len(er), len(out))
		}
		_, err = circ.Open(out)
		var he *HopError
		if !errors.As(err, &he) {
			t.Fatalf("Open: %v, want *HopError", err)
		}
		if he.Hop != 1 || he.Msg != "next hop unreachable: 12D3KooW" {
			t.Fatalf("HopError = %+v", he)
		}
		if !strings.Contains(he.Error(), "hop 1") {
			t.Fatalf("HopError text %q", he.Error())
		}
	})

	t.Run("error from the guard and the exit", func(t *testing.T) {
		er, _ := ErrorReply(layers[0].ReplyKey, "guard says no")
		var he *HopError
		if _, err := circ.Open(er); !errors.As(err, &he) || he.Hop != 0 {
			t.Fatalf("guard error: %v", err)
		}
		er, _ = ErrorReply(layers[2].ReplyKey, "exit says no")
		links := replyChain(t, layers, er)
		if _, err := circ.Open(links[2]); !errors.As(err, &he) || he.Hop != 2 || he.Msg != "exit says no" {
			t.Fatalf("exit error: %v", err)
		}
	})

	t.Run("long message truncated", func(t *testing.T) {
		msg := strings.Repeat("0123456789", 300)
		er, err := ErrorReply(layers[1].ReplyKey, msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(er) != Everyday {
			t.Fatalf("error reply of %d bytes, want the everyday size", len(er))
		}
		out, _ := WrapReply(layers[0].ReplyKey, er)
		_, err = circ.Open(out)
		var he *HopError
		if !errors.As(err, &he) {
			t.Fatalf("Open: %v", err)
		}
		if len(he.Msg) != 512 || he.Msg != msg[:512] {
			t.Fatalf("message of %d bytes, want the first 512", len(he.Msg))
		}
	})

	final, err := FinalReply(layers[2].ReplyKey, []byte("the response"))
	if err != nil {
		t.Fatal(err)
	}
	links := replyChain(t, layers, final)
	good := links[2]

	t.Run("tampered", func(t *testing.T) {
		n := int(binary.BigEndian.Uint32(good))
		for i := 0; i < lenPrefix+n; i++ {
			p := bytes.Clone(good)
			p[i] ^= 0x10
			if _, err := circ.Open(p); !errors.Is(err, ErrPacket) {
				t.Fatalf("byte %d changed: Open: %v, want ErrPacket", i, err)
			}
		}
		for _, p := range [][]byte{nil, good[:len(good)-1], append(bytes.Clone(good), 0)} {
			if _, err := circ.Open(p); !errors.Is(err, ErrPacket) {
				t.Fatalf("%d-byte reply: Open: %v, want ErrPacket", len(p), err)
			}
		}
		p := bytes.Clone(good)
		binary.BigEndian.PutUint32(p, 0xffffffff)
		if _, err := circ.Open(p); !errors.Is(err, ErrPacket) {
			t.Fatalf("huge length prefix: %v", err)
		}
	})

	t.Run("skipped or reordered hop", func(t *testing.T) {
		// The middle's wrap is missing.
		out, _ := WrapReply(layers[0].ReplyKey, final)
		if _, err := circ.Open(out); !errors.Is(err, ErrPacket) {
			t.Fatalf("reply without the middle's layer: %v", err)
		}
		// The exit's reply straight to the client.
		if _, err := circ.Open(final); !errors.Is(err, ErrPacket) {
			t.Fatalf("unwrapped exit reply: %v", err)
		}
		// A final reply from the middle is refused.
		fm, _ := FinalReply(layers[1].ReplyKey, []byte("forged"))
		out, _ = WrapReply(layers[0].ReplyKey, fm)
		if _, err := circ.Open(out); !errors.Is(err, ErrPacket) {
			t.Fatalf("final reply from the middle: %v", err)
		}
	})

	t.Run("extra layer", func(t *testing.T) {
		// An outer layer under a key the client does not have.
		outer, err := WrapReply(randBytes(t, 32), good)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := circ.Open(outer); !errors.Is(err, ErrPacket) {
			t.Fatalf("extra outer layer: %v", err)
		}
		// The exit wraps instead of sending a final reply: every layer
		// opens but the path runs out before a final box.
		inner, _ := FinalReply(randBytes(t, 32), []byte("x"))
		ex, _ := WrapReply(layers[2].ReplyKey, inner)
		links := replyChain(t, layers, ex)
		if _, err := circ.Open(links[2]); !errors.Is(err, ErrPacket) {
			t.Fatalf("reply with an extra inner layer: %v", err)
		}
	})

	t.Run("unknown type", func(t *testing.T) {
		p, _ := pad(boxBytes(t, layers[2].ReplyKey, 9, []byte("?"), Sizes[0]), Sizes[0])
		links := replyChain(t, layers, p)
		if _, err := circ.Open(links[2]); !errors.Is(err, ErrPacket) {
			t.Fatalf("unknown reply type: %v", err)
		}
		// A box that authenticates but holds no type byte.
		p, _ = pad(rawBox(t, layers[2].ReplyKey, nil, Sizes[0]), Sizes[0])
		links = replyChain(t, layers, p)
		if _, err := circ.Open(links[2]); !errors.Is(err, ErrPacket) {
			t.Fatalf("empty reply box: %v", err)
		}
		// A box sealed for another packet size.
		p, _ = pad(boxBytes(t, layers[2].ReplyKey, replyFinal, []byte("x"), Sizes[1]), Sizes[0])
		links = replyChain(t, layers, p)
		var le *LayerError
		if _, err := circ.Open(links[2]); !errors.As(err, &le) || le.Layer != 2 {
			t.Fatalf("box sealed for another size: %v, want a LayerError at layer 2", err)
		}
	})

	t.Run("WrapReply refuses bad packets", func(t *testing.T) {
		for _, p := range [][]byte{nil, good[:100], append(bytes.Clone(good), 1)} {
			if _, err := WrapReply(layers[0].ReplyKey, p); !errors.Is(err, ErrPacket) {
				t.Fatalf("WrapReply of %d bytes: %v", len(p), err)
			}
		}
		// A reply already filling its packet has no room for another layer.
		full := make([]byte, Sizes[0])
		binary.BigEndian.PutUint32(full, uint32(Sizes[0]-lenPrefix))
		if _, err := WrapReply(layers[0].ReplyKey, full); err == nil {
			t.Fatal("WrapReply of a full packet succeeded")
		}
	})
}

func TestReplayTags(t *testing.T) {
	rs := newRelays(t, 3)
	req := []byte("same request, same path")
	p1, _, err := Build(hopsOf(rs), req)
	if err != nil {
		t.Fatal(err)
	}
	p2, _, err := Build(hopsOf(rs), req)
	if err != nil {
		t.Fatal(err)
	}
	l1, _ := peelPath(t, rs, p1, req)
	l2, _ := peelPath(t, rs, p2, req)
	for i := range rs {
		if l1[i].Tag == l2[i].Tag {
			t.Fatalf("hop %d: two packets with the same content and path have the same tag", i)
		}
		if l1[i].Tag == ([32]byte{}) {
			t.Fatalf("hop %d: zero tag", i)
		}
	}
	// The same packet peeled twice (a replay) gives the same tag at every
	// hop, which is what the node's replay cache keys on.
	l3, _ := peelPath(t, rs, p1, req)
	for i := range rs {
		if l1[i].Tag != l3[i].Tag {
			t.Fatalf("hop %d: a replayed packet has a different tag", i)
		}
		if !bytes.Equal(l1[i].ReplyKey, l3[i].ReplyKey) {
			t.Fatalf("hop %d: a replayed packet has a different reply key", i)
		}
	}
	// The reply key and the tag are different secrets.
	for i := range rs {
		if bytes.Equal(l1[i].ReplyKey, l1[i].Tag[:]) {
			t.Fatalf("hop %d: tag equals the reply key", i)
		}
	}
}

// TestResizedPacketRefused: a relay that moves a packet into another
// bucket would mark it for every later hop (the size survives every peel).
// The size is in every layer's aad, so a re-framed packet fails to peel at
// the very next hop, larger or smaller.
func TestResizedPacketRefused(t *testing.T) {
	rs := newRelays(t, 3)
	pkt, _, err := Build(hopsOf(rs), []byte("small request"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Peel([]*ecdh.PrivateKey{rs[0].key}, pkt); err != nil {
		t.Fatalf("the packet as built: %v", err)
	}
	big := make([]byte, MaxPacket)
	copy(big, pkt)
	if _, err := Peel([]*ecdh.PrivateKey{rs[0].key}, big); err == nil {
		t.Fatalf("a %d-byte packet re-framed to %d bytes was peeled", len(pkt), MaxPacket)
	}
	// The guard re-frames what it forwards: the middle refuses it.
	l, err := Peel([]*ecdh.PrivateKey{rs[0].key}, pkt)
	if err != nil {
		t.Fatal(err)
	}
	grown := make([]byte, Sizes[1])
	copy(grown, l.Packet)
	if _, err := Peel([]*ecdh.PrivateKey{rs[1].key}, grown); err == nil {
		t.Fatalf("the middle peeled a packet the guard moved from %d to %d bytes", len(l.Packet), len(grown))
	}
	if _, err := Peel([]*ecdh.PrivateKey{rs[1].key}, l.Packet); err != nil {
		t.Fatalf("the middle refused the packet as forwarded: %v", err)
	}
	// Larger buckets too: a request that needs 32 KiB is refused at 128.
	mid, _, err := Build(hopsOf(rs), make([]byte, 20<<10))
	if err != nil {
		t.Fatal(err)
	}
	if len(mid) != Sizes[2] {
		t.Fatalf("a 20 KiB request built a %d-byte packet", len(mid))
	}
	bigger := make([]byte, Sizes[3])
	copy(bigger, mid)
	if _, err := Peel([]*ecdh.PrivateKey{rs[0].key}, bigger); err == nil {
		t.Fatal("a 32 KiB packet re-framed to 128 KiB was peeled")
	}
}

// TestLayersLen: the precomputed length of the layers matches what Build
// seals, and innerLen inverts one layer, across the CBOR length-head
// boundaries, for 1 to 3 hops; every such packet peels to its request.
func TestLayersLen(t *testing.T) {
	rs := newRelays(t, 3)
	hops := hopsOf(rs)
	for _, n := range []int{0, 1, 23, 24, 255, 256, 1000, 65535, 65536, 200 << 10} {
		for k := 1; k <= len(hops); k++ {
			req := randBytes(t, n)
			pkt, _, err := Build(hops[:k], req)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := int(binary.BigEndian.Uint32(pkt)), layersLen(hops[:k], n, 0); got != want {
				t.Fatalf("%d hops, %d-byte request: layersLen %d, sealed %d", k, n, want, got)
			}
			peelPath(t, rs[:k], pkt, req)
			for _, reply := range Sizes {
				// With and without mix delays (key 0) on the middle and
				// the exit: the reply size (key 3) trails the request.
				for _, mix := range []bool{false, true} {
					path := append([]Hop(nil), hops[:k]...)
					if mix {
						DefaultMixDelays.Apply(path, nil)
					}
					pkt, _, err := BuildWith(path, req, Options{ReplySize: reply})
					if err != nil {
						t.Fatal(err)
					}
					if got, want := int(binary.BigEndian.Uint32(pkt)), layersLen(path, n, reply); got != want {
						t.Fatalf("%d hops, %d-byte request, reply %d, mix %v: layersLen %d, sealed %d", k, n, reply, mix, want, got)
					}
					layers, _ := peelPath(t, rs[:k], pkt, req)
					for i, l := range layers {
						want := 0
						if i == k-1 {
							want = reply
						}
						if l.ReplySize != want {
							t.Fatalf("hop %d of %d read reply size %d, want %d", i, k, l.ReplySize, want)
						}
						if l.Delay != path[i].Delay.Round(time.Millisecond) {
							t.Fatalf("hop %d of %d read delay %v, want %v", i, k, l.Delay, path[i].Delay)
						}
					}
				}
			}
		}
		for _, next := range []int{0, 1, 38, 200} {
			for _, delay := range []bool{false, true} {
				for _, reply := range []int{0, 1, 23, 24, 255, 256, 8 << 10, 1280 << 10} {
					one := n + layerOver + bodyHeadLen(delay, next, n) + bodyTailLen(reply)
					if got := innerLen(one, delay, next, reply); got != n {
						t.Fatalf("innerLen(%d, delay %v, next %d, reply %d) = %d, want %d", one, delay, next, reply, got, n)
					}
				}
			}
		}
	}
}
