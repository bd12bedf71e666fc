package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/client"
)

// run runs the umbra command line with args and returns its stdout,
// stderr and error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// TestUnprotectedHomeWarns: commands that open a home without a passphrase
// print the warning once on stderr and keep --json output clean; opening
// that home with a passphrase fails with "no passphrase", not "wrong".
func TestUnprotectedHomeWarns(t *testing.T) {
	t.Setenv("UMBRA_PASSPHRASE", "")
	t.Setenv("UMBRA_HOME", "")
	home := filepath.Join(t.TempDir(), "home")

	out, errOut, err := run(t, "init", "--home", home, "--network", offlineNetwork(t, 1), "--json")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	var created map[string]string
	if err := json.Unmarshal([]byte(out), &created); err != nil || created["account_id"] == "" {
		t.Fatalf("init --json printed %q (%v): want only the JSON object", out, err)
	}
	if strings.Count(errOut, client.UnprotectedWarning) != 1 {
		t.Errorf("init stderr %q: want the warning once", errOut)
	}

	out, errOut, err = run(t, "contacts", "list", "--home", home, "--json")
	if err != nil {
		t.Fatalf("contacts list: %v\n%s", err, errOut)
	}
	if strings.TrimSpace(out) != "" {
		t.Errorf("contacts list --json printed %q, want nothing (no contacts)", out)
	}
	if strings.Count(errOut, client.UnprotectedWarning) != 1 || strings.Count(errOut, "\n") != 1 {
		t.Errorf("contacts list stderr %q: want exactly the one warning line", errOut)
	}

	t.Setenv("UMBRA_PASSPHRASE", "a passphrase it never had")
	_, _, err = run(t, "contacts", "list", "--home", home)
	if err == nil || !strings.Contains(err.Error(), "has no passphrase") || strings.Contains(err.Error(), "wrong passphrase") {
		t.Errorf("a passphrase on a home without one: %v, want the no-passphrase error", err)
	}
}

// TestLockedDaemon: a daemon started without the passphrase of a protected
// home waits to be unlocked instead of failing, and CLI commands for that
// home say so instead of opening it themselves.
func TestLockedDaemon(t *testing.T) {
	t.Setenv("UMBRA_HOME", "")
	home := filepath.Join(t.TempDir(), "home")
	t.Setenv("UMBRA_PASSPHRASE", "the home's passphrase")
	if _, errOut, err := run(t, "init", "--home", home, "--network", offlineNetwork(t, 1), "--json"); err != nil || strings.Contains(errOut, client.UnprotectedWarning) {
		t.Fatalf("init with a passphrase: %v, stderr %q (want no unprotected warning)", err, errOut)
	}
	t.Setenv("UMBRA_PASSPHRASE", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := startDaemon(ctx, daemonConfig{Home: home, Listen: "127.0.0.1:0", Log: quietTestLogger()})
	if err != nil {
		t.Fatalf("a daemon without the passphrase did not start: %v", err)
	}
	defer d.Stop()
	if !d.srv.Locked() || d.srv.Engine() != nil {
		t.Fatal("the daemon is not waiting for the passphrase")
	}
	_, _, err = run(t, "contacts", "list", "--home", home)
	if err == nil || !strings.Contains(err.Error(), "waits for its passphrase") {
		t.Errorf("a command while the daemon is locked: %v, want the locked error", err)
	}
}

func quietTestLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
