package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/umbra-im/umbra/internal/wire"
)

// migrations[i] upgrades the schema from user_version i to i+1. Never edit
// a released entry; append.
var migrations = []string{
	// v1
	`
CREATE TABLE meta (
	k TEXT NOT NULL PRIMARY KEY,
	v BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE entries (
	id    BLOB NOT NULL PRIMARY KEY, -- HMAC(index key, name)
	name  BLOB NOT NULL,             -- sealed name, AAD = id
	value BLOB NOT NULL              -- sealed value, AAD = name
) WITHOUT ROWID;
`,
}

// schemaVersion is the schema version this package writes.
var schemaVersion = len(migrations)

const formatTag = "umbra-keystore"

// init migrates the schema and loads (or, for a new store, creates) the
// key-derivation record and check value, then derives the keys.
func (s *Store) init(ctx context.Context, passphrase string, o options) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keystore: open: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("keystore: open: not an SQLite database: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("keystore: open: the key store has schema version %d; this Umbra understands up to %d, upgrade it", version, len(migrations))
	}
	if version == 0 {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
			return fmt.Errorf("keystore: open: %w", err)
		}
		if n != 0 {
			return fmt.Errorf("keystore: open: the file is an SQLite database but not an Umbra key store")
		}
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("keystore: open: migrate to v%d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			return fmt.Errorf("keystore: open: migrate to v%d: %w", v+1, err)
		}
	}
	if version == 0 {
		k, err := createKeys(ctx, tx, passphrase, o.argon)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO meta (k, v) VALUES ('format', ?)", []byte(formatTag)); err != nil {
			return fmt.Errorf("keystore: create: %w", err)
		}
		if err := tx.Commit(); err != nil {
			k.wipe()
			return fmt.Errorf("keystore: create: %w", err)
		}
		s.keys = k
		return nil
	}
	var rec, check []byte
	if err := tx.QueryRowContext(ctx, "SELECT v FROM meta WHERE k = 'kdf'").Scan(&rec); err != nil {
		return fmt.Errorf("%w: key derivation record: %v", ErrCorrupt, err)
	}
	if err := tx.QueryRowContext(ctx, "SELECT v FROM meta WHERE k = 'check'").Scan(&check); err != nil {
		return fmt.Errorf("%w: check value: %v", ErrCorrupt, err)
	}
	if err := tx.Commit(); err != nil { // the migrations, if any
		return fmt.Errorf("keystore: open: %w", err)
	}
	r, err := parseKDFRecord(rec)
	if err != nil {
		return fmt.Errorf("%w: key derivation record: %v", ErrCorrupt, err)
	}
	k, err := deriveKeys(passphrase, r)
	if err != nil {
		return fmt.Errorf("keystore: open: %w", err)
	}
	if !opensCheck(k, check) {
		k.wipe()
		// Tell "this store has no passphrase" from a wrong one: the
		// empty passphrase is the one guess worth telling the user about.
		// It costs one more derivation, on a failed open only.
		if passphrase != "" {
			if k0, err := deriveKeys("", r); err == nil {
				none := opensCheck(k0, check)
				k0.wipe()
				if none {
					return ErrNoPassphrase
				}
			}
		}
		return ErrWrongPassphrase
	}
	s.keys = k
	return nil
}

// opensCheck reports whether k opens the stored check value.
func opensCheck(k *keys, check []byte) bool {
	pt, err := open(k.check, check, checkAAD)
	return err == nil && string(pt) == checkPlaintext
}

// createKeys makes a fresh salt with params p, derives the keys and
// stores the record and check value (replacing any) within tx.
func createKeys(ctx context.Context, tx *sql.Tx, passphrase string, p Argon2Params) (*keys, error) {
	r, err := newKDFRecord(p)
	if err != nil {
		return nil, fmt.Errorf("keystore: key derivation: %w", err)
	}
	k, err := deriveKeys(passphrase, r)
	if err != nil {
		return nil, fmt.Errorf("keystore: key derivation: %w", err)
	}
	rec, err := wire.Marshal(r)
	if err != nil {
		return nil, err
	}
	check, err := seal(k.check, []byte(checkPlaintext), checkAAD)
	if err != nil {
		return nil, err
	}
	for key, v := range map[string][]byte{"kdf": rec, "check": check} {
		if _, err := tx.ExecContext(ctx, "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", key, v); err != nil {
			return nil, fmt.Errorf("keystore: store key derivation record: %w", err)
		}
	}
	return k, nil
}

// Params returns the argon2id parameters the store currently uses.
func (s *Store) Params(ctx context.Context) (Argon2Params, error) {
	var rec []byte
	if err := s.db.QueryRowContext(ctx, "SELECT v FROM meta WHERE k = 'kdf'").Scan(&rec); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Argon2Params{}, ErrCorrupt
		}
		return Argon2Params{}, fmt.Errorf("keystore: params: %w", err)
	}
	r, err := parseKDFRecord(rec)
	if err != nil {
		return Argon2Params{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return r.params(), nil
}
