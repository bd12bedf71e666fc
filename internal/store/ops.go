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
	if qerr := w.quota(m.Mailbox, m.Namespace, size); qerr != nil {
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
	w.delta(m.Mailbox).add(w.s.st.msgDelta(m.Hash, m.Namespace, size, 1))
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

// quota checks whether a new message of namespace ns and size bytes fits
// mailbox mb, counting the messages already added by the open
// transaction: the namespace's own quota if it has one, else the
// mailbox's quota for the other namespaces; and the node's.
func (w *writer) quota(mb Hash, ns int32, size int64) error {
	cfg := &w.s.cfg
	var cur delta
	if m := w.s.st.mb[mb]; m != nil { // only the writer mutates st; no lock needed to read
		cur = delta{msgs: m.msgs, bytes: m.bytes, nsMsgs: m.nsMsgs, nsBytes: m.nsBytes}
	}
	if d := w.pend[mb]; d != nil {
		cur.add(delta{msgs: d.msgs, bytes: d.bytes, nsMsgs: d.nsMsgs, nsBytes: d.nsBytes})
	}
	if i := w.s.st.ownIndex(ns); i >= 0 {
		q := cfg.NamespaceQuotas[ns]
		if cur.nsMsgs[i]+1 > int64(q.Messages) {
			return fmt.Errorf("%w: namespace %d holds %d messages (limit %d)", ErrMailboxFull, ns, cur.nsMsgs[i], q.Messages)
		}
		if cur.nsBytes[i]+size > q.Bytes {
			return fmt.Errorf("%w: namespace %d holds %d bytes, message is %d (limit %d)", ErrMailboxFull, ns, cur.nsBytes[i], size, q.Bytes)
		}
	} else {
		msgs, bytes := cur.msgs, cur.bytes
		for i := range cur.nsMsgs {
			msgs -= cur.nsMsgs[i]
			bytes -= cur.nsBytes[i]
		}
		if msgs+1 > int64(cfg.MaxMailboxMessages) {
			return fmt.Errorf("%w: mailbox holds %d messages (limit %d)", ErrMailboxFull, msgs, cfg.MaxMailboxMessages)
		}
		if bytes+size > cfg.MaxMailboxBytes {
			return fmt.Errorf("%w: mailbox holds %d bytes, message is %d (limit %d)", ErrMailboxFull, bytes, size, cfg.MaxMailboxBytes)
		}
	}
	return w.room(size)
}

// room checks that the node can hold size more bytes: message data,
// tombstones (TombstoneCost each) and signed deletions all count.
func (w *writer) room(size int64) error {
	st := &w.s.st
	total := st.bytes + st.tombstones*TombstoneCost + st.proofBytes + w.pendBytes
	if total+size > w.s.cfg.MaxTotalBytes {
		return fmt.Errorf("%w: node holds %d bytes, %d more asked (limit %d)", ErrStoreFull, total, size, w.s.cfg.MaxTotalBytes)
	}
	return nil
}

// deleteMany applies one delete request: it keeps the signed deletion (if
// any) for the tombstones it makes, and drops it again if it made none.
func (w *writer) deleteMany(ctx context.Context, r *request, now int64) error {
	var proof any // NULL unless the request is signed
	var newProof int64
	if r.proof != nil {
		hashes := make([]byte, 0, 32*len(r.proof.Hashes))
		for _, h := range r.proof.Hashes {
			hashes = append(hashes, h[:]...)
		}
		res, err := w.insProof.ExecContext(ctx, r.proof.Mailbox[:], r.proof.Timestamp, r.proof.Sig, hashes)
		if err != nil {
			return fmt.Errorf("insert signed deletion: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			newProof = int64(len(hashes)) + 96
		}
		var id int64
		if err := w.proofID.QueryRowContext(ctx, r.proof.Sig).Scan(&id); err != nil {
			return fmt.Errorf("find signed deletion: %w", err)
		}
		proof = id
	}
	used := false
	for _, h := range r.hashes {
		removed, tomb, err := w.deleteOne(ctx, r.mailbox, h, now, proof)
		if err != nil {
			return err
		}
		if removed {
			r.n++
		}
		used = used || tomb
	}
	if newProof > 0 {
		if !used {
			if _, err := w.dropProof.ExecContext(ctx, proof); err != nil {
				return fmt.Errorf("drop unused signed deletion: %w", err)
			}
			return nil
		}
		w.pendBytes += newProof
		w.pendProof += newProof
	}
	return nil
}

// deleteOne removes message h of mailbox mb (if present) and tombstones it
// with the signed deletion proof (an id, or nil). It reports whether a
// live message was removed and whether a tombstone now keeps proof.
func (w *writer) deleteOne(ctx context.Context, mb, h Hash, now int64, proof any) (removed, tomb bool, err error) {
	var expiry, size int64
	var ns int32
	err = w.delMsg.QueryRowContext(ctx, h[:], mb[:]).Scan(&expiry, &size, &ns)
	found := err == nil
	switch {
	case found:
		w.delta(mb).add(w.s.st.msgDelta(h, ns, size, -1))
		w.pendBytes -= size
	case isNoRows(err):
		expiry = now + UnknownTombstoneTTL.Milliseconds()
		if !w.unknownRoom(mb) {
			return false, false, nil // not remembered: the node holds no such message anyway
		}
	default:
		return false, false, fmt.Errorf("delete message: %w", err)
	}
	// The insert is a no-op if h is already tombstoned, or is a message of
	// another mailbox (which this mailbox's owner must not be able to shadow).
	res, err := w.insTomb.ExecContext(ctx, h[:], mb[:], expiry, proof, !found)
	if err != nil {
		return false, false, fmt.Errorf("insert tombstone: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, false, fmt.Errorf("insert tombstone: %w", err)
	}
	if n > 0 {
		w.delta(mb).add(tombDelta(h, !found, 1))
		w.pendBytes += TombstoneCost
		return found && live(expiry, now), proof != nil, nil
	}
	if proof != nil {
		// An older tombstone without a signed deletion gets this one.
		res, err := w.setTombProof.ExecContext(ctx, h[:], mb[:], proof)
		if err != nil {
			return false, false, fmt.Errorf("update tombstone: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			tomb = true
		}
	}
	return found && live(expiry, now), tomb, nil
}

// unknownRoom reports whether mailbox mb may keep one more tombstone of a
// message this node never held.
func (w *writer) unknownRoom(mb Hash) bool {
	var n int64
	if m := w.s.st.mb[mb]; m != nil {
		n = m.unknown
	}
	if d := w.pend[mb]; d != nil {
		n += d.unknown
	}
	return n < int64(w.s.cfg.MaxUnknownTombstones) && w.room(TombstoneCost) == nil
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
		var ns int32
		if err := rows.Scan(&hb, &mbb, &size, &ns); err != nil {
			rows.Close()
			return fmt.Errorf("expire messages: %w", err)
		}
		h, mb, err := twoHashes(hb, mbb)
		if err != nil {
			rows.Close()
			return fmt.Errorf("expire messages: %w", err)
		}
		w.delta(mb).add(w.s.st.msgDelta(h, ns, size, -1))
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
	for rows.Next() {
		var hb, mbb []byte
		var unknown bool
		if err := rows.Scan(&hb, &mbb, &unknown); err != nil {
			rows.Close()
			return fmt.Errorf("expire tombstones: %w", err)
		}
		h, mb, err := twoHashes(hb, mbb)
		if err != nil {
			rows.Close()
			return fmt.Errorf("expire tombstones: %w", err)
		}
		w.delta(mb).add(tombDelta(h, unknown, -1))
		w.pendBytes -= TombstoneCost
		r.n2++
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("expire tombstones: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("expire tombstones: %w", err)
	}
	// Signed deletions no tombstone keeps any more.
	rows, err = w.expireProofs.QueryContext(ctx, r.limit)
	if err != nil {
		return fmt.Errorf("expire signed deletions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return fmt.Errorf("expire signed deletions: %w", err)
		}
		w.pendBytes -= n + 96
		w.pendProof -= n + 96
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("expire signed deletions: %w", err)
	}
	return nil
}

// forget applies Forget: if mailbox r.mailbox still has digest r.expect
// (with nothing pending for it in this transaction), it removes all of its
// rows and sets r.n to 1.
func (w *writer) forget(ctx context.Context, r *request) error {
	mb := r.mailbox
	if _, pending := w.pend[mb]; pending {
		return nil // changed in this very batch
	}
	m := w.s.st.mb[mb] // only the writer mutates st
	if m == nil || m.digest != r.expect || r.expect.Count == 0 {
		return nil
	}
	rows, err := w.forgetMsgs.QueryContext(ctx, mb[:])
	if err != nil {
		return fmt.Errorf("forget messages: %w", err)
	}
	for rows.Next() {
		var hb []byte
		var size int64
		var ns int32
		if err := rows.Scan(&hb, &size, &ns); err != nil {
			rows.Close()
			return fmt.Errorf("forget messages: %w", err)
		}
		h, _, err := twoHashes(hb, mb[:])
		if err != nil {
			rows.Close()
			return fmt.Errorf("forget messages: %w", err)
		}
		w.delta(mb).add(w.s.st.msgDelta(h, ns, size, -1))
		w.pendBytes -= size
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("forget messages: %w", err)
	}
	rows, err = w.forgetTombs.QueryContext(ctx, mb[:])
	if err != nil {
		return fmt.Errorf("forget tombstones: %w", err)
	}
	for rows.Next() {
		var hb []byte
		var unknown bool
		if err := rows.Scan(&hb, &unknown); err != nil {
			rows.Close()
			return fmt.Errorf("forget tombstones: %w", err)
		}
		h, _, err := twoHashes(hb, mb[:])
		if err != nil {
			rows.Close()
			return fmt.Errorf("forget tombstones: %w", err)
		}
		w.delta(mb).add(tombDelta(h, unknown, -1))
		w.pendBytes -= TombstoneCost
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("forget tombstones: %w", err)
	}
	rows, err = w.forgetProofs.QueryContext(ctx, mb[:])
	if err != nil {
		return fmt.Errorf("forget signed deletions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return fmt.Errorf("forget signed deletions: %w", err)
		}
		w.pendBytes -= n + 96
		w.pendProof -= n + 96
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("forget signed deletions: %w", err)
	}
	r.n = 1
	return nil
}
