package client

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/keystore"
)

// lightArgon2 makes passphrase derivations cheap for one test.
func lightArgon2(t *testing.T) {
	old := passphraseArgon2
	passphraseArgon2 = keystore.LightArgon2
	t.Cleanup(func() { passphraseArgon2 = old })
}

// newOfflineEngine opens a new account without a passphrase, offline, in
// a temporary home; it is closed when the test ends.
func newOfflineEngine(tb testing.TB) *Engine {
	tb.Helper()
	home := filepath.Join(tb.TempDir(), "home")
	if _, err := Init(home, "", nil, ""); err != nil {
		tb.Fatal(err)
	}
	e, err := openOffline(home, "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close() })
	return e
}

func openOffline(home, passphrase string) (*Engine, error) {
	return Open(context.Background(), Config{Home: home, Passphrase: passphrase, Offline: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// TestPassphraseErrors checks that opening a home tells apart a home
// without a passphrase, a protected home opened without one and a wrong
// passphrase, and that the engine reports an unprotected database.
func TestPassphraseErrors(t *testing.T) {
	lightArgon2(t)
	dir := t.TempDir()
	bare := filepath.Join(dir, "bare")
	if _, err := Init(bare, "", nil, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := openOffline(bare, "a passphrase"); !errors.Is(err, ErrNoPassphrase) {
		t.Errorf("a passphrase on a home without one: %v, want ErrNoPassphrase", err)
	}
	e, err := openOffline(bare, "")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Unprotected() {
		t.Error("an engine on a home without a passphrase does not report it unprotected")
	}
	e.Close()

	locked := filepath.Join(dir, "locked")
	if _, err := Init(locked, "right one", nil, ""); err != nil {
		t.Fatal(err)
	}
	for pass, want := range map[string]error{"": ErrPassphraseRequired, "wrong one": ErrWrongPassphrase} {
		if _, err := openOffline(locked, pass); !errors.Is(err, want) {
			t.Errorf("passphrase %q on a protected home: %v, want %v", pass, err, want)
		}
	}
	if _, err := ReadAccountID(locked, ""); !errors.Is(err, ErrPassphraseRequired) {
		t.Errorf("ReadAccountID without the passphrase: %v", err)
	}
	e, err = openOffline(locked, "right one")
	if err != nil {
		t.Fatal(err)
	}
	if e.Unprotected() {
		t.Error("an engine on a protected home reports it unprotected")
	}
	e.Close()
}

// TestSetPassphrase protects an unprotected home while its engine runs:
// the engine keeps working, reports the database protected, and the home
// then opens only with the new passphrase.
func TestSetPassphrase(t *testing.T) {
	lightArgon2(t)
	home := filepath.Join(t.TempDir(), "home")
	acct, err := Init(home, "", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	e, err := openOffline(home, "")
	if err != nil {
		t.Fatal(err)
	}
	friend, err := identity.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddContact(friend.ID().String(), "friend"); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPassphrase(context.Background(), ""); err == nil {
		t.Error("an empty new passphrase was accepted")
	}
	if err := e.SetPassphrase(context.Background(), "now protected"); err != nil {
		t.Fatal(err)
	}
	if e.Unprotected() {
		t.Error("still unprotected after SetPassphrase")
	}
	if e.AccountID() != acct.ID().String() {
		t.Error("the engine lost its account")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := openOffline(home, ""); !errors.Is(err, ErrPassphraseRequired) {
		t.Errorf("open without the new passphrase: %v, want ErrPassphraseRequired", err)
	}
	e, err = openOffline(home, "now protected")
	if err != nil {
		t.Fatalf("open with the new passphrase: %v", err)
	}
	defer e.Close()
	if e.AccountID() != acct.ID().String() || e.Unprotected() {
		t.Errorf("reopened: account %s unprotected %v", e.AccountID(), e.Unprotected())
	}
	if cs, err := e.Contacts(); err != nil || len(cs) != 1 || cs[0].Name != "friend" {
		t.Errorf("contacts after the re-encryption: %+v, %v", cs, err)
	}
}
