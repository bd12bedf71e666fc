package envelope

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/umbra-im/umbra/internal/ratchet"
	"github.com/umbra-im/umbra/internal/wire"
)

type fuzzWorld struct {
	alice, bob    *party
	as            *ratchet.Session
	bobState      []byte // Bob's session before the ratchet envelopes
	initial, msgs [][]byte
}

func makeFuzzWorld(f *testing.F) *fuzzWorld {
	w := &fuzzWorld{alice: newParty(f, 1), bob: newParty(f, 2)}
	w.as = start(f, w.alice, w.bob)
	env := seal(f, w.alice, w.as, text(f, "first"))
	w.initial = append(w.initial, env)
	o, err := open(f, w.bob, nil, env)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := open(f, w.alice, w.as, seal(f, w.bob, o.Session, text(f, "reply"))); err != nil {
		f.Fatal(err)
	}
	w.bobState, _ = o.Session.Marshal()
	for i := range 3 {
		w.msgs = append(w.msgs, seal(f, w.alice, w.as, text(f, string(rune('a'+i)))))
	}
	return w
}

func addVariants(f *testing.F, b []byte) {
	f.Add(b)
	f.Add(b[:len(b)/2])
	c := bytes.Clone(b)
	c[len(c)/3] ^= 0x08
	f.Add(c)
}

func FuzzParse(f *testing.F) {
	w := makeFuzzWorld(f)
	for _, e := range append(slices.Clone(w.initial), w.msgs...) {
		addVariants(f, e)
	}
	f.Add([]byte{0xa3, 0x01, 0x01, 0x02, 0x07, 0x03, 0x41, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Parse(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnknownType) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if e.Type != TypeInitial && e.Type != TypeRatchet && e.Type != TypeInbox && e.Type != TypeGroup || len(e.Body) == 0 {
			t.Fatalf("accepted %+v", e)
		}
	})
}

func FuzzParseContent(f *testing.F) {
	for _, c := range []*Content{
		{Version: 1, ID: make([]byte, 16), SentAt: 1, Kind: KindText, Body: []byte("hi")},
		{Version: 1, ID: make([]byte, 16), Kind: KindReceiptRead, Refs: [][]byte{make([]byte, 16)}},
	} {
		b, _ := c.Encode()
		addVariants(f, b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseContent(in)
		if err != nil {
			return
		}
		b1, err := c.Encode()
		if err != nil {
			t.Fatalf("parsed content does not encode: %v", err)
		}
		c2, err := ParseContent(b1)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := wire.Marshal(c2)
		if !bytes.Equal(b1, b2) {
			t.Fatal("content re-encoding not stable")
		}
	})
}

func FuzzUnpad(f *testing.F) {
	p, _ := Pad([]byte("hello"), PaddedSizes(TypeRatchet))
	f.Add(p)
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		sizes := []int{1, 8, 32, len(p)}
		out, err := Unpad(in, sizes)
		if err != nil {
			return
		}
		// A sender may pick a larger bucket than Pad would, so check the
		// structure rather than Pad(out) == in.
		if !bytes.Equal(in[:len(out)], out) || in[len(out)] != 0x80 || bytes.ContainsFunc(in[len(out)+1:], func(r rune) bool { return r != 0 }) {
			t.Fatal("Unpad accepted bad padding")
		}
		if again, err := Pad(out, sizes); err != nil || len(again) > len(in) {
			t.Fatal("Unpad output does not pad back into its bucket")
		}
	})
}

// FuzzOpen feeds arbitrary envelopes to Bob's live session and to the
// initial-envelope path: no panics, no session created from garbage.
func FuzzOpen(f *testing.F) {
	w := makeFuzzWorld(f)
	for _, e := range append(slices.Clone(w.initial), w.msgs...) {
		addVariants(f, e)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Parse(in)
		if err != nil {
			return
		}
		if e.Type == TypeRatchet {
			s, err := ratchet.UnmarshalSession(w.bobState)
			if err != nil {
				t.Fatal(err)
			}
			o, err := OpenRatchet(w.bob.acct, s, e)
			if err == nil && !o.Sender.Equal(w.alice.acct.Public()) {
				t.Fatal("opened with a wrong sender")
			}
			return
		}
		pkb, _ := w.bob.pk.Marshal()
		pk, _ := ratchet.UnmarshalPrekeys(pkb)
		o, err := OpenInitial(nil, w.bob.acct, pk, nil, e)
		if err == nil && !o.Sender.Equal(w.alice.acct.Public()) {
			t.Fatal("opened an initial envelope from an unexpected sender")
		}
	})
}
