package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"sync"
)

// Entry is one line of a mailbox's anti-entropy set.
type Entry struct {
	Hash    Hash
	Deleted bool // a tombstone rather than a live message
}

// Digest summarises a mailbox's entries for cheap comparison between
// replicas: Count is the number of entries (messages + tombstones) and XOR is
// the XOR of sha256(hash || deletedByte) over them. Replicas holding equal
// entry sets have equal digests.
type Digest struct {
	Count uint32
	XOR   Hash
}

// entryHash is one entry's contribution to Digest.XOR.
func entryHash(h Hash, deleted bool) Hash {
	var buf [33]byte
	copy(buf[:32], h[:])
	if deleted {
		buf[32] = 1
	}
	return sha256.Sum256(buf[:])
}

func xorInto(dst *Hash, src Hash) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// mailboxState is the in-memory summary of one mailbox.
type mailboxState struct {
	msgs   int64 // messages on disk
	bytes  int64 // sum of their len(Data)
	digest Digest
}

// state holds the in-memory counters. Only the writer goroutine mutates it
// (under mu, after a commit); the writer may read it without the lock.
type state struct {
	mu         sync.RWMutex
	mb         map[Hash]*mailboxState
	msgs       int64
	bytes      int64
	tombstones int64
	mailboxes  int // mailboxes with msgs > 0
}

// load rebuilds the state from the database.
func (st *state) load(ctx context.Context, db *sql.DB) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.mb = make(map[Hash]*mailboxState)
	st.msgs, st.bytes, st.tombstones, st.mailboxes = 0, 0, 0, 0

	rows, err := db.QueryContext(ctx, "SELECT hash, mailbox, length(data) FROM messages")
	if err != nil {
		return fmt.Errorf("store: load messages: %w", err)
	}
	for rows.Next() {
		var h, mb []byte
		var n int64
		if err := rows.Scan(&h, &mb, &n); err != nil {
			rows.Close()
			return fmt.Errorf("store: load messages: %w", err)
		}
		hash, mbox, err := twoHashes(h, mb)
		if err != nil {
			rows.Close()
			return fmt.Errorf("store: load messages: %w", err)
		}
		st.applyLocked(mbox, delta{msgs: 1, bytes: n, entries: 1, xor: entryHash(hash, false)})
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("store: load messages: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: load messages: %w", err)
	}

	rows, err = db.QueryContext(ctx, "SELECT hash, mailbox FROM tombstones")
	if err != nil {
		return fmt.Errorf("store: load tombstones: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h, mb []byte
		if err := rows.Scan(&h, &mb); err != nil {
			return fmt.Errorf("store: load tombstones: %w", err)
		}
		hash, mbox, err := twoHashes(h, mb)
		if err != nil {
			return fmt.Errorf("store: load tombstones: %w", err)
		}
		st.applyLocked(mbox, delta{tombstones: 1, entries: 1, xor: entryHash(hash, true)})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: load tombstones: %w", err)
	}
	return nil
}

func twoHashes(a, b []byte) (ha, hb Hash, err error) {
	if len(a) != 32 || len(b) != 32 {
		return ha, hb, fmt.Errorf("corrupt row: hash/mailbox of length %d/%d, want 32", len(a), len(b))
	}
	return Hash(a), Hash(b), nil
}

// delta is a pending change to one mailbox's state.
type delta struct {
	msgs, bytes, tombstones int64
	entries                 int64
	xor                     Hash
}

func (d *delta) add(o delta) {
	d.msgs += o.msgs
	d.bytes += o.bytes
	d.tombstones += o.tombstones
	d.entries += o.entries
	xorInto(&d.xor, o.xor)
}

// applyLocked applies d to mailbox mb. st.mu must be held for writing.
func (st *state) applyLocked(mb Hash, d delta) {
	m := st.mb[mb]
	if m == nil {
		m = &mailboxState{}
		st.mb[mb] = m
	}
	hadMsgs := m.msgs > 0
	m.msgs += d.msgs
	m.bytes += d.bytes
	m.digest.Count = uint32(int64(m.digest.Count) + d.entries)
	xorInto(&m.digest.XOR, d.xor)
	st.msgs += d.msgs
	st.bytes += d.bytes
	st.tombstones += d.tombstones
	switch hasMsgs := m.msgs > 0; {
	case hasMsgs && !hadMsgs:
		st.mailboxes++
	case !hasMsgs && hadMsgs:
		st.mailboxes--
	}
	if m.digest.Count == 0 && m.msgs == 0 {
		delete(st.mb, mb)
	}
}

// apply applies a committed batch of deltas.
func (st *state) apply(ds map[Hash]*delta) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for mb, d := range ds {
		st.applyLocked(mb, *d)
	}
}

func (st *state) stats() Stats {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return Stats{Messages: st.msgs, Bytes: st.bytes, Mailboxes: st.mailboxes, Tombstones: st.tombstones}
}

// Digests returns the digest of every mailbox that has at least one entry.
// The map is a fresh copy owned by the caller.
func (s *Store) Digests() map[Hash]Digest {
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	out := make(map[Hash]Digest, len(s.st.mb))
	for mb, m := range s.st.mb {
		if m.digest.Count > 0 {
			out[mb] = m.digest
		}
	}
	return out
}

// Digest returns one mailbox's digest (zero if it has no entries).
func (s *Store) Digest(mailbox Hash) Digest {
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	if m := s.st.mb[mailbox]; m != nil {
		return m.digest
	}
	return Digest{}
}
