//go:build !windows

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
)

// TestUIStateReadableDropsToken: a token file others could read (Unix
// permission bits) has its token replaced at the next start; the new file
// is 0600.
func TestUIStateReadableDropsToken(t *testing.T) {
	home := t.TempDir()
	const old = "0123456789abcdef0123456789abcdef0123456789abcdef"
	if err := writeUIState(home, uiState{Token: old}); err != nil {
		t.Fatal(err)
	}
	if st, dropped := readUIState(home); dropped || st.Token != old {
		t.Fatalf("a 0600 file: %+v dropped=%v", st, dropped)
	}
	if err := os.Chmod(filepath.Join(home, client.UIFile), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(nil, quietTestLogger())
	fresh := srv.Token()
	if _, err := listenUI(srv, home, "127.0.0.1:0", quietTestLogger()); err != nil {
		t.Fatal(err)
	}
	if srv.Token() == old || srv.Token() != fresh {
		t.Error("a token from a world-readable file was kept")
	}
	st, dropped := readUIState(home)
	fi, _ := os.Stat(filepath.Join(home, client.UIFile))
	if dropped || st.Token != fresh || fi.Mode().Perm() != 0o600 {
		t.Errorf("after the start: %+v dropped=%v mode %v; want the new token in a 0600 file", st, dropped, fi.Mode().Perm())
	}
}
