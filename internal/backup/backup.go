// Package backup is the file format of Umbra's encrypted backups: a
// versioned header, then a stream of records (the account's database
// entries) encrypted in chunks.
//
// Cryptography, all standard: argon2id (golang.org/x/crypto/argon2; salt
// and cost in the header) turns the backup passphrase into a 32-byte key;
// HKDF-SHA-256 expands it into a check key and a payload key. The header
// ends with HMAC-SHA-256(check key, header), which tells a wrong passphrase
// from a damaged file. The payload is ChaCha20-Poly1305 in the STREAM
// construction (as in age): chunks of ChunkSize bytes, each sealed with the
// nonce counter‖last-flag and the header as associated data, so chunks
// cannot be reordered, dropped, truncated or moved to another file.
//
// Layout:
//
//	header  "UMBRABAK" | version u16 | kdf u8 (1 = argon2id) | time u32 |
//	        memory KiB u32 | threads u8 | salt [16] | chunk size u32 |
//	        HMAC [32]                                (all big-endian)
//	payload chunks, each ≤ chunk size + 16 bytes
//
// The decrypted payload is a sequence of records:
//
//	1 meta   u32 length, JSON Meta (≤ MaxMeta)        first, once
//	2 entry  u16 name length, name, u32 length, value  any number
//	3 end    u64 number of entries (checked)           last
//
// Every length is checked against its bound before anything is allocated.
package backup

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Errors.
var (
	// ErrNotBackup: the file does not start like an Umbra backup.
	ErrNotBackup = errors.New("not an Umbra backup file")
	// ErrVersion: the file is a backup of a newer format.
	ErrVersion = errors.New("this backup was made by a newer Umbra: upgrade to restore it")
	// ErrWrongPassphrase: the passphrase does not open this backup.
	ErrWrongPassphrase = errors.New("wrong backup passphrase")
	// ErrDamaged: the file failed authentication or does not parse: it was
	// damaged, truncated or tampered with.
	ErrDamaged = errors.New("the backup file is damaged or was tampered with")
	// ErrEmptyPassphrase: backups always have a passphrase.
	ErrEmptyPassphrase = errors.New("a backup needs a passphrase (it may not be empty)")
)

// Version is the format version this package writes and reads.
const Version = 1

const (
	magic      = "UMBRABAK"
	kdfArgon2  = 1
	saltSize   = 16
	macSize    = 32
	headerBody = len(magic) + 2 + 1 + 4 + 4 + 1 + saltSize + 4
	// HeaderSize is the size of the header.
	HeaderSize = headerBody + macSize
	// ChunkSize is the plaintext size of a payload chunk.
	ChunkSize = 64 << 10
	tagSize   = chacha20poly1305.Overhead
)

// Bounds on what a file may make a reader allocate or compute.
const (
	MaxMeta     = 64 << 10
	MaxName     = 1024     // = keystore.MaxNameSize
	MaxValue    = 16 << 20 // = keystore.MaxValueSize
	MaxEntries  = 1 << 27
	maxTime     = 16
	maxMemKiB   = 1 << 20 // 1 GiB
	maxThreads  = 16
	minChunk    = 1 << 10
	maxChunk    = 1 << 20
	recMeta     = 1
	recEntry    = 2
	recEnd      = 3
	maxNonceCtr = 1<<64 - 1
)

// Params are argon2id's cost parameters.
type Params struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// DefaultParams: 64 MiB and three passes, like the home database.
var DefaultParams = Params{Time: 3, MemoryKiB: 64 << 10, Threads: 2}

// LightParams are for tests only.
var LightParams = Params{Time: 1, MemoryKiB: 64, Threads: 1}

func (p Params) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("argon2 time %d outside 1..%d", p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("argon2 threads %d outside 1..%d", p.Threads, maxThreads)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemKiB:
		return fmt.Errorf("argon2 memory %d KiB outside %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxMemKiB)
	}
	return nil
}

// Header is a backup's parsed header.
type Header struct {
	Version   uint16
	Params    Params
	Salt      [saltSize]byte
	ChunkSize uint32
	MAC       [macSize]byte
	raw       [HeaderSize]byte
}

// ParseHeader parses and bounds-checks the first HeaderSize bytes of a
// backup (the MAC is checked once the passphrase is known).
func ParseHeader(b []byte) (*Header, error) {
	if len(b) < len(magic) || string(b[:len(magic)]) != magic {
		return nil, ErrNotBackup
	}
	if len(b) < HeaderSize {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrDamaged, len(b))
	}
	h := &Header{}
	copy(h.raw[:], b[:HeaderSize])
	p := b[len(magic):]
	h.Version = binary.BigEndian.Uint16(p)
	if h.Version == 0 {
		return nil, fmt.Errorf("%w: version 0", ErrDamaged)
	}
	if h.Version > Version {
		return nil, fmt.Errorf("%w (format version %d, this Umbra reads up to %d)", ErrVersion, h.Version, Version)
	}
	if p[2] != kdfArgon2 {
		return nil, fmt.Errorf("%w: unknown key derivation %d", ErrDamaged, p[2])
	}
	h.Params = Params{Time: binary.BigEndian.Uint32(p[3:]), MemoryKiB: binary.BigEndian.Uint32(p[7:]), Threads: p[11]}
	if err := h.Params.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	copy(h.Salt[:], p[12:12+saltSize])
	h.ChunkSize = binary.BigEndian.Uint32(p[12+saltSize:])
	if h.ChunkSize < minChunk || h.ChunkSize > maxChunk {
		return nil, fmt.Errorf("%w: chunk size %d", ErrDamaged, h.ChunkSize)
	}
	copy(h.MAC[:], b[headerBody:HeaderSize])
	return h, nil
}

func newHeader(p Params) (*Header, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	h := &Header{Version: Version, Params: p, ChunkSize: ChunkSize}
	if _, err := rand.Read(h.Salt[:]); err != nil {
		return nil, err
	}
	b := h.raw[:0]
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = append(b, kdfArgon2)
	b = binary.BigEndian.AppendUint32(b, p.Time)
	b = binary.BigEndian.AppendUint32(b, p.MemoryKiB)
	b = append(b, p.Threads)
	b = append(b, h.Salt[:]...)
	_ = binary.BigEndian.AppendUint32(b, h.ChunkSize)
	return h, nil
}

// keys derives the check and payload keys from passphrase.
func (h *Header) keys(passphrase string) (check, payload []byte, err error) {
	master := argon2.IDKey([]byte(passphrase), h.Salt[:], h.Params.Time, h.Params.MemoryKiB, h.Params.Threads, 32)
	defer clear(master)
	if check, err = hkdf.Key(sha256.New, master, nil, "Umbra_Backup_v1_Check", 32); err != nil {
		return nil, nil, err
	}
	if payload, err = hkdf.Key(sha256.New, master, nil, "Umbra_Backup_v1_Payload", chacha20poly1305.KeySize); err != nil {
		return nil, nil, err
	}
	return check, payload, nil
}

func (h *Header) mac(check []byte) []byte {
	m := hmac.New(sha256.New, check)
	m.Write(h.raw[:headerBody])
	return m.Sum(nil)
}

// nonce is the STREAM nonce of chunk i: an 11-byte big-endian counter and
// a byte that is 1 on the last chunk only.
func nonce(i uint64, last bool) []byte {
	n := make([]byte, chacha20poly1305.NonceSize)
	binary.BigEndian.PutUint64(n[3:11], i)
	if last {
		n[11] = 1
	}
	return n
}

// Meta describes a backup; it is the first record, inside the encryption.
type Meta struct {
	AccountID string `json:"account_id"`
	CreatedAt int64  `json:"created_at"` // Unix seconds
	// Entries is how many entry records were expected to follow when the
	// backup started (for progress; the end record has the exact count).
	Entries uint64 `json:"entries"`
	// Network is the home's network file, as text ("" if none).
	Network string `json:"network,omitempty"`
}

// Writer writes a backup. Call Meta once, Entry for each entry, then Close.
type Writer struct {
	w    io.Writer
	aead interface {
		Seal(dst, nonce, pt, ad []byte) []byte
	}
	h       *Header
	buf     []byte
	ctr     uint64
	entries uint64
	meta    bool
	err     error
}

// NewWriter writes the header for passphrase (non-empty) to w.
func NewWriter(w io.Writer, passphrase string, p Params) (*Writer, error) {
	if passphrase == "" {
		return nil, ErrEmptyPassphrase
	}
	h, err := newHeader(p)
	if err != nil {
		return nil, err
	}
	check, key, err := h.keys(passphrase)
	if err != nil {
		return nil, err
	}
	copy(h.MAC[:], h.mac(check))
	copy(h.raw[headerBody:], h.MAC[:])
	aead, err := chacha20poly1305.New(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(h.raw[:]); err != nil {
		return nil, err
	}
	return &Writer{w: w, aead: aead, h: h, buf: make([]byte, 0, ChunkSize)}, nil
}

func (w *Writer) write(p []byte) error {
	for len(p) > 0 && w.err == nil {
		n := min(len(p), ChunkSize-len(w.buf))
		w.buf = append(w.buf, p[:n]...)
		p = p[n:]
		if len(w.buf) == ChunkSize {
			w.err = w.flush(false)
		}
	}
	return w.err
}

func (w *Writer) flush(last bool) error {
	if w.ctr == maxNonceCtr {
		return errors.New("backup: too many chunks")
	}
	ct := w.aead.Seal(nil, nonce(w.ctr, last), w.buf, w.h.raw[:])
	w.ctr++
	w.buf = w.buf[:0]
	_, err := w.w.Write(ct)
	return err
}

// Meta writes the meta record (first, once).
func (w *Writer) Meta(m Meta) error {
	if w.meta {
		return errors.New("backup: meta written twice")
	}
	j, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(j) > MaxMeta {
		return fmt.Errorf("backup: meta of %d bytes, limit %d", len(j), MaxMeta)
	}
	w.meta = true
	return w.write(append(binary.BigEndian.AppendUint32([]byte{recMeta}, uint32(len(j))), j...))
}

// Entry writes one database entry.
func (w *Writer) Entry(name string, value []byte) error {
	if !w.meta {
		return errors.New("backup: entry before meta")
	}
	if len(name) == 0 || len(name) > MaxName || len(value) > MaxValue {
		return fmt.Errorf("backup: entry %q of %d bytes is out of bounds", name, len(value))
	}
	b := make([]byte, 0, 1+2+len(name)+4)
	b = append(b, recEntry)
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	if err := w.write(b); err != nil {
		return err
	}
	w.entries++
	return w.write(value)
}

// Close writes the end record and the last chunk. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if !w.meta {
		return errors.New("backup: no meta")
	}
	if err := w.write(binary.BigEndian.AppendUint64([]byte{recEnd}, w.entries)); err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	w.err = w.flush(true)
	if w.err == nil {
		w.err = errors.New("backup: closed")
		return nil
	}
	return w.err
}
