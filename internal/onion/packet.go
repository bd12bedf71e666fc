// Package onion builds and peels Umbra's onion packets: one HPKE layer per
// hop (DHKEM(X25519), HKDF-SHA256, ChaCha20-Poly1305, RFC 9180) to the hop's
// onion key with a fresh ephemeral key; a layer names only the next hop;
// every packet on every link is padded to one of a few fixed sizes; and
// replies are re-encrypted at every hop with a per-hop key exported from
// the layer's HPKE context, so no reply byte string appears on two links.
//
// Request packet on a link:  be32(n) ‖ layer (n bytes) ‖ random padding, of a bucket size.
// Layer:                     enc (32) ‖ HPKE.Seal(aad, CBOR{next, inner}),
//
//	aad = "umbra/onion/v1 layer" ‖ be32(packet size).
//
// Reply packet on a link:    be32(n) ‖ box (n bytes) ‖ random padding, of a bucket size.
// Box:                       ChaCha20-Poly1305(replyKey, nonce 0, type ‖ data).
package onion

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/umbra-im/umbra/internal/wire"
)

// Sizes is the set of packet sizes every link carries (requests and
// replies). The largest holds a 256 KiB message or a 1 MiB retrieve answer.
var Sizes = []int{2 << 10, 8 << 10, 32 << 10, 128 << 10, 320 << 10, 1280 << 10}

// MaxPacket is the largest packet size.
var MaxPacket = Sizes[len(Sizes)-1]

// MaxHops bounds a path.
const MaxHops = 3

const (
	encSize   = 32
	aeadOver  = 16
	lenPrefix = 4
)

var (
	info = []byte("umbra/onion/v1")
	// Each layer's HPKE aad is "umbra/onion/v1 layer" ‖ be32(packet
	// size): the size is authenticated, so a relay that moves a packet
	// into another bucket (marking it for later hops) makes the next peel
	// fail.
	aadTag = "umbra/onion/v1 layer"
	kem    = hpke.DHKEM(ecdh.X25519())
	kdf    = hpke.HKDFSHA256()
	aead   = hpke.ChaCha20Poly1305()
)

// ErrPacket wraps every reason a packet is refused.
var ErrPacket = errors.New("onion: bad packet")

// bucket returns the smallest size that holds n bytes.
func bucket(n int) (int, error) {
	for _, s := range Sizes {
		if n <= s {
			return s, nil
		}
	}
	return 0, fmt.Errorf("onion: %d bytes exceed the largest packet (%d)", n, MaxPacket)
}

// pad frames b into a packet of exactly size bytes with random padding.
func pad(b []byte, size int) ([]byte, error) {
	if lenPrefix+len(b) > size {
		return nil, fmt.Errorf("onion: %d bytes do not fit a %d-byte packet", len(b), size)
	}
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p, uint32(len(b)))
	copy(p[lenPrefix:], b)
	if err := fillPadding(p[lenPrefix+len(b):]); err != nil {
		return nil, err
	}
	return p, nil
}

// fillPadding fills b, which must be zeroed, with random bytes: the
// AES-256-CTR keystream under a fresh key from crypto/rand (a CSPRNG in
// the manner of NIST's CTR_DRBG). For the large buckets it is about ten
// times faster than reading crypto/rand, and padding is most of a packet.
func fillPadding(b []byte) error {
	if len(b) < 256 {
		_, err := rand.Read(b)
		return err
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return err
	}
	blk, err := aes.NewCipher(key[:])
	if err != nil {
		return err
	}
	var iv [aes.BlockSize]byte
	cipher.NewCTR(blk, iv[:]).XORKeyStream(b, b)
	return nil
}

// unpad checks a packet's size and returns its content.
func unpad(p []byte) ([]byte, error) {
	if !validSize(len(p)) {
		return nil, fmt.Errorf("%w: size %d is not a packet size", ErrPacket, len(p))
	}
	n := binary.BigEndian.Uint32(p)
	if int(n) > len(p)-lenPrefix {
		return nil, fmt.Errorf("%w: length %d exceeds packet", ErrPacket, n)
	}
	return p[lenPrefix : lenPrefix+int(n)], nil
}

func validSize(n int) bool {
	for _, s := range Sizes {
		if n == s {
			return true
		}
	}
	return false
}

// layerBody is what one hop decrypts.
type layerBody struct {
	Next  []byte `cbor:"1,keyasint,omitempty"` // next hop's peer ID; empty at the exit
	Inner []byte `cbor:"2,keyasint"`           // next layer, or the request at the exit
}

// Hop is a node on a path as the client knows it.
type Hop struct {
	ID       []byte // peer ID bytes
	OnionKey []byte // X25519 public key from the node's record
}

// Circuit is what the client keeps to read the reply of one request.
type Circuit struct {
	replyKeys [][]byte // per hop, guard first
}

// Build wraps request (a frame kind ‖ body) for the path (guard first, exit
// last) and returns the packet to send to the guard.
func Build(path []Hop, request []byte) ([]byte, *Circuit, error) {
	if len(path) == 0 || len(path) > MaxHops {
		return nil, nil, fmt.Errorf("onion: a path has 1 to %d hops", MaxHops)
	}
	// The packet size is in every layer's aad, and the size is the bucket
	// of the finished layers, whose length is known before sealing.
	total := layersLen(path, len(request))
	size, err := bucket(lenPrefix + total)
	if err != nil {
		return nil, nil, err
	}
	c, inner, err := buildLayers(path, request, size)
	if err != nil {
		return nil, nil, err
	}
	if len(inner) != total {
		return nil, nil, fmt.Errorf("onion: internal error: layers are %d bytes, %d expected", len(inner), total)
	}
	p, err := pad(inner, size)
	return p, c, err
}

// layersLen is the length of the outermost layer for a request of n bytes
// on path: each layer is enc ‖ AEAD(CBOR{next, inner}), and the canonical
// CBOR of a layer body depends only on the lengths (layerbody.go).
func layersLen(path []Hop, n int) int {
	for i := len(path) - 1; i >= 0; i-- {
		body := 1 + 1 + bytesHeadLen(n) + n // map head, key 2, inner
		if i < len(path)-1 {
			next := len(path[i+1].ID)
			body += 1 + bytesHeadLen(next) + next // key 1, next
		}
		n = encSize + body + aeadOver
	}
	return n
}

// bytesHeadLen is the length of a canonical CBOR byte-string head.
func bytesHeadLen(n int) int {
	switch {
	case n < 24:
		return 1
	case n < 1<<8:
		return 2
	case n < 1<<16:
		return 3
	case n < 1<<32:
		return 5
	}
	return 9
}

func layerAAD(size int) []byte {
	return binary.BigEndian.AppendUint32([]byte(aadTag), uint32(size))
}

// buildLayers seals the layers of path around request for a packet of
// size bytes, innermost first, and returns the outermost layer.
func buildLayers(path []Hop, request []byte, size int) (*Circuit, []byte, error) {
	aad := layerAAD(size)
	c := &Circuit{replyKeys: make([][]byte, len(path))}
	inner := request
	for i := len(path) - 1; i >= 0; i-- {
		pub, err := ecdh.X25519().NewPublicKey(path[i].OnionKey)
		if err != nil {
			return nil, nil, fmt.Errorf("onion: hop %d key: %w", i, err)
		}
		hpub, err := hpke.NewDHKEMPublicKey(pub)
		if err != nil {
			return nil, nil, err
		}
		enc, sender, err := hpke.NewSender(hpub, kdf, aead, info)
		if err != nil {
			return nil, nil, fmt.Errorf("onion: hop %d: %w", i, err)
		}
		body := layerBody{Inner: inner}
		if i < len(path)-1 {
			body.Next = path[i+1].ID
		}
		pt, err := wire.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		ct, err := sender.Seal(aad, pt)
		if err != nil {
			return nil, nil, err
		}
		if c.replyKeys[i], err = sender.Export("umbra/onion/v1 reply", chacha20poly1305.KeySize); err != nil {
			return nil, nil, err
		}
		inner = append(enc, ct...)
	}
	return c, inner, nil
}

// Layer is what a hop learns by peeling its layer.
type Layer struct {
	Next     []byte   // next hop's peer ID, or nil at the exit
	Packet   []byte   // the packet to forward (same size as received), if Next != nil
	Request  []byte   // the request, at the exit
	ReplyKey []byte   // this hop's key for wrapping the reply
	Tag      [32]byte // replay tag, unique per layer
}

// Peel removes this hop's layer with one of the node's onion keys (current
// first, then previous ones after a rotation).
func Peel(keys []*ecdh.PrivateKey, packet []byte) (*Layer, error) {
	layer, err := unpad(packet)
	if err != nil {
		return nil, err
	}
	if len(layer) < encSize+aeadOver {
		return nil, fmt.Errorf("%w: short layer", ErrPacket)
	}
	enc, ct := layer[:encSize], layer[encSize:]
	aad := layerAAD(len(packet))
	for _, k := range keys {
		hk, err := hpke.NewDHKEMPrivateKey(k)
		if err != nil {
			return nil, err
		}
		r, err := hpke.NewRecipient(enc, hk, kdf, aead, info)
		if err != nil {
			continue
		}
		pt, err := r.Open(aad, ct)
		if err != nil {
			continue
		}
		body, err := decodeLayerBody(pt)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrPacket, err)
		}
		l := &Layer{Next: body.Next}
		if l.ReplyKey, err = r.Export("umbra/onion/v1 reply", chacha20poly1305.KeySize); err != nil {
			return nil, err
		}
		tag, err := r.Export("umbra/onion/v1 replay", 32)
		if err != nil {
			return nil, err
		}
		copy(l.Tag[:], tag)
		if len(body.Next) == 0 {
			l.Request = body.Inner
			return l, nil
		}
		if l.Packet, err = pad(body.Inner, len(packet)); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrPacket, err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("%w: cannot decrypt (unknown or rotated onion key, or corrupt)", ErrPacket)
}

// Reply types inside a box.
const (
	replyInner = 1 // data is the next hop's box
	replyFinal = 2 // data is the exit's response frame
	replyError = 3 // data is an error text from this hop
)

func seal(key []byte, typ byte, data []byte) ([]byte, error) {
	a, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	pt := make([]byte, 0, 1+len(data))
	pt = append(append(pt, typ), data...)
	// Each reply key seals exactly one box, so a fixed nonce is safe.
	return a.Seal(nil, make([]byte, a.NonceSize()), pt, nil), nil
}

// replySize picks the packet size for a reply whose innermost content is n
// bytes, leaving room for every hop to add its layer.
func replySize(n int) (int, error) {
	return bucket(lenPrefix + n + MaxHops*(aeadOver+1))
}

// FinalReply is the exit's reply packet carrying response.
func FinalReply(replyKey, response []byte) ([]byte, error) {
	size, err := replySize(len(response))
	if err != nil {
		return nil, err
	}
	box, err := seal(replyKey, replyFinal, response)
	if err != nil {
		return nil, err
	}
	return pad(box, size)
}

// ErrorReply is a hop's reply when it could not go on (next hop down...).
func ErrorReply(replyKey []byte, msg string) ([]byte, error) {
	if len(msg) > 512 {
		msg = msg[:512]
	}
	box, err := seal(replyKey, replyError, []byte(msg))
	if err != nil {
		return nil, err
	}
	size, _ := replySize(len(msg))
	return pad(box, size)
}

// WrapReply re-encrypts the next hop's reply packet under this hop's key,
// into a packet of the same size. The box is sealed in place in the new
// packet: one allocation of the packet size.
func WrapReply(replyKey, packet []byte) ([]byte, error) {
	inner, err := unpad(packet)
	if err != nil {
		return nil, err
	}
	a, err := chacha20poly1305.New(replyKey)
	if err != nil {
		return nil, err
	}
	n := 1 + len(inner) + aeadOver
	if lenPrefix+n > len(packet) {
		return nil, fmt.Errorf("%w: reply too full to wrap", ErrPacket)
	}
	p := make([]byte, len(packet))
	binary.BigEndian.PutUint32(p, uint32(n))
	pt := p[lenPrefix : lenPrefix+1+len(inner)]
	pt[0] = replyInner
	copy(pt[1:], inner)
	var nonce [chacha20poly1305.NonceSize]byte // each reply key seals one box
	a.Seal(pt[:0], nonce[:], pt, nil)
	if err := fillPadding(p[lenPrefix+n:]); err != nil {
		return nil, err
	}
	return p, nil
}

// HopError is a failure reported by a hop of the path.
type HopError struct {
	Hop int // 0 = guard
	Msg string
}

func (e *HopError) Error() string { return fmt.Sprintf("onion hop %d: %s", e.Hop, e.Msg) }

// LayerError is a reply whose layer from hop Layer (0 = guard) does not
// authenticate: that hop, or the one before it, sent garbage back.
type LayerError struct{ Layer int }

func (e *LayerError) Error() string {
	return fmt.Sprintf("onion: bad packet: reply layer %d does not authenticate", e.Layer)
}

// Unwrap makes a LayerError an ErrPacket.
func (e *LayerError) Unwrap() error { return ErrPacket }

// Open unwraps a reply packet, hop by hop, and returns the exit's response.
// A hop's error comes back as *HopError.
func (c *Circuit) Open(packet []byte) ([]byte, error) {
	box, err := unpad(packet)
	if err != nil {
		return nil, err
	}
	for i, k := range c.replyKeys {
		a, err := chacha20poly1305.New(k)
		if err != nil {
			return nil, err
		}
		pt, err := a.Open(nil, make([]byte, a.NonceSize()), box, nil)
		if err != nil || len(pt) == 0 {
			return nil, &LayerError{Layer: i}
		}
		switch pt[0] {
		case replyInner:
			box = pt[1:]
		case replyFinal:
			if i != len(c.replyKeys)-1 {
				return nil, fmt.Errorf("%w: final reply from hop %d", ErrPacket, i)
			}
			return pt[1:], nil
		case replyError:
			return nil, &HopError{Hop: i, Msg: string(pt[1:])}
		default:
			return nil, fmt.Errorf("%w: reply type %d", ErrPacket, pt[0])
		}
	}
	return nil, fmt.Errorf("%w: reply has more layers than the path", ErrPacket)
}
