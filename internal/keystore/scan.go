package keystore

import (
	"context"
	"fmt"
	"strings"
)

// Scan calls fn with every entry whose name starts with prefix, in no
// particular order, reading the table once: far cheaper than a Get per
// name for reading many entries (the search index is built so). fn must
// not use the store (its one connection is busy with the scan); an error
// from fn stops the scan and is returned.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(name string, value []byte) error) error {
	return s.withKeys(func(k *keys) error {
		rows, err := s.db.QueryContext(ctx, "SELECT id, name, value FROM entries")
		if err != nil {
			return fmt.Errorf("keystore: scan: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, sealedName, sealedValue []byte
			if err := rows.Scan(&id, &sealedName, &sealedValue); err != nil {
				return fmt.Errorf("keystore: scan: %w", err)
			}
			name, err := open(k.name, sealedName, id)
			if err != nil {
				return fmt.Errorf("keystore: scan: %w", ErrCorrupt)
			}
			if !strings.HasPrefix(string(name), prefix) {
				continue
			}
			v, err := open(k.value, sealedValue, name)
			if err != nil {
				return fmt.Errorf("keystore: scan %q: %w", name, ErrCorrupt)
			}
			if v == nil {
				v = []byte{}
			}
			if err := fn(string(name), v); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("keystore: scan: %w", err)
		}
		return nil
	})
}
