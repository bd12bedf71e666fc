package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

func checkName(name string) error {
	if name == "" || len(name) > MaxNameSize {
		return fmt.Errorf("keystore: entry name must be 1 to %d bytes", MaxNameSize)
	}
	return nil
}

// Put stores value under name, replacing any previous value.
func (s *Store) Put(ctx context.Context, name string, value []byte) error {
	return s.PutMany(ctx, []Entry{{Name: name, Value: value}})
}

// Entry is a name and value for PutMany.
type Entry struct {
	Name  string
	Value []byte
}

// PutMany stores every entry in one transaction: all or none of them are
// written, with one disk sync.
func (s *Store) PutMany(ctx context.Context, entries []Entry) error {
	for _, e := range entries {
		if err := checkName(e.Name); err != nil {
			return err
		}
		if len(e.Value) > MaxValueSize {
			return fmt.Errorf("keystore: put %q: value of %d bytes, limit %d", e.Name, len(e.Value), MaxValueSize)
		}
	}
	return s.withKeys(func(k *keys) error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("keystore: put: %w", err)
		}
		defer tx.Rollback()
		for _, e := range entries {
			row, err := sealEntry(k, e.Name, e.Value)
			if err != nil {
				return fmt.Errorf("keystore: put %q: %w", e.Name, err)
			}
			if _, err := tx.ExecContext(ctx,
				"INSERT INTO entries (id, name, value) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, value = excluded.value",
				row.id, row.name, row.value); err != nil {
				return fmt.Errorf("keystore: put %q: %w", e.Name, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("keystore: put: %w", err)
		}
		return nil
	})
}

type entryRow struct{ id, name, value []byte }

func sealEntry(k *keys, name string, value []byte) (entryRow, error) {
	r := entryRow{id: k.entryID(name)}
	var err error
	if r.name, err = seal(k.name, []byte(name), r.id); err != nil {
		return r, err
	}
	r.value, err = seal(k.value, value, []byte(name))
	return r, err
}

// Get returns the value stored under name, or ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var v []byte
	err := s.withKeys(func(k *keys) error {
		var sealed []byte
		err := s.db.QueryRowContext(ctx, "SELECT value FROM entries WHERE id = ?", k.entryID(name)).Scan(&sealed)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("keystore: get %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("keystore: get %q: %w", name, err)
		}
		if v, err = open(k.value, sealed, []byte(name)); err != nil {
			return fmt.Errorf("keystore: get %q: %w", name, ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Delete removes the entry name. Deleting a missing entry is not an error.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return s.withKeys(func(k *keys) error {
		if _, err := s.db.ExecContext(ctx, "DELETE FROM entries WHERE id = ?", k.entryID(name)); err != nil {
			return fmt.Errorf("keystore: delete %q: %w", name, err)
		}
		return nil
	})
}

// List returns the names of all entries starting with prefix ("" for
// all), sorted. Names are stored encrypted, so it reads every entry name.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := s.withKeys(func(k *keys) error {
		rows, err := s.db.QueryContext(ctx, "SELECT id, name FROM entries")
		if err != nil {
			return fmt.Errorf("keystore: list: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, sealed []byte
			if err := rows.Scan(&id, &sealed); err != nil {
				return fmt.Errorf("keystore: list: %w", err)
			}
			name, err := open(k.name, sealed, id)
			if err != nil {
				return fmt.Errorf("keystore: list: %w", ErrCorrupt)
			}
			if strings.HasPrefix(string(name), prefix) {
				out = append(out, string(name))
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("keystore: list: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}

// ChangePassphrase re-encrypts every entry under a new passphrase (with a
// fresh salt and the given argon2id parameters; DefaultArgon2 when none)
// in one transaction. An empty passphrase makes the store unprotected.
func (s *Store) ChangePassphrase(ctx context.Context, passphrase string, opts ...Option) error {
	o := options{argon: DefaultArgon2}
	for _, f := range opts {
		f(&o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		return ErrClosed
	}
	old := s.keys
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keystore: change passphrase: %w", err)
	}
	defer tx.Rollback()

	type plain struct {
		name  string
		value []byte
	}
	var entries []plain
	rows, err := tx.QueryContext(ctx, "SELECT id, name, value FROM entries")
	if err != nil {
		return fmt.Errorf("keystore: change passphrase: %w", err)
	}
	for rows.Next() {
		var id, sn, sv []byte
		if err := rows.Scan(&id, &sn, &sv); err != nil {
			rows.Close()
			return fmt.Errorf("keystore: change passphrase: %w", err)
		}
		name, err1 := open(old.name, sn, id)
		value, err2 := open(old.value, sv, name)
		if err1 != nil || err2 != nil {
			rows.Close()
			return fmt.Errorf("keystore: change passphrase: %w", ErrCorrupt)
		}
		entries = append(entries, plain{string(name), value})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("keystore: change passphrase: %w", err)
	}

	nk, err := createKeys(ctx, tx, passphrase, o.argon)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM entries"); err != nil {
		return fmt.Errorf("keystore: change passphrase: %w", err)
	}
	for _, e := range entries {
		r, err := sealEntry(nk, e.name, e.value)
		if err != nil {
			return fmt.Errorf("keystore: change passphrase: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO entries (id, name, value) VALUES (?, ?, ?)", r.id, r.name, r.value); err != nil {
			return fmt.Errorf("keystore: change passphrase: %w", err)
		}
		clear(e.value)
	}
	if err := tx.Commit(); err != nil {
		nk.wipe()
		return fmt.Errorf("keystore: change passphrase: %w", err)
	}
	old.wipe()
	s.keys = nk
	s.unprotected = passphrase == ""
	return nil
}
