package fsutil

import (
	"errors"
	"fmt"
	"os"
)

// ErrLocked means another process (or another open of the same file in
// this one) holds the lock, or the file system refused to take it.
var ErrLocked = errors.New("file is locked")

// TryLock opens path (creating it, mode 0600) and takes an exclusive lock
// on it without waiting: flock(2) on Unix, LockFileEx on Windows. The lock
// lasts until the returned file is closed or the process exits. A lock
// that cannot be taken at once gives an error wrapping ErrLocked; a file
// that cannot be opened gives the os.OpenFile error as it is.
func TryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := tryLock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrLocked, path, err)
	}
	return f, nil
}
