// Package onion builds and peels Umbra's onion packets: one layer per hop
// to the hop's onion key with a fresh ephemeral key (HPKE, RFC 9180:
// DHKEM(X25519), HKDF-SHA256, export-only); a layer names only the next
// hop; every packet on every link is padded to one of a few fixed sizes
// (a client uses only Classes, and Everyday for everyday traffic, both
// ways: the exit pads its reply to the size the client asks in its layer);
// and replies are re-encrypted at every hop with a per-hop key exported
// from the layer's HPKE context, so no reply byte string appears on two
// links.
//
// Request packet on a link:  be32(n) ‖ layer (n bytes) ‖ random padding, of a bucket size.
// Layer:                     enc (32) ‖ confirm (16) ‖ ChaCha20-Poly1305(layerKey, nonce 0, aad, CBOR{[0: delay], [1: next], 2: inner, [3: reply size]}),
//
//	aad = "umbra/onion/v2 layer" ‖ be32(packet size).
//
// Reply packet on a link:    be32(n) ‖ box (n bytes) ‖ random padding, of a bucket size.
// Box:                       nonce (24) ‖ XChaCha20-Poly1305(replyKey, nonce, aad, type ‖ data),
//
//	aad = "umbra/onion/v2 reply" ‖ be32(packet size).
//
// layerKey, confirm, replyKey and the replay tag are HPKE exports of the
// layer's context. A relay peels and re-wraps in the buffer it received
// (PeelInPlace, WrapReplyInPlace), so relaying allocates no packet-sized
// buffer of its own.
package onion

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sizes is the set of packet sizes every link carries (requests and
// replies). The largest holds a 256 KiB message or a 1 MiB retrieve answer.
var Sizes = []int{2 << 10, 8 << 10, 32 << 10, 128 << 10, 320 << 10, 1280 << 10}

// MaxPacket is the largest packet size.
var MaxPacket = Sizes[len(Sizes)-1]

// Classes are the only packet sizes a client sends or receives (a subset
// of Sizes, the same for every client): the first, 8 KiB, carries the
// everyday workload (texts of a few KiB, receipts, 4 KiB first-contact
// messages, reads capped to fit, deletes, node lists); the larger ones
// carry larger messages and reads of them. Relays accept every size in
// Sizes.
var Classes = []int{8 << 10, 128 << 10, 1280 << 10}

// Everyday is the packet size of the everyday workload, both ways.
var Everyday = Classes[0]

// Options chooses the sizes of a request packet and of its reply.
type Options struct {
	// Sizes are the request packet sizes to pick from, ascending, each
	// one of Sizes; the smallest that holds the request is used. Nil
	// means Sizes.
	Sizes []int
	// ReplySize asks the exit for a reply packet of at least this size
	// (one of Sizes): a reply that fits is padded to it, a larger one
	// takes the smallest of Classes that holds it. It travels in the
	// exit's layer, authenticated with the layer. Zero leaves the reply
	// sized by its content (the smallest of Sizes that holds it).
	ReplySize int
}

// ClientOptions is the packet policy of every client: requests and
// replies in Classes, the reply at least Everyday, so that every
// everyday request and every everyday reply is exactly Everyday bytes.
var ClientOptions = Options{Sizes: Classes, ReplySize: Everyday}

// MaxHops bounds a path.
const MaxHops = 3

// MaxNextLen bounds the next hop's ID in a layer (a libp2p peer ID is 38
// bytes for an Ed25519 key, 34 for a hashed one).
const MaxNextLen = 128

const (
	encSize     = 32
	confirmSize = 16 // key confirmation: picks the onion key before decrypting in place
	aeadOver    = 16
	lenPrefix   = 4
	keySize     = chacha20poly1305.KeySize
)

// HPKE export labels, one secret each per layer.
const (
	labelLayer   = "umbra/onion/v2 layer"   // ChaCha20-Poly1305 key of the layer body
	labelConfirm = "umbra/onion/v2 confirm" // key confirmation value in the clear
	labelReply   = "umbra/onion/v2 reply"   // XChaCha20-Poly1305 key of this hop's reply boxes
	labelReplay  = "umbra/onion/v2 replay"  // replay tag
)

var (
	info = []byte("umbra/onion/v2")
	// Each layer's aad is "umbra/onion/v2 layer" ‖ be32(packet size): the
	// size is authenticated, so a relay that moves a packet into another
	// bucket (marking it for later hops) makes the next peel fail.
	aadTag = "umbra/onion/v2 layer"
	kem    = hpke.DHKEM(ecdh.X25519())
	kdf    = hpke.HKDFSHA256()
	// The layer's AEAD is keyed by an exported secret rather than HPKE's
	// own Seal, so that a relay can decrypt in place (crypto/hpke's Open
	// always allocates); RFC 9180 §5.3 provides the export-only mode for
	// this.
	aead = hpke.ExportOnly()
)

// ErrPacket wraps every reason a packet is refused.
var ErrPacket = errors.New("onion: bad packet")

// bucket returns the smallest size of Sizes that holds n bytes.
func bucket(n int) (int, error) { return bucketOf(Sizes, n) }

// bucketOf returns the smallest size of sizes (ascending) that holds n
// bytes.
func bucketOf(sizes []int, n int) (int, error) {
	for _, s := range sizes {
		if n <= s {
			return s, nil
		}
	}
	return 0, fmt.Errorf("onion: %d bytes exceed the largest packet (%d)", n, sizes[len(sizes)-1])
}

// ClassSize is the smallest of Classes that holds n bytes.
func ClassSize(n int) (int, error) { return bucketOf(Classes, n) }

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

// fillPadding overwrites b with random bytes: the AES-256-CTR keystream
// under a fresh key from crypto/rand (a CSPRNG in the manner of NIST's
// CTR_DRBG). For the large buckets it is about ten times faster than
// reading crypto/rand, and padding is most of a packet.
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
	clear(b)
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

// Hop is a node on a path as the client knows it.
type Hop struct {
	ID       []byte // peer ID bytes
	OnionKey []byte // X25519 public key from the node's record
	// Delay is the mix delay asked of this hop (0 to MaxDelay): it holds
	// the packet that long before forwarding it or, at the exit, before
	// running the request. Mix puts the delay in the layer (key 0 of
	// the layer body) even when it is 0, so that every mixed layer has
	// one length; a layer with neither carries no key 0.
	Delay time.Duration
	Mix   bool
}

// hasDelay reports whether h's layer carries a delay (key 0).
func (h Hop) hasDelay() bool { return h.Mix || h.Delay > 0 }

// Circuit is what the client keeps to read the reply of one request.
type Circuit struct {
	replyKeys [][]byte // per hop, guard first
}

// Build wraps request (a frame kind ‖ body) for the path (guard first, exit
// last) and returns the packet to send to the guard, in the smallest of
// Sizes that holds it, asking no reply size (BuildWith with zero Options).
// Clients use BuildWith(path, request, ClientOptions).
func Build(path []Hop, request []byte) ([]byte, *Circuit, error) {
	return BuildWith(path, request, Options{})
}

// BuildWith is Build with the packet sizes of opt. The layers are sealed
// in place in the packet, innermost first.
func BuildWith(path []Hop, request []byte, opt Options) ([]byte, *Circuit, error) {
	sizes := opt.Sizes
	if sizes == nil {
		sizes = Sizes
	}
	for _, s := range sizes {
		if !validSize(s) {
			return nil, nil, fmt.Errorf("onion: %d is not a packet size", s)
		}
	}
	if opt.ReplySize != 0 && !validSize(opt.ReplySize) {
		return nil, nil, fmt.Errorf("onion: reply size %d is not a packet size", opt.ReplySize)
	}
	if len(path) == 0 || len(path) > MaxHops {
		return nil, nil, fmt.Errorf("onion: a path has 1 to %d hops", MaxHops)
	}
	for i, h := range path[1:] {
		if len(h.ID) == 0 || len(h.ID) > MaxNextLen {
			return nil, nil, fmt.Errorf("onion: hop %d has an ID of %d bytes", i+1, len(h.ID))
		}
	}
	for i, h := range path {
		if h.Delay < 0 || h.Delay > MaxDelay {
			return nil, nil, fmt.Errorf("onion: hop %d: delay %v outside 0 to %v", i, h.Delay, MaxDelay)
		}
	}
	// The packet size is in every layer's aad, and the size is the bucket
	// of the finished layers, whose length is known before sealing.
	total := layersLen(path, len(request), opt.ReplySize)
	size, err := bucketOf(sizes, lenPrefix+total)
	if err != nil {
		return nil, nil, err
	}
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p, uint32(total))
	c, err := sealLayers(path, request, opt.ReplySize, p[lenPrefix:lenPrefix+total], size)
	if err != nil {
		return nil, nil, err
	}
	if err := fillPadding(p[lenPrefix+total:]); err != nil {
		return nil, nil, err
	}
	return p, c, nil
}

// layerOver is what one layer adds around its body.
const layerOver = encSize + confirmSize + aeadOver

// layersLen is the length of the outermost layer for a request of n bytes
// on path whose exit is asked for a reply of reply bytes (0: none).
func layersLen(path []Hop, n, reply int) int {
	for i := len(path) - 1; i >= 0; i-- {
		next, rep := hopFields(path, i, reply)
		n += layerOver + bodyHeadLen(path[i].hasDelay(), next, n) + bodyTailLen(rep)
	}
	return n
}

// headLen is the length of a canonical CBOR head carrying v (an
// unsigned integer's whole encoding, or a byte string's head).
func headLen(v uint64) int {
	switch {
	case v < 24:
		return 1
	case v < 1<<8:
		return 2
	case v < 1<<16:
		return 3
	case v < 1<<32:
		return 5
	}
	return 9
}

// appendHead appends the canonical CBOR head of major type major (0x00
// unsigned integer, 0x40 byte string) carrying v.
func appendHead(b []byte, major byte, v uint64) []byte {
	switch {
	case v < 24:
		return append(b, major|byte(v))
	case v < 1<<8:
		return append(b, major|0x18, byte(v))
	case v < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, major|0x19), uint16(v))
	case v < 1<<32:
		return binary.BigEndian.AppendUint32(append(b, major|0x1a), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, major|0x1b), v)
}

// uintLen is the length of the canonical CBOR of an unsigned integer.
func uintLen(v uint64) int { return headLen(v) }

// appendUint appends the canonical CBOR of an unsigned integer.
func appendUint(b []byte, v uint64) []byte { return appendHead(b, 0x00, v) }

// bytesHeadLen is the length of a canonical CBOR byte-string head.
func bytesHeadLen(n int) int { return headLen(uint64(n)) }

// appendBytesHead appends a canonical CBOR byte-string head for n bytes.
func appendBytesHead(b []byte, n int) []byte { return appendHead(b, 0x40, uint64(n)) }

func layerAAD(size int) []byte {
	return binary.BigEndian.AppendUint32([]byte(aadTag), uint32(size))
}

// sealLayers seals the layers of path around request into out, which is
// exactly layersLen long, for a packet of size bytes. Layer i occupies a
// suffix-trimmed window of out: enc ‖ confirm ‖ body head, then layer i+1
// (or the request), then the tag.
func sealLayers(path []Hop, request []byte, reply int, out []byte, size int) (*Circuit, error) {
	aad := layerAAD(size)
	c := &Circuit{replyKeys: make([][]byte, len(path))}
	// Where each layer starts, how long it is and how long its inner
	// bytes are.
	starts := make([]int, len(path))
	lens := make([]int, len(path))
	inners := make([]int, len(path))
	off, n := 0, len(out)
	for i := range path {
		next, rep := hopFields(path, i, reply)
		starts[i], lens[i], inners[i] = off, n, innerLen(n, path[i].hasDelay(), next, rep)
		off += encSize + confirmSize + bodyHeadLen(path[i].hasDelay(), next, inners[i])
		n = inners[i]
	}
	if n != len(request) {
		return nil, fmt.Errorf("onion: internal error: %d bytes left for a %d-byte request", n, len(request))
	}
	copy(out[off:], request)
	for i := len(path) - 1; i >= 0; i-- {
		pub, err := ecdh.X25519().NewPublicKey(path[i].OnionKey)
		if err != nil {
			return nil, fmt.Errorf("onion: hop %d key: %w", i, err)
		}
		hpub, err := hpke.NewDHKEMPublicKey(pub)
		if err != nil {
			return nil, err
		}
		enc, sender, err := hpke.NewSender(hpub, kdf, aead, info)
		if err != nil {
			return nil, fmt.Errorf("onion: hop %d: %w", i, err)
		}
		layerKey, err := sender.Export(labelLayer, keySize)
		if err != nil {
			return nil, err
		}
		confirm, err := sender.Export(labelConfirm, confirmSize)
		if err != nil {
			return nil, err
		}
		if c.replyKeys[i], err = sender.Export(labelReply, keySize); err != nil {
			return nil, err
		}
		var next []byte
		if i < len(path)-1 {
			next = path[i+1].ID
		}
		_, rep := hopFields(path, i, reply)
		l := out[starts[i] : starts[i]+lens[i]]
		copy(l, enc)
		copy(l[encSize:], confirm)
		body := l[encSize+confirmSize : len(l)-aeadOver]
		var delay []byte
		if path[i].hasDelay() {
			d := encodeDelay(path[i].Delay)
			delay = d[:]
		}
		head := appendBodyHead(body[:0], delay, next, rep, inners[i])
		// The reply size trails the inner bytes (key 3 sorts after key
		// 2); at the exit, after the request.
		appendBodyTail(body[len(head)+inners[i]:][:0], rep)
		a, err := chacha20poly1305.New(layerKey)
		if err != nil {
			return nil, err
		}
		var nonce [chacha20poly1305.NonceSize]byte // each layer key seals once
		a.Seal(body[:0], nonce[:], body, aad)
	}
	return c, nil
}

// innerLen is the length of the inner bytes of a layer of n bytes whose
// next hop ID is next bytes long, with or without a delay, and whose reply
// size is reply (the inverse of one step of layersLen).
func innerLen(n int, delay bool, next, reply int) int {
	rest := n - layerOver - bodyTailLen(reply)
	// rest = head(inner) + inner, and head grows with inner: try each
	// head length from the shortest.
	for _, h := range []int{1, 2, 3, 5, 9} {
		inner := rest - (bodyHeadLen(delay, next, 0) - 1) - h
		if inner >= 0 && bytesHeadLen(inner) == h {
			return inner
		}
	}
	return -1
}

// Layer is what a hop learns by peeling its layer.
type Layer struct {
	Next    []byte // next hop's peer ID, or nil at the exit
	Packet  []byte // the packet to forward (same size as received), if Next != nil
	Request []byte // the request, at the exit
	// ReplySize is the reply size the client asked for (one of Sizes), at
	// the exit; 0 if it asked none. ReplySizeFor applies it.
	ReplySize int
	ReplyKey  []byte   // this hop's key for wrapping the reply
	Tag       [32]byte // replay tag, unique per layer
	KeyIndex  int      // which of the keys given to Peel opened the layer
	// Delay is the mix delay this hop's layer asks for (key 0), capped at
	// MaxDelay; 0 for none. A relay holds the packet that long before
	// forwarding it, the exit before running the request.
	Delay time.Duration
}

// Peel removes this hop's layer with one of the node's onion keys (current
// first, then previous ones after a rotation). It does not modify packet.
func Peel(keys []*ecdh.PrivateKey, packet []byte) (*Layer, error) {
	return PeelInPlace(keys, bytes.Clone(packet))
}

// PeelInPlace is Peel decrypting in packet itself: on success Layer.Packet
// (the packet to forward, re-padded to the same size) or Layer.Request is
// a window of packet; on failure packet may be garbled. A relay that owns
// the buffer it received uses it so that relaying allocates no packet-sized
// buffer.
func PeelInPlace(keys []*ecdh.PrivateKey, packet []byte) (*Layer, error) {
	layer, err := unpad(packet)
	if err != nil {
		return nil, err
	}
	if len(layer) < layerOver {
		return nil, fmt.Errorf("%w: short layer", ErrPacket)
	}
	enc, confirm := layer[:encSize], layer[encSize:encSize+confirmSize]
	ct := layer[encSize+confirmSize:]
	for i, k := range keys {
		hk, err := hpke.NewDHKEMPrivateKey(k)
		if err != nil {
			return nil, err
		}
		r, err := hpke.NewRecipient(enc, hk, kdf, aead, info)
		if err != nil {
			continue
		}
		want, err := r.Export(labelConfirm, confirmSize)
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(want, confirm) != 1 {
			continue // another key's layer (or garbage)
		}
		return openLayer(r, i, packet, ct)
	}
	return nil, fmt.Errorf("%w: cannot decrypt (unknown or rotated onion key, or corrupt)", ErrPacket)
}

// openLayer decrypts ct, a window of packet, with the layer key of r and
// makes the layer: the inner layer moves to the front of packet, which is
// re-padded, or the request stays where it is.
func openLayer(r *hpke.Recipient, keyIndex int, packet, ct []byte) (*Layer, error) {
	layerKey, err := r.Export(labelLayer, keySize)
	if err != nil {
		return nil, err
	}
	a, err := chacha20poly1305.New(layerKey)
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	pt, err := a.Open(ct[:0], nonce[:], ct, layerAAD(len(packet)))
	if err != nil {
		return nil, fmt.Errorf("%w: layer does not authenticate", ErrPacket)
	}
	body, err := decodeLayerBody(pt)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPacket, err)
	}
	if len(body.Next) > MaxNextLen {
		return nil, fmt.Errorf("%w: next hop ID of %d bytes", ErrPacket, len(body.Next))
	}
	if body.ReplySize != 0 && (len(body.Next) > 0 || !validSize(body.ReplySize)) {
		return nil, fmt.Errorf("%w: reply size %d in a layer (only the exit's may ask one of the packet sizes)", ErrPacket, body.ReplySize)
	}
	l := &Layer{KeyIndex: keyIndex}
	if l.Delay, err = body.delay(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPacket, err)
	}
	if l.ReplyKey, err = r.Export(labelReply, keySize); err != nil {
		return nil, err
	}
	tag, err := r.Export(labelReplay, len(l.Tag))
	if err != nil {
		return nil, err
	}
	copy(l.Tag[:], tag)
	if len(body.Next) == 0 {
		l.Request = body.Inner
		l.ReplySize = body.ReplySize
		return l, nil
	}
	// Next lies in the bytes the inner layer is about to overwrite.
	l.Next = bytes.Clone(body.Next)
	if lenPrefix+len(body.Inner) > len(packet) {
		return nil, fmt.Errorf("%w: inner layer does not fit", ErrPacket)
	}
	n := copy(packet[lenPrefix:], body.Inner)
	binary.BigEndian.PutUint32(packet, uint32(n))
	if err := fillPadding(packet[lenPrefix+n:]); err != nil {
		return nil, err
	}
	l.Packet = packet
	return l, nil
}
