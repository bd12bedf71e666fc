package ratchet

import (
	"bytes"
	"errors"
	"testing"

	"github.com/umbra-im/umbra/internal/wire"
)

// fuzzSamples builds real encodings of every decoded type.
type fuzzSamples struct {
	bundle, initial, state, prekeys []byte
	msgs                            [][]byte
	p                               *pair
}

func makeFuzzSamples(f *testing.F) fuzzSamples {
	p := setup(f, 1, 0) // small seeds keep minimization fast
	var s fuzzSamples
	s.p = p
	s.bundle, _ = p.bundle.Encode()
	s.initial = p.initial
	for i := range 3 {
		s.msgs = append(s.msgs, mustEncrypt(f, p.b, msgText(i)))
	}
	s.state, _ = p.b.Marshal()
	s.prekeys, _ = p.pk.Marshal()
	return s
}

func addVariants(f *testing.F, b []byte) {
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(append(bytes.Clone(b), 0))
	c := bytes.Clone(b)
	c[len(c)/3] ^= 0x40
	f.Add(c)
}

// reencodeStable checks that a decoded value re-encodes to bytes that
// decode and re-encode identically.
func reencodeStable[T any](t *testing.T, v *T, parse func([]byte) (*T, error)) {
	b1, err := wire.Marshal(v)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	v2, err := parse(b1)
	if err != nil {
		t.Fatalf("re-encoded value does not parse: %v", err)
	}
	b2, _ := wire.Marshal(v2)
	if !bytes.Equal(b1, b2) {
		t.Fatal("re-encoding not stable")
	}
}

func FuzzParseBundle(f *testing.F) {
	s := makeFuzzSamples(f)
	addVariants(f, s.bundle)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := ParseBundle(in)
		if err != nil {
			if !errors.Is(err, ErrBadBundle) {
				t.Fatalf("error %v does not wrap ErrBadBundle", err)
			}
			return
		}
		reencodeStable(t, b, ParseBundle)
		if err := b.Verify(s.p.bob.ID()); err == nil && !bytes.Equal(b.Identity.SigningKey, s.p.bob.Public().SigningKey) {
			t.Fatal("verified a bundle of another identity")
		}
	})
}

func FuzzParseMessage(f *testing.F) {
	s := makeFuzzSamples(f)
	for _, m := range s.msgs {
		addVariants(f, m)
	}
	f.Add([]byte{0xa3, 0x01, 0x01, 0x02, 0x40, 0x03, 0x40})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseMessage(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(m.Header.DH) != keySize {
			t.Fatal("bad header accepted")
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	for _, h := range []Header{{DH: make([]byte, 32)}, {DH: bytes.Repeat([]byte{9}, 32), PN: 1 << 31, N: 5}} {
		b, _ := encodeHeader(h)
		addVariants(f, b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ParseHeader(in)
		if err != nil {
			return
		}
		reencodeStable(t, h, ParseHeader)
	})
}

func FuzzParseInitialMessage(f *testing.F) {
	s := makeFuzzSamples(f)
	addVariants(f, s.initial)
	f.Fuzz(func(t *testing.T, in []byte) {
		im, err := ParseInitialMessage(in)
		if err != nil {
			return
		}
		reencodeStable(t, im, ParseInitialMessage)
	})
}

// FuzzDecrypt feeds arbitrary messages to a live session: no panic, and a
// rejected message leaves the state unchanged.
func FuzzDecrypt(f *testing.F) {
	s := makeFuzzSamples(f)
	for _, m := range s.msgs {
		addVariants(f, m)
	}
	initial, _ := ParseInitialMessage(s.initial)
	f.Add(initial.Message)
	base, _ := s.p.a.Marshal() // Alice, who has not read s.msgs yet
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := UnmarshalSession(base)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Decrypt(in); err != nil {
			after, _ := a.Marshal()
			if !bytes.Equal(after, base) {
				t.Fatal("rejected message changed the state")
			}
		}
	})
}

func FuzzUnmarshalSession(f *testing.F) {
	s := makeFuzzSamples(f)
	addVariants(f, s.state)
	pending, _ := s.p.a.Marshal()
	addVariants(f, pending)
	f.Fuzz(func(t *testing.T, in []byte) {
		sess, err := UnmarshalSession(in)
		if err != nil {
			return
		}
		b1, err := sess.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		sess2, err := UnmarshalSession(b1)
		if err != nil {
			t.Fatalf("re-marshaled state does not parse: %v", err)
		}
		b2, _ := sess2.Marshal()
		if !bytes.Equal(b1, b2) {
			t.Fatal("state round trip not stable")
		}
		// Exercise the restored session; it must not panic.
		_, _ = sess.Encrypt([]byte("x"))
		_, _ = sess.Decrypt(s.msgs[0])
		_ = sess.MailboxSeeds(1)
	})
}

func FuzzUnmarshalPrekeys(f *testing.F) {
	s := makeFuzzSamples(f)
	addVariants(f, s.prekeys)
	f.Fuzz(func(t *testing.T, in []byte) {
		pk, err := UnmarshalPrekeys(in)
		if err != nil {
			return
		}
		if _, err := pk.Marshal(); err != nil {
			t.Fatal(err)
		}
		_, _ = pk.Bundle(s.p.bob)
	})
}
