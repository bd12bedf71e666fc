// Package store is the service node's storage engine: a SQLite database
// holding opaque encrypted messages grouped in mailboxes, tombstones for
// deleted messages, and a small key/value table for node state.
//
// All writes go through a single writer goroutine that group-commits
// concurrent requests into one transaction (synchronous=FULL, WAL), so a write
// is acknowledged only once it is durably on disk. Reads use a separate
// connection pool and never wait for the writer.
//
// Per-mailbox counters and anti-entropy digests are kept in memory, rebuilt
// from disk at Open and updated after every committed transaction.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Hash is a 32-byte identifier: a message's sha256 content hash or a mailbox ID.
type Hash = [32]byte

// Message is one stored message.
type Message struct {
	Hash      Hash  // sha256 content hash, computed by caller; primary key
	Mailbox   Hash  // mailbox the message belongs to
	Namespace int32 // application namespace, opaque to the store
	Timestamp int64 // unix milliseconds, sender-chosen
	Expiry    int64 // unix milliseconds; invisible once the clock is past it, removed by ExpireNow
	Data      []byte
	Seq       int64 // local arrival order at this node; set by the store, ignored by Put
}

// Limits.
const (
	// MaxDataSize is the largest accepted Message.Data.
	MaxDataSize = 256 << 10
	// MaxGetLimit caps the number of messages one Get or GetByHash returns/accepts.
	MaxGetLimit = 1000
	// DefaultGetBytes is the Data budget of a Get called with maxBytes <= 0.
	DefaultGetBytes = 8 << 20
	// UnknownTombstoneTTL is how long a tombstone for a message this node never
	// held is kept.
	UnknownTombstoneTTL = 30 * 24 * time.Hour
)

// Config configures Open. Zero fields take the documented defaults. Quotas
// count every message on disk, including expired ones until ExpireNow
// removes them. The node-wide byte quota counts tombstones and signed
// deletions too (TombstoneCost each, and their size).
type Config struct {
	Path               string // sqlite file path (its directory must exist). Required.
	MaxMailboxMessages int    // default 10000: messages of a mailbox outside the namespaces below
	MaxMailboxBytes    int64  // default 64 MiB (sum of len(Data)), likewise
	// NamespaceQuotas gives namespaces a quota of their own (at most 4),
	// so that junk in one namespace of a mailbox cannot crowd out another
	// (a node gives the public and the first-contact namespaces theirs).
	NamespaceQuotas map[int32]Quota
	// ApartNamespace, when not 0, is a namespace Get leaves out: its
	// messages are read with GetNamespace only (a node's drop namespace,
	// which never mixes with a mailbox's other namespaces).
	ApartNamespace int32
	// MaxUnknownTombstones bounds, per mailbox, the tombstones of messages
	// this node never held (default MaxMailboxMessages): deletes of
	// random hashes cannot grow the store without bound. Deletions beyond
	// it are not remembered; the messages they name are not here anyway.
	MaxUnknownTombstones int
	MaxTotalBytes        int64            // default 8 GiB
	BatchMax             int              // max messages per group commit, default 512
	Now                  func() time.Time // injectable clock, default time.Now
	Logger               *slog.Logger     // default slog.Default()
}

// Quota bounds the messages of one namespace of a mailbox.
type Quota struct {
	Messages int
	Bytes    int64
}

// TombstoneCost is what a tombstone counts for in the node-wide byte
// quota: about what its row and index entries take on disk.
const TombstoneCost = 160

func (c *Config) setDefaults() {
	if c.MaxMailboxMessages <= 0 {
		c.MaxMailboxMessages = 10000
	}
	if c.MaxUnknownTombstones <= 0 {
		c.MaxUnknownTombstones = c.MaxMailboxMessages
	}
	if c.MaxMailboxBytes <= 0 {
		c.MaxMailboxBytes = 64 << 20
	}
	if c.MaxTotalBytes <= 0 {
		c.MaxTotalBytes = 8 << 30
	}
	if c.BatchMax <= 0 {
		c.BatchMax = 512
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Errors.
var (
	ErrMailboxFull = errors.New("store: mailbox quota exceeded")
	ErrStoreFull   = errors.New("store: node storage quota exceeded")
	ErrTooLarge    = fmt.Errorf("store: message data larger than %d bytes", MaxDataSize)
	ErrClosed      = errors.New("store: closed")
)

// PutStatus is the outcome of storing one message.
type PutStatus int

const (
	Stored    PutStatus = iota // newly written
	Duplicate                  // hash already present (idempotent success)
	Deleted                    // hash has a tombstone: refused, not resurrected
	Expired                    // Expiry already in the past: not stored
	Rejected                   // quota or size limit: see PutResult.Err
)

func (p PutStatus) String() string {
	switch p {
	case Stored:
		return "stored"
	case Duplicate:
		return "duplicate"
	case Deleted:
		return "deleted"
	case Expired:
		return "expired"
	case Rejected:
		return "rejected"
	}
	return fmt.Sprintf("PutStatus(%d)", int(p))
}

// PutResult is the outcome for one message of a Put call.
type PutResult struct {
	Status PutStatus
	Err    error // non-nil only for Rejected: ErrMailboxFull, ErrStoreFull or ErrTooLarge
}

// Stats are cheap in-memory counters.
type Stats struct {
	Messages      int64 // messages on disk (including expired ones not yet removed by ExpireNow)
	Bytes         int64 // sum of len(Data) of those messages
	Mailboxes     int   // mailboxes holding at least one message
	Tombstones    int64
	DeletionBytes int64 // size of the signed deletions kept for the tombstones
}

// Store is a node's message store. It is safe for concurrent use.
type Store struct {
	cfg Config
	log *slog.Logger

	wdb   *sql.DB              // one connection, owned by the writer goroutine
	rdb   *sql.DB              // read pool
	reads map[string]*sql.Stmt // prepared read queries (readQueries)

	reqs       chan *request
	quit       chan struct{} // closed by Close
	writerDone chan struct{} // closed when the writer goroutine has exited
	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error

	st state // in-memory counters and digests

	expireChunk int // rows per table per expiry transaction

	commits, committedReqs atomic.Int64 // group-commit effectiveness (benchmarks, debugging)

	wmu      sync.Mutex
	watchers map[Hash]*watcher
}

// Open opens (creating if needed) the database at cfg.Path, applies pending
// schema migrations, loads the in-memory counters and digests, and starts
// the writer goroutine.
func Open(cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("store: open: Config.Path is required")
	}
	cfg.setDefaults()
	if len(cfg.NamespaceQuotas) > maxOwnQuota {
		return nil, fmt.Errorf("store: open: at most %d namespaces may have quotas of their own", maxOwnQuota)
	}
	s := &Store{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "store"),
		reqs:       make(chan *request, 4*cfg.BatchMax),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
		watchers:   make(map[Hash]*watcher),

		expireChunk: defaultExpireChunk,
	}
	for ns := range cfg.NamespaceQuotas {
		s.st.own = append(s.st.own, ns)
	}
	slices.Sort(s.st.own)
	ctx := context.Background()

	wdb, err := sql.Open("sqlite", dsn(cfg.Path, writerPragmas...))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", cfg.Path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	s.wdb = wdb
	fail := func(err error) (*Store, error) {
		if s.rdb != nil {
			_ = s.rdb.Close()
		}
		_ = wdb.Close()
		return nil, err
	}

	conn, err := wdb.Conn(ctx)
	if err != nil {
		return fail(fmt.Errorf("store: open %s: %w", cfg.Path, err))
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		_ = conn.Close()
		return fail(fmt.Errorf("store: open %s: journal_mode is %q, want wal (err=%v)", cfg.Path, mode, err))
	}
	var syncMode int
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil || syncMode != 2 {
		_ = conn.Close()
		return fail(fmt.Errorf("store: open %s: synchronous is %d, want 2 (FULL) (err=%v)", cfg.Path, syncMode, err))
	}
	from, to, err := migrate(ctx, conn)
	if err != nil {
		_ = conn.Close()
		return fail(err)
	}
	if from != to {
		s.log.Info("schema migrated", "path", cfg.Path, "from", from, "to", to)
	}
	w, err := newWriter(ctx, s, conn)
	if err != nil {
		_ = conn.Close()
		return fail(err)
	}

	rdb, err := sql.Open("sqlite", dsn(cfg.Path, readerPragmas...))
	if err != nil {
		w.close()
		return fail(fmt.Errorf("store: open %s: readers: %w", cfg.Path, err))
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	s.rdb = rdb
	if err := s.prepareReads(ctx); err != nil {
		w.close()
		return fail(err)
	}

	start := time.Now()
	if err := s.st.load(ctx, rdb); err != nil {
		w.close()
		return fail(err)
	}
	st := s.Stats()
	s.log.Info("opened", "path", cfg.Path, "messages", st.Messages, "bytes", st.Bytes,
		"mailboxes", st.Mailboxes, "tombstones", st.Tombstones, "load", time.Since(start).Round(time.Millisecond))

	go w.run()
	return s, nil
}

// Close stops the writer goroutine (after it finishes the batch in progress;
// requests still queued fail with ErrClosed), waits for it, and closes the
// database. Calls after the first return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.quit)
		<-s.writerDone
		for _, st := range s.reads {
			_ = st.Close()
		}
		err := s.rdb.Close()
		if werr := s.wdb.Close(); err == nil {
			err = werr
		}
		if err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
		}
	})
	return s.closeErr
}

// Stats returns the in-memory counters.
func (s *Store) Stats() Stats { return s.st.stats() }

// nowMs is the store clock in unix milliseconds.
func (s *Store) nowMs() int64 { return s.cfg.Now().UnixMilli() }

// live reports whether a message with the given expiry is visible at now.
// A message expires once the clock is strictly past its Expiry.
func live(expiry, now int64) bool { return expiry >= now }
