package client

import (
	"errors"
	"testing"
)

// TestLockHomeExclusive checks that a home locked by one engine refuses a
// second one at once with ErrLocked, and is free again once released.
func TestLockHomeExclusive(t *testing.T) {
	home := t.TempDir()
	first, err := lockHome(home)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := lockHome(home); !errors.Is(err, ErrLocked) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	first.Close()
	again, err := lockHome(home)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Close()
}
