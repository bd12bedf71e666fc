package onion

import (
	"encoding/binary"
	"fmt"

	"github.com/umbra-im/umbra/internal/wire"
)

// decodeLayerBody decodes a layer's CBOR body. Build makes the canonical
// forms {1: next, 2: inner}, {2: inner} and {0: reply size, 2: inner};
// for those it slices the plaintext instead of copying a packet-sized
// inner, which is the hot path of every relay. Anything else (unknown keys, other encodings) goes
// through the general decoder, so the two accept the same messages.
func decodeLayerBody(pt []byte) (layerBody, error) {
	if b, ok := fastLayerBody(pt); ok {
		return b, nil
	}
	var body layerBody
	err := wire.Unmarshal(pt, &body)
	return body, err
}

// fastLayerBody parses the canonical encodings of layerBody, or reports
// false: a map of 1 to 3 pairs with keys in order among 0 (reply size, a
// shortest-form unsigned integer), 1 (next) and 2 (inner), key 2 present.
func fastLayerBody(pt []byte) (layerBody, bool) {
	var b layerBody
	if len(pt) == 0 || pt[0] < 0xa1 || pt[0] > 0xa3 {
		return b, false
	}
	pairs := int(pt[0] & 0x1f)
	rest := pt[1:]
	key := byte(0)
	for ; pairs > 0; pairs-- {
		if len(rest) == 0 || rest[0] < key || rest[0] > 2 {
			return b, false
		}
		key = rest[0]
		var ok bool
		switch key {
		case 0:
			var v uint64
			v, rest, ok = canonicalUint(rest[1:])
			if !ok || v > 1<<31 {
				return b, false
			}
			b.ReplySize = int(v)
		case 1:
			b.Next, rest, ok = canonicalBytes(rest[1:])
		case 2:
			b.Inner, rest, ok = canonicalBytes(rest[1:])
		}
		if !ok {
			return b, false
		}
		key++
	}
	return b, key == 3 && len(rest) == 0
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
