package replay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// A key log is the set of replay tags accepted under one onion key,
// mirrored to an append-only file so that it survives a restart:
//
//	file   = header ‖ tag*
//	header = "umbra-replay-v1\n" (16 bytes) ‖ key (32 bytes)
//	tag    = the first TagSize bytes of a 32-byte replay tag
//
// Add writes the tag to the file (one write(2), so it is in the page
// cache and survives a kill of the process) before it reports the tag as
// new; Sync makes the writes durable against a power loss. A log holds at
// most max tags: past that Add refuses (ErrFull) rather than forget one.
const (
	// TagSize is how much of a tag a log keeps: 128 bits, so that two
	// distinct packets collide with probability about n²/2¹²⁹ (nothing
	// for the 2²⁰ or so tags of a key), at half the memory and disk of
	// the full tag. Nobody can aim at another packet's tag: it is an
	// HPKE export of a secret only that packet's sender and the node
	// share.
	TagSize    = 16
	headerSize = len(magic) + 32
	magic      = "umbra-replay-v1\n"
)

// Tag is the part of a replay tag a log keeps.
type Tag [TagSize]byte

// Errors of a key log.
var (
	// ErrFull is returned by Add when the log holds its maximum.
	ErrFull = errors.New("replay: log full")
	// ErrClosed is returned by Add after Close (or a failed write).
	ErrClosed = errors.New("replay: log closed")
	// ErrCorrupt is returned when a log file cannot be trusted (wrong
	// header or key, more tags than the maximum).
	ErrCorrupt = errors.New("replay: log corrupt")
)

// KeyLog is the persisted tag set of one key. It is safe for concurrent
// use.
type KeyLog struct {
	syncMu sync.Mutex // serialises Sync and Close
	mu     sync.Mutex
	f      *os.File
	seen   map[Tag]struct{}
	max    int
	dirty  bool  // written since the last Sync
	err    error // sticky: ErrClosed, or the write error that closed the log
}

// CreateKeyLog makes a new, empty log for key at path (which must not
// exist) and makes its creation durable (file and directory synced), so
// that a key is never used with a log that a crash could lose.
func CreateKeyLog(path string, key [32]byte, max int) (*KeyLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replay: create log: %w", err)
	}
	hdr := append([]byte(magic), key[:]...)
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		return nil, fmt.Errorf("replay: create log: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("replay: create log: %w", err)
	}
	if err := syncDir(path); err != nil {
		f.Close()
		return nil, err
	}
	return &KeyLog{f: f, seen: make(map[Tag]struct{}), max: max}, nil
}

// OpenKeyLog loads the log of key at path. A missing file gives an error
// wrapping os.ErrNotExist; a file that cannot be trusted gives ErrCorrupt.
// A torn last record (a crash in the middle of a write) is cut off. What
// loading allocates is bounded by max, whatever the file says.
func OpenKeyLog(path string, key [32]byte, max int) (*KeyLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replay: open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("replay: open log: %w", err)
	}
	seen, whole, err := loadTags(f, st.Size(), key, max)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("replay: open log %s: %w", path, err)
	}
	if whole < st.Size() {
		if err := f.Truncate(whole); err != nil {
			f.Close()
			return nil, fmt.Errorf("replay: cut torn record: %w", err)
		}
	}
	return &KeyLog{f: f, seen: seen, max: max}, nil
}

// loadTags reads a log of size bytes from r: the tags, and the length of
// the header and whole records (a torn last record is not counted). It
// allocates for at most max tags.
func loadTags(r io.Reader, size int64, key [32]byte, max int) (map[Tag]struct{}, int64, error) {
	if size < int64(headerSize) {
		return nil, 0, fmt.Errorf("%w: %d bytes, shorter than the header", ErrCorrupt, size)
	}
	records := (size - int64(headerSize)) / TagSize
	if records > int64(max) {
		return nil, 0, fmt.Errorf("%w: %d tags, more than the maximum %d", ErrCorrupt, records, max)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [headerSize]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, 0, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	if string(hdr[:len(magic)]) != magic || !bytes.Equal(hdr[len(magic):], key[:]) {
		return nil, 0, fmt.Errorf("%w: not the log of this key", ErrCorrupt)
	}
	seen := make(map[Tag]struct{}, records)
	var t Tag
	for i := int64(0); i < records; i++ {
		if _, err := io.ReadFull(br, t[:]); err != nil {
			// The file shrank under us: keep what was read.
			return seen, int64(headerSize) + i*TagSize, nil
		}
		seen[t] = struct{}{}
	}
	return seen, int64(headerSize) + records*TagSize, nil
}

// syncDir makes the creation of path durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("replay: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("replay: sync dir: %w", err)
	}
	return nil
}

// Add records tag and reports whether it was new. A new tag is written to
// the file before Add returns; if the write fails the log closes (every
// later Add fails) and the tag is refused. A full log refuses new tags
// with ErrFull.
func (l *KeyLog) Add(tag [32]byte) (bool, error) {
	var t Tag
	copy(t[:], tag[:])
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return false, l.err
	}
	if _, ok := l.seen[t]; ok {
		return false, nil
	}
	if len(l.seen) >= l.max {
		return false, ErrFull
	}
	if _, err := l.f.Write(t[:]); err != nil {
		l.err = fmt.Errorf("%w: write: %v", ErrClosed, err)
		return false, l.err
	}
	l.seen[t] = struct{}{}
	l.dirty = true
	return true, nil
}

// Len is the number of tags held.
func (l *KeyLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// Full reports whether the log holds its maximum.
func (l *KeyLog) Full() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen) >= l.max
}

// Sync makes the tags written so far durable. Adds go on meanwhile.
func (l *KeyLog) Sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	f, dirty := l.f, l.dirty
	l.dirty = false
	l.mu.Unlock()
	if f == nil || !dirty {
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("replay: sync log: %w", err)
	}
	return nil
}

// Close syncs and closes the file; later Adds fail with ErrClosed.
func (l *KeyLog) Close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	var err error
	if l.dirty {
		err = l.f.Sync()
	}
	err = errors.Join(err, l.f.Close())
	l.f = nil
	l.err = ErrClosed
	if err != nil {
		return fmt.Errorf("replay: close log: %w", err)
	}
	return nil
}
