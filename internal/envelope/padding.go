package envelope

import (
	"fmt"
	"slices"

	"github.com/umbra-im/umbra/internal/wire"
)

// WireSizes are the only lengths an envelope ever has on the wire. The
// largest is the largest message a swarm node stores.
var WireSizes = []int{256, 1024, 4096, 16384, 65536, wire.MaxMessageSize}

// Per-type room between a padded plaintext and its wire size: the ratchet
// header, AEAD tag and CBOR framing (ratchet envelopes), plus the PQXDH
// material and HPKE encapsulation (initial envelopes). What is left over
// is filled by the envelope's pad field so that the wire size is exact.
const (
	ratchetReserve = 94
	initialReserve = 1536
)

// PaddedSizes returns the sizes a plaintext of an envelope of type t is
// padded to: WireSizes minus the type's reserve (sizes too small for the
// type are left out).
func PaddedSizes(t Type) []int {
	reserve := ratchetReserve
	switch t {
	case TypeInitial:
		reserve = initialReserve
	case TypeInbox:
		reserve = inboxReserve
	case TypeGroup:
		reserve = groupReserve
	}
	var out []int
	for _, w := range WireSizes {
		if w > reserve {
			out = append(out, w-reserve)
		}
	}
	return out
}

// Pad pads b to the smallest size in sizes (ascending) that holds len(b)+1
// bytes, ISO/IEC 7816-4 style: one 0x80 byte, then zero bytes. It fails
// if b does not fit the largest size.
func Pad(b []byte, sizes []int) ([]byte, error) {
	for _, s := range sizes {
		if len(b)+1 <= s {
			out := make([]byte, s)
			copy(out, b)
			out[len(b)] = 0x80
			return out, nil
		}
	}
	return nil, fmt.Errorf("%w: %d bytes do not fit the largest padded size", ErrTooLarge, len(b))
}

// Unpad reverses Pad. It rejects a length that is not one of sizes and
// padding that is not 0x80 followed only by zeros. It accepts a larger
// bucket than Pad would have chosen (a sender may pad more).
func Unpad(b []byte, sizes []int) ([]byte, error) {
	if !slices.Contains(sizes, len(b)) {
		return nil, fmt.Errorf("%w: padded length %d is not a bucket size", ErrMalformed, len(b))
	}
	i := len(b) - 1
	for i >= 0 && b[i] == 0 {
		i--
	}
	if i < 0 || b[i] != 0x80 {
		return nil, fmt.Errorf("%w: bad padding", ErrMalformed)
	}
	return b[:i], nil
}

// cborHeadLen is the length of a CBOR head encoding argument n.
func cborHeadLen(n int) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	default:
		return 5
	}
}

// fillTo sets e.Pad (and, when needed, e.Fill) so that e encodes to
// exactly size bytes, and returns the encoding. Any size at least 5 bytes
// above the unpadded encoding is reachable: a pad of k bytes costs
// 1 (key) + head(k) + k bytes, which skips one total at each head-size
// step; a 3-byte Fill field steps over that gap.
func fillTo(e *envelopeWire, size int) ([]byte, error) {
	for _, fill := range [][]byte{nil, {0}} {
		e.Pad, e.Fill = nil, fill
		base, err := wire.Marshal(e)
		if err != nil {
			return nil, err
		}
		// The pad field adds its key (1 byte), its head and its content;
		// the map head stays 1 byte.
		for _, head := range []int{1, 2, 3, 5} {
			k := size - len(base) - 1 - head
			if k < 0 || cborHeadLen(k) != head {
				continue
			}
			e.Pad = make([]byte, k)
			out, err := wire.Marshal(e)
			if err != nil {
				return nil, err
			}
			if len(out) != size {
				return nil, fmt.Errorf("envelope: internal error: filled to %d bytes, want %d", len(out), size)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("envelope: internal error: %d bytes of %s envelope cannot be padded to %d", len(e.Body), e.Type, size)
}
