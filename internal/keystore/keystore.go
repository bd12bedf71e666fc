// Package keystore is the client's local encrypted key/value store: an
// SQLite file (modernc.org/sqlite, WAL mode) whose entries are encrypted
// with a key derived from the user's passphrase.
//
// Cryptography: argon2id (salt and cost parameters stored in the file)
// turns the passphrase into a master key; HKDF-SHA-256 expands it into
// separate keys for values, names, entry IDs and a check value. Values are
// sealed with XChaCha20-Poly1305 and random nonces, with the entry name as
// associated data, so a value cannot be moved to another name. Names are
// not stored in clear either: an entry is found by HMAC-SHA-256(name), and
// the name itself is sealed for List. A wrong passphrase fails to open the
// check value and Open returns ErrWrongPassphrase.
//
// An empty passphrase is allowed (the demo uses it): the file is then
// readable by anyone who has it, and Unprotected reports true. Opening such
// a store with a non-empty passphrase returns ErrNoPassphrase rather than
// ErrWrongPassphrase, so the user learns the file was never protected.
//
// Not protected against: an attacker who can write the file and rolls an
// entry (or the whole file) back to an older version of itself.
package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/umbra-im/umbra/internal/sqlitedsn"
)

// Errors.
var (
	// ErrWrongPassphrase: the passphrase does not open this store.
	ErrWrongPassphrase = errors.New("keystore: wrong passphrase")
	// ErrNoPassphrase: a passphrase was given but this store has none
	// (it was created, or last changed, with an empty one): it opens only
	// with the empty passphrase, and anyone with the file can read it.
	ErrNoPassphrase = errors.New("keystore: this store has no passphrase")
	// ErrNotFound: no entry has that name.
	ErrNotFound = errors.New("keystore: no such entry")
	// ErrCorrupt: stored data failed authentication or does not parse:
	// the file was damaged or tampered with.
	ErrCorrupt = errors.New("keystore: data is damaged or was tampered with")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("keystore: closed")
)

// MaxValueSize bounds one value.
const MaxValueSize = 16 << 20

// MaxNameSize bounds one entry name.
const MaxNameSize = 1024

// Option configures Open.
type Option func(*options)

type options struct {
	argon Argon2Params
}

// WithArgon2 sets the argon2id parameters for a store Open creates. An
// existing store keeps the parameters it was created with (until
// ChangePassphrase).
func WithArgon2(p Argon2Params) Option { return func(o *options) { o.argon = p } }

// Store is an open key store. It is safe for concurrent use.
type Store struct {
	db          *sql.DB
	unprotected bool

	// mu guards keys and unprotected. Operations hold it shared for their
	// whole duration; ChangePassphrase and Close hold it exclusively.
	mu   sync.RWMutex
	keys *keys // nil after Close
}

// Open opens the store at path with passphrase, creating it (mode 0600)
// if it does not exist. A wrong passphrase returns ErrWrongPassphrase; a
// passphrase for a store that has none returns ErrNoPassphrase.
func Open(path, passphrase string, opts ...Option) (*Store, error) {
	o := options{argon: DefaultArgon2}
	for _, f := range opts {
		f(&o)
	}
	if err := o.argon.validate(); err != nil {
		return nil, fmt.Errorf("keystore: open: %w", err)
	}
	// Create the file ourselves so it is private from the start; SQLite
	// gives the -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keystore: open: %w", err)
	}
	f.Close()

	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("keystore: open: %w", err)
	}
	db.SetMaxOpenConns(1)
	s := &Store{db: db, unprotected: passphrase == ""}
	if err := s.init(context.Background(), passphrase, o); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func dsn(path string) string {
	return sqlitedsn.DSN(path, url.Values{"_txlock": {"immediate"}},
		"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(FULL)", "secure_delete(ON)")
}

// Unprotected reports whether the store was opened with an empty
// passphrase, i.e. anyone with the file can read it. Say so to the user.
func (s *Store) Unprotected() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.unprotected
}

// Close closes the store and forgets its keys.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.keys != nil {
		s.keys.wipe()
		s.keys = nil
	}
	s.mu.Unlock()
	return s.db.Close()
}

// withKeys runs f with the current keys, holding mu shared.
func (s *Store) withKeys(f func(k *keys) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.keys == nil {
		return ErrClosed
	}
	return f(s.keys)
}
