package onion

import (
	"encoding/binary"
	"fmt"

	"github.com/umbra-im/umbra/internal/wire"
)

// decodeLayerBody decodes a layer's CBOR body. Build makes the canonical
// forms {1: next, 2: inner} and {2: inner}; for those it slices the
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

// fastLayerBody parses the canonical encodings of layerBody, or reports
// false.
func fastLayerBody(pt []byte) (layerBody, bool) {
	var b layerBody
	if len(pt) == 0 {
		return b, false
	}
	key := byte(1)
	switch pt[0] {
	case 0xa1: // {2: inner}
		key = 2
	case 0xa2: // {1: next, 2: inner}
	default:
		return b, false
	}
	rest := pt[1:]
	for ; key <= 2; key++ {
		if len(rest) == 0 || rest[0] != key {
			return b, false
		}
		v, tail, ok := canonicalBytes(rest[1:])
		if !ok {
			return b, false
		}
		if key == 1 {
			b.Next = v
		} else {
			b.Inner = v
		}
		rest = tail
	}
	return b, len(rest) == 0
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
