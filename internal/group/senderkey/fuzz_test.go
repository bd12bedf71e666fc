package senderkey

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzChains is a fixed chain, its distribution, messages (in order, with
// one skipped) and the receiver's state before any of them.
type fuzzChains struct {
	dist  []byte
	state []byte // receiver before any message
	msgs  [][]byte
}

func makeFuzzChains(f *testing.F) fuzzChains {
	own, peer := newChains(f, 40)
	var c fuzzChains
	c.dist, _ = own.Distribution().Encode()
	c.state = peerState(f, peer)
	for i := range 4 {
		c.msgs = append(c.msgs, mustEncrypt(f, own, msgText(i), groupA))
	}
	return c
}

func addVariants(f *testing.F, b []byte) {
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(append(bytes.Clone(b), 0))
	c := bytes.Clone(b)
	c[len(c)/3] ^= 0x40
	f.Add(c)
}

func FuzzParseMessage(f *testing.F) {
	c := makeFuzzChains(f)
	for _, m := range c.msgs {
		addVariants(f, m)
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseMessage(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(m.ChainID) != chainIDSize || len(m.Signature) != sigSize || len(m.Ciphertext) < tagSize {
			t.Fatal("parsed message breaks the bounds")
		}
		// Re-encoding is stable and parses to the same message.
		b1, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseMessage(b1)
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		b2, _ := m2.Encode()
		if !bytes.Equal(b1, b2) || m2.Iteration != m.Iteration || m2.ChainID != m.ChainID ||
			!bytes.Equal(m2.Ciphertext, m.Ciphertext) || !bytes.Equal(m2.body, m.body) {
			t.Fatal("re-encoding not stable")
		}
	})
}

// FuzzDecrypt feeds arbitrary bytes to a receiving chain: nothing panics,
// a refused input leaves the chain unchanged, and only the genuine
// messages (byte for byte, as signed) decrypt, to their plaintext.
func FuzzDecrypt(f *testing.F) {
	c := makeFuzzChains(f)
	for _, m := range c.msgs {
		addVariants(f, m)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := UnmarshalPeerChain(c.state)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := p.Decrypt(in, groupA)
		if err != nil {
			if !bytes.Equal(peerState(t, p), c.state) {
				t.Fatal("refused input changed the chain")
			}
			return
		}
		m, perr := ParseMessage(in)
		if perr != nil {
			t.Fatal("decrypted an input that does not parse")
		}
		it := int(m.Iteration)
		if it >= len(c.msgs) || !bytes.Equal(pt, msgText(it)) {
			t.Fatalf("decrypted a forged message: iteration %d, %q", it, pt)
		}
		g, _ := ParseMessage(c.msgs[it])
		if !bytes.Equal(m.body, g.body) || !bytes.Equal(m.Signature, g.Signature) {
			t.Fatal("decrypted a message whose signed bytes differ from the genuine one")
		}
		// The chain moved past it: the same input is now a duplicate.
		if _, err := p.Decrypt(in, groupA); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("replay after success: %v", err)
		}
		if p.SkippedKeys() != it {
			t.Fatalf("%d skipped keys after iteration %d", p.SkippedKeys(), it)
		}
	})
}

func FuzzParseDistribution(f *testing.F) {
	c := makeFuzzChains(f)
	addVariants(f, c.dist)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := ParseDistribution(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		p, err := NewReceiverChain(d)
		if err != nil {
			t.Fatalf("parsed distribution refused: %v", err)
		}
		b1, err := d.Encode()
		if err != nil {
			t.Fatal(err)
		}
		d2, err := ParseDistribution(b1)
		if err != nil {
			t.Fatalf("re-encoded distribution does not parse: %v", err)
		}
		b2, _ := d2.Encode()
		if !bytes.Equal(b1, b2) {
			t.Fatal("re-encoding not stable")
		}
		if _, err := UnmarshalPeerChain(peerState(t, p)); err != nil {
			t.Fatalf("chain state does not round-trip: %v", err)
		}
	})
}

// FuzzUnmarshalState feeds arbitrary bytes to both state decoders; a state
// that loads re-serializes to a state that loads the same.
func FuzzUnmarshalState(f *testing.F) {
	own, peer := newChains(f, 41)
	m := mustEncrypt(f, own, nil, groupA)
	mustEncrypt(f, own, nil, groupA)
	mustDecrypt(f, peer, mustEncrypt(f, own, nil, groupA), groupA, nil)
	addVariants(f, peerState(f, peer))
	addVariants(f, ownState(f, own))
	f.Fuzz(func(t *testing.T, in []byte) {
		if p, err := UnmarshalPeerChain(in); err == nil {
			s1 := peerState(t, p)
			p2, err := UnmarshalPeerChain(s1)
			if err != nil || !bytes.Equal(peerState(t, p2), s1) {
				t.Fatalf("peer state does not round-trip: %v", err)
			}
			p.Decrypt(m, groupA) // must not panic
		} else if !errors.Is(err, ErrBadState) {
			t.Fatalf("error %v does not wrap ErrBadState", err)
		}
		if c, err := UnmarshalOwnChain(in); err == nil {
			s1 := ownState(t, c)
			c2, err := UnmarshalOwnChain(s1)
			if err != nil || !bytes.Equal(ownState(t, c2), s1) {
				t.Fatalf("own state does not round-trip: %v", err)
			}
		} else if !errors.Is(err, ErrBadState) {
			t.Fatalf("error %v does not wrap ErrBadState", err)
		}
	})
}
