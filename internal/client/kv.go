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

// openKV opens the home's encrypted database. With an empty passphrase
// (the demo's) the database is unprotected anyway, so the key derivation
// uses light argon2id parameters instead of spending 64 MiB and a second.
func openKV(home, passphrase string) (KV, func() error, error) {
	var opts []keystore.Option
	if passphrase == "" {
		opts = append(opts, keystore.WithArgon2(keystore.LightArgon2))
	}
	ks, err := keystore.Open(filepath.Join(home, dbFile), passphrase, opts...)
	if errors.Is(err, keystore.ErrWrongPassphrase) {
		return nil, nil, errors.New("wrong passphrase for this home (set UMBRA_PASSPHRASE)")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open local database: %w", err)
	}
	kv, err := newKSKV(ks)
	if err != nil {
		ks.Close()
		return nil, nil, fmt.Errorf("open local database: %w", err)
	}
	return kv, ks.Close, nil
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
