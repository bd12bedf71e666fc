package envelope

import (
	"bytes"
	"errors"
	"testing"

	"github.com/umbra-im/umbra/internal/ratchet"
)

func TestPadUnpad(t *testing.T) {
	sizes := []int{16, 64, 256}
	for n := range 256 {
		in := bytes.Repeat([]byte{0x80}, n) // worst case: content ends like padding
		p, err := Pad(in, sizes)
		if err != nil {
			t.Fatal(err)
		}
		want := 16
		switch {
		case n+1 > 64:
			want = 256
		case n+1 > 16:
			want = 64
		}
		if len(p) != want {
			t.Fatalf("%d bytes padded to %d, want %d", n, len(p), want)
		}
		out, err := Unpad(p, sizes)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("%d bytes: unpad %v", n, err)
		}
	}
	if _, err := Pad(make([]byte, 256), sizes); !errors.Is(err, ErrTooLarge) {
		t.Fatal("oversized input padded")
	}
	bad := [][]byte{
		make([]byte, 16),                          // no 0x80
		append(make([]byte, 15), 0x01),            // wrong marker
		append([]byte{0x80}, make([]byte, 14)...), // length not a size
		append(bytes.Repeat([]byte{1}, 15), 0x81),
	}
	for _, b := range bad {
		if _, err := Unpad(b, sizes); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%x: %v", b, err)
		}
	}
}

// fillTo reaches every wire size exactly for every body length a type's
// reserve allows, across the ranges of ratchet and PQXDH overheads.
func TestFillToExact(t *testing.T) {
	for _, typ := range []Type{TypeRatchet, TypeInitial} {
		reserve := ratchetReserve
		// Overheads from nearly none up to the reserve minus the smallest
		// pad field (1 key + 1 head) plus a possible 3-byte Fill: all of
		// them for ratchet envelopes; for initial ones both ends and the
		// realistic middle (PQXDH material ≈ 1.4 KB).
		var overheads []int
		for o := 10; o <= ratchetReserve-5; o++ {
			overheads = append(overheads, o)
		}
		if typ == TypeInitial {
			reserve = initialReserve
			overheads = overheads[:0]
			for o := 10; o <= initialReserve-5; o++ {
				if o < 60 || o > initialReserve-60 || o >= 1350 && o <= 1480 {
					overheads = append(overheads, o)
				}
			}
		}
		for i, padded := range PaddedSizes(typ) {
			w := padded + reserve
			if typ == TypeRatchet && w != WireSizes[i] {
				t.Fatal("sizes out of step")
			}
			for _, over := range overheads {
				body := make([]byte, padded+over-10) // minus the envelope's own framing
				out, err := fillTo(&envelopeWire{Version: Version, Type: typ, Body: body}, w)
				if err != nil {
					t.Fatalf("%s, wire %d, overhead %d: %v", typ, w, over, err)
				}
				e, err := Parse(out)
				if err != nil || len(e.Body) != len(body) {
					t.Fatalf("filled envelope does not parse: %v", err)
				}
			}
		}
	}
}

// The reserves cover the worst-case overheads of the layers below, plus
// the envelope's own framing (6 bytes of fields, a 5-byte body head, and
// the smallest pad field).
func TestReservesCoverOverheads(t *testing.T) {
	const framing = 6 + 5 + 2
	if ratchetReserve < ratchet.MaxOverhead+framing {
		t.Fatalf("ratchet reserve %d < %d", ratchetReserve, ratchet.MaxOverhead+framing)
	}
	const hpkeOverhead = 32 + 16 // X25519 encapsulation + AES-GCM tag
	if need := ratchet.MaxOverhead + ratchet.MaxInitialOverhead + hpkeOverhead + framing; initialReserve < need {
		t.Fatalf("initial reserve %d < %d", initialReserve, need)
	}
	const sealedPair = 1 + 2 + 16 + 1 + 5 // map, session ID, message head
	if need := ratchet.MaxOverhead + hpkeOverhead + sealedPair + framing; inboxReserve < need {
		t.Fatalf("inbox reserve %d < %d", inboxReserve, need)
	}
}
