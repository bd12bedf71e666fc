package ui_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/identity"
)

// TestBrowser drives the web UI of two real `umbra daemon` processes on a
// devnet in headless Chromium: alice creates her account without a
// passphrase (after confirming the warning) and confirming her recovery
// phrase at desktop width, and the app then warns that it is unprotected;
// bob chooses a passphrase and restores his account from a phrase at phone
// width; a mistyped ID is refused in plain words; alice adds bob and
// writes; the message reaches bob's tab as a message request, bob accepts,
// alice's tab shows it delivered, bob answers live; alice turns read
// receipts off in her Settings; alice renames bob; the
// network view lists the three hops of the onion path and the swarm; alice
// sets a passphrase from the warning, which goes away; bob's daemon
// restarts without his passphrase, on the same address with the same token,
// and his tab, reloaded, unlocks it. The token only
// ever travels in the URL's fragment and in headers.
// Screenshots of the main screens go to artifacts/screens.
func TestBrowser(t *testing.T) {
	chromiumPath(t) // fail early and clearly without Chromium
	start := time.Now()
	bin := buildUmbra(t)
	net := startNetwork(t, bin, 6)
	alice := startDaemon(t, bin, "alice", net.BootstrapFile())
	bob := startDaemon(t, bin, "bob", net.BootstrapFile())
	t.Logf("network and daemons up in %.1fs", time.Since(start).Seconds())

	b := newBrowser(t)
	at := b.openTab("alice", true, 1280, 800, 1)
	bt := b.openTab("bob", false, 360, 740, 2)

	// --- onboarding: alice creates an account ---
	at.do("open alice's UI", 20*time.Second, chromedp.Navigate(alice.uiURL()), chromedp.WaitVisible(css("#create-account")))
	if u := eval[string](at, "read the address", `location.href`); strings.Contains(u, "token") {
		t.Errorf("the token stays in the address bar: %s", u)
	}
	at.shot("01-welcome-desktop")
	// The passphrase step comes first; alice goes without one, which takes
	// a warning and an explicit confirmation.
	at.do("start creating", 10*time.Second, chromedp.Click(css("#create-account")), chromedp.WaitVisible(css("#passphrase")))
	at.shot("01b-passphrase-desktop")
	at.do("skip the passphrase", 10*time.Second, chromedp.Click(css("#skip-passphrase")), chromedp.WaitVisible(css("#no-passphrase .warning")))
	if !eval[bool](at, "read the confirm button", `document.querySelector('#no-passphrase-continue').disabled`) {
		t.Error("continuing without a passphrase is possible before confirming the warning")
	}
	at.shot("01c-no-passphrase-warning-desktop")
	at.do("confirm no passphrase", 10*time.Second,
		chromedp.Click(css("#no-passphrase-ok")), chromedp.Click(css("#no-passphrase-continue")), chromedp.WaitVisible(css("ol.phrase")))
	words := eval[[]string](at, "read the phrase", `[...document.querySelectorAll('ol.phrase .word')].map(e => e.textContent)`)
	if len(words) != 24 {
		t.Fatalf("the recovery phrase shows %d words, want 24", len(words))
	}
	at.shot("02-recovery-phrase-desktop")
	at.do("confirm the phrase is saved", 10*time.Second,
		chromedp.Click(css("#phrase-saved")), chromedp.Click(css("#phrase-continue")), chromedp.WaitVisible(css("form.confirm")))
	picks := eval[[]int](at, "read the asked words", `[...document.querySelectorAll('form.confirm input')].map(e => +e.dataset.index)`)
	if len(picks) != 3 {
		t.Fatalf("the confirmation asks for %d words, want 3", len(picks))
	}
	// A wrong word is refused, and no account is made.
	at.do("type a wrong word", 10*time.Second,
		chromedp.SendKeys(css("form.confirm input"), "notaword"), chromedp.Click(css("#confirm-phrase")))
	at.waitJS("the wrong-word error", 5*time.Second, `document.querySelector('#confirm-error').textContent.includes('does not match')`)
	var st api.AccountStatus
	if err := alice.get("/api/v1/account", &st); err != nil || st.Exists {
		t.Fatalf("after a wrong confirmation word: account %+v, %v; want none yet", st, err)
	}
	var fill []chromedp.Action[chromedp.Void]
	for _, i := range picks {
		sel := "#confirm-word-" + strconv.Itoa(i+1)
		fill = append(fill, clearField(sel), chromedp.SendKeys(css(sel), words[i]))
	}
	at.do("type the asked words", 10*time.Second, fill...)
	at.shot("03-confirm-phrase-desktop")
	at.do("create the account", 60*time.Second, chromedp.Click(css("#confirm-phrase")), chromedp.WaitVisible(css("#me-panel")))
	if err := alice.get("/api/v1/account", &st); err != nil || !st.Exists {
		t.Fatalf("after onboarding: account %+v, %v", st, err)
	}
	aliceID := st.AccountID
	if want, _ := identity.Restore(strings.Join(words, " ")); want.ID().String() != aliceID {
		t.Fatalf("alice's account %s is not the one of the phrase shown (%s)", aliceID, want.ID())
	}
	if !st.Unprotected {
		t.Errorf("alice's account made without a passphrase: status %+v, want unprotected", st)
	}
	// The app warns, visibly and for as long as the account is unprotected.
	at.waitJS("the unprotected-account warning", 10*time.Second, `(() => {
		const w = document.querySelector('#unprotected-warning');
		if (!w) return false;
		const r = w.getBoundingClientRect();
		return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight && getComputedStyle(w).visibility === 'visible' &&
			w.textContent.includes('not protected by a passphrase');
	})()`)
	at.waitJS("the QR code and the ID", 10*time.Second,
		`document.querySelector('#my-qr svg path') && document.querySelector('#my-id').dataset.id === `+jsString(aliceID))
	at.shot("04-my-id-desktop")

	// --- onboarding: bob restores his account, at phone width ---
	bobAcct, err := identity.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	bobID := bobAcct.ID().String()
	bt.do("open bob's UI", 20*time.Second, chromedp.Navigate(bob.uiURL()), chromedp.WaitVisible(css("#restore-account")))
	bt.shot("20-welcome-phone")
	phrase := strings.Fields(bobAcct.Phrase())
	typo := strings.Join(append(append([]string{}, phrase[:4]...), append([]string{"zebraa"}, phrase[5:]...)...), " ")
	// bob chooses a passphrase: a short one and two that differ are refused.
	bt.do("start restoring", 10*time.Second, chromedp.Click(css("#restore-account")), chromedp.WaitVisible(css("#passphrase")))
	bt.do("a short passphrase", 10*time.Second,
		chromedp.SendKeys(css("#passphrase"), "short"), chromedp.SendKeys(css("#passphrase-repeat"), "short"), chromedp.Click(css("#passphrase-continue")))
	bt.waitJS("the too-short error", 5*time.Second, `document.querySelector('#passphrase-error').textContent.includes('at least 8')`)
	bt.do("two different passphrases", 10*time.Second,
		clearField("#passphrase"), clearField("#passphrase-repeat"),
		chromedp.SendKeys(css("#passphrase"), bobPassphrase), chromedp.SendKeys(css("#passphrase-repeat"), bobPassphrase+"x"),
		chromedp.Click(css("#passphrase-continue")))
	bt.waitJS("the mismatch error", 5*time.Second, `document.querySelector('#passphrase-error').textContent.includes('differ')`)
	bt.do("bob's passphrase", 10*time.Second,
		clearField("#passphrase-repeat"), chromedp.SendKeys(css("#passphrase-repeat"), bobPassphrase),
		chromedp.Click(css("#passphrase-continue")), chromedp.WaitVisible(css("#restore-phrase")))
	bt.do("type a phrase with a typo", 10*time.Second,
		chromedp.SendKeys(css("#restore-phrase"), typo), chromedp.Click(css("#restore-submit")))
	bt.waitJS("the phrase error", 10*time.Second, `document.querySelector('#restore-error').textContent.includes('Word 5')`)
	bt.shot("21-restore-error-phone")
	bt.do("restore bob", 60*time.Second,
		clearField("#restore-phrase"), chromedp.SendKeys(css("#restore-phrase"), bobAcct.Phrase()),
		chromedp.Click(css("#restore-submit")), chromedp.WaitVisible(css("#me-panel")))
	bt.waitJS("bob's restored ID", 10*time.Second, `document.querySelector('#my-id').dataset.id === `+jsString(bobID))
	if err := bob.get("/api/v1/account", &st); err != nil || st.Unprotected {
		t.Errorf("bob's account made with a passphrase: %+v, %v; want protected", st, err)
	}
	if eval[bool](bt, "look for the warning", `!!document.querySelector('#unprotected-warning')`) {
		t.Error("bob's protected account shows the unprotected warning")
	}
	bt.shot("22-my-id-phone")
	bt.do("go back to the list", 10*time.Second, chromedp.Click(css("#main .back")), chromedp.WaitVisible(css("#conv-list")))

	// --- contacts: a mistyped ID is refused in plain words ---
	at.do("open add contact", 10*time.Second, chromedp.Click(css(`button[aria-label="Add contact"]`)), chromedp.WaitVisible(css("#contact-id")))
	bad := mistype(bobID)
	at.do("add a mistyped ID", 10*time.Second,
		chromedp.SendKeys(css("#contact-id"), bad), chromedp.SendKeys(css("#contact-name"), "Bob"), chromedp.Click(css("#add-contact")))
	at.waitJS("the checksum error", 10*time.Second, `/typo/.test(document.querySelector('#contact-id-error').textContent)`)
	if msg := eval[string](at, "read the error", `document.querySelector('#contact-id-error').textContent`); strings.Contains(msg, "invalid account ID:") {
		t.Errorf("the ID error is not in plain words: %q", msg)
	}
	at.shot("05-add-contact-error-desktop")
	at.do("add bob", 15*time.Second,
		clearField("#contact-id"), chromedp.SendKeys(css("#contact-id"), bobID), chromedp.Click(css("#add-contact")),
		chromedp.WaitVisible(css(`section.chat[data-peer="`+bobID+`"]`)))

	// --- chat: alice writes with Enter; bob gets a message request ---
	at.do("send a message", 10*time.Second, chromedp.SendKeys(css("#composer"), "hello bob"), pressEnter())
	at.waitJS("the message in alice's chat", 10*time.Second,
		`[...document.querySelectorAll('.msg.out .text')].some(e => e.textContent === 'hello bob') && document.querySelector('#composer').value === ''`)
	at.waitJS("the message to be sent", 45*time.Second, `document.querySelector('.msg.out').dataset.state !== 'queued'`)
	bt.waitJS("alice's message request in bob's list", 60*time.Second,
		`document.querySelector('#request-list li[data-peer="`+aliceID+`"]')`)
	bt.shot("23-message-request-phone")
	bt.do("accept the request", 15*time.Second,
		chromedp.Click(css(`#request-list li[data-peer="`+aliceID+`"] .btn.primary`)),
		chromedp.WaitVisible(css(`section.chat[data-peer="`+aliceID+`"]`)))
	bt.waitJS("the message in bob's chat", 15*time.Second,
		`[...document.querySelectorAll('.msg.in .text')].some(e => e.textContent === 'hello bob')`)
	at.waitJS("a delivered tick in alice's chat", 60*time.Second,
		`['delivered', 'read'].includes(document.querySelector('.msg.out .tick').dataset.state)`)

	// bob answers; it appears live in alice's open chat
	bt.do("bob answers", 10*time.Second, chromedp.SendKeys(css("#composer"), "hi alice, got it"), pressEnter())
	at.waitJS("bob's answer in alice's chat", 60*time.Second,
		`[...document.querySelectorAll('.msg.in .text')].some(e => e.textContent === 'hi alice, got it')`)
	at.waitJS("a read tick in alice's chat", 60*time.Second, `document.querySelector('.msg.out .tick').dataset.state === 'read'`)
	for _, tb := range []*tab{at, bt} {
		if got := eval[[]string](tb, "read the chat", `[...document.querySelectorAll('.msg .text')].map(e => e.textContent)`); strings.Join(got, "|") != "hello bob|hi alice, got it" {
			t.Errorf("%s's chat shows %q, want hello bob then hi alice, got it", tb.name, got)
		}
	}
	at.shot("06-chat-desktop")
	bt.waitJS("bob's answer to be delivered", 60*time.Second,
		`['delivered', 'read'].includes(document.querySelector('.msg.out .tick').dataset.state)`)
	bt.shot("24-chat-phone")

	// --- privacy: alice turns read receipts off ---
	at.do("open the settings", 10*time.Second, chromedp.Click(css(`button[aria-label="Settings"]`)),
		chromedp.WaitVisible(css("#setting-read-receipts")))
	at.waitJS("the read receipts toggle, on", 10*time.Second,
		`(b => b && !b.disabled && b.checked)(document.querySelector('#setting-read-receipts'))`)
	if label := eval[string](at, "read the toggle's label", `document.querySelector('label[for="setting-read-receipts"]').textContent`); label != "Send read receipts" {
		t.Errorf("the toggle is labelled %q", label)
	}
	at.do("turn read receipts off", 10*time.Second, chromedp.Click(css("#setting-read-receipts")))
	at.waitJS("the toggle to settle off", 10*time.Second,
		`(b => !b.disabled && !b.checked)(document.querySelector('#setting-read-receipts'))`)
	var settings struct {
		ReadReceipts bool `json:"read_receipts"`
	}
	if err := alice.get("/api/v1/settings", &settings); err != nil || settings.ReadReceipts {
		t.Errorf("after the toggle: read_receipts %v, %v; want off", settings.ReadReceipts, err)
	}
	at.shot("06b-privacy-desktop")
	at.do("back to the chat", 10*time.Second, chromedp.Click(css(`#conv-list button[data-peer="`+bobID+`"]`)), chromedp.WaitVisible(css("#composer")))

	// --- rename ---
	at.do("rename bob", 10*time.Second,
		chromedp.Click(css(`button[aria-label="Rename contact"]`)), chromedp.WaitVisible(css("#rename-input")),
		clearField("#rename-input"), chromedp.SendKeys(css("#rename-input"), "Bobby"), pressEnter())
	at.waitJS("the new name", 10*time.Second,
		`document.querySelector('#chat-title').textContent === 'Bobby' && document.querySelector('#conv-list .conv-name').textContent === 'Bobby'`)

	// --- network view: three hops and the swarm ---
	at.do("open the network view", 30*time.Second, chromedp.Click(css(`button[aria-label="Network"]`)), chromedp.WaitVisible(css("#onion-path")))
	roles := eval[[]string](at, "read the path", `[...document.querySelectorAll('#onion-path li.hop.node')].map(e => e.dataset.role)`)
	if strings.Join(roles, ",") != "guard,middle,exit" {
		t.Errorf("the onion path shows hops %v, want guard, middle, exit", roles)
	}
	summary := eval[string](at, "read the swarm", `document.querySelector('#swarm-summary').textContent`)
	nodes := eval[int](at, "count the swarm", `document.querySelectorAll('#swarm-list li').length`)
	if nodes == 0 || !strings.Contains(summary, " of "+strconv.Itoa(nodes)) {
		t.Errorf("swarm summary %q with %d nodes listed", summary, nodes)
	}
	at.shot("07-network-desktop")

	// --- phone width for alice's main screens ---
	at.do("phone width", 10*time.Second, chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2)))
	at.shot("30-network-phone")
	at.do("back to the list", 10*time.Second, chromedp.Click(css("#main .back")), chromedp.WaitVisible(css("#conv-list")))
	at.shot("31-conversations-phone")
	at.do("open the chat", 10*time.Second, chromedp.Click(css(`#conv-list button[data-peer="`+bobID+`"]`)), chromedp.WaitVisible(css("#composer")))
	at.shot("32-chat-phone")
	at.do("back to desktop width", 10*time.Second, chromedp.EmulateViewport(1280, 800))
	at.do("show the list view", 10*time.Second, chromedp.KeyEvent(kb.Escape))
	at.shot("08-conversations-desktop")

	// --- dark mode ---
	at.do("dark mode", 10*time.Second, darkMode(), chromedp.Click(css(`#conv-list button[data-peer="`+bobID+`"]`)),
		chromedp.WaitVisible(css("#composer")))
	at.shot("09-chat-dark-desktop")

	// --- remove a contact ---
	menuAction(at, "remove-contact") // the chat header menu (trust_browser_test.go)
	at.do("remove bob", 10*time.Second, chromedp.WaitVisible(css("dialog[open]")), chromedp.Click(css("dialog[open] .btn.danger")))
	at.waitJS("the list without bob", 10*time.Second,
		`!document.querySelector('#conv-list button[data-peer="`+bobID+`"]') && document.querySelector('#conv-list .conv-empty')`)

	// --- alice protects her account from the warning ---
	at.do("open the passphrase dialog", 10*time.Second, chromedp.Click(css("#set-passphrase")), chromedp.WaitVisible(css("#new-passphrase")))
	at.do("set a passphrase", 30*time.Second,
		chromedp.SendKeys(css("#new-passphrase"), "alice's long passphrase"), chromedp.SendKeys(css("#new-passphrase-repeat"), "alice's long passphrase"),
		chromedp.Click(css("#set-passphrase-save")))
	at.waitJS("the warning to go", 30*time.Second, `!document.querySelector('#unprotected-warning') && !document.querySelector('dialog[open]')`)
	if err := alice.get("/api/v1/account", &st); err != nil || st.Unprotected {
		t.Errorf("after alice set a passphrase: %+v, %v; want protected", st, err)
	}

	// --- bob's daemon restarts without his passphrase: the tab unlocks it ---
	oldURL, oldToken := bob.url, bob.token
	bob.restart(t)
	if bob.url != oldURL || bob.token != oldToken {
		t.Errorf("bob's restarted daemon is on %s (same token: %v), want %s with the same token", bob.url, bob.token == oldToken, oldURL)
	}
	if err := bob.get("/api/v1/account", &st); err != nil || !st.Locked {
		t.Fatalf("bob's restarted daemon: %+v, %v; want locked", st, err)
	}
	// The restarted daemon has the same address and token (HOME/ui.json):
	// reloading the tab, which kept the token, is enough.
	bt.do("reload bob's tab", 20*time.Second, chromedp.Reload(), chromedp.WaitVisible(css("#unlock-passphrase")))
	bt.shot("25-unlock-phone")
	bt.do("a wrong passphrase", 30*time.Second,
		chromedp.SendKeys(css("#unlock-passphrase"), "not bob's passphrase"), chromedp.Click(css("#unlock-submit")))
	bt.waitJS("the wrong-passphrase error", 30*time.Second, `document.querySelector('#unlock-error').textContent.includes('Wrong passphrase')`)
	bt.do("unlock", 60*time.Second,
		clearField("#unlock-passphrase"), chromedp.SendKeys(css("#unlock-passphrase"), bobPassphrase), chromedp.Click(css("#unlock-submit")),
		chromedp.WaitVisible(css(`#conv-list button[data-peer="`+aliceID+`"]`)))
	if eval[bool](bt, "look for the warning", `!!document.querySelector('#unprotected-warning')`) {
		t.Error("bob's unlocked account shows the unprotected warning")
	}

	b.checkFaults()
	t.Logf("browser test took %.1fs", time.Since(start).Seconds())
}

// bobPassphrase protects bob's account in the browser test.
const bobPassphrase = "correct horse battery staple"

// mistype changes one character of an ID so that its checksum fails.
func mistype(id string) string {
	i := len(id) / 2
	c := byte('a')
	if id[i] == 'a' {
		c = 'b'
	}
	return id[:i] + string(c) + id[i+1:]
}

// css is a CSS selector (a plain string would be a DOM search, which also
// matches text).
type css = chromedp.CSS

// clearField empties an input or textarea (SetValue refuses "").
func clearField(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool]("(document.querySelector("+jsString(sel)+").value = '', true)")(ctx, t)
		return err
	})
}

// pressEnter presses Enter in the focused element the way a keyboard does:
// one keyDown carrying the text, so that a handler's preventDefault stops
// the line break (kb.Enter sends a separate char event that inserts it
// anyway).
func pressEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter",
			WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Text: "\r", UnmodifiedText: "\r"}
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, down); err != nil {
			return err
		}
		up := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Key: "Enter", Code: "Enter",
			WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, up)
		return err
	})
}

// darkMode makes the page prefer a dark colour scheme.
func darkMode() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	})
}
