package files

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/reedsolomon"
)

// KeySize is the length of a file key.
const KeySize = 32

// Address is a share's address: the SHA-256 of a domain string and the
// share. A node checks it on store (so no one can overwrite another's
// share or choose an address apart from its content), and a reader
// checks every share it gets against the address it asked for.
type Address [32]byte

const addressDomain = "umbra/file-share/v1\x00"

// AddressOf is share's address.
func AddressOf(share []byte) Address {
	h := sha256.New()
	h.Write([]byte(addressDomain))
	h.Write(share)
	var a Address
	h.Sum(a[:0])
	return a
}

// ErrNotEnough is returned when fewer than K of a stripe's shares are
// at hand (after dropping those that do not match their address).
var ErrNotEnough = errors.New("files: not enough shares to rebuild a stripe")

// Coder encrypts and codes the stripes of one file, and rebuilds them. It
// is safe for concurrent use.
type Coder struct {
	p       Params
	size    int64
	stripes int
	aead    cipher.AEAD
	rs      reedsolomon.Encoder
}

// NewCoder returns the coder of a file of size bytes under key with p.
func NewCoder(key []byte, p Params, size int64) (*Coder, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("files: key of %d bytes", len(key))
	}
	if size < 0 || size > MaxFileSize {
		return nil, ErrTooLarge
	}
	if p.Stripes(size)*p.N > MaxShares {
		return nil, fmt.Errorf("files: more than %d shares", MaxShares)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	rs, err := reedsolomon.New(p.K, p.N-p.K, reedsolomon.WithAutoGoroutines(p.ShareSize))
	if err != nil {
		return nil, fmt.Errorf("files: coder %d of %d: %w", p.K, p.N, err)
	}
	return &Coder{p: p, size: size, stripes: p.Stripes(size), aead: aead, rs: rs}, nil
}

// Params are the coder's parameters.
func (c *Coder) Params() Params { return c.p }

// Stripes is the number of stripes of the file.
func (c *Coder) Stripes() int { return c.stripes }

// Span is where stripe i's plaintext lies in the file.
func (c *Coder) Span(i int) (off, n int64) {
	d := int64(c.p.StripeData())
	off = int64(i) * d
	return off, max(0, min(d, c.size-off))
}

// ad binds a stripe to its place in the file: a stripe cannot be moved,
// and the file cannot be cut short or made longer.
func (c *Coder) ad(i int) (nonce, ad []byte) {
	nonce = make([]byte, c.aead.NonceSize())
	binary.BigEndian.PutUint64(nonce[len(nonce)-8:], uint64(i))
	ad = binary.BigEndian.AppendUint64([]byte("umbra/file-stripe/v1\x00"), uint64(c.size))
	ad = binary.BigEndian.AppendUint32(ad, uint32(c.stripes))
	return nonce, ad
}

// Seal encrypts stripe i (its plaintext, exactly Span(i) bytes) and
// codes it into N shares of ShareSize bytes: the first K hold the
// ciphertext, the others parity.
func (c *Coder) Seal(i int, plain []byte) ([][]byte, error) {
	if i < 0 || i >= c.stripes {
		return nil, fmt.Errorf("files: stripe %d of %d", i, c.stripes)
	}
	if _, n := c.Span(i); int64(len(plain)) != n {
		return nil, fmt.Errorf("files: stripe %d has %d bytes, want %d", i, len(plain), n)
	}
	s := c.p.ShareSize
	buf := make([]byte, c.p.N*s)
	padded := buf[:c.p.StripeData()]
	copy(padded, plain) // the rest stays zero: padding
	nonce, ad := c.ad(i)
	c.aead.Seal(padded[:0], nonce, padded, ad)
	shares := make([][]byte, c.p.N)
	for j := range shares {
		shares[j] = buf[j*s : (j+1)*s : (j+1)*s]
	}
	if err := c.rs.Encode(shares); err != nil {
		return nil, fmt.Errorf("files: code stripe %d: %w", i, err)
	}
	return shares, nil
}

// Open rebuilds stripe i from shares (N entries, nil where missing),
// after checking each against want (its N addresses): a share that does
// not match is dropped like a missing one. It returns the stripe's
// plaintext, Span(i) bytes, and the indexes of the shares it dropped.
// shares is changed in place.
func (c *Coder) Open(i int, shares [][]byte, want []Address) (plain []byte, bad []int, err error) {
	if i < 0 || i >= c.stripes {
		return nil, nil, fmt.Errorf("files: stripe %d of %d", i, c.stripes)
	}
	if len(shares) != c.p.N || len(want) != c.p.N {
		return nil, nil, fmt.Errorf("files: %d shares and %d addresses for a stripe of %d", len(shares), len(want), c.p.N)
	}
	have := 0
	for j, sh := range shares {
		if sh == nil {
			continue
		}
		if len(sh) != c.p.ShareSize || AddressOf(sh) != want[j] {
			shares[j], bad = nil, append(bad, j)
			continue
		}
		have++
	}
	if have < c.p.K {
		return nil, bad, fmt.Errorf("%w: stripe %d has %d of the %d needed", ErrNotEnough, i, have, c.p.K)
	}
	if err := c.rs.ReconstructData(shares); err != nil {
		return nil, bad, fmt.Errorf("files: rebuild stripe %d: %w", i, err)
	}
	ct := make([]byte, 0, c.p.K*c.p.ShareSize)
	for _, sh := range shares[:c.p.K] {
		ct = append(ct, sh...)
	}
	nonce, ad := c.ad(i)
	pt, err := c.aead.Open(ct[:0], nonce, ct, ad)
	if err != nil {
		// Every share matched its address, so the sender coded it wrong.
		return nil, bad, fmt.Errorf("files: stripe %d does not decrypt: %w", i, err)
	}
	_, n := c.Span(i)
	for _, b := range pt[n:] {
		if b != 0 {
			return nil, bad, fmt.Errorf("files: stripe %d: padding is not zero", i)
		}
	}
	return pt[:n], bad, nil
}
