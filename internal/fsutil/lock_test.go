package fsutil

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestTryLockExclusive checks that a second lock on the same file fails at
// once with ErrLocked while the first is held, and succeeds once it is
// released. Two opens in one process conflict as two processes do (flock
// locks open files, LockFileEx handles).
func TestTryLockExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	first, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := TryLock(path); !errors.Is(err, ErrLocked) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("second lock while held: %v, want ErrLocked", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := TryLock(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Close()
}

// TestTryLockOpenError checks that a path that cannot be opened is an open
// error, not ErrLocked.
func TestTryLockOpenError(t *testing.T) {
	_, err := TryLock(filepath.Join(t.TempDir(), "missing", "lock"))
	if err == nil || errors.Is(err, ErrLocked) {
		t.Fatalf("lock in a missing folder: %v, want an open error", err)
	}
}
