package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
)

// TestSettingsCommand: 'umbra settings' shows read receipts on by default,
// 'settings set read-receipts off' turns them off (kept in the home), bad
// names and values are refused, and with a daemon running the command
// changes the daemon's engine (which holds the home).
func TestSettingsCommand(t *testing.T) {
	t.Setenv("UMBRA_PASSPHRASE", "")
	t.Setenv("UMBRA_HOME", "")
	home := filepath.Join(t.TempDir(), "home")
	if _, errOut, err := run(t, "init", "--home", home, "--network", offlineNetwork(t, 1), "--json"); err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	readJSON := func() client.Settings {
		t.Helper()
		out, errOut, err := run(t, "settings", "--home", home, "--json")
		if err != nil {
			t.Fatalf("settings --json: %v\n%s", err, errOut)
		}
		var st map[string]bool
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("settings --json printed %q: %v", out, err)
		}
		v, ok := st["read_receipts"]
		if _, typing := st["typing_indicators"]; !ok || !typing || len(st) != 2 {
			t.Fatalf("settings --json printed %q", out)
		}
		return client.Settings{ReadReceipts: v}
	}
	if !readJSON().ReadReceipts {
		t.Fatal("read receipts are off on a new account")
	}
	out, errOut, err := run(t, "settings", "set", "read-receipts", "off", "--home", home)
	if err != nil || strings.TrimSpace(out) != "read-receipts: off" {
		t.Fatalf("settings set read-receipts off: %q, %v\n%s", out, err, errOut)
	}
	if readJSON().ReadReceipts {
		t.Fatal("read receipts still on after 'settings set read-receipts off'")
	}
	out, _, err = run(t, "settings", "--home", home)
	if err != nil || !strings.HasPrefix(out, "read-receipts") || !strings.Contains(out, " off ") {
		t.Fatalf("settings: %q, %v", out, err)
	}
	for _, bad := range [][]string{{"read-receipts", "maybe"}, {"typing", "off"}} {
		_, _, err := run(t, append([]string{"settings", "set", "--home", home}, bad...)...)
		if err == nil {
			t.Errorf("settings set %v was accepted", bad)
		}
	}
	if _, _, err := run(t, "settings", "set", "typing", "off", "--home", home); err == nil || !strings.Contains(err.Error(), "typing-indicators") {
		t.Errorf("an unknown setting: %v, want the list of settings", err)
	}
	if out, _, err := run(t, "settings", "set", "typing-indicators", "off", "--home", home); err != nil || strings.TrimSpace(out) != "typing-indicators: off" {
		t.Errorf("settings set typing-indicators off: %q, %v", out, err)
	}
	if out, _, _ := run(t, "settings", "--help"); !strings.Contains(out, "typing-indicators") || !strings.Contains(out, "random delay") {
		t.Errorf("settings --help does not say how receipts are sent and what typing indicators do:\n%s", out)
	}

	// A daemon for the home: the command goes through it (the home is
	// locked by the daemon's engine, so the command could not open it).
	e, err := client.Open(context.Background(), client.Config{Home: home, Offline: true, Logger: quietTestLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	srv := api.NewServer(e, quietTestLogger())
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	if err := srv.WriteInfo(home); err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := run(t, "settings", "set", "read-receipts", "on", "--home", home, "--json"); err != nil || strings.TrimSpace(out) != `{"read_receipts":true,"typing_indicators":false}` {
		t.Fatalf("settings set through the daemon: %q, %v\n%s", out, err, errOut)
	}
	if st, _ := e.Settings(); !st.ReadReceipts {
		t.Fatal("the daemon's engine did not get the change")
	}
}
