package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/client"
)

// waitText runs 'umbra messages --json' on home until a message with text
// shows (or 40 s pass) and returns the messages.
func waitText(t *testing.T, home, text string) []client.Message {
	t.Helper()
	var got []client.Message
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); {
		out, errOut, err := run(t, "messages", "--home", home, "--wait", "5s", "--json")
		if err != nil {
			t.Fatalf("messages: %v\n%s", err, errOut)
		}
		got = got[:0]
		found := false
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var m client.Message
			if l != "" && json.Unmarshal([]byte(l), &m) == nil {
				got = append(got, m)
				found = found || m.Text == text
			}
		}
		if found {
			return got
		}
	}
	t.Fatalf("%q never reached %s; it has %v", text, home, got)
	return nil
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, args...)
	if err != nil {
		t.Fatalf("umbra %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// TestBackupCLI: alice and bob chat; alice writes a backup; it restores on
// a fresh home (a wrong backup passphrase and a tampered file are refused
// first, and an existing account is not overwritten without --force) with
// the same account ID and history, and the restored home chats with bob
// both ways.
func TestBackupCLI(t *testing.T) {
	t.Setenv("UMBRA_HOME", "")
	t.Setenv("UMBRA_PASSPHRASE", "")
	dir := t.TempDir()
	addrs := inProcessNodes(t, 7)
	live := writeFile(t, "network.txt", strings.Join(addrs, "\n")+"\n")
	time.Sleep(time.Second) // the nodes learn of each other

	aliceHome, bobHome, fresh := filepath.Join(dir, "alice"), filepath.Join(dir, "bob"), filepath.Join(dir, "fresh")
	t.Setenv("UMBRA_PASSPHRASE", "alice home pass")
	mustRun(t, "init", "--home", aliceHome, "--network", live)
	t.Setenv("UMBRA_PASSPHRASE", "")
	mustRun(t, "init", "--home", bobHome, "--network", live)
	bob := strings.TrimSpace(mustRun(t, "id", "--home", bobHome))
	t.Setenv("UMBRA_PASSPHRASE", "alice home pass")
	alice := strings.TrimSpace(mustRun(t, "id", "--home", aliceHome))
	mustRun(t, "contacts", "add", "--home", aliceHome, bob, "--name", "bob")
	mustRun(t, "send", "--home", aliceHome, "bob", "hello bob")
	t.Setenv("UMBRA_PASSPHRASE", "")
	waitText(t, bobHome, "hello bob")
	mustRun(t, "requests", "accept", "--home", bobHome, alice, "--name", "alice")
	mustRun(t, "send", "--home", bobHome, "alice", "hi alice")
	t.Setenv("UMBRA_PASSPHRASE", "alice home pass")
	waitText(t, aliceHome, "hi alice")

	file := filepath.Join(dir, "alice.umbrabak")
	t.Setenv("UMBRA_BACKUP_PASSPHRASE", "")
	if _, _, err := run(t, "backup", "create", file, "--home", aliceHome); err == nil || !strings.Contains(err.Error(), "UMBRA_BACKUP_PASSPHRASE") {
		t.Fatalf("backup without a passphrase: %v", err)
	}
	t.Setenv("UMBRA_BACKUP_PASSPHRASE", "backup words")
	out := mustRun(t, "backup", "create", file, "--home", aliceHome)
	if !strings.Contains(out, "Backup written to") {
		t.Fatalf("backup create printed %q", out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v", fi, err)
	}

	// The restored home gets the backup passphrase (UMBRA_PASSPHRASE unset).
	t.Setenv("UMBRA_PASSPHRASE", "")
	t.Setenv("UMBRA_BACKUP_PASSPHRASE", "other words")
	if _, _, err := run(t, "backup", "restore", file, "--home", fresh); err == nil || !strings.Contains(err.Error(), "wrong backup passphrase") {
		t.Fatalf("restore with a wrong passphrase: %v", err)
	}
	t.Setenv("UMBRA_BACKUP_PASSPHRASE", "backup words")
	data, _ := os.ReadFile(file)
	data[len(data)/2] ^= 1
	tampered := writeFile(t, "tampered.umbrabak", string(data))
	if _, _, err := run(t, "backup", "restore", tampered, "--home", fresh); err == nil || !strings.Contains(err.Error(), "damaged or was tampered with") {
		t.Fatalf("restore of a tampered file: %v", err)
	}
	if _, _, err := run(t, "backup", "restore", file, "--home", bobHome); err == nil || !strings.Contains(err.Error(), "already holds an account") {
		t.Fatalf("restore over an account: %v", err)
	}
	out = mustRun(t, "backup", "restore", file, "--home", fresh)
	if !strings.Contains(out, alice) {
		t.Fatalf("restore printed %q, want alice's ID %s", out, alice)
	}
	t.Setenv("UMBRA_PASSPHRASE", "backup words")
	if id := strings.TrimSpace(mustRun(t, "id", "--home", fresh)); id != alice {
		t.Fatalf("restored ID %s, want %s", id, alice)
	}
	hist := mustRun(t, "messages", "--home", fresh, "--json")
	if !strings.Contains(hist, "hello bob") || !strings.Contains(hist, "hi alice") {
		t.Fatalf("restored history: %s", hist)
	}
	mustRun(t, "send", "--home", fresh, "bob", "back from a backup")
	t.Setenv("UMBRA_PASSPHRASE", "")
	waitText(t, bobHome, "back from a backup")
	mustRun(t, "send", "--home", bobHome, "alice", "welcome back")
	t.Setenv("UMBRA_PASSPHRASE", "backup words")
	waitText(t, fresh, "welcome back")

	// With a daemon running for the restored home, started with its
	// passphrase: the phrase, a backup and a passphrase change still need
	// the passphrase, typed on a (fake) terminal.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := startDaemon(ctx, daemonConfig{Home: fresh, Listen: "127.0.0.1:0", Passphrase: "backup words", Log: quietTestLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	var answers []string
	oldTerm, oldRead := terminalIn, readPassword
	t.Cleanup(func() { terminalIn, readPassword = oldTerm, oldRead })
	terminalIn = func(*cobra.Command) (int, bool) { return 0, true }
	readPassword = func(int) ([]byte, error) {
		if len(answers) == 0 {
			return nil, errors.New("no more answers")
		}
		a := answers[0]
		answers = answers[1:]
		return []byte(a), nil
	}
	t.Setenv("UMBRA_PASSPHRASE", "")
	t.Setenv("UMBRA_BACKUP_PASSPHRASE", "")
	answers = []string{"not it"}
	if _, _, err := run(t, "phrase", "--home", fresh); err == nil || !strings.Contains(err.Error(), "Wrong passphrase") {
		t.Fatalf("phrase through the daemon with a wrong passphrase: %v", err)
	}
	answers = []string{"backup words"}
	if out := mustRun(t, "phrase", "--home", fresh); len(strings.Fields(out)) < 24 {
		t.Fatalf("phrase through the daemon: %q", out)
	}
	second := filepath.Join(dir, "second.umbrabak")
	answers = []string{"backup words", "second backup", "second backup"}
	mustRun(t, "backup", "create", second, "--home", fresh)
	answers = []string{"backup words", "new home words", "new home words"}
	mustRun(t, "passphrase", "change", "--home", fresh)
	answers = []string{"backup words"}
	if _, _, err := run(t, "phrase", "--home", fresh); err == nil || !strings.Contains(err.Error(), "Wrong passphrase") {
		t.Fatalf("the old passphrase after the change: %v", err)
	}
	d.Stop()
	// The second backup restores too (prompted passphrase, --force over
	// the first restore).
	answers = []string{"second backup"}
	t.Setenv("UMBRA_PASSPHRASE", "third home words")
	if out := mustRun(t, "backup", "restore", second, "--home", fresh, "--force"); !strings.Contains(out, alice) {
		t.Fatalf("restore --force: %q", out)
	}
	if id := strings.TrimSpace(mustRun(t, "id", "--home", fresh)); id != alice {
		t.Fatalf("after restore --force: %s", id)
	}
}

// TestPassphraseAndPhraseCLI: 'umbra passphrase change' sets, changes and
// removes a passphrase with distinct errors, and 'umbra phrase' shows the
// recovery phrase again only after the passphrase.
func TestPassphraseAndPhraseCLI(t *testing.T) {
	t.Setenv("UMBRA_HOME", "")
	t.Setenv("UMBRA_PASSPHRASE", "")
	t.Setenv("UMBRA_NEW_PASSPHRASE", "")
	home := filepath.Join(t.TempDir(), "home")
	out := mustRun(t, "init", "--home", home, "--network", offlineNetwork(t, 1), "--json")
	var created map[string]string
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	var shown map[string]string
	if err := json.Unmarshal([]byte(mustRun(t, "phrase", "--home", home, "--json")), &shown); err != nil || shown["recovery_phrase"] != created["recovery_phrase"] {
		t.Fatalf("phrase of an unprotected home: %v, %v", shown, err)
	}
	if _, _, err := run(t, "passphrase", "change", "--home", home); err == nil || !strings.Contains(err.Error(), "UMBRA_NEW_PASSPHRASE") {
		t.Fatalf("change without a new passphrase: %v", err)
	}
	t.Setenv("UMBRA_NEW_PASSPHRASE", "first pass")
	mustRun(t, "passphrase", "change", "--home", home) // sets one
	t.Setenv("UMBRA_PASSPHRASE", "wrong pass")
	t.Setenv("UMBRA_NEW_PASSPHRASE", "second pass")
	if _, _, err := run(t, "passphrase", "change", "--home", home); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("change with a wrong passphrase: %v", err)
	}
	if _, _, err := run(t, "phrase", "--home", home); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("phrase with a wrong passphrase: %v", err)
	}
	t.Setenv("UMBRA_PASSPHRASE", "first pass")
	mustRun(t, "passphrase", "change", "--home", home)
	t.Setenv("UMBRA_PASSPHRASE", "second pass")
	if err := json.Unmarshal([]byte(mustRun(t, "phrase", "--home", home, "--json")), &shown); err != nil || shown["recovery_phrase"] != created["recovery_phrase"] {
		t.Fatalf("phrase after the change: %v, %v", shown, err)
	}
	_, errOut, err := run(t, "passphrase", "change", "--remove", "--home", home)
	if err != nil || !strings.Contains(errOut, "warning: removing the passphrase") {
		t.Fatalf("remove: %v\n%s", err, errOut)
	}
	if _, _, err := run(t, "phrase", "--home", home); err == nil || !strings.Contains(err.Error(), "has no passphrase") {
		t.Fatalf("a passphrase for a home that has none: %v", err)
	}
}

// TestWriteFileAtomic: a failed write leaves the old file and no temporary
// file; a good one replaces it with mode 0600.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.umbrabak")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := writeFileAtomic(path, func(w io.Writer) error {
		w.Write([]byte("half"))
		return errors.New("broke")
	}); err == nil {
		t.Fatal("a failed write succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("after a failed write the file holds %q", b)
	}
	n, err := writeFileAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte("new content")); return err })
	if err != nil || n != int64(len("new content")) {
		t.Fatalf("write: %d, %v", n, err)
	}
	fi, err := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "new content" || err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after a write: %q, mode %v, %v", b, fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d files in the folder, want 1 (no temporary left)", len(ents))
	}
}
