package keystore

import (
	"context"
	"fmt"
)

// CheckPassphrase reports whether passphrase opens the store: nil if it
// does, ErrNoPassphrase if the store has none and passphrase is not empty,
// ErrWrongPassphrase otherwise. It costs one argon2id derivation (two for a
// wrong non-empty passphrase).
func (s *Store) CheckPassphrase(ctx context.Context, passphrase string) error {
	var rec, check []byte
	if err := s.db.QueryRowContext(ctx, "SELECT v FROM meta WHERE k = 'kdf'").Scan(&rec); err != nil {
		return fmt.Errorf("%w: key derivation record: %v", ErrCorrupt, err)
	}
	if err := s.db.QueryRowContext(ctx, "SELECT v FROM meta WHERE k = 'check'").Scan(&check); err != nil {
		return fmt.Errorf("%w: check value: %v", ErrCorrupt, err)
	}
	r, err := parseKDFRecord(rec)
	if err != nil {
		return fmt.Errorf("%w: key derivation record: %v", ErrCorrupt, err)
	}
	k, err := deriveKeys(passphrase, r)
	if err != nil {
		return err
	}
	ok := opensCheck(k, check)
	k.wipe()
	if ok {
		return nil
	}
	if passphrase != "" && s.Unprotected() {
		return ErrNoPassphrase
	}
	return ErrWrongPassphrase
}
