package envelope

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/umbra-im/umbra/internal/wire"
)

func TestContentRoundTripAndUnknownFields(t *testing.T) {
	c, err := NewContent(detRand(1), KindText, []byte("hi"), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if c.SentAt != testNow.UnixMilli() || c.Version != ContentVersion {
		t.Fatal("fields")
	}
	d, _ := NewContent(detRand(2), KindText, []byte("hi"), testNow)
	if c.MessageID() == d.MessageID() {
		t.Fatal("IDs repeat")
	}
	enc, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// A newer sender adds field 40 and a new kind.
	var m map[uint64]cbor.RawMessage
	if err := wire.Unmarshal(enc, &m); err != nil {
		t.Fatal(err)
	}
	m[40] = cbor.RawMessage{0x82, 0x01, 0x02}
	m[4] = cbor.RawMessage{0x19, 0x03, 0xe8} // kind 1000
	newer, _ := wire.Marshal(m)
	got, err := ParseContent(newer)
	if err != nil {
		t.Fatalf("newer content rejected: %v", err)
	}
	if got.Kind != 1000 || got.Kind.String() != "kind-1000" || !bytes.Equal(got.Body, c.Body) || got.MessageID() != c.MessageID() {
		t.Fatalf("got %+v", got)
	}
}

func TestContentRejects(t *testing.T) {
	good, _ := NewContent(nil, KindText, nil, testNow)
	cases := map[string]func(c *Content){
		"version":  func(c *Content) { c.Version = 2 },
		"short ID": func(c *Content) { c.ID = c.ID[:15] },
		"no ID":    func(c *Content) { c.ID = nil },
		"bad ref":  func(c *Content) { c.Refs = [][]byte{make([]byte, 17)} },
		"refs":     func(c *Content) { c.Refs = make([][]byte, MaxRefs+1) },
		"body":     func(c *Content) { c.Body = make([]byte, MaxBodySize+1) },
		"file":     func(c *Content) { c.Body, c.File = make([]byte, MaxBodySize/2+1), make([]byte, MaxBodySize/2) },
	}
	for name, mut := range cases {
		c := *good
		mut(&c)
		if _, err := c.Encode(); err == nil {
			t.Fatalf("%s: encoded", name)
		}
		raw, _ := wire.Marshal(&c)
		if _, err := ParseContent(raw); err == nil {
			t.Fatalf("%s: parsed", name)
		}
	}
	if _, err := ParseContent(make([]byte, maxContentSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatal("oversized content parsed")
	}
	if _, err := NewReceipt(nil, KindReceiptRead, make([]MessageID, MaxRefs+1), testNow); err == nil {
		t.Fatal("receipt with too many refs")
	}
}
