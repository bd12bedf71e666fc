//go:build unix

package fsutil

import (
	"os"
	"syscall"
)

// tryLock takes flock(2)'s exclusive lock on f without blocking.
func tryLock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
