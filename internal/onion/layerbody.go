package onion

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/umbra-im/umbra/internal/wire"
)

// The layer body is what one hop decrypts: a CBOR map with integer keys
//
//	{0: delay, 1: next, 2: inner, 3: reply size}
//
// of which only 2 is always present:
//
//   - 0, delay (middle and exit, when the client mixes): the mix delay this
//     hop is asked to hold the packet for before forwarding it or running
//     the request, a byte string of exactly delayLen (4) bytes, be32
//     milliseconds, read capped at MaxDelay (an empty one reads as none,
//     any other length is refused). Clients that mix put key 0 in
//     every layer that may be delayed, even for a delay of 0 ms: its
//     length is then the same whatever the delay, and the length prefix a
//     hop sees says nothing of the delays further on.
//   - 1, next (relays): the next hop's peer ID; absent at the exit.
//   - 2, inner: the next layer, or the request at the exit.
//   - 3, reply size (exit only): the size of the reply packet the client
//     asks for (Options.ReplySize), a shortest-form unsigned integer, one
//     of Sizes. A relay's layer that carries one is refused.
//
// Build writes the canonical (RFC 8949 core deterministic) encoding, keys
// in increasing order, which is also what wire.Marshal makes of layerBody.
// That is why the reply size has key 3 and not a key before 2: 0 and 1 are
// taken, and every other key sorts after 2, so the reply size trails the
// inner bytes. Only the exit's layer has it, where inner is the request:
// Build seals head ‖ request ‖ tail, and a relay's body still ends with
// its inner layer, which it moves to the front of the packet in place.
// Bodies without keys 0 and 3 are the original {1: next, 2: inner} and
// {2: inner}.
const delayLen = 4

// MaxDelay is the protocol's largest mix delay: a relay never holds a
// packet longer, whatever its layer asks (a larger value is capped), and
// Build refuses to ask for more.
const MaxDelay = 5 * time.Second

// layerBody is what one hop decrypts.
type layerBody struct {
	Delay     []byte `cbor:"0,keyasint,omitempty"` // be32 mix delay in ms (delayLen bytes), absent for none
	Next      []byte `cbor:"1,keyasint,omitempty"` // next hop's peer ID; empty at the exit
	Inner     []byte `cbor:"2,keyasint"`           // next layer, or the request at the exit
	ReplySize int    `cbor:"3,keyasint,omitempty"` // exit only: the reply size the client asks for (Options.ReplySize)
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

// hopFields is what the body of layer i of path carries besides its delay
// and inner bytes: the next hop's ID length, and the reply size at the
// exit.
func hopFields(path []Hop, i, reply int) (next, rep int) {
	if i < len(path)-1 {
		return len(path[i+1].ID), 0
	}
	return 0, reply
}

// bodyHeadLen is the length of the canonical CBOR of a layer body up to
// its inner bytes: map head, [key 0, delay], [key 1, next], key 2 and
// inner's head (fastLayerBody parses exactly these forms). The map head
// is one byte whether or not a reply size follows the inner bytes.
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

// bodyTailLen is the length of what follows the inner bytes: key 3 and
// the reply size, if any.
func bodyTailLen(reply int) int {
	if reply == 0 {
		return 0
	}
	return 1 + uintLen(uint64(reply))
}

// appendBodyHead appends the canonical CBOR of a layer body up to its
// inner bytes; delay is nil (no key 0) or delayLen bytes, and reply (0:
// none) counts in the map head only: appendBodyTail writes it after the
// inner bytes.
func appendBodyHead(b, delay, next []byte, reply, inner int) []byte {
	pairs := byte(1)
	if delay != nil {
		pairs++
	}
	if len(next) > 0 {
		pairs++
	}
	if reply != 0 {
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

// appendBodyTail appends what follows the inner bytes: key 3 and the
// reply size, if reply is not 0.
func appendBodyTail(b []byte, reply int) []byte {
	if reply == 0 {
		return b
	}
	return appendUint(append(b, 0x03), uint64(reply))
}

// decodeLayerBody decodes a layer's CBOR body. Build makes the canonical
// forms {[0: delay,] [1: next,] 2: inner[, 3: reply size]}; for those it
// slices the plaintext instead of copying a packet-sized inner, which is
// the hot path of every relay. Anything else (unknown keys, other
// encodings) goes through the general decoder, so the two accept the same
// messages.
func decodeLayerBody(pt []byte) (layerBody, error) {
	if b, ok := fastLayerBody(pt); ok {
		return b, nil
	}
	var body layerBody
	err := wire.Unmarshal(pt, &body)
	return body, err
}

// fastLayerBody parses the canonical encodings of layerBody: a map of 1 to
// 4 pairs with keys in increasing order among 0, 1, 2 and 3, key 2
// present; 0 (delay) a byte string of exactly delayLen bytes, 1 (next)
// and 2 (inner) shortest-form byte strings, 3 (reply size) a
// shortest-form unsigned integer up to 2^31. Anything else reports false
// (and goes to the general decoder).
func fastLayerBody(pt []byte) (layerBody, bool) {
	var b layerBody
	if len(pt) == 0 || pt[0] < 0xa1 || pt[0] > 0xa4 {
		return b, false
	}
	pairs := int(pt[0] - 0xa0)
	rest := pt[1:]
	last, inner := -1, false
	for i := 0; i < pairs; i++ {
		if len(rest) == 0 {
			return b, false
		}
		key := int(rest[0])
		if key <= last || key > 3 {
			return b, false
		}
		var ok bool
		switch key {
		case 0:
			b.Delay, rest, ok = canonicalBytes(rest[1:])
			ok = ok && len(b.Delay) == delayLen
		case 1:
			b.Next, rest, ok = canonicalBytes(rest[1:])
		case 2:
			b.Inner, rest, ok = canonicalBytes(rest[1:])
			inner = true
		case 3:
			var v uint64
			v, rest, ok = canonicalUint(rest[1:])
			ok = ok && v <= 1<<31
			b.ReplySize = int(v)
		}
		if !ok {
			return layerBody{}, false
		}
		last = key
	}
	return b, inner && len(rest) == 0
}

// canonicalUint parses a shortest-form CBOR unsigned integer (up to 4
// length bytes) at the start of p.
func canonicalUint(p []byte) (v uint64, rest []byte, ok bool) {
	if len(p) == 0 || p[0]>>5 != 0 {
		return 0, nil, false
	}
	switch ai := p[0] & 0x1f; {
	case ai < 24:
		return uint64(ai), p[1:], true
	case ai == 24 && len(p) >= 2:
		v = uint64(p[1])
		return v, p[2:], v >= 24
	case ai == 25 && len(p) >= 3:
		v = uint64(binary.BigEndian.Uint16(p[1:]))
		return v, p[3:], v >= 1<<8
	case ai == 26 && len(p) >= 5:
		v = uint64(binary.BigEndian.Uint32(p[1:]))
		return v, p[5:], v >= 1<<16
	}
	return 0, nil, false
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
