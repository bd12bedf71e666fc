package replay

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ErrUnknownKey is returned by Dir.Add for a key whose log is not open
// (never created, or retired since).
var ErrUnknownKey = errors.New("replay: no log for this key")

// Dir keeps the key logs of a node's onion keys in one directory, one file
// per key ("<hex key>.tags"). It is safe for concurrent use.
type Dir struct {
	path string
	max  int

	mu   sync.Mutex
	logs map[[32]byte]*KeyLog
}

// OpenDir opens (creating it) the directory of key logs; each log holds at
// most maxPerKey tags.
func OpenDir(path string, maxPerKey int) (*Dir, error) {
	if maxPerKey <= 0 {
		return nil, fmt.Errorf("replay: a log must hold at least one tag, not %d", maxPerKey)
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("replay: create %s: %w", path, err)
	}
	return &Dir{path: path, max: maxPerKey, logs: make(map[[32]byte]*KeyLog)}, nil
}

const logSuffix = ".tags"

func (d *Dir) file(key [32]byte) string {
	return filepath.Join(d.path, hex.EncodeToString(key[:])+logSuffix)
}

// Load opens the existing log of key. It fails (wrapping os.ErrNotExist or
// ErrCorrupt) if there is no trustworthy log: the key must then not be
// used, since packets it accepted before may be replayed.
func (d *Dir) Load(key [32]byte) error {
	l, err := OpenKeyLog(d.file(key), key, d.max)
	if err != nil {
		return err
	}
	return d.put(key, l)
}

// Create makes a new, empty, durable log for key.
func (d *Dir) Create(key [32]byte) error {
	l, err := CreateKeyLog(d.file(key), key, d.max)
	if err != nil {
		return err
	}
	return d.put(key, l)
}

func (d *Dir) put(key [32]byte, l *KeyLog) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.logs[key]; old != nil {
		old.Close()
	}
	d.logs[key] = l
	return nil
}

func (d *Dir) get(key [32]byte) *KeyLog {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs[key]
}

// Add records tag under key (see KeyLog.Add).
func (d *Dir) Add(key, tag [32]byte) (bool, error) {
	l := d.get(key)
	if l == nil {
		return false, ErrUnknownKey
	}
	return l.Add(tag)
}

// Full reports whether the log of key is full (false for no log).
func (d *Dir) Full(key [32]byte) bool {
	l := d.get(key)
	return l != nil && l.Full()
}

// Len is the number of tags held under key.
func (d *Dir) Len(key [32]byte) int {
	if l := d.get(key); l != nil {
		return l.Len()
	}
	return 0
}

// Retain closes the logs of every key but keys and deletes their files,
// and any other log file in the directory (a key retired while the node
// was down, or a log created just before a crash).
func (d *Dir) Retain(keys ...[32]byte) error {
	keep := make(map[string]bool, len(keys))
	for _, k := range keys {
		keep[d.file(k)] = true
	}
	d.mu.Lock()
	var drop []*KeyLog
	for k, l := range d.logs {
		if !keep[d.file(k)] {
			drop = append(drop, l)
			delete(d.logs, k)
		}
	}
	d.mu.Unlock()
	var errs []error
	for _, l := range drop {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	ents, err := os.ReadDir(d.path)
	if err != nil {
		return fmt.Errorf("replay: list %s: %w", d.path, err)
	}
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(d.path, name)
		if !strings.HasSuffix(name, logSuffix) || keep[p] {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("replay: remove %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Sync makes every log's tags durable.
func (d *Dir) Sync() error {
	d.mu.Lock()
	logs := make([]*KeyLog, 0, len(d.logs))
	for _, l := range d.logs {
		logs = append(logs, l)
	}
	d.mu.Unlock()
	var errs []error
	for _, l := range logs {
		if err := l.Sync(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close syncs and closes every log; later Adds fail.
func (d *Dir) Close() error {
	d.mu.Lock()
	logs := d.logs
	d.logs = make(map[[32]byte]*KeyLog)
	d.mu.Unlock()
	var errs []error
	for _, l := range logs {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
