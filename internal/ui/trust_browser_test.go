package ui_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

// call sends one API request to p's daemon.
// stubNotifications replaces window.Notification with a recorder
// (window.__notes) whose permission starts at "default", and lets the test
// say whether the page is hidden (window.__hidden).
const stubNotifications = `(() => {
	window.__notes = [];
	window.__hidden = false;
	class N {
		constructor(title, opts) { window.__notes.push({ title, body: opts && opts.body }); }
		close() {}
		static requestPermission() { N.permission = 'granted'; window.__asked = (window.__asked || 0) + 1; return Promise.resolve('granted'); }
	}
	N.permission = 'default';
	window.Notification = N;
	Object.defineProperty(document, 'hidden', { configurable: true, get: () => window.__hidden });
	return true;
})()`

// menuAction picks an action of the chat header menu. It clicks in
// JavaScript: the header is redrawn on every event, so a node found by one
// protocol call may be gone by the next.
func menuAction(tb *tab, action string) {
	tb.b.t.Helper()
	tb.waitJS("the menu item "+action, 10*time.Second, `(() => {
		document.querySelector('#chat-menu-btn').click();
		const it = document.querySelector('#chat-menu [data-action="`+action+`"]');
		if (!it) { document.querySelector('#chat-menu-btn').click(); return false; }
		it.click();
		return true;
	})()`)
}

// TestBrowserTrust drives two daemons' web UIs: the safety number matches
// on both sides and marking it verified shows a badge; notifications are
// turned on from Settings (never asked on load) and shown for a message
// while another chat is open or the tab is hidden, not for a muted chat;
// the unread badge and the tab title count appear and clear when the chat
// is open; block then unblock from the chat header menu; delete the chat
// (the contact stays).
func TestBrowserTrust(t *testing.T) {
	chromiumPath(t)
	bin := buildUmbra(t)
	net := startNetwork(t, bin, 6)
	alice := startDaemon(t, bin, "alice", net.BootstrapFile())
	bob := startDaemon(t, bin, "bob", net.BootstrapFile())
	ids := newAccounts(t, alice, bob)
	aliceID, bobID := ids[0], ids[1]
	if err := alice.call(http.MethodPost, "/api/v1/contacts", map[string]string{"id": bobID, "name": "Bob"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := bob.call(http.MethodPost, "/api/v1/contacts", map[string]string{"id": aliceID, "name": "Alice"}, nil); err != nil {
		t.Fatal(err)
	}
	bobSays := func(text string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			var m client.Message
			err := bob.call(http.MethodPost, "/api/v1/messages", map[string]string{"to": aliceID, "text": text}, &m)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("bob could not send %q: %v", text, err)
			}
			time.Sleep(time.Second)
		}
	}

	b := newBrowser(t)
	at := b.openTab("alice", true, 1280, 800, 1)
	bt := b.openTab("bob", false, 1280, 800, 1)
	at.do("open alice's UI", 20*time.Second, chromedp.Navigate(alice.uiURL()), chromedp.WaitVisible(css(`#conv-list button[data-peer="`+bobID+`"]`)))
	bt.do("open bob's UI", 20*time.Second, chromedp.Navigate(bob.uiURL()), chromedp.WaitVisible(css(`#conv-list button[data-peer="`+aliceID+`"]`)))
	eval[bool](at, "stub notifications", stubNotifications)

	// --- safety numbers: the same on both sides ---
	numbers := map[string]string{}
	for _, v := range []struct {
		tb   *tab
		peer string
	}{{at, bobID}, {bt, aliceID}} {
		v.tb.do("open the chat", 10*time.Second, chromedp.Click(css(`#conv-list button[data-peer="`+v.peer+`"]`)), chromedp.WaitVisible(css("#chat-menu-btn")))
		v.tb.do("open the verify screen", 10*time.Second, chromedp.Click(css("#chat-menu-btn")), chromedp.Click(css(`#chat-menu [data-action="verify"]`)),
			chromedp.WaitVisible(css("#safety-number")))
		v.tb.waitJS("the QR code", 5*time.Second, `document.querySelector('#safety-qr svg path')`)
		numbers[v.tb.name] = eval[string](v.tb, "read the number", `document.querySelector('#safety-number').dataset.number`)
		shown := eval[string](v.tb, "read the groups", `[...document.querySelectorAll('#safety-number .sn-row span')].map(e => e.textContent).join('')`)
		if shown != numbers[v.tb.name] {
			t.Errorf("%s's screen shows %q, its number is %q", v.tb.name, shown, numbers[v.tb.name])
		}
	}
	a, _ := identity.ParseAccountID(aliceID)
	bb, _ := identity.ParseAccountID(bobID)
	if want := client.SafetyNumberOf(a, bb); numbers["alice"] != want || numbers["bob"] != want {
		t.Fatalf("safety numbers: alice sees %q, bob %q; want %q on both", numbers["alice"], numbers["bob"], want)
	}
	at.do("mark bob verified", 10*time.Second, chromedp.Click(css("#verified-toggle")))
	at.waitJS("the verified state", 10*time.Second, `document.querySelector('#verify-state .verified-badge')`)
	at.shot("trust-01-safety-number")
	at.do("back to the chat", 10*time.Second, chromedp.Click(css(`#verify-panel .panel-head button`)), chromedp.WaitVisible(css("#chat-menu-btn")))
	at.waitJS("the verified badge in the header and the list", 10*time.Second,
		`document.querySelector('.chat-title .verified-badge') && document.querySelector('#conv-list button[data-peer="`+bobID+`"] .verified-badge')`)
	var convs []client.Conversation
	if err := alice.get("/api/v1/conversations", &convs); err != nil || len(convs) != 1 || !convs[0].Verified {
		t.Fatalf("alice's conversations %+v, %v: want bob verified", convs, err)
	}

	// --- notifications: asked from Settings only ---
	if n := eval[int](at, "count permission requests", `window.__asked || 0`); n != 0 {
		t.Fatalf("the page asked for the notification permission %d times on its own", n)
	}
	at.do("open the settings", 10*time.Second, chromedp.Click(css(`button[aria-label="Settings"]`)), chromedp.WaitVisible(css("#notify-btn")))
	at.do("turn notifications on", 10*time.Second, chromedp.Click(css("#notify-btn")))
	at.waitJS("notifications on", 5*time.Second, `window.__asked === 1 && document.querySelector('#notify-btn').textContent.includes('Turn off')`)
	at.shot("trust-02-notifications-setting")

	// --- unread badge, tab title and a notification while another view is open ---
	bobSays("first from bob")
	at.waitJS("the unread badge and the title", 90*time.Second,
		`document.querySelector('#conv-list button[data-peer="`+bobID+`"] .badge') && document.title.startsWith('(1) ') && document.title.endsWith('Umbra')`)
	at.waitJS("a notification", 5*time.Second, `window.__notes.length === 1 && window.__notes[0].title === 'Bob' && window.__notes[0].body === 'first from bob'`)
	at.shot("trust-03-unread")
	at.do("open the chat", 10*time.Second, chromedp.Click(css(`#conv-list button[data-peer="`+bobID+`"]`)), chromedp.WaitVisible(css("#chat-menu-btn")))
	at.waitJS("the badge and the title count to clear", 15*time.Second,
		`!document.querySelector('#conv-list button[data-peer="`+bobID+`"] .badge') && !document.title.startsWith('(') && document.title.endsWith('Umbra')`)

	// The chat is open and visible: no notification. Hidden: one.
	bobSays("seen at once")
	at.waitJS("the message in the open chat", 60*time.Second, `[...document.querySelectorAll('.msg.in .text')].some(e => e.textContent === 'seen at once')`)
	eval[bool](at, "hide the tab", `(window.__hidden = true, document.dispatchEvent(new Event('visibilitychange')), true)`)
	bobSays("while hidden")
	at.waitJS("a notification while hidden", 60*time.Second, `window.__notes.length === 2 && window.__notes[1].body === 'while hidden'`)
	if n := eval[int](at, "count unread", `(document.querySelector('#conv-list button[data-peer="`+bobID+`"] .badge') || {}).dataset?.unread | 0`); n != 1 {
		t.Errorf("unread badge while hidden: %d, want 1", n)
	}
	eval[bool](at, "show the tab", `(window.__hidden = false, document.dispatchEvent(new Event('visibilitychange')), true)`)
	at.waitJS("the badge to clear when the tab shows", 15*time.Second, `!document.querySelector('#conv-list button[data-peer="`+bobID+`"] .badge')`)

	// --- mute: no notification ---
	confirm := chromedp.Click(css(`dialog[open] button[type="submit"]`))
	menuAction(at, "mute")
	at.do("confirm the mute", 10*time.Second, confirm)
	at.waitJS("the muted mark", 10*time.Second, `document.querySelector('#conv-list button[data-peer="`+bobID+`"] .muted-mark')`)
	eval[bool](at, "hide the tab", `(window.__hidden = true, true)`)
	bobSays("muted message")
	at.waitJS("the muted message", 60*time.Second, `[...document.querySelectorAll('.msg.in .text')].some(e => e.textContent === 'muted message')`)
	time.Sleep(500 * time.Millisecond)
	if n := eval[int](at, "count notifications", `window.__notes.length`); n != 2 {
		t.Errorf("%d notifications after a muted chat's message, want still 2", n)
	}
	eval[bool](at, "show the tab", `(window.__hidden = false, document.dispatchEvent(new Event('visibilitychange')), true)`)
	menuAction(at, "unmute")
	at.do("confirm the unmute", 10*time.Second, confirm)
	at.waitJS("the muted mark to go", 10*time.Second, `!document.querySelector('#conv-list button[data-peer="`+bobID+`"] .muted-mark')`)

	// --- block, then unblock ---
	at.do("open the menu", 10*time.Second, chromedp.Click(css("#chat-menu-btn")), chromedp.WaitVisible(css(`#chat-menu [data-action="block"]`)))
	at.shot("trust-04-menu")
	menuAction(at, "block")
	at.do("the block dialog", 10*time.Second, chromedp.WaitVisible(css(`dialog[open]`)))
	if txt := eval[string](at, "read the dialog", `document.querySelector('dialog[open]').textContent`); !strings.Contains(txt, "dropped") {
		t.Errorf("the block dialog does not say what happens: %q", txt)
	}
	at.do("confirm the block", 10*time.Second, confirm, chromedp.WaitVisible(css("#unblock-btn")))
	at.waitJS("bob in the blocked list, not among chats", 10*time.Second,
		`document.querySelector('#blocked-list button[data-peer="`+bobID+`"]') && !document.querySelector('#conv-list button[data-peer="`+bobID+`"]')`)
	var blocked []client.Contact
	if err := alice.get("/api/v1/blocked", &blocked); err != nil || len(blocked) != 1 || blocked[0].ID != bobID {
		t.Fatalf("alice's blocked list %+v, %v", blocked, err)
	}
	at.shot("trust-05-blocked")
	at.do("unblock bob", 10*time.Second, chromedp.Click(css("#unblock-btn")), confirm)
	at.waitJS("bob back among chats", 10*time.Second,
		`document.querySelector('#conv-list button[data-peer="`+bobID+`"]') && !document.querySelector('#unblock-btn') && document.querySelector('#blocked').hidden`)

	// --- delete the chat: the contact stays ---
	menuAction(at, "delete-chat")
	at.do("the delete dialog", 10*time.Second, chromedp.WaitVisible(css(`dialog[open]`)))
	if txt := eval[string](at, "read the dialog", `document.querySelector('dialog[open]').textContent`); !strings.Contains(txt, "stays in your contacts") {
		t.Errorf("the delete dialog does not say the contact stays: %q", txt)
	}
	at.do("confirm", 10*time.Second, confirm)
	at.waitJS("an empty chat", 10*time.Second, `document.querySelectorAll('#messages .msg').length === 0`)
	var ms []client.Message
	if err := alice.get("/api/v1/messages?with="+bobID, &ms); err != nil || len(ms) != 0 {
		t.Fatalf("alice's messages with bob after deleting the chat: %d, %v", len(ms), err)
	}
	var cs []client.Contact
	if err := alice.get("/api/v1/contacts", &cs); err != nil || len(cs) != 1 || cs[0].ID != bobID || !cs[0].Verified {
		t.Fatalf("alice's contacts after deleting the chat: %+v, %v", cs, err)
	}
	at.shot("trust-06-deleted")
	b.checkFaults()
}
