package mailbox

import (
	"bytes"
	"testing"
)

// FuzzOpenPublic: arbitrary public-namespace data never panics and never
// verifies unless it is the owner's signature over exactly these fields.
func FuzzOpenPublic(f *testing.F) {
	k, _ := KeyFromSeed(bytes.Repeat([]byte{7}, 32))
	good := k.SignPublic(1000, 2000, []byte("bundle"))
	f.Add(good, int64(1000), int64(2000))
	f.Add(good[:63], int64(1000), int64(2000))
	f.Add([]byte{}, int64(0), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, ts, exp int64) {
		payload, err := OpenPublic(k.ID(), ts, exp, data)
		if err != nil {
			return
		}
		if !bytes.Equal(data[64:], payload) {
			t.Fatal("payload is not the data after the signature")
		}
		if ts != 1000 || exp != 2000 || !bytes.Equal(payload, []byte("bundle")) {
			// Ed25519 signatures are deterministic, so only the seed's
			// fields verify.
			t.Fatalf("a forged message verified: ts=%d exp=%d payload=%q", ts, exp, payload)
		}
	})
}

func TestSignOpenPublic(t *testing.T) {
	k, _ := NewKey()
	d := k.SignPublic(5, 9, []byte("p"))
	if p, err := OpenPublic(k.ID(), 5, 9, d); err != nil || string(p) != "p" {
		t.Fatalf("round trip: %q, %v", p, err)
	}
	for _, c := range []struct {
		ts, exp int64
	}{{6, 9}, {5, 10}} {
		if _, err := OpenPublic(k.ID(), c.ts, c.exp, d); err == nil {
			t.Fatalf("verified with ts=%d exp=%d", c.ts, c.exp)
		}
	}
	other, _ := NewKey()
	if _, err := OpenPublic(other.ID(), 5, 9, d); err == nil {
		t.Fatal("verified for another mailbox")
	}
}
