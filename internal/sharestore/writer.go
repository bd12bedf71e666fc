package sharestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/umbra-im/umbra/internal/files"
)

type opKind uint8

const (
	opPut opKind = iota
	opExpire
)

// request is one write handed to the writer goroutine, which sets err (and
// n) and then closes done.
type request struct {
	op     opKind
	addr   files.Address // opPut
	data   []byte        // opPut: the store's own copy
	expiry int64         // opPut
	limit  int           // opExpire: most shares removed
	n      int           // opExpire: shares removed

	err  error
	done chan struct{}
}

// weight is the request's share of a batch's BatchMax budget: a sweep
// goes alone.
func (r *request) weight(batchMax int) int {
	if r.op == opExpire {
		return batchMax
	}
	return 1
}

// submit hands r to the writer and waits until its transaction has
// committed or failed, and returns r's outcome. If ctx ends first it
// returns ctx.Err(); the request may still be applied.
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
		select {
		case <-r.done:
			return r.err
		default:
			return ErrClosed
		}
	}
}

// writer owns the write connection.
type writer struct {
	s    *Store
	conn *sql.Conn

	begin, commit, rollback *sql.Stmt
	lookup, insert, extend  *sql.Stmt
	expire                  *sql.Stmt
	stmts                   []*sql.Stmt

	batch     []*request
	pendUsed  int64 // bytes added (or removed) by the open transaction
	pendCount int64
}

func newWriter(ctx context.Context, s *Store, conn *sql.Conn) (*writer, error) {
	w := &writer{s: s, conn: conn}
	prep := []struct {
		dst *(*sql.Stmt)
		q   string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		{&w.lookup, `SELECT expiry FROM shares WHERE addr = ?1`},
		{&w.insert, `INSERT INTO shares(addr, expiry, data) VALUES (?1, ?2, ?3)`},
		{&w.extend, `UPDATE shares SET expiry = ?2 WHERE addr = ?1 AND expiry < ?2`},
		{&w.expire, `DELETE FROM shares WHERE rowid IN
			(SELECT rowid FROM shares WHERE expiry < ?1 LIMIT ?2) RETURNING length(data)`},
	}
	for _, p := range prep {
		st, err := conn.PrepareContext(ctx, p.q)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("sharestore: prepare %q: %w", p.q, err)
		}
		*p.dst = st
		w.stmts = append(w.stmts, st)
	}
	return w, nil
}

func (w *writer) close() {
	for _, st := range w.stmts {
		_ = st.Close()
	}
	_ = w.conn.Close()
}

// run is the writer goroutine: it takes the queued requests (up to
// BatchMax puts) into one transaction, commits, then answers them all.
func (w *writer) run() {
	s := w.s
	defer close(s.writerDone)
	defer w.close()
	for {
		select { // shutdown first
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
		n := first.weight(s.cfg.BatchMax)
	collect:
		for n < s.cfg.BatchMax {
			select {
			case r := <-s.reqs:
				w.batch = append(w.batch, r)
				n += r.weight(s.cfg.BatchMax)
			default:
				break collect
			}
		}
		w.execBatch(w.batch)
		clear(w.batch)
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
	w.pendUsed, w.pendCount = 0, 0
	start := time.Now()
	if err := w.execTx(batch, s.cfg.Now().UnixMilli()); err != nil {
		s.log.Error("write transaction failed", "requests", len(batch), "err", err)
		err = fmt.Errorf("sharestore: %w", err)
		for _, r := range batch {
			r.err = err
			close(r.done)
		}
		return
	}
	s.used.Add(w.pendUsed)
	s.shares.Add(w.pendCount)
	for _, r := range batch {
		close(r.done)
	}
	if d := time.Since(start); d > time.Second {
		s.log.Warn("slow write transaction", "requests", len(batch), "took", d)
	}
}

// execTx runs batch in one transaction, rolled back on error.
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
		switch r.op {
		case opPut:
			err = w.put(ctx, r, now)
		case opExpire:
			err = w.sweep(ctx, r, now)
		}
		if err != nil {
			return err
		}
	}
	if _, err := w.commit.ExecContext(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// put stores one share, or raises the expiry of the copy held; the
// request's own outcome (ErrExpired, ErrFull) is set in r.err, and a
// database error is returned.
func (w *writer) put(ctx context.Context, r *request, now int64) error {
	if r.expiry < now {
		r.err = ErrExpired
		return nil
	}
	var old int64
	err := w.lookup.QueryRowContext(ctx, r.addr[:]).Scan(&old)
	switch {
	case err == nil:
		if r.expiry > old {
			if _, err := w.extend.ExecContext(ctx, r.addr[:], r.expiry); err != nil {
				return fmt.Errorf("extend: %w", err)
			}
		}
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("lookup: %w", err)
	}
	size := int64(len(r.data))
	if w.s.used.Load()+w.pendUsed+size > w.s.cfg.QuotaBytes {
		r.err = ErrFull
		return nil
	}
	if _, err := w.insert.ExecContext(ctx, r.addr[:], r.expiry, r.data); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	w.pendUsed += size
	w.pendCount++
	return nil
}

// sweep deletes up to r.limit expired shares.
func (w *writer) sweep(ctx context.Context, r *request, now int64) error {
	rows, err := w.expire.QueryContext(ctx, now, r.limit)
	if err != nil {
		return fmt.Errorf("expire: %w", err)
	}
	defer rows.Close()
	r.n = 0
	for rows.Next() {
		var size int64
		if err := rows.Scan(&size); err != nil {
			return fmt.Errorf("expire: %w", err)
		}
		w.pendUsed -= size
		w.pendCount--
		r.n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("expire: %w", err)
	}
	return nil
}
