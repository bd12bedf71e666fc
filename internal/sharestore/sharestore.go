// Package sharestore is a node's store of file shares (internal/files):
// opaque blobs of at most files.MaxShareSize bytes, each under its
// address, kept until an expiry. It is a SQLite database of its own,
// apart from the message store, so that writes of large shares never
// hold up message writes.
//
// As in internal/store, every write goes through one writer goroutine
// that group-commits concurrent requests into one transaction
// (synchronous=FULL, WAL): a Put returns once its share is durably on
// disk. Reads use a pool of their own. The bytes held (Used) are kept in
// memory, counted from disk at Open.
package sharestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/umbra-im/umbra/internal/files"
	"github.com/umbra-im/umbra/internal/sqlitedsn"
)

// Config configures Open. DefaultConfig gives the defaults; in a Config
// built by hand a zero field takes the same default (Path is required).
type Config struct {
	Path       string // SQLite file (its directory must exist). Required.
	QuotaBytes int64  // most bytes of shares held; a put past it fails with ErrFull. Default 4 GiB.
	// BatchMax bounds the puts of one group commit (default 64: at most
	// 64 × 120 KiB in one transaction).
	BatchMax int
	Now      func() time.Time // injectable clock, default time.Now
	Logger   *slog.Logger     // default slog.Default()
}

// DefaultQuota is the default QuotaBytes: 4 GiB.
const DefaultQuota = 4 << 30

// DefaultConfig returns the defaults (Path is left empty: it is required).
func DefaultConfig() Config {
	return Config{QuotaBytes: DefaultQuota, BatchMax: 64, Now: time.Now, Logger: slog.Default()}
}

// setDefaults fills zero fields from DefaultConfig.
func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.QuotaBytes == 0 {
		c.QuotaBytes = d.QuotaBytes
	}
	if c.BatchMax == 0 {
		c.BatchMax = d.BatchMax
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
}

// Validate checks a configuration whose defaults are filled in.
func (c *Config) Validate() error {
	switch {
	case c.Path == "":
		return errors.New("sharestore: Config.Path is required")
	case c.QuotaBytes <= 0:
		return fmt.Errorf("sharestore: the share quota must be positive, got %d", c.QuotaBytes)
	case c.BatchMax <= 0 || c.BatchMax > 4096:
		return fmt.Errorf("sharestore: BatchMax must be 1..4096, got %d", c.BatchMax)
	}
	return nil
}

// Errors.
var (
	ErrFull     = errors.New("sharestore: share quota exceeded")
	ErrSize     = fmt.Errorf("sharestore: a share is 1 to %d bytes", files.MaxShareSize)
	ErrExpired  = errors.New("sharestore: expiry already past")
	ErrNotFound = errors.New("sharestore: no such share")
	ErrClosed   = errors.New("sharestore: closed")
)

// Store is a node's share store. It is safe for concurrent use.
type Store struct {
	cfg Config
	log *slog.Logger

	wdb, rdb *sql.DB
	get      *sql.Stmt

	used   atomic.Int64 // bytes of share data on disk (expired ones too, until swept)
	shares atomic.Int64 // shares on disk

	reqs       chan *request
	quit       chan struct{}
	writerDone chan struct{}
	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error
}

const schema = `
CREATE TABLE IF NOT EXISTS shares (
	addr   BLOB    NOT NULL PRIMARY KEY, -- files.AddressOf(data), 32 bytes
	expiry INTEGER NOT NULL,             -- Unix ms
	data   BLOB    NOT NULL              -- last: reading the other columns never touches its overflow pages
);
CREATE INDEX IF NOT EXISTS shares_expiry ON shares(expiry);
`

// dsn is the DSN of the database at path with the pragmas.
func dsn(path string, pragmas ...string) string { return sqlitedsn.DSN(path, nil, pragmas...) }

// writerPragmas: synchronous=FULL makes every COMMIT fsync the WAL, so an
// acknowledged share survives power loss.
var writerPragmas = []string{
	"busy_timeout(5000)",
	"journal_mode(WAL)",
	"synchronous(FULL)",
	"cache_size(-8192)", // KiB
	"temp_store(MEMORY)",
	"journal_size_limit(67108864)",
}

var readerPragmas = []string{
	"busy_timeout(5000)",
	"query_only(1)",
	"cache_size(-4096)",
}

// Open opens (creating if needed) the database at cfg.Path, counts what it
// holds and starts the writer goroutine. Close stops it.
func Open(cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, log: cfg.Logger.With("component", "sharestore"),
		reqs: make(chan *request, 4*cfg.BatchMax), quit: make(chan struct{}), writerDone: make(chan struct{})}
	ctx := context.Background()
	wdb, err := sql.Open("sqlite", dsn(cfg.Path, writerPragmas...))
	if err != nil {
		return nil, fmt.Errorf("sharestore: open %s: %w", cfg.Path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	s.wdb = wdb
	fail := func(err error) (*Store, error) {
		if s.get != nil {
			_ = s.get.Close()
		}
		if s.rdb != nil {
			_ = s.rdb.Close()
		}
		_ = wdb.Close()
		return nil, err
	}
	conn, err := wdb.Conn(ctx)
	if err != nil {
		return fail(fmt.Errorf("sharestore: open %s: %w", cfg.Path, err))
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		_ = conn.Close()
		return fail(fmt.Errorf("sharestore: open %s: journal_mode is %q, want wal (err=%v)", cfg.Path, mode, err))
	}
	if _, err := conn.ExecContext(ctx, schema); err != nil {
		_ = conn.Close()
		return fail(fmt.Errorf("sharestore: open %s: schema: %w", cfg.Path, err))
	}
	var used, count int64
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(SUM(length(data)), 0), COUNT(*) FROM shares").Scan(&used, &count); err != nil {
		_ = conn.Close()
		return fail(fmt.Errorf("sharestore: open %s: count: %w", cfg.Path, err))
	}
	s.used.Store(used)
	s.shares.Store(count)
	w, err := newWriter(ctx, s, conn)
	if err != nil {
		_ = conn.Close()
		return fail(err)
	}
	rdb, err := sql.Open("sqlite", dsn(cfg.Path, readerPragmas...))
	if err != nil {
		w.close()
		return fail(fmt.Errorf("sharestore: open %s: readers: %w", cfg.Path, err))
	}
	rdb.SetMaxOpenConns(4)
	rdb.SetMaxIdleConns(4)
	s.rdb = rdb
	// length(data) is bounded again here, so a damaged database cannot
	// make a read allocate more than a share.
	if s.get, err = rdb.PrepareContext(ctx, `SELECT data FROM shares WHERE addr = ?1 AND expiry >= ?2 AND length(data) <= ?3`); err != nil {
		w.close()
		return fail(fmt.Errorf("sharestore: prepare read: %w", err))
	}
	s.log.Info("opened", "path", cfg.Path, "shares", count, "bytes", used, "quota", cfg.QuotaBytes)
	go w.run()
	return s, nil
}

// Close stops the writer (after its transaction in progress; requests
// still queued fail with ErrClosed) and closes the database. Calls after
// the first return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.quit)
		<-s.writerDone
		_ = s.get.Close()
		err := errors.Join(s.rdb.Close(), s.wdb.Close())
		if err != nil {
			s.closeErr = fmt.Errorf("sharestore: close: %w", err)
		}
	})
	return s.closeErr
}

// Used is the bytes of share data on disk, expired shares included until
// Expire removes them: what counts against the quota.
func (s *Store) Used() int64 { return s.used.Load() }

// Count is the number of shares on disk.
func (s *Store) Count() int64 { return s.shares.Load() }

// Quota is Config.QuotaBytes.
func (s *Store) Quota() int64 { return s.cfg.QuotaBytes }

// Put keeps data under a until expiry (Unix ms), durably: it returns only
// once the transaction holding it has committed. The caller checks that a
// is files.AddressOf(data). A share held already is kept once, its expiry
// raised to the later of the two (and data not written again). Errors:
// ErrSize, ErrExpired, ErrFull (the new bytes do not fit the quota),
// ErrClosed, ctx.Err() (the share may still be stored), or a database
// failure. Put does not retain data.
func (s *Store) Put(ctx context.Context, a files.Address, data []byte, expiry int64) error {
	if len(data) == 0 || len(data) > files.MaxShareSize {
		return ErrSize
	}
	if expiry < s.cfg.Now().UnixMilli() {
		return ErrExpired
	}
	r := &request{op: opPut, addr: a, data: append([]byte(nil), data...), expiry: expiry}
	return s.submit(ctx, r)
}

// Get returns the share at a, or ErrNotFound if it is not held or has
// expired (a share expires once the clock is past its expiry).
func (s *Store) Get(ctx context.Context, a files.Address) ([]byte, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var data []byte
	err := s.get.QueryRowContext(ctx, a[:], s.cfg.Now().UnixMilli(), files.MaxShareSize).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sharestore: get: %w", err)
	}
	return data, nil
}

// expireChunk is how many shares one sweep transaction removes, so that a
// long backlog does not hold up puts.
const expireChunk = 1024

// Expire deletes the shares whose expiry is past and returns how many it
// removed, in chunks of a transaction each.
func (s *Store) Expire() (int, error) {
	total := 0
	for {
		r := &request{op: opExpire, limit: expireChunk}
		if err := s.submit(context.Background(), r); err != nil {
			return total, err
		}
		total += r.n
		if r.n < r.limit {
			return total, nil
		}
	}
}
