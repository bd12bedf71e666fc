package node

import (
	"strings"
	"testing"
)

// TestLockDirExclusive checks that a data folder locked by one node refuses
// a second one at once, and is free again once released.
func TestLockDirExclusive(t *testing.T) {
	dir := t.TempDir()
	first, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := lockDir(dir); err == nil || !strings.Contains(err.Error(), "in use by another node process") {
		if f != nil {
			f.Close()
		}
		t.Fatalf("second lock: %v, want 'in use by another node process'", err)
	}
	first.Close()
	again, err := lockDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Close()
}
