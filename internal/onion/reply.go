package onion

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Reply types inside a box.
const (
	replyInner = 1 // data is the next hop's box
	replyFinal = 2 // data is the exit's response frame
	replyError = 3 // data is an error text from this hop
)

const (
	nonceSize = chacha20poly1305.NonceSizeX
	// replyOver is what one box adds to its data: nonce, type, tag.
	replyOver = nonceSize + 1 + aeadOver
	// MaxErrorText bounds the text of an error reply.
	MaxErrorText = 512
)

var replyTag = "umbra/onion/v2 reply"

// replyAAD binds a box to the size of the reply packet it travels in, so
// a relay that moves a reply into another bucket makes an inner box fail.
func replyAAD(size int) []byte {
	return binary.BigEndian.AppendUint32([]byte(replyTag), uint32(size))
}

// sealBox writes the box nonce ‖ XChaCha20-Poly1305(key, nonce, aad, typ ‖
// data) at the front of dst, which holds data already at dst[nonceSize+1:]
// and has room for the tag; it returns the box length. Every box has a
// fresh random 192-bit nonce, so a reply key that seals twice (a replay
// that slipped past the cache, or a reply and an error for one request)
// never reuses a nonce.
func sealBox(key []byte, typ byte, dst []byte, n, size int) (int, error) {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		return 0, err
	}
	nonce := dst[:nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return 0, err
	}
	pt := dst[nonceSize : nonceSize+1+n]
	pt[0] = typ
	ct := a.Seal(pt[:0], nonce, pt, replyAAD(size))
	return nonceSize + len(ct), nil
}

// replySize picks the packet size for a reply whose innermost content is n
// bytes, leaving room for every hop to add its box.
func replySize(n int) (int, error) {
	return bucket(lenPrefix + n + MaxHops*replyOver)
}

// ReplySize is the size of the reply packet FinalReply makes for a
// response of n bytes (an error if it does not fit the largest).
func ReplySize(n int) (int, error) { return replySize(n) }

// ReplyRoom is the largest response an exit can put in a reply packet of
// size bytes (leaving room for the boxes of three hops).
func ReplyRoom(size int) int { return size - lenPrefix - MaxHops*replyOver }

// ReplySizeFor is the size of the exit's reply carrying n bytes (a
// response, or an error text) for this layer: by content (ReplySize) if
// the client asked no size; else the size it asked if the reply fits,
// and the smallest of Classes that holds it if not.
func (l *Layer) ReplySizeFor(n int) (int, error) {
	if l.ReplySize == 0 {
		return replySize(n)
	}
	if n <= ReplyRoom(l.ReplySize) {
		return l.ReplySize, nil
	}
	return ClassSize(lenPrefix + n + MaxHops*replyOver)
}

// FinalReply is the exit's reply packet carrying response, of the size
// the layer's client asked for (ReplySizeFor).
func (l *Layer) FinalReply(response []byte) ([]byte, error) {
	size, err := l.ReplySizeFor(len(response))
	if err != nil {
		return nil, err
	}
	return newReply(l.ReplyKey, replyFinal, response, size)
}

// ErrorReply is the exit's error reply, of the size the layer's client
// asked for; msg is cut to MaxErrorText bytes.
func (l *Layer) ErrorReply(msg string) ([]byte, error) {
	msg = cutError(msg)
	size, err := l.ReplySizeFor(len(msg))
	if err != nil {
		return nil, err
	}
	return newReply(l.ReplyKey, replyError, []byte(msg), size)
}

// newReply makes a reply packet of size bytes whose box holds typ ‖ data.
func newReply(key []byte, typ byte, data []byte, size int) ([]byte, error) {
	if lenPrefix+len(data)+replyOver > size {
		return nil, fmt.Errorf("onion: a %d-byte reply does not fit %d bytes", len(data), size)
	}
	p := make([]byte, size)
	copy(p[lenPrefix+nonceSize+1:], data)
	n, err := sealBox(key, typ, p[lenPrefix:], len(data), size)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(p, uint32(n))
	if err := fillPadding(p[lenPrefix+n:]); err != nil {
		return nil, err
	}
	return p, nil
}

// FinalReply is the exit's reply packet carrying response, sized by its
// content (for a layer that asked no reply size; Layer.FinalReply applies
// the size asked).
func FinalReply(replyKey, response []byte) ([]byte, error) {
	size, err := replySize(len(response))
	if err != nil {
		return nil, err
	}
	return newReply(replyKey, replyFinal, response, size)
}

// ErrorReply is a hop's reply when it could not go on (next hop down...);
// msg is cut to MaxErrorText bytes. It is Everyday bytes, the size of
// every everyday reply (a relay does not know the size the client asked
// the exit for; clients ask Everyday).
func ErrorReply(replyKey []byte, msg string) ([]byte, error) {
	msg = cutError(msg)
	return newReply(replyKey, replyError, []byte(msg), Everyday)
}

func cutError(msg string) string {
	if len(msg) > MaxErrorText {
		msg = msg[:MaxErrorText]
	}
	return msg
}

// WrapReply re-encrypts the next hop's reply packet under this hop's key,
// into a new packet of the same size; packet is not modified.
func WrapReply(replyKey, packet []byte) ([]byte, error) {
	if !validSize(len(packet)) {
		return nil, fmt.Errorf("%w: size %d is not a packet size", ErrPacket, len(packet))
	}
	p := bytes.Clone(packet)
	if err := WrapReplyInPlace(replyKey, p); err != nil {
		return nil, err
	}
	return p, nil
}

// WrapReplyInPlace re-encrypts the next hop's reply packet under this
// hop's key in packet itself: the next hop's box moves back to make room
// for the nonce and the type, is sealed where it lies, and everything after
// the new box is fresh padding. On error packet may be garbled.
func WrapReplyInPlace(replyKey, packet []byte) error {
	inner, err := unpad(packet)
	if err != nil {
		return err
	}
	n := len(inner) + replyOver
	if lenPrefix+n > len(packet) {
		return fmt.Errorf("%w: reply too full to wrap", ErrPacket)
	}
	copy(packet[lenPrefix+nonceSize+1:], inner)
	m, err := sealBox(replyKey, replyInner, packet[lenPrefix:], len(inner), len(packet))
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint32(packet, uint32(m))
	return fillPadding(packet[lenPrefix+m:])
}

// HopError is a failure reported by a hop of the path.
type HopError struct {
	Hop int // 0 = guard
	Msg string
}

func (e *HopError) Error() string { return fmt.Sprintf("onion hop %d: %s", e.Hop, e.Msg) }

// LayerError is a reply whose box from hop Layer (0 = guard) does not
// authenticate. Only hop Layer-1 can have put it there (each box is sealed
// under a key only its hop and the client know), or any hop before that
// which forwarded the request somewhere else than the path said.
type LayerError struct{ Layer int }

func (e *LayerError) Error() string {
	return fmt.Sprintf("onion: bad packet: reply layer %d does not authenticate", e.Layer)
}

// Unwrap makes a LayerError an ErrPacket.
func (e *LayerError) Unwrap() error { return ErrPacket }

// BadReplyError is a box that authenticates (so hop Hop sealed it: only
// it and the client hold its key) but breaks the protocol: a final answer
// from a relay, an unknown type, or more boxes than the path has hops.
type BadReplyError struct {
	Hop int
	Msg string
}

func (e *BadReplyError) Error() string {
	return fmt.Sprintf("onion: bad packet: hop %d sealed %s", e.Hop, e.Msg)
}

// Unwrap makes a BadReplyError an ErrPacket.
func (e *BadReplyError) Unwrap() error { return ErrPacket }

// Open unwraps a reply packet, hop by hop, and returns the exit's response.
// A hop's error comes back as *HopError, a box that does not open as
// *LayerError (a malformed packet is the guard's: layer 0), a box that
// opens but breaks the protocol as *BadReplyError. packet is not modified
// (Open decrypts in one copy of it).
func (c *Circuit) Open(packet []byte) ([]byte, error) {
	box, err := unpad(packet)
	if err != nil {
		return nil, fmt.Errorf("%w (%w)", &LayerError{Layer: 0}, err)
	}
	box = bytes.Clone(box)
	aad := replyAAD(len(packet))
	for i, k := range c.replyKeys {
		a, err := chacha20poly1305.NewX(k)
		if err != nil {
			return nil, err
		}
		if len(box) < nonceSize+aeadOver {
			return nil, &LayerError{Layer: i}
		}
		ct := box[nonceSize:]
		pt, err := a.Open(ct[:0], box[:nonceSize], ct, aad)
		if err != nil || len(pt) == 0 {
			return nil, &LayerError{Layer: i}
		}
		switch pt[0] {
		case replyInner:
			box = pt[1:]
		case replyFinal:
			if i != len(c.replyKeys)-1 {
				return nil, &BadReplyError{Hop: i, Msg: "a final answer, but it is a relay"}
			}
			return pt[1:], nil
		case replyError:
			return nil, &HopError{Hop: i, Msg: string(pt[1:])}
		default:
			return nil, &BadReplyError{Hop: i, Msg: fmt.Sprintf("reply type %d", pt[0])}
		}
	}
	return nil, &BadReplyError{Hop: len(c.replyKeys) - 1, Msg: "an inner box, but it is the exit"}
}
