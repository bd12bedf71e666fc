package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

const msgColumns = "hash, mailbox, namespace, ts, expiry, seq, data"

// The hot read queries, prepared once (a query string given to the pool is
// parsed again on every call: SQLite's parser was a seventh of a node's
// CPU in anti-entropy).
var readQueries = map[string]string{
	"get": `SELECT ` + msgColumns + ` FROM messages
		WHERE mailbox = ?1 AND expiry >= ?2 AND (?5 = 0 OR namespace != ?5)
		  AND seq > coalesce((SELECT seq FROM messages WHERE hash = ?3 AND mailbox = ?1), 0)
		ORDER BY seq LIMIT ?4`,
	// getns reads one namespace through the (mailbox, namespace, seq) index.
	"getns": `SELECT ` + msgColumns + ` FROM messages
		WHERE mailbox = ?1 AND namespace = ?5 AND expiry >= ?2
		  AND seq > coalesce((SELECT seq FROM messages WHERE hash = ?3 AND mailbox = ?1 AND namespace = ?5), 0)
		ORDER BY seq LIMIT ?4`,
	"entries": `SELECT hash, 0 FROM messages WHERE mailbox = ?1 AND (?2 IS NULL OR hash > ?2) AND (?3 IS NULL OR hash <= ?3)
		 UNION ALL
		 SELECT hash, 1 FROM tombstones WHERE mailbox = ?1 AND (?2 IS NULL OR hash > ?2) AND (?3 IS NULL OR hash <= ?3)
		 ORDER BY 1 LIMIT ?4`,
	"newest": `SELECT ` + msgColumns + ` FROM messages
		WHERE mailbox = ?1 AND namespace = ?2 AND expiry >= ?3 ORDER BY seq DESC LIMIT ?4`,
}

func (s *Store) prepareReads(ctx context.Context) error {
	s.reads = make(map[string]*sql.Stmt, len(readQueries))
	for name, q := range readQueries {
		st, err := s.rdb.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("store: prepare %s: %w", name, err)
		}
		s.reads[name] = st
	}
	return nil
}

func scanMessage(rows *sql.Rows) (Message, error) {
	var m Message
	var h, mb sql.RawBytes // copied into arrays below: no per-row clone
	if err := rows.Scan(&h, &mb, &m.Namespace, &m.Timestamp, &m.Expiry, &m.Seq, &m.Data); err != nil {
		return m, err
	}
	var err error
	m.Hash, m.Mailbox, err = twoHashes(h, mb)
	if m.Data == nil {
		m.Data = []byte{}
	}
	return m, err
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// Get returns live messages of mailbox in local arrival order (Seq
// ascending). If after is non-nil and names a message of this mailbox held by
// this node, only messages that arrived after it are returned; an unknown
// hash returns from the start. At most limit messages (limit <= 0 or above
// MaxGetLimit means MaxGetLimit) and at most maxBytes of Data (maxBytes <= 0
// means DefaultGetBytes) are returned, but always at least one message if
// there is any; more reports whether messages were left out. Messages of
// Config.ApartNamespace are left out.
func (s *Store) Get(mailbox Hash, after *Hash, limit int, maxBytes int) (msgs []Message, more bool, err error) {
	return s.get("get", mailbox, s.cfg.ApartNamespace, after, limit, maxBytes)
}

// GetNamespace is Get for the messages of one namespace of mailbox only
// (any namespace, Config.ApartNamespace included); a cursor that names no
// message of that namespace returns from the start.
func (s *Store) GetNamespace(mailbox Hash, namespace int32, after *Hash, limit int, maxBytes int) (msgs []Message, more bool, err error) {
	return s.get("getns", mailbox, namespace, after, limit, maxBytes)
}

func (s *Store) get(query string, mailbox Hash, ns int32, after *Hash, limit int, maxBytes int) (msgs []Message, more bool, err error) {
	if s.closed.Load() {
		return nil, false, fmt.Errorf("store: get: %w", ErrClosed)
	}
	if limit <= 0 || limit > MaxGetLimit {
		limit = MaxGetLimit
	}
	if maxBytes <= 0 {
		maxBytes = DefaultGetBytes
	}
	var afterArg []byte // NULL when no cursor: the subquery then yields 0
	if after != nil {
		afterArg = after[:]
	}
	rows, err := s.reads[query].QueryContext(context.Background(), mailbox[:], s.nowMs(), afterArg, limit+1, ns)
	if err != nil {
		return nil, false, fmt.Errorf("store: get: %w", err)
	}
	defer rows.Close()
	size := 0
	for rows.Next() {
		if len(msgs) == limit {
			more = true
			break
		}
		m, err := scanMessage(rows)
		if err != nil {
			return nil, false, fmt.Errorf("store: get: %w", err)
		}
		if len(msgs) > 0 && size+len(m.Data) > maxBytes {
			more = true
			break
		}
		size += len(m.Data)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("store: get: %w", err)
	}
	return msgs, more, nil
}

// GetByHash returns the live messages among hashes (of any mailbox), in the
// order of hashes, skipping unknown ones and repeats. At most MaxGetLimit
// hashes may be asked for at once.
func (s *Store) GetByHash(hashes []Hash) ([]Message, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("store: get by hash: %w", ErrClosed)
	}
	if len(hashes) > MaxGetLimit {
		return nil, fmt.Errorf("store: get by hash: %d hashes requested, limit is %d", len(hashes), MaxGetLimit)
	}
	if len(hashes) == 0 {
		return nil, nil
	}
	now := s.nowMs()
	found := make(map[Hash]Message, len(hashes))
	const chunk = 250 // well under SQLite's host-parameter limit
	for start := 0; start < len(hashes); start += chunk {
		part := hashes[start:min(start+chunk, len(hashes))]
		args := make([]any, 0, len(part)+1)
		args = append(args, now)
		for i := range part {
			args = append(args, part[i][:])
		}
		q := `SELECT ` + msgColumns + ` FROM messages WHERE expiry >= ? AND hash IN (?` +
			strings.Repeat(",?", len(part)-1) + `)`
		if err := func() error {
			rows, err := s.rdb.QueryContext(context.Background(), q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				m, err := scanMessage(rows)
				if err != nil {
					return err
				}
				found[m.Hash] = m
			}
			return rows.Err()
		}(); err != nil {
			return nil, fmt.Errorf("store: get by hash: %w", err)
		}
	}
	out := make([]Message, 0, len(found))
	for _, h := range hashes {
		if m, ok := found[h]; ok {
			out = append(out, m)
			delete(found, h)
		}
	}
	return out, nil
}

// Entries returns the anti-entropy set of mailbox: every message this node
// holds for it (including expired ones ExpireNow has not removed yet, so that
// Entries always agrees with Digest) and every tombstone (Deleted=true),
// sorted by hash.
func (s *Store) Entries(mailbox Hash) ([]Entry, error) {
	out, err := s.entries(mailbox, nil, nil, 0)
	if err != nil {
		return nil, err
	}
	// SQLite orders BLOBs with memcmp, but keep the contract independent of that.
	if !slices.IsSortedFunc(out, func(a, b Entry) int { return bytes.Compare(a.Hash[:], b.Hash[:]) }) {
		slices.SortFunc(out, func(a, b Entry) int { return bytes.Compare(a.Hash[:], b.Hash[:]) })
	}
	return out, nil
}

// entries reads mailbox's anti-entropy set with hashes in (after, through]
// (a nil bound is open), in hash order, at most limit of them (0: all). One
// statement, so both tables are read from the same snapshot.
func (s *Store) entries(mailbox Hash, after, through *Hash, limit int) ([]Entry, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("store: entries: %w", ErrClosed)
	}
	var lo, hi []byte
	if after != nil {
		lo = after[:]
	}
	if through != nil {
		hi = through[:]
	}
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.reads["entries"].QueryContext(context.Background(), mailbox[:], lo, hi, limit)
	if err != nil {
		return nil, fmt.Errorf("store: entries: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var h []byte
		var e Entry
		if err := rows.Scan(&h, &e.Deleted); err != nil {
			return nil, fmt.Errorf("store: entries: %w", err)
		}
		if len(h) != 32 {
			return nil, fmt.Errorf("store: entries: corrupt hash of length %d", len(h))
		}
		e.Hash = Hash(h)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: entries: %w", err)
	}
	return out, nil
}

// GetKV returns the value stored under key.
func (s *Store) GetKV(key string) ([]byte, bool, error) {
	if s.closed.Load() {
		return nil, false, fmt.Errorf("store: getkv %q: %w", key, ErrClosed)
	}
	var val []byte
	err := s.rdb.QueryRowContext(context.Background(), "SELECT val FROM kv WHERE key = ?", key).Scan(&val)
	switch {
	case isNoRows(err):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("store: getkv %q: %w", key, err)
	}
	if val == nil {
		val = []byte{}
	}
	return val, true, nil
}

// EntriesPage returns up to limit entries of mailbox's anti-entropy set
// with hashes after after (from the start if nil), sorted by hash, and
// whether the set goes on after them. Paging keeps a sync answer bounded
// however large a mailbox's set grows.
func (s *Store) EntriesPage(mailbox Hash, after *Hash, limit int) ([]Entry, bool, error) {
	if limit <= 0 {
		limit = MaxGetLimit
	}
	out, err := s.entries(mailbox, after, nil, limit+1)
	if err != nil {
		return nil, false, err
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// Deletions returns the signed deletions that the tombstones of hashes in
// mailbox keep (each once), with at most limit of them. Tombstones without
// one (made before deletions were signed) are skipped.
func (s *Store) Deletions(mailbox Hash, hashes []Hash, limit int) ([]Deletion, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("store: deletions: %w", ErrClosed)
	}
	if len(hashes) > MaxGetLimit {
		return nil, fmt.Errorf("store: deletions: %d hashes asked for, limit is %d", len(hashes), MaxGetLimit)
	}
	seen := map[int64]bool{}
	var out []Deletion
	const chunk = 250
	for start := 0; start < len(hashes) && len(out) < limit; start += chunk {
		part := hashes[start:min(start+chunk, len(hashes))]
		args := []any{mailbox[:]}
		for i := range part {
			args = append(args, part[i][:])
		}
		q := `SELECT d.id, d.ts, d.sig, d.hashes FROM delproofs d
			WHERE d.id IN (SELECT proof FROM tombstones WHERE mailbox = ? AND proof IS NOT NULL AND hash IN (?` +
			strings.Repeat(",?", len(part)-1) + `))`
		if err := func() error {
			rows, err := s.rdb.QueryContext(context.Background(), q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				d := Deletion{Mailbox: mailbox}
				var hs []byte
				if err := rows.Scan(&id, &d.Timestamp, &d.Sig, &hs); err != nil {
					return err
				}
				if seen[id] || len(hs)%32 != 0 {
					continue
				}
				seen[id] = true
				for i := 0; i < len(hs); i += 32 {
					d.Hashes = append(d.Hashes, Hash(hs[i:i+32]))
				}
				if len(out) < limit {
					out = append(out, d)
				}
			}
			return rows.Err()
		}(); err != nil {
			return nil, fmt.Errorf("store: deletions: %w", err)
		}
	}
	return out, nil
}

// Newest returns the newest live messages (at most limit, newest last) of
// one namespace of mailbox, through the (mailbox, namespace, seq) index:
// the cost does not grow with the rest of the mailbox.
func (s *Store) Newest(mailbox Hash, namespace int32, limit int) ([]Message, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("store: newest: %w", ErrClosed)
	}
	if limit <= 0 || limit > MaxGetLimit {
		limit = MaxGetLimit
	}
	rows, err := s.reads["newest"].QueryContext(context.Background(), mailbox[:], namespace, s.nowMs(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: newest: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("store: newest: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: newest: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

// EntriesBetween returns the entries of mailbox's set with hashes in
// (after, through], sorted by hash; a nil bound is open. Anti-entropy
// compares one page of a peer's set with this range of its own.
func (s *Store) EntriesBetween(mailbox Hash, after, through *Hash) ([]Entry, error) {
	return s.entries(mailbox, after, through, 0)
}
