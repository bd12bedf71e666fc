package backup

import (
	"bufio"
	"crypto/hmac"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Reader reads a backup: Meta first, then Next until io.EOF.
type Reader struct {
	r    *bufio.Reader
	aead interface {
		Open(dst, nonce, ct, ad []byte) ([]byte, error)
	}
	h     *Header
	chunk []byte // decrypted, not yet consumed
	ctr   uint64
	last  bool // the last chunk was read
	ctbuf []byte

	meta    *Meta
	entries uint64
	done    bool
}

// NewReader reads and checks the header of a backup with passphrase. A
// passphrase that does not match returns ErrWrongPassphrase.
func NewReader(r io.Reader, passphrase string) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	hb := make([]byte, HeaderSize)
	n, err := io.ReadFull(br, hb)
	if err != nil && n < len(magic) {
		return nil, ErrNotBackup
	}
	h, err := ParseHeader(hb[:n])
	if err != nil {
		return nil, err
	}
	if passphrase == "" {
		return nil, ErrEmptyPassphrase
	}
	check, key, err := h.keys(passphrase)
	if err != nil {
		return nil, err
	}
	ok := hmac.Equal(h.mac(check), h.MAC[:])
	clear(check)
	if !ok {
		clear(key)
		return nil, ErrWrongPassphrase
	}
	aead, err := chacha20poly1305.New(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	return &Reader{r: br, aead: aead, h: h, ctbuf: make([]byte, int(h.ChunkSize)+tagSize)}, nil
}

// Header is the backup's header.
func (r *Reader) Header() *Header { return r.h }

// nextChunk decrypts the next chunk; a chunk is the last one when nothing
// follows it.
func (r *Reader) nextChunk() error {
	if r.last {
		return fmt.Errorf("%w: records run past the end", ErrDamaged)
	}
	n, err := io.ReadFull(r.r, r.ctbuf)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		r.last = true
	case err != nil:
		return err
	default:
		if _, err := r.r.Peek(1); errors.Is(err, io.EOF) {
			r.last = true
		} else if err != nil {
			return err
		}
	}
	if n < tagSize {
		return fmt.Errorf("%w: truncated", ErrDamaged)
	}
	pt, err := r.aead.Open(r.ctbuf[:0], nonce(r.ctr, r.last), r.ctbuf[:n], r.h.raw[:])
	if err != nil {
		return fmt.Errorf("%w: chunk %d does not authenticate", ErrDamaged, r.ctr)
	}
	r.ctr++
	r.chunk = pt
	return nil
}

// read fills p from the decrypted stream.
func (r *Reader) read(p []byte) error {
	for len(p) > 0 {
		if len(r.chunk) == 0 {
			if err := r.nextChunk(); err != nil {
				return err
			}
			if len(r.chunk) == 0 && !r.last {
				return fmt.Errorf("%w: empty chunk", ErrDamaged)
			}
			continue
		}
		n := copy(p, r.chunk)
		r.chunk = r.chunk[n:]
		p = p[n:]
	}
	return nil
}

func (r *Reader) byte1() (byte, error) {
	var b [1]byte
	err := r.read(b[:])
	return b[0], err
}

// Meta reads the meta record, which comes first.
func (r *Reader) Meta() (*Meta, error) {
	if r.meta != nil {
		return r.meta, nil
	}
	t, err := r.byte1()
	if err != nil {
		return nil, err
	}
	if t != recMeta {
		return nil, fmt.Errorf("%w: record %d before the meta record", ErrDamaged, t)
	}
	var l [4]byte
	if err := r.read(l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(l[:])
	if n > MaxMeta {
		return nil, fmt.Errorf("%w: meta of %d bytes", ErrDamaged, n)
	}
	j := make([]byte, n)
	if err := r.read(j); err != nil {
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, fmt.Errorf("%w: meta: %v", ErrDamaged, err)
	}
	if m.Entries > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries", ErrDamaged, m.Entries)
	}
	r.meta = &m
	return &m, nil
}

// Next returns the next entry, or io.EOF after the end record (having
// checked that the count matches and nothing follows).
func (r *Reader) Next() (name string, value []byte, err error) {
	if r.done {
		return "", nil, io.EOF
	}
	if r.meta == nil {
		if _, err := r.Meta(); err != nil {
			return "", nil, err
		}
	}
	t, err := r.byte1()
	if err != nil {
		return "", nil, err
	}
	switch t {
	case recEnd:
		var c [8]byte
		if err := r.read(c[:]); err != nil {
			return "", nil, err
		}
		if got := binary.BigEndian.Uint64(c[:]); got != r.entries {
			return "", nil, fmt.Errorf("%w: %d entries read, the end record says %d", ErrDamaged, r.entries, got)
		}
		if len(r.chunk) == 0 && !r.last {
			// The end record filled its chunk: only an empty last chunk
			// may follow.
			if err := r.nextChunk(); err != nil {
				return "", nil, err
			}
		}
		if len(r.chunk) != 0 || !r.last {
			return "", nil, fmt.Errorf("%w: data after the end record", ErrDamaged)
		}
		r.done = true
		return "", nil, io.EOF
	case recEntry:
	default:
		return "", nil, fmt.Errorf("%w: unknown record %d", ErrDamaged, t)
	}
	if r.entries >= MaxEntries {
		return "", nil, fmt.Errorf("%w: more than %d entries", ErrDamaged, MaxEntries)
	}
	var l2 [2]byte
	if err := r.read(l2[:]); err != nil {
		return "", nil, err
	}
	nl := binary.BigEndian.Uint16(l2[:])
	if nl == 0 || nl > MaxName {
		return "", nil, fmt.Errorf("%w: entry name of %d bytes", ErrDamaged, nl)
	}
	nb := make([]byte, nl)
	if err := r.read(nb); err != nil {
		return "", nil, err
	}
	var l4 [4]byte
	if err := r.read(l4[:]); err != nil {
		return "", nil, err
	}
	vl := binary.BigEndian.Uint32(l4[:])
	if vl > MaxValue {
		return "", nil, fmt.Errorf("%w: value of %d bytes", ErrDamaged, vl)
	}
	value = make([]byte, vl)
	if err := r.read(value); err != nil {
		return "", nil, err
	}
	r.entries++
	return string(nb), value, nil
}
