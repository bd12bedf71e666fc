package ui_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/identity"
)

// TestBrowserBackup: alice (an account with a passphrase and a chat with
// bob) shows her recovery phrase again after her passphrase (a wrong one
// is refused in plain words), creates a backup that the page downloads,
// and changes her passphrase from her Settings. A fresh daemon then
// restores her backup from the onboarding screen (a wrong backup
// passphrase refused first) and shows the same account ID and the chat.
func TestBrowserBackup(t *testing.T) {
	chromiumPath(t)
	bin := buildUmbra(t)
	net := startNetwork(t, bin, 6)
	alice := startDaemon(t, bin, "alice", net.BootstrapFile())
	bob := startDaemon(t, bin, "bob", net.BootstrapFile())

	const (
		alicePass  = "alice first passphrase"
		alicePass2 = "alice second passphrase"
		backupPass = "a backup passphrase"
		text       = "written before the backup"
	)
	aliceAcct, _ := identity.New(nil)
	bobAcct, _ := identity.New(nil)
	aliceID, bobID := aliceAcct.ID().String(), bobAcct.ID().String()
	if err := alice.post("/api/v1/account", map[string]any{"recovery_phrase": aliceAcct.Phrase(), "passphrase": alicePass}, nil); err != nil {
		t.Fatalf("create alice: %v", err)
	}
	if err := bob.post("/api/v1/account", map[string]any{"recovery_phrase": bobAcct.Phrase(), "no_passphrase": true}, nil); err != nil {
		t.Fatalf("create bob: %v", err)
	}
	if err := alice.post("/api/v1/contacts", map[string]string{"ID": bobID, "Name": "bob"}, nil); err != nil {
		t.Fatal(err)
	}
	var sendErr error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if sendErr = alice.post("/api/v1/messages", map[string]string{"To": bobID, "Text": text}, nil); sendErr == nil {
			break
		}
	}
	if sendErr != nil {
		t.Fatalf("alice's message: %v", sendErr)
	}

	b := newBrowser(t)
	at := b.openTab("alice", true, 1280, 800, 1)
	at.do("open alice's UI", 20*time.Second, chromedp.Navigate(alice.uiURL()), chromedp.WaitVisible(css(`button[data-view="me"]`)))
	at.do("open the settings", 10*time.Second, chromedp.Click(css(`button[data-view="settings"]`)), chromedp.WaitVisible(css("#vault")))
	at.shot("60-vault-card")

	// The recovery phrase, after the passphrase.
	at.do("ask for the phrase", 10*time.Second, chromedp.Click(css("#show-phrase")), chromedp.WaitVisible(css("#phrase-passphrase")))
	at.do("a wrong passphrase", 10*time.Second, chromedp.SendKeys(css("#phrase-passphrase"), "not my passphrase"), chromedp.Click(css("#phrase-dialog-ok")))
	at.waitJS("the wrong-passphrase error", 20*time.Second, `document.querySelector('#phrase-dialog-error').textContent === 'Wrong passphrase.'`)
	at.do("the right passphrase", 20*time.Second, clearField("#phrase-passphrase"), chromedp.SendKeys(css("#phrase-passphrase"), alicePass),
		chromedp.Click(css("#phrase-dialog-ok")), chromedp.WaitVisible(css("#shown-phrase")))
	words := eval[[]string](at, "read the phrase", `[...document.querySelectorAll('#shown-phrase .word')].map(e => e.textContent)`)
	if strings.Join(words, " ") != aliceAcct.Phrase() {
		t.Fatalf("the phrase shown again is %q, want alice's", words)
	}
	at.shot("61-phrase-again")
	at.do("close the phrase", 10*time.Second, chromedp.Click(css("#phrase-dialog-close")))
	at.waitJS("the phrase dialog to close", 5*time.Second, `!document.querySelector('#phrase-dialog')`)

	// A backup, downloaded by the page.
	at.do("create a backup", 10*time.Second, chromedp.Click(css("#create-backup")), chromedp.WaitVisible(css("#backup-current")),
		chromedp.SendKeys(css("#backup-current"), "not my passphrase"),
		chromedp.SendKeys(css("#backup-passphrase"), backupPass), chromedp.SendKeys(css("#backup-passphrase-repeat"), backupPass),
		chromedp.Click(css("#backup-dialog-ok")))
	at.waitJS("the wrong-passphrase error", 20*time.Second, `document.querySelector('#backup-dialog-error').textContent === 'Wrong passphrase.'`)
	at.do("the right passphrase", 10*time.Second, clearField("#backup-current"), chromedp.SendKeys(css("#backup-current"), alicePass),
		chromedp.Click(css("#backup-dialog-ok")))
	at.waitJS("the backup to download", 30*time.Second, `+(document.querySelector('#backup-download') || {dataset: {}}).dataset.bytes > 1000`)
	at.shot("62-backup-done")
	at.do("close the backup dialog", 10*time.Second, chromedp.Click(css("#backup-dialog-close")))

	// The passphrase changed.
	at.do("change the passphrase", 10*time.Second, chromedp.Click(css("#change-passphrase")), chromedp.WaitVisible(css("#change-old")),
		chromedp.SendKeys(css("#change-old"), "not my passphrase"), chromedp.SendKeys(css("#change-new"), alicePass2),
		chromedp.SendKeys(css("#change-new-repeat"), alicePass2), chromedp.Click(css("#change-dialog-ok")))
	at.waitJS("the wrong-passphrase error", 20*time.Second, `document.querySelector('#change-dialog-error').textContent === 'Wrong passphrase.'`)
	at.do("the right old passphrase", 20*time.Second, clearField("#change-old"), chromedp.SendKeys(css("#change-old"), alicePass),
		chromedp.Click(css("#change-dialog-ok")))
	at.waitJS("the change dialog to close", 30*time.Second, `!document.querySelector('#change-dialog')`)
	if err := alice.post("/api/v1/account/recovery-phrase", map[string]string{"passphrase": alicePass2}, nil); err != nil {
		t.Fatalf("the new passphrase does not work: %v", err)
	}
	if err := alice.post("/api/v1/account/recovery-phrase", map[string]string{"passphrase": alicePass}, nil); err == nil || !strings.Contains(err.Error(), "Wrong passphrase") {
		t.Fatalf("the old passphrase: %v, want wrong", err)
	}

	// The backup file, as the page downloaded it (the same endpoint).
	var file bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := api.NewClient(alice.url, alice.token).Download(ctx, "/api/v1/backup", map[string]string{"passphrase": backupPass, "current_passphrase": alicePass2}, &file); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "alice.umbrabak")
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	alice.stop(t)

	// A fresh daemon restores it from the onboarding screen.
	fresh := startDaemon(t, bin, "fresh", net.BootstrapFile())
	at.do("open the fresh UI", 20*time.Second, chromedp.Navigate(fresh.uiURL()), chromedp.WaitVisible(css("#restore-backup")))
	at.shot("63-welcome-restore-backup")
	at.do("restore from a backup", 10*time.Second, chromedp.Click(css("#restore-backup")), chromedp.WaitVisible(css("#backup-file")),
		chromedp.SetUploadFiles(css("#backup-file"), []string{path}),
		chromedp.SendKeys(css("#restore-backup-passphrase"), "not the backup passphrase"), chromedp.Click(css("#restore-backup-submit")))
	at.waitJS("the wrong-backup-passphrase error", 30*time.Second, `document.querySelector('#restore-backup-error').textContent === 'Wrong backup passphrase.'`)
	at.shot("64-restore-wrong-passphrase")
	at.do("the right backup passphrase", 60*time.Second, clearField("#restore-backup-passphrase"),
		chromedp.SendKeys(css("#restore-backup-passphrase"), backupPass), chromedp.Click(css("#restore-backup-submit")),
		chromedp.WaitVisible(css(`button.conv[data-peer="`+bobID+`"]`)))
	var st api.AccountStatus
	if err := fresh.get("/api/v1/account", &st); err != nil || st.AccountID != aliceID {
		t.Fatalf("restored account %+v, %v; want %s", st, err, aliceID)
	}
	at.do("open the chat with bob", 10*time.Second, chromedp.Click(css(`button.conv[data-peer="`+bobID+`"]`)))
	at.waitJS("the history", 10*time.Second, `document.querySelector('#messages').textContent.includes(`+jsString(text)+`)`)
	at.do("open the ID panel", 10*time.Second, chromedp.Click(css(`button[data-view="me"]`)), chromedp.WaitVisible(css("#my-id")))
	if got := eval[string](at, "read the ID", `document.querySelector('#my-id').dataset.id`); got != aliceID {
		t.Fatalf("the restored UI shows ID %s, want %s", got, aliceID)
	}
	at.shot("65-restored")
}
