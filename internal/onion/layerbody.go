package onion

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/umbra-im/umbra/internal/wire"
)

// Layer body versions. v1 is {1: next, 2: inner} ({2: inner} at the
// exit). v2 adds key 0, the mix delay this hop is asked to hold the packet
// for: exactly 4 bytes, be32 milliseconds. A v2 body without key 0 is
// byte for byte a v1 body, so a delay of 0 left out is today's packet; a
// relay that predates v2 ignores key 0 (unknown map keys are ignored) and
// forwards at once. Clients that mix put key 0 in every layer that may be
// delayed, even for a delay of 0 ms: its length is then the same whatever
// the delay, and the length prefix a hop sees in the clear says nothing
// of the delays further on.
const delayLen = 4

// MaxDelay is the protocol's largest mix delay: a relay never holds a
// packet longer, whatever its layer asks (a larger value is capped), and
// Build refuses to ask for more.
const MaxDelay = 5 * time.Second

// layerBody is what one hop decrypts.
type layerBody struct {
	Delay []byte `cbor:"0,keyasint,omitempty"` // v2: be32 mix delay in ms (delayLen bytes), absent for none
	Next  []byte `cbor:"1,keyasint,omitempty"` // next hop's peer ID; empty at the exit
	Inner []byte `cbor:"2,keyasint"`           // next layer, or the request at the exit
}

// delay is the mix delay the body asks for, capped at MaxDelay.
func (b layerBody) delay() (time.Duration, error) {
	switch len(b.Delay) {
	case 0:
		return 0, nil
	case delayLen:
		d := time.Duration(binary.BigEndian.Uint32(b.Delay)) * time.Millisecond
		return min(d, MaxDelay), nil
	}
	return 0, fmt.Errorf("delay of %d bytes", len(b.Delay))
}

// encodeDelay is the key-0 value for a delay of d (0 ≤ d ≤ MaxDelay), in
// whole milliseconds rounded to the nearest.
func encodeDelay(d time.Duration) [delayLen]byte {
	var v [delayLen]byte
	binary.BigEndian.PutUint32(v[:], uint32(d.Round(time.Millisecond)/time.Millisecond))
	return v
}

// bodyHeadLen is the length of the canonical CBOR of a layer body up to
// its inner bytes: map head, [key 0, delay], [key 1, next], key 2 and
// inner's head (fastLayerBody parses exactly these forms).
func bodyHeadLen(delay bool, next, inner int) int {
	n := 1 + 1 + bytesHeadLen(inner)
	if delay {
		n += 1 + 1 + delayLen
	}
	if next > 0 {
		n += 1 + bytesHeadLen(next) + next
	}
	return n
}

// appendBodyHead appends the canonical CBOR of a layer body up to its
// inner bytes; delay is nil (no key 0) or delayLen bytes.
func appendBodyHead(b, delay, next []byte, inner int) []byte {
	pairs := byte(1)
	if delay != nil {
		pairs++
	}
	if len(next) > 0 {
		pairs++
	}
	b = append(b, 0xa0|pairs)
	if delay != nil {
		b = append(b, 0x00, 0x40|delayLen)
		b = append(b, delay...)
	}
	if len(next) > 0 {
		b = append(b, 0x01)
		b = appendBytesHead(b, len(next))
		b = append(b, next...)
	}
	b = append(b, 0x02)
	return appendBytesHead(b, inner)
}

// decodeLayerBody decodes a layer's CBOR body. Build makes the canonical
// forms {[0: delay,] [1: next,] 2: inner}; for those it slices the
// plaintext instead of copying a packet-sized inner, which is the hot path
// of every relay. Anything else (unknown keys, other encodings) goes
// through the general decoder, so the two accept the same messages.
func decodeLayerBody(pt []byte) (layerBody, error) {
	if b, ok := fastLayerBody(pt); ok {
		return b, nil
	}
	var body layerBody
	err := wire.Unmarshal(pt, &body)
	return body, err
}

// fastLayerBody parses the canonical encodings of layerBody: a map of 1 to
// 3 pairs with keys in increasing order among 0, 1, 2, the last being 2,
// every value a shortest-form byte string and the delay exactly delayLen
// bytes; anything else reports false.
func fastLayerBody(pt []byte) (layerBody, bool) {
	var b layerBody
	if len(pt) == 0 || pt[0] < 0xa1 || pt[0] > 0xa3 {
		return b, false
	}
	pairs := int(pt[0] - 0xa0)
	rest := pt[1:]
	last := -1
	for i := 0; i < pairs; i++ {
		if len(rest) == 0 {
			return b, false
		}
		key := int(rest[0])
		if key <= last || key > 2 {
			return b, false
		}
		v, tail, ok := canonicalBytes(rest[1:])
		if !ok {
			return b, false
		}
		switch key {
		case 0:
			if len(v) != delayLen {
				return b, false
			}
			b.Delay = v
		case 1:
			b.Next = v
		case 2:
			b.Inner = v
		}
		last, rest = key, tail
	}
	return b, last == 2 && len(rest) == 0
}

// canonicalBytes parses a CBOR byte string with a shortest-form length
// header (up to 4 length bytes) at the start of p.
func canonicalBytes(p []byte) (v, rest []byte, ok bool) {
	if len(p) == 0 || p[0]>>5 != 2 {
		return nil, nil, false
	}
	var n uint64
	hdr := 1
	switch ai := p[0] & 0x1f; {
	case ai < 24:
		n = uint64(ai)
	case ai == 24 && len(p) >= 2:
		n, hdr = uint64(p[1]), 2
		ok = n >= 24
	case ai == 25 && len(p) >= 3:
		n, hdr = uint64(binary.BigEndian.Uint16(p[1:])), 3
		ok = n >= 1<<8
	case ai == 26 && len(p) >= 5:
		n, hdr = uint64(binary.BigEndian.Uint32(p[1:])), 5
		ok = n >= 1<<16
	default:
		return nil, nil, false
	}
	if hdr > 1 && !ok {
		return nil, nil, false
	}
	if uint64(len(p)-hdr) < n {
		return nil, nil, false
	}
	end := hdr + int(n)
	return p[hdr:end:end], p[end:], true
}

// PacketData returns the Data of a wire.OnionPacket encoded in body. The
// canonical encoding {1: bytes} is sliced out of body rather than copied,
// so a relay peels in the buffer the packet arrived in; any other encoding
// goes through the general decoder, so the two accept the same messages.
func PacketData(body []byte) ([]byte, error) {
	if len(body) >= 2 && body[0] == 0xa1 && body[1] == 0x01 {
		if v, rest, ok := canonicalBytes(body[2:]); ok && len(rest) == 0 {
			return v, nil
		}
	}
	var pkt wire.OnionPacket
	if err := wire.Unmarshal(body, &pkt); err != nil {
		return nil, fmt.Errorf("onion: decode packet: %w", err)
	}
	return pkt.Data, nil
}
