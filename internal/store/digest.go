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

// maxOwnQuota bounds how many namespaces may have quotas of their own
// (Config.NamespaceQuotas).
const maxOwnQuota = 4

// mailboxState is the in-memory summary of one mailbox.
type mailboxState struct {
	msgs    int64 // messages on disk, every namespace
	bytes   int64 // sum of their len(Data)
	nsMsgs  [maxOwnQuota]int64
	nsBytes [maxOwnQuota]int64 // per namespace with a quota of its own (state.own)
	unknown int64              // tombstones of messages this node never held
	digest  Digest
}

// state holds the in-memory counters. Only the writer goroutine mutates it
// (under mu, after a commit); the writer may read it without the lock.
type state struct {
	mu         sync.RWMutex
	own        []int32 // namespaces with quotas of their own, by index
	mb         map[Hash]*mailboxState
	msgs       int64
	bytes      int64
	tombstones int64
	proofBytes int64 // size of the signed deletions kept
	mailboxes  int   // mailboxes with msgs > 0
}

// ownIndex is the index of namespace ns in st.own, or -1.
func (st *state) ownIndex(ns int32) int {
	for i, x := range st.own {
		if x == ns {
			return i
		}
	}
	return -1
}

// msgDelta is the change for adding (sign 1) or removing (sign -1) a
// message of namespace ns and size bytes with hash h.
func (st *state) msgDelta(h Hash, ns int32, size int64, sign int64) delta {
	d := delta{msgs: sign, bytes: sign * size, entries: sign, xor: entryHash(h, false)}
	if i := st.ownIndex(ns); i >= 0 {
		d.nsMsgs[i] = sign
		d.nsBytes[i] = sign * size
	}
	return d
}

// tombDelta is the change for adding (sign 1) or removing (sign -1) a
// tombstone of hash h.
func tombDelta(h Hash, unknown bool, sign int64) delta {
	d := delta{tombstones: sign, entries: sign, xor: entryHash(h, true)}
	if unknown {
		d.unknown = sign
	}
	return d
}

// load rebuilds the state from the database.
func (st *state) load(ctx context.Context, db *sql.DB) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.mb = make(map[Hash]*mailboxState)
	st.msgs, st.bytes, st.tombstones, st.mailboxes = 0, 0, 0, 0

	rows, err := db.QueryContext(ctx, "SELECT hash, mailbox, namespace, length(data) FROM messages")
	if err != nil {
		return fmt.Errorf("store: load messages: %w", err)
	}
	for rows.Next() {
		var h, mb []byte
		var n int64
		var ns int32
		if err := rows.Scan(&h, &mb, &ns, &n); err != nil {
			rows.Close()
			return fmt.Errorf("store: load messages: %w", err)
		}
		hash, mbox, err := twoHashes(h, mb)
		if err != nil {
			rows.Close()
			return fmt.Errorf("store: load messages: %w", err)
		}
		st.applyLocked(mbox, st.msgDelta(hash, ns, n, 1))
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("store: load messages: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: load messages: %w", err)
	}

	rows, err = db.QueryContext(ctx, "SELECT hash, mailbox, unknown FROM tombstones")
	if err != nil {
		return fmt.Errorf("store: load tombstones: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h, mb []byte
		var unknown bool
		if err := rows.Scan(&h, &mb, &unknown); err != nil {
			return fmt.Errorf("store: load tombstones: %w", err)
		}
		hash, mbox, err := twoHashes(h, mb)
		if err != nil {
			return fmt.Errorf("store: load tombstones: %w", err)
		}
		st.applyLocked(mbox, tombDelta(hash, unknown, 1))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: load tombstones: %w", err)
	}
	if err := db.QueryRowContext(ctx, "SELECT coalesce(sum(length(hashes)), 0) + 96*count(*) FROM delproofs").Scan(&st.proofBytes); err != nil {
		return fmt.Errorf("store: load signed deletions: %w", err)
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
	nsMsgs, nsBytes         [maxOwnQuota]int64
	unknown                 int64
	entries                 int64
	xor                     Hash
}

func (d *delta) add(o delta) {
	d.msgs += o.msgs
	d.bytes += o.bytes
	d.tombstones += o.tombstones
	for i := range d.nsMsgs {
		d.nsMsgs[i] += o.nsMsgs[i]
		d.nsBytes[i] += o.nsBytes[i]
	}
	d.unknown += o.unknown
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
	for i := range m.nsMsgs {
		m.nsMsgs[i] += d.nsMsgs[i]
		m.nsBytes[i] += d.nsBytes[i]
	}
	m.unknown += d.unknown
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

// apply applies a committed batch of deltas and the change of the size of
// the signed deletions kept.
func (st *state) apply(ds map[Hash]*delta, proofBytes int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for mb, d := range ds {
		st.applyLocked(mb, *d)
	}
	st.proofBytes += proofBytes
}

func (st *state) stats() Stats {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return Stats{Messages: st.msgs, Bytes: st.bytes, Mailboxes: st.mailboxes, Tombstones: st.tombstones, DeletionBytes: st.proofBytes}
}

// Count is how many messages of namespace ns mailbox mb holds, for a
// namespace with a quota of its own (Config.NamespaceQuotas); -1 for
// other namespaces.
func (s *Store) Count(mb Hash, ns int32) int {
	i := s.st.ownIndex(ns)
	if i < 0 {
		return -1
	}
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	if m := s.st.mb[mb]; m != nil {
		return int(m.nsMsgs[i])
	}
	return 0
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
