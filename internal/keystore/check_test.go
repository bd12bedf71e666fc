package keystore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// TestCheckPassphrase: the right passphrase checks, a wrong one is
// ErrWrongPassphrase, and a passphrase for a store that has none is
// ErrNoPassphrase, before and after a change.
func TestCheckPassphrase(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "ks.db"), "right", light())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for pass, want := range map[string]error{"right": nil, "wrong": ErrWrongPassphrase, "": ErrWrongPassphrase} {
		if err := s.CheckPassphrase(ctx, pass); !errors.Is(err, want) {
			t.Errorf("check %q: %v, want %v", pass, err, want)
		}
	}
	if err := s.ChangePassphrase(ctx, "", light()); err != nil {
		t.Fatal(err)
	}
	for pass, want := range map[string]error{"": nil, "right": ErrNoPassphrase} {
		if err := s.CheckPassphrase(ctx, pass); !errors.Is(err, want) {
			t.Errorf("unprotected, check %q: %v, want %v", pass, err, want)
		}
	}
}
