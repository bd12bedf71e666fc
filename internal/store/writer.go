package store

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"time"
)

// opKind is the kind of a write request.
type opKind uint8

const (
	opPut opKind = iota
	opDelete
	opExpire
	opSetKV
	opDeleteKV
	opForget
)

func (k opKind) String() string {
	return [...]string{"put", "delete", "expire", "setkv", "deletekv", "forget"}[k]
}

// request is one write handed to the writer goroutine. The writer fills in
// the result fields and then closes done; the submitter reads them only after
// done is closed.
type request struct {
	op      opKind
	msgs    []Message   // opPut
	res     []PutResult // opPut
	mailbox Hash        // opDelete
	hashes  []Hash      // opDelete
	proof   *Deletion   // opDelete: the owner's signed request, kept with the tombstones
	key     string      // opSetKV, opDeleteKV
	val     []byte      // opSetKV
	limit   int         // opExpire: max rows per table
	expect  Digest      // opForget: the mailbox's digest when the caller decided

	n, n2 int // opDelete: live messages removed; opExpire: messages, tombstones removed
	err   error
	done  chan struct{}
}

// weight is the request's share of a batch's BatchMax budget.
func (r *request) weight() int {
	switch r.op {
	case opPut:
		return max(1, len(r.msgs))
	case opDelete:
		return max(1, len(r.hashes))
	case opExpire:
		return r.limit
	}
	return 1
}

// submit hands r to the writer and waits until its transaction has committed
// (or failed). If ctx is done first, submit returns ctx.Err(); the request may
// still be applied.
func (s *Store) submit(ctx context.Context, r *request) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.done = make(chan struct{})
	select {
	case s.reqs <- r:
	case <-s.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.writerDone:
		// The writer exited; it may have answered r just before.
		select {
		case <-r.done:
			return r.err
		default:
			return ErrClosed
		}
	}
}

// Put writes messages durably: it returns only after the transaction holding
// them has committed. Concurrent calls are group-committed by the writer
// goroutine. Result i belongs to msgs[i]. Put does not modify msgs and does
// not retain msgs[i].Data. Per-message outcomes (duplicates, tombstoned,
// expired, quota) are reported in the results; the error is non-nil only if
// nothing was written: ErrClosed, ctx.Err() (the write may still land), or a
// database failure (the whole transaction was rolled back).
func (s *Store) Put(ctx context.Context, msgs ...Message) ([]PutResult, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	// Copy the payloads so a caller that gives up waiting may reuse its buffers.
	total := 0
	for i := range msgs {
		if len(msgs[i].Data) <= MaxDataSize {
			total += len(msgs[i].Data)
		}
	}
	buf := make([]byte, 0, total)
	own := make([]Message, len(msgs))
	for i, m := range msgs {
		if len(m.Data) <= MaxDataSize {
			start := len(buf)
			buf = append(buf, m.Data...)
			m.Data = buf[start:len(buf):len(buf)]
		}
		own[i] = m
	}
	r := &request{op: opPut, msgs: own, res: make([]PutResult, len(msgs))}
	if err := s.submit(ctx, r); err != nil {
		return nil, fmt.Errorf("store: put: %w", err)
	}
	return r.res, nil
}

// Deletion is a mailbox owner's signed delete request (its hashes in the
// signed order, timestamp and signature). Nodes keep it with the
// tombstones it made and pass it on, so every replica can check that the
// owner asked; the store does not check the signature itself.
type Deletion struct {
	Mailbox   Hash
	Hashes    []Hash
	Timestamp int64
	Sig       []byte
}

// Delete removes the given messages of mailbox and records tombstones for
// them so that replication never resurrects them, without a signed
// deletion to pass on (tests, and deletions decided locally). See
// DeleteSigned.
func (s *Store) Delete(ctx context.Context, mailbox Hash, hashes []Hash) (int, error) {
	return s.deleteReq(ctx, &request{op: opDelete, mailbox: mailbox, hashes: append([]Hash(nil), hashes...)})
}

// DeleteSigned applies an owner's signed deletion: it removes the named
// messages of the mailbox and records tombstones that keep d, so that
// replication never resurrects them and Deletions can pass d on. A
// tombstone is kept until the deleted message's expiry, or
// UnknownTombstoneTTL if this node did not hold the message; tombstones of
// messages never held are kept only up to Config.MaxUnknownTombstones per
// mailbox (and while the node has room). Hashes that belong to a message
// of another mailbox are ignored. Returns how many live messages were
// removed. Durable on return.
func (s *Store) DeleteSigned(ctx context.Context, d Deletion) (int, error) {
	d.Hashes = append([]Hash(nil), d.Hashes...)
	d.Sig = append([]byte(nil), d.Sig...)
	return s.deleteReq(ctx, &request{op: opDelete, mailbox: d.Mailbox, hashes: d.Hashes, proof: &d})
}

func (s *Store) deleteReq(ctx context.Context, r *request) (int, error) {
	if len(r.hashes) == 0 {
		return 0, nil
	}
	if err := s.submit(ctx, r); err != nil {
		return 0, fmt.Errorf("store: delete: %w", err)
	}
	return r.n, nil
}

// defaultExpireChunk is how many rows per table one expiry transaction
// removes, so that a large expiry backlog does not hold up concurrent Puts.
const defaultExpireChunk = 2048

// ExpireNow deletes expired messages and expired tombstones and returns the
// number of messages removed. It works in chunks, each its own transaction.
func (s *Store) ExpireNow() (int, error) {
	total := 0
	for {
		r := &request{op: opExpire, limit: s.expireChunk}
		if err := s.submit(context.Background(), r); err != nil {
			return total, fmt.Errorf("store: expire: %w", err)
		}
		total += r.n
		if r.n < r.limit && r.n2 < r.limit {
			return total, nil
		}
	}
}

// Forget drops every message, tombstone and signed deletion of mailbox mb
// from this node, without tombstones of its own, if the mailbox's digest
// is still expect (nothing was added or deleted since the caller looked);
// it reports whether it did. For a copy this node no longer needs: its
// swarm holds the same set (node/sync.go). Durable on return.
func (s *Store) Forget(ctx context.Context, mb Hash, expect Digest) (bool, error) {
	r := &request{op: opForget, mailbox: mb, expect: expect}
	if err := s.submit(ctx, r); err != nil {
		return false, fmt.Errorf("store: forget: %w", err)
	}
	return r.n > 0, nil
}

// SetKV stores val under key in the node-state table. Durable on return.
func (s *Store) SetKV(key string, val []byte) error {
	if val == nil {
		val = []byte{}
	}
	r := &request{op: opSetKV, key: key, val: append([]byte{}, val...)}
	if err := s.submit(context.Background(), r); err != nil {
		return fmt.Errorf("store: setkv %q: %w", key, err)
	}
	return nil
}

// DeleteKV removes key from the node-state table (no error if absent).
// Durable on return.
func (s *Store) DeleteKV(key string) error {
	r := &request{op: opDeleteKV, key: key}
	if err := s.submit(context.Background(), r); err != nil {
		return fmt.Errorf("store: deletekv %q: %w", key, err)
	}
	return nil
}

// writer owns the write connection. Its run method is the package's only
// goroutine.
type writer struct {
	s    *Store
	conn *sql.Conn

	begin, commit, rollback *sql.Stmt
	insert, lookup          *sql.Stmt
	delMsg, insTomb         *sql.Stmt
	insProof, proofID       *sql.Stmt
	setTombProof, dropProof *sql.Stmt
	expireMsgs, expireTombs *sql.Stmt
	expireProofs            *sql.Stmt
	forgetMsgs, forgetTombs *sql.Stmt
	forgetProofs            *sql.Stmt
	setKV, delKV            *sql.Stmt
	stmts                   []*sql.Stmt
	batch                   []*request
	pend                    map[Hash]*delta // per-mailbox changes of the open transaction
	pendBytes               int64           // total bytes (data, tombstones, deletions) added by the open transaction
	pendProof               int64           // of which signed deletions
	notify                  []Hash          // mailboxes that got a new message
}

func newWriter(ctx context.Context, s *Store, conn *sql.Conn) (*writer, error) {
	w := &writer{s: s, conn: conn, pend: make(map[Hash]*delta)}
	prep := []struct {
		dst *(*sql.Stmt)
		q   string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		// OR IGNORE rather than ON CONFLICT DO NOTHING: with no ABORT
		// constraint left, SQLite needs no statement journal (a page copy
		// per modified page) for this statement.
		{&w.insert, `INSERT OR IGNORE INTO messages(hash, mailbox, namespace, ts, expiry, data)
			SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT EXISTS (SELECT 1 FROM tombstones WHERE hash = ?1)`},
		{&w.lookup, `SELECT EXISTS(SELECT 1 FROM tombstones WHERE hash = ?1),
			EXISTS(SELECT 1 FROM messages WHERE hash = ?1)`},
		{&w.delMsg, `DELETE FROM messages WHERE hash = ?1 AND mailbox = ?2 RETURNING expiry, length(data), namespace`},
		{&w.insTomb, `INSERT OR IGNORE INTO tombstones(hash, mailbox, expiry, proof, unknown)
			SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM messages WHERE hash = ?1)`},
		{&w.insProof, `INSERT OR IGNORE INTO delproofs(mailbox, ts, sig, hashes) VALUES (?1, ?2, ?3, ?4)`},
		{&w.proofID, `SELECT id FROM delproofs WHERE sig = ?1`},
		{&w.setTombProof, `UPDATE tombstones SET proof = ?3 WHERE hash = ?1 AND mailbox = ?2 AND proof IS NULL`},
		{&w.dropProof, `DELETE FROM delproofs WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM tombstones WHERE proof = ?1)`},
		{&w.expireMsgs, `DELETE FROM messages WHERE seq IN
			(SELECT seq FROM messages WHERE expiry < ?1 LIMIT ?2) RETURNING hash, mailbox, length(data), namespace`},
		{&w.expireTombs, `DELETE FROM tombstones WHERE hash IN
			(SELECT hash FROM tombstones WHERE expiry < ?1 LIMIT ?2) RETURNING hash, mailbox, unknown`},
		{&w.expireProofs, `DELETE FROM delproofs WHERE id IN
			(SELECT d.id FROM delproofs d WHERE NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.proof = d.id) LIMIT ?1)
			RETURNING length(hashes)`},
		{&w.forgetMsgs, `DELETE FROM messages WHERE mailbox = ?1 RETURNING hash, length(data), namespace`},
		{&w.forgetTombs, `DELETE FROM tombstones WHERE mailbox = ?1 RETURNING hash, unknown`},
		{&w.forgetProofs, `DELETE FROM delproofs WHERE mailbox = ?1 AND NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.proof = delproofs.id)
			RETURNING length(hashes)`},
		{&w.setKV, `INSERT INTO kv(key, val) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET val = excluded.val`},
		{&w.delKV, `DELETE FROM kv WHERE key = ?1`},
	}
	for _, p := range prep {
		st, err := conn.PrepareContext(ctx, p.q)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("store: prepare %q: %w", p.q, err)
		}
		*p.dst = st
		w.stmts = append(w.stmts, st)
	}
	return w, nil
}

// close releases the statements and the connection.
func (w *writer) close() {
	for _, st := range w.stmts {
		_ = st.Close()
	}
	_ = w.conn.Close()
}

// run is the writer goroutine: it collects queued requests into a batch of up
// to BatchMax messages, executes them in one transaction, commits, and then
// answers every request of the batch.
func (w *writer) run() {
	s := w.s
	defer close(s.writerDone)
	defer w.close()
	for {
		select { // shutdown takes priority over queued work
		case <-s.quit:
			w.drain()
			return
		default:
		}
		var first *request
		select {
		case first = <-s.reqs:
		case <-s.quit:
			w.drain()
			return
		}
		w.batch = append(w.batch[:0], first)
		n := first.weight()
	collect:
		for n < s.cfg.BatchMax {
			select {
			case r := <-s.reqs:
				w.batch = append(w.batch, r)
				n += r.weight()
			default:
				break collect
			}
		}
		w.execBatch(w.batch)
		k := len(w.batch)
		clear(w.batch) // drop references for the GC
		w.linger(k)
	}
}

// maxLinger bounds how long the writer waits for the callers it has just
// answered to come back before it starts the next transaction.
const maxLinger = 500 * time.Microsecond

// linger runs after a batch of k requests has been answered. Under
// concurrent load those k callers typically submit again within
// microseconds; starting the next transaction before they do splits the
// callers into two cohorts that alternate commits, halving the batch size.
// So the writer yields while the queue is still growing towards
// (already queued + k), for at most maxLinger. A lone caller (k == 1) never
// waits.
func (w *writer) linger(k int) {
	if k < 2 {
		return
	}
	q := w.s.reqs
	target := min(len(q)+k, cap(q), w.s.cfg.BatchMax)
	deadline := time.Now().Add(maxLinger)
	prev, stalls := len(q), 0
	for prev < target && stalls < 3 && time.Now().Before(deadline) {
		runtime.Gosched()
		if n := len(q); n == prev {
			stalls++
		} else {
			prev, stalls = n, 0
		}
	}
}

// drain fails every request still queued at shutdown.
func (w *writer) drain() {
	for {
		select {
		case r := <-w.s.reqs:
			r.err = ErrClosed
			close(r.done)
		default:
			return
		}
	}
}

func (w *writer) execBatch(batch []*request) {
	s := w.s
	now := s.nowMs()
	clear(w.pend)
	w.pendBytes, w.pendProof = 0, 0
	w.notify = w.notify[:0]

	start := time.Now()
	err := w.execTx(batch, now)
	if err != nil {
		s.log.Error("write transaction failed", "requests", len(batch), "err", err)
		for _, r := range batch {
			r.err = err
			close(r.done)
		}
		return
	}
	s.st.apply(w.pend, w.pendProof)
	s.commits.Add(1)
	s.committedReqs.Add(int64(len(batch)))
	for _, mb := range w.notify {
		s.fire(mb)
	}
	for _, r := range batch {
		close(r.done)
	}
	if d := time.Since(start); d > time.Second {
		s.log.Warn("slow write transaction", "requests", len(batch), "took", d)
	}
}

// execTx runs batch in one transaction. On error the transaction has been
// rolled back and the caller discards w.pend.
func (w *writer) execTx(batch []*request, now int64) (err error) {
	ctx := context.Background()
	if _, err := w.begin.ExecContext(ctx); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			if _, rerr := w.rollback.ExecContext(ctx); rerr != nil {
				w.s.log.Debug("rollback", "err", rerr)
			}
		}
	}()
	for _, r := range batch {
		if err := w.do(ctx, r, now); err != nil {
			return fmt.Errorf("%v: %w", r.op, err)
		}
	}
	if _, err := w.commit.ExecContext(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (w *writer) do(ctx context.Context, r *request, now int64) error {
	switch r.op {
	case opPut:
		for i := range r.msgs {
			res, err := w.putOne(ctx, &r.msgs[i], now)
			if err != nil {
				return err
			}
			r.res[i] = res
		}
	case opDelete:
		return w.deleteMany(ctx, r, now)
	case opExpire:
		return w.expire(ctx, r, now)
	case opSetKV:
		_, err := w.setKV.ExecContext(ctx, r.key, r.val)
		return err
	case opDeleteKV:
		_, err := w.delKV.ExecContext(ctx, r.key)
		return err
	case opForget:
		return w.forget(ctx, r)
	}
	return nil
}

// delta returns the pending delta of mailbox mb, creating it.
func (w *writer) delta(mb Hash) *delta {
	d := w.pend[mb]
	if d == nil {
		d = &delta{}
		w.pend[mb] = d
	}
	return d
}
