package store

import (
	"context"
	"fmt"
)

// This file holds the writer goroutine's per-request operations. They run
// inside the writer's open transaction and record their effect on the
// in-memory state in w.pend, which is applied only after COMMIT.

// putOne stores one message, or decides why not.
func (w *writer) putOne(ctx context.Context, m *Message, now int64) (PutResult, error) {
	if len(m.Data) > MaxDataSize {
		return PutResult{Status: Rejected, Err: ErrTooLarge}, nil
	}
	if !live(m.Expiry, now) {
		return PutResult{Status: Expired}, nil
	}
	size := int64(len(m.Data))
	if qerr := w.quota(m.Mailbox, size); qerr != nil {
		// A message we already hold (or have deleted) is not a quota problem.
		if st, found, err := w.known(ctx, m.Hash); err != nil || found {
			return PutResult{Status: st}, err
		}
		return PutResult{Status: Rejected, Err: qerr}, nil
	}
	data := m.Data
	if data == nil {
		data = []byte{} // nil would bind as NULL
	}
	res, err := w.insert.ExecContext(ctx, m.Hash[:], m.Mailbox[:], int64(m.Namespace), m.Timestamp, m.Expiry, data)
	if err != nil {
		return PutResult{}, fmt.Errorf("insert: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return PutResult{}, fmt.Errorf("insert: %w", err)
	}
	if n == 0 {
		st, _, err := w.known(ctx, m.Hash)
		return PutResult{Status: st}, err
	}
	w.delta(m.Mailbox).add(delta{msgs: 1, bytes: size, entries: 1, xor: entryHash(m.Hash, false)})
	w.pendBytes += size
	w.notify = append(w.notify, m.Mailbox)
	return PutResult{Status: Stored}, nil
}

// known reports whether hash is tombstoned (Deleted) or stored (Duplicate).
func (w *writer) known(ctx context.Context, h Hash) (st PutStatus, found bool, err error) {
	var tomb, msg bool
	if err := w.lookup.QueryRowContext(ctx, h[:]).Scan(&tomb, &msg); err != nil {
		return 0, false, fmt.Errorf("lookup: %w", err)
	}
	switch {
	case tomb:
		return Deleted, true, nil
	case msg:
		return Duplicate, true, nil
	}
	// Not reachable after a no-op insert; treat as duplicate to stay idempotent.
	return Duplicate, false, nil
}

// quota checks whether a new message of size bytes fits mailbox mb, counting
// the messages already added by the open transaction.
func (w *writer) quota(mb Hash, size int64) error {
	cfg := &w.s.cfg
	var msgs, bytes int64
	if m := w.s.st.mb[mb]; m != nil { // only the writer mutates st; no lock needed to read
		msgs, bytes = m.msgs, m.bytes
	}
	if d := w.pend[mb]; d != nil {
		msgs += d.msgs
		bytes += d.bytes
	}
	if msgs+1 > int64(cfg.MaxMailboxMessages) {
		return fmt.Errorf("%w: mailbox holds %d messages (limit %d)", ErrMailboxFull, msgs, cfg.MaxMailboxMessages)
	}
	if bytes+size > cfg.MaxMailboxBytes {
		return fmt.Errorf("%w: mailbox holds %d bytes, message is %d (limit %d)", ErrMailboxFull, bytes, size, cfg.MaxMailboxBytes)
	}
	if total := w.s.st.bytes + w.pendBytes; total+size > cfg.MaxTotalBytes {
		return fmt.Errorf("%w: node holds %d bytes, message is %d (limit %d)", ErrStoreFull, total, size, cfg.MaxTotalBytes)
	}
	return nil
}

// deleteOne removes message h of mailbox mb (if present) and tombstones it.
// It reports whether a live message was removed.
func (w *writer) deleteOne(ctx context.Context, mb, h Hash, now int64) (bool, error) {
	var expiry, size int64
	err := w.delMsg.QueryRowContext(ctx, h[:], mb[:]).Scan(&expiry, &size)
	found := err == nil
	switch {
	case found:
		d := w.delta(mb)
		d.add(delta{msgs: -1, bytes: -size, entries: -1, xor: entryHash(h, false)})
		w.pendBytes -= size
	case isNoRows(err):
		expiry = now + UnknownTombstoneTTL.Milliseconds()
	default:
		return false, fmt.Errorf("delete message: %w", err)
	}
	// The insert is a no-op if h is already tombstoned, or is a message of
	// another mailbox (which this mailbox's owner must not be able to shadow).
	res, err := w.insTomb.ExecContext(ctx, h[:], mb[:], expiry)
	if err != nil {
		return false, fmt.Errorf("insert tombstone: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert tombstone: %w", err)
	}
	if n > 0 {
		w.delta(mb).add(delta{tombstones: 1, entries: 1, xor: entryHash(h, true)})
	}
	return found && live(expiry, now), nil
}

// expire removes up to r.limit expired messages and r.limit expired
// tombstones.
func (w *writer) expire(ctx context.Context, r *request, now int64) error {
	rows, err := w.expireMsgs.QueryContext(ctx, now, r.limit)
	if err != nil {
		return fmt.Errorf("expire messages: %w", err)
	}
	for rows.Next() {
		var hb, mbb []byte
		var size int64
		if err := rows.Scan(&hb, &mbb, &size); err != nil {
			rows.Close()
			return fmt.Errorf("expire messages: %w", err)
		}
		h, mb, err := twoHashes(hb, mbb)
		if err != nil {
			rows.Close()
			return fmt.Errorf("expire messages: %w", err)
		}
		w.delta(mb).add(delta{msgs: -1, bytes: -size, entries: -1, xor: entryHash(h, false)})
		w.pendBytes -= size
		r.n++
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("expire messages: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("expire messages: %w", err)
	}

	rows, err = w.expireTombs.QueryContext(ctx, now, r.limit)
	if err != nil {
		return fmt.Errorf("expire tombstones: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var hb, mbb []byte
		if err := rows.Scan(&hb, &mbb); err != nil {
			return fmt.Errorf("expire tombstones: %w", err)
		}
		h, mb, err := twoHashes(hb, mbb)
		if err != nil {
			return fmt.Errorf("expire tombstones: %w", err)
		}
		w.delta(mb).add(delta{tombstones: -1, entries: -1, xor: entryHash(h, true)})
		r.n2++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("expire tombstones: %w", err)
	}
	return nil
}
