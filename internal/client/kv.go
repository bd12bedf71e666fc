package client

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/umbra-im/umbra/internal/keystore"
)

// Passphrase errors of opening a home, each telling the user what to do.
var (
	// ErrWrongPassphrase: the home is protected by another passphrase.
	ErrWrongPassphrase = errors.New("wrong passphrase for this home (UMBRA_PASSPHRASE)")
	// ErrPassphraseRequired: the home is protected and no passphrase was given.
	ErrPassphraseRequired = errors.New("this home is protected by a passphrase: set UMBRA_PASSPHRASE")
	// ErrNoPassphrase: a passphrase was given but the home has none: its
	// database is not encrypted with one.
	ErrNoPassphrase = errors.New("this home has no passphrase, so its database is not protected: " +
		"unset UMBRA_PASSPHRASE to open it, then set one with 'umbra passphrase change' or in the web UI of 'umbra daemon'")
)

// UnprotectedWarning is the one line a CLI command prints (on stderr) when
// the home it opens has no passphrase.
const UnprotectedWarning = "warning: this home has no passphrase: anyone who can read its folder can read your messages " +
	"and take over your account (set one with 'umbra passphrase change' or in the web UI; new accounts take UMBRA_PASSPHRASE)"

// passphraseArgon2 is the key derivation cost of a database with a
// passphrase (this package's tests lower it).
var passphraseArgon2 = keystore.DefaultArgon2

// openKV opens the home's encrypted database. With an empty passphrase
// (the demo's) the database is unprotected anyway, so the key derivation
// uses light argon2id parameters instead of spending 64 MiB and a second.
func openKV(home, passphrase string) (KV, func() error, error) {
	opts := []keystore.Option{keystore.WithArgon2(passphraseArgon2)}
	if passphrase == "" {
		opts = []keystore.Option{keystore.WithArgon2(keystore.LightArgon2)}
	}
	ks, err := keystore.Open(filepath.Join(home, dbFile), passphrase, opts...)
	switch {
	case errors.Is(err, keystore.ErrWrongPassphrase) && passphrase == "":
		return nil, nil, ErrPassphraseRequired
	case errors.Is(err, keystore.ErrWrongPassphrase):
		return nil, nil, ErrWrongPassphrase
	case errors.Is(err, keystore.ErrNoPassphrase):
		return nil, nil, ErrNoPassphrase
	case err != nil:
		return nil, nil, fmt.Errorf("open local database: %w", err)
	}
	kv, err := newKSKV(ks)
	if err != nil {
		ks.Close()
		return nil, nil, fmt.Errorf("open local database: %w", err)
	}
	return kv, ks.Close, nil
}

// Unprotected reports whether the account's database has no passphrase:
// anyone who can read the home folder can read it, the account's seed
// included. Say so to the user.
func (e *Engine) Unprotected() bool {
	u, ok := e.kv.(interface{ Unprotected() bool })
	return ok && u.Unprotected()
}

// SetPassphrase re-encrypts the account's database under a new passphrase
// (argon2id at its default cost) in one transaction. The engine keeps
// running; the next open of the home needs the new passphrase.
func (e *Engine) SetPassphrase(ctx context.Context, passphrase string) error {
	if passphrase == "" {
		return errors.New("set passphrase: the passphrase is empty")
	}
	c, ok := e.kv.(interface {
		ChangePassphrase(ctx context.Context, passphrase string) error
	})
	if !ok {
		return errors.New("set passphrase: this database cannot change its passphrase")
	}
	if err := c.ChangePassphrase(ctx, passphrase); err != nil {
		return fmt.Errorf("set passphrase: %w", err)
	}
	return nil
}

// ksKV adapts the keystore to KV. The keystore seals entry names, so its
// List decrypts every name in the database; ksKV instead keeps the sorted
// names in memory, read once at open and kept in step by Put and Delete,
// and answers List from them. The home lock makes this process the only
// writer, so the index cannot go stale.
type ksKV struct {
	s *keystore.Store

	mu    sync.RWMutex // held for writing across a store write and its index update
	names []string     // sorted
}

func newKSKV(s *keystore.Store) (*ksKV, error) {
	names, err := s.List(context.Background(), "")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return &ksKV{s: s, names: names}, nil
}

// Unprotected reports whether the store has an empty passphrase.
func (k *ksKV) Unprotected() bool { return k.s.Unprotected() }

// ChangePassphrase re-encrypts the store (names are unchanged, so the index
// stays valid).
func (k *ksKV) ChangePassphrase(ctx context.Context, passphrase string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.s.ChangePassphrase(ctx, passphrase, keystore.WithArgon2(passphraseArgon2))
}

func (k *ksKV) Put(key string, val []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.s.Put(context.Background(), key, val); err != nil {
		return err
	}
	k.indexLocked(key)
	return nil
}

// indexLocked adds name to the sorted index if it is not there.
func (k *ksKV) indexLocked(name string) {
	if i, found := slices.BinarySearch(k.names, name); !found {
		k.names = slices.Insert(k.names, i, name)
	}
}

// PutMany stores entries in one transaction and indexes their names.
func (k *ksKV) PutMany(entries []keystore.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.s.PutMany(context.Background(), entries); err != nil {
		return err
	}
	for _, e := range entries {
		k.indexLocked(e.Name)
	}
	return nil
}

func (k *ksKV) Get(key string) ([]byte, bool, error) {
	v, err := k.s.Get(context.Background(), key)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

func (k *ksKV) Delete(key string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	err := k.s.Delete(context.Background(), key)
	if err != nil && !errors.Is(err, keystore.ErrNotFound) {
		return err
	}
	if i, found := slices.BinarySearch(k.names, key); found {
		k.names = slices.Delete(k.names, i, i+1)
	}
	return nil
}

// Scan calls fn with every entry under prefix, in no particular order, in
// one pass over the store (fn must not use the KV).
func (k *ksKV) Scan(prefix string, fn func(key string, val []byte) error) error {
	return k.s.Scan(context.Background(), prefix, fn)
}

// List returns the keys with prefix, sorted, from the in-memory index.
func (k *ksKV) List(prefix string) ([]string, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	i, _ := slices.BinarySearch(k.names, prefix)
	j := i
	for j < len(k.names) && strings.HasPrefix(k.names[j], prefix) {
		j++
	}
	return slices.Clone(k.names[i:j]), nil
}
