// Package fsutil writes small state files (keys, address files, the
// daemon's token file) so that they survive a crash or a power loss: either
// the old content or the new one is on disk afterwards, never a torn or
// empty file. It also takes the exclusive, non-blocking lock that keeps two
// processes out of one data folder or home (TryLock), portably.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// The sync calls, replaceable by this package's tests to observe them.
var (
	syncFile = (*os.File).Sync
	syncDir  = func(dir string) error {
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Sync()
	}
)

// WriteFileAtomic replaces path with data, durably: it writes a temporary
// file with mode perm in the same folder, flushes it to disk (fsync),
// renames it over path and flushes the folder, so that the rename itself
// survives a crash. An error before the rename leaves path unchanged and
// removes the temporary file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := syncFile(f); err != nil {
		return fmt.Errorf("write %s: sync: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: sync folder: %w", name, err)
	}
	return nil
}

// SyncDir flushes a folder's entries (files created, renamed or removed in
// it) to disk.
func SyncDir(dir string) error {
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}
