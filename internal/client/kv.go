package client

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

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
	return ksKV{ks}, ks.Close, nil
}

// ksKV adapts the keystore to KV.
type ksKV struct{ s *keystore.Store }

func (k ksKV) Put(key string, val []byte) error { return k.s.Put(context.Background(), key, val) }

func (k ksKV) Get(key string) ([]byte, bool, error) {
	v, err := k.s.Get(context.Background(), key)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

func (k ksKV) Delete(key string) error {
	err := k.s.Delete(context.Background(), key)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil
	}
	return err
}

func (k ksKV) List(prefix string) ([]string, error) { return k.s.List(context.Background(), prefix) }
