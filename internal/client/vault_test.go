package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// TestBackupRestoreChat: alice backs her account up, her home is lost, and
// a fresh home restored from the backup has the same account, contacts
// and history, and chats with bob again: at once (bob's session with the
// old home is young, so bob may keep sending on it: the restored home
// opens it) and after the crossing window (bob moves to the new session).
func TestBackupRestoreChat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client.LightVaultForTest(t)
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		befriend(t, alice, bob)
		greet(ctx, t, alice, bob, "a0")
		if _, err := bob.e.Send(ctx, alice.id, "b0"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "alice to receive b0", func() bool { return countFrom(alice, bob, "b0") == 1 })
		if _, err := alice.e.SetSettings(client.Settings{ReadReceipts: false}); err != nil {
			t.Fatal(err)
		}

		var buf bytes.Buffer
		if _, err := alice.e.WriteBackup(ctx, &buf, ""); err == nil {
			t.Fatal("a backup without a passphrase was written")
		}
		written, err := alice.e.WriteBackup(ctx, &buf, "backup words")
		if err != nil {
			t.Fatal(err)
		}
		if written < 5 {
			t.Fatalf("only %d entries in the backup", written)
		}
		file := buf.Bytes()
		alice.stop()

		fresh := filepath.Join(t.TempDir(), "alice2")
		if _, err := client.RestoreBackup(fresh, bytes.NewReader(file), "not the words", "", client.RestoreOptions{}); !errors.Is(err, client.ErrBackupWrongPassphrase) {
			t.Fatalf("wrong backup passphrase: %v", err)
		}
		bad := bytes.Clone(file)
		bad[len(bad)-40] ^= 1
		if _, err := client.RestoreBackup(fresh, bytes.NewReader(bad), "backup words", "", client.RestoreOptions{}); !errors.Is(err, client.ErrBackupDamaged) {
			t.Fatalf("tampered backup: %v", err)
		}
		if client.Exists(fresh) {
			t.Fatal("a failed restore left a database behind")
		}
		if _, err := client.RestoreBackup(bob.home, bytes.NewReader(file), "backup words", "", client.RestoreOptions{}); err == nil ||
			!strings.Contains(err.Error(), "already holds an account") {
			t.Fatalf("restore over an account: %v", err)
		}
		var progress []uint64
		id, err := client.RestoreBackup(fresh, bytes.NewReader(file), "backup words", "home words",
			client.RestoreOptions{Progress: func(done, total uint64) { progress = append(progress, done) }})
		if err != nil {
			t.Fatal(err)
		}
		if id.String() != alice.id || len(progress) == 0 || progress[len(progress)-1] != written {
			t.Fatalf("restored %s (want %s), progress %v of %d", id, alice.id, progress, written)
		}

		restored := &user{home: fresh, id: alice.id}
		if _, err := client.ReadAccountID(fresh, ""); !errors.Is(err, client.ErrPassphraseRequired) {
			t.Fatalf("the restored home opens without its passphrase: %v", err)
		}
		n.start(restored, client.Config{Passphrase: "home words"})
		if got := restored.e.AccountID(); got != alice.id {
			t.Fatalf("restored account %s, want %s", got, alice.id)
		}
		cs, err := restored.e.Contacts()
		if err != nil || len(cs) != 1 || cs[0].ID != bob.id {
			t.Fatalf("restored contacts %v, %v", cs, err)
		}
		if countFrom(restored, bob, "b0") != 1 {
			t.Fatal("the restored history lacks b0")
		}
		if st, err := restored.e.Settings(); err != nil || st.ReadReceipts {
			t.Fatalf("restored settings %+v, %v", st, err)
		}

		for round, wait := range []time.Duration{0, 11 * time.Minute} {
			time.Sleep(wait)
			a, b := fmt.Sprintf("a%d", round+1), fmt.Sprintf("b%d", round+1)
			if _, err := restored.e.Send(ctx, bob.id, a); err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				// The first send started a new session: the restored one
				// stays for receiving only.
				if k := restored.e.SessionCount(bob.id); k != 2 {
					t.Fatalf("the restored home holds %d sessions with bob after its first send, want 2 (the restored one and a new one)", k)
				}
			}
			waitFor(t, 30*time.Second, "bob to receive "+a, func() bool { return countFrom(bob, alice, a) == 1 })
			if _, err := bob.e.Send(ctx, alice.id, b); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "the restored home to receive "+b, func() bool { return countFrom(restored, bob, b) == 1 })
		}
	})
}

// TestChangePassphrase: changing, setting and removing a passphrase, and
// showing the recovery phrase again, each after the current passphrase,
// with distinct errors for a wrong one and for a home that has none.
func TestChangePassphrase(t *testing.T) {
	client.LightVaultForTest(t)
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "home")
	acct, err := client.Init(home, "first pass", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	e, err := client.Open(ctx, client.Config{Home: home, Passphrase: "first pass", Offline: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()
	if _, err := e.RecoveryPhrase(ctx, "wrong"); !errors.Is(err, client.ErrWrongPassphrase) {
		t.Fatalf("phrase with a wrong passphrase: %v", err)
	}
	if _, err := e.RecoveryPhrase(ctx, ""); !errors.Is(err, client.ErrPassphraseRequired) {
		t.Fatalf("phrase without the passphrase: %v", err)
	}
	if p, err := e.RecoveryPhrase(ctx, "first pass"); err != nil || p != acct.Phrase() {
		t.Fatalf("phrase: %q, %v", p, err)
	}
	if err := e.ChangePassphrase(ctx, "wrong", "second pass", false); !errors.Is(err, client.ErrWrongPassphrase) {
		t.Fatalf("change with a wrong passphrase: %v", err)
	}
	if err := e.ChangePassphrase(ctx, "first pass", "", false); !errors.Is(err, client.ErrPassphraseEmpty) {
		t.Fatalf("change to empty without remove: %v", err)
	}
	if err := e.ChangePassphrase(ctx, "first pass", "second pass", false); err != nil {
		t.Fatal(err)
	}
	if err := e.ChangePassphrase(ctx, "second pass", "", true); err != nil {
		t.Fatal(err)
	}
	if !e.Unprotected() {
		t.Fatal("the passphrase was removed but the engine says protected")
	}
	if err := e.ChangePassphrase(ctx, "second pass", "third pass", false); !errors.Is(err, client.ErrNoPassphrase) {
		t.Fatalf("an old passphrase on a home without one: %v", err)
	}
	if p, err := e.RecoveryPhrase(ctx, ""); err != nil || p != acct.Phrase() {
		t.Fatalf("phrase of an unprotected home: %v", err)
	}
	if err := e.ChangePassphrase(ctx, "", "third pass", false); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if _, err := client.ReadAccountID(home, "second pass"); !errors.Is(err, client.ErrWrongPassphrase) {
		t.Fatalf("the old passphrase still opens the home: %v", err)
	}
	if id, err := client.ReadAccountID(home, "third pass"); err != nil || id != acct.ID() {
		t.Fatalf("the new passphrase: %v", err)
	}
	e, err = client.Open(ctx, client.Config{Home: home, Passphrase: "third pass", Offline: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
}
