package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/umbra-im/umbra/internal/sqlitedsn"
)

// migrations is the ordered list of schema versions. migrations[i] upgrades a
// database from user_version i to i+1. Never edit an entry once released;
// append a new one instead.
var migrations = []string{
	// v1: initial schema.
	`
CREATE TABLE messages (
	seq       INTEGER PRIMARY KEY, -- rowid: local arrival order, a new row's seq exceeds every existing one
	hash      BLOB    NOT NULL UNIQUE,
	mailbox   BLOB    NOT NULL,
	namespace INTEGER NOT NULL,
	ts        INTEGER NOT NULL,
	expiry    INTEGER NOT NULL,
	data      BLOB    NOT NULL     -- last: reading other columns never touches its overflow pages
);
CREATE INDEX messages_mailbox_seq ON messages(mailbox, seq);
CREATE INDEX messages_expiry ON messages(expiry);

CREATE TABLE tombstones (
	hash    BLOB    NOT NULL PRIMARY KEY,
	mailbox BLOB    NOT NULL,
	expiry  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tombstones_mailbox ON tombstones(mailbox);
CREATE INDEX tombstones_expiry ON tombstones(expiry);

CREATE TABLE kv (
	key TEXT NOT NULL PRIMARY KEY,
	val BLOB NOT NULL
) WITHOUT ROWID;
`,
	// v2: signed deletions (a tombstone keeps the mailbox owner's signed
	// delete request, so replicas can check it), tombstones of messages
	// this node never held (bounded per mailbox), and an index for reads
	// of one namespace.
	`
CREATE TABLE delproofs (
	id      INTEGER PRIMARY KEY,
	mailbox BLOB    NOT NULL,
	ts      INTEGER NOT NULL,
	sig     BLOB    NOT NULL UNIQUE,
	hashes  BLOB    NOT NULL -- the signed hash list, 32 bytes each, in order
);
ALTER TABLE tombstones ADD COLUMN proof INTEGER; -- delproofs.id; NULL for tombstones older than v2
ALTER TABLE tombstones ADD COLUMN unknown INTEGER NOT NULL DEFAULT 0; -- 1: the message was never held here
CREATE INDEX tombstones_proof ON tombstones(proof);
CREATE INDEX messages_mailbox_ns_seq ON messages(mailbox, namespace, seq);
`,
}

// dsn is the DSN of the database at path with the pragmas.
func dsn(path string, pragmas ...string) string { return sqlitedsn.DSN(path, nil, pragmas...) }

// writerPragmas apply to the single writer connection. journal_mode is
// persistent in the file; synchronous=FULL makes every COMMIT fsync the WAL so
// an acknowledged write survives power loss.
//
// wal_autocheckpoint is raised from 1000 pages to 10000 (~40 MiB of WAL):
// message inserts dirty random pages of the hash and mailbox indexes, and a
// longer WAL lets a checkpoint write each hot page once for many commits
// (measured: ~30% more Put throughput). The checkpoint still runs in the
// writer after a COMMIT, never concurrently with a transaction of ours.
// journal_size_limit truncates the WAL file back after a checkpoint.
var writerPragmas = []string{
	"busy_timeout(5000)",
	"journal_mode(WAL)",
	"synchronous(FULL)",
	"foreign_keys(OFF)",
	"cache_size(-16384)", // KiB: 16 MiB page cache
	"temp_store(MEMORY)",
	"wal_autocheckpoint(10000)",
	"journal_size_limit(67108864)",
}

// readerPragmas apply to every connection of the read pool.
var readerPragmas = []string{
	"busy_timeout(5000)",
	"foreign_keys(OFF)",
	"query_only(1)",
	"cache_size(-8192)",
}

// migrate brings the schema on conn up to len(migrations). Each step runs in
// its own transaction together with the user_version bump.
func migrate(ctx context.Context, conn *sql.Conn) (from, to int, err error) {
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&from); err != nil {
		return 0, 0, fmt.Errorf("store: migrate: read user_version: %w", err)
	}
	if from > len(migrations) {
		return from, from, fmt.Errorf("store: migrate: database schema version %d is newer than this binary supports (%d)", from, len(migrations))
	}
	for v := from; v < len(migrations); v++ {
		if err := migrateStep(ctx, conn, v); err != nil {
			return from, v, err
		}
	}
	return from, len(migrations), nil
}

func migrateStep(ctx context.Context, conn *sql.Conn, v int) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("store: migrate to v%d: begin: %w", v+1, err)
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	// The driver executes a multi-statement script in one Exec.
	if _, err := conn.ExecContext(ctx, migrations[v]); err != nil {
		return fmt.Errorf("store: migrate to v%d: %w", v+1, err)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
		return fmt.Errorf("store: migrate to v%d: set user_version: %w", v+1, err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("store: migrate to v%d: commit: %w", v+1, err)
	}
	return nil
}
