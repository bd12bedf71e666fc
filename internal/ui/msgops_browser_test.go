package ui_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/umbra-im/umbra/internal/client"
)

// TestBrowserMessageActions drives the conversation actions in the web UI
// of two daemons: bob replies to alice's message (the quote shows on her
// side), reacts to it from the picker (she sees the reaction), alice edits
// it (he sees the new text marked edited), bob sees "typing…" while alice
// types, and it goes when she stops; alice deletes her message for
// everyone, and both sides show "This message was deleted". The accounts,
// contacts and the first message are made through the API.
func TestBrowserMessageActions(t *testing.T) {
	chromiumPath(t)
	start := time.Now()
	bin := buildUmbra(t)
	net := startNetwork(t, bin, 6)
	alice := startDaemon(t, bin, "alice", net.BootstrapFile())
	bob := startDaemon(t, bin, "bob", net.BootstrapFile())
	ids := newAccounts(t, alice, bob)
	aliceID, bobID := ids[0], ids[1]
	if err := alice.post("/api/v1/contacts", map[string]string{"id": bobID, "name": "Bob"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := bob.post("/api/v1/contacts", map[string]string{"id": aliceID, "name": "Alice"}, nil); err != nil {
		t.Fatal(err)
	}
	var first client.Message
	// The API answers "queued" at once (a first message once it has bob's
	// card); an edit needs the message sent, so wait for the outbox.
	for deadline := time.Now().Add(60 * time.Second); ; {
		err := alice.post("/api/v1/messages", map[string]string{"to": bobID, "text": "dinner at 7?\nor later"}, &first)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's first message: %v", err)
		}
		time.Sleep(time.Second)
	}
	for deadline := time.Now().Add(60 * time.Second); first.State == client.StateQueued; {
		var ms []client.Message
		if err := alice.get("/api/v1/messages?with="+bobID, &ms); err == nil {
			for _, m := range ms {
				if m.ID == first.ID {
					first = m
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's first message still %s", first.State)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("network, accounts and a first message in %.1fs", time.Since(start).Seconds())

	b := newBrowser(t)
	at := b.openTab("alice", true, 1280, 800, 1)
	bt := b.openTab("bob", false, 1024, 760, 1)
	at.do("open alice's chat", 30*time.Second, chromedp.Navigate(alice.uiURL()),
		chromedp.Click(css(`#conv-list button[data-peer="`+bobID+`"]`)), chromedp.WaitVisible(css("#composer")))
	bt.do("open bob's chat", 30*time.Second, chromedp.Navigate(bob.uiURL()),
		chromedp.Click(css(`#conv-list button[data-peer="`+aliceID+`"]`)), chromedp.WaitVisible(css("#composer")))
	msg := `.msg[data-id="` + first.ID + `"]`
	bt.waitJS("alice's message at bob", 60*time.Second, `document.querySelector('`+msg+`')`)

	// Reply.
	bt.clickJS("reply", 10*time.Second, msg+" .act-reply")
	bt.do("reply", 10*time.Second, chromedp.WaitVisible(css(`#compose-banner[data-mode="reply"]`)),
		chromedp.SendKeys(css("#composer"), "8 is better"), pressEnter())
	bt.waitJS("the banner to go", 10*time.Second, `document.querySelector('#compose-banner').hidden`)
	at.waitJS("the reply with its quote at alice", 60*time.Second, `[...document.querySelectorAll('.msg.in')].some(m =>
		m.querySelector('.text').textContent === '8 is better' && m.querySelector('.quote')?.dataset.quote === `+jsString(first.ID)+` &&
		m.querySelector('.quote-who').textContent === 'You' && m.querySelector('.quote-text').textContent === 'dinner at 7?')`)
	at.shot("msgops-01-reply-desktop")

	// React from the picker.
	bt.react("react", 10*time.Second, msg, "👍")
	bt.waitJS("bob's own reaction", 20*time.Second, `document.querySelector('`+msg+` .reaction.mine[data-emoji="👍"]')`)
	at.waitJS("bob's reaction at alice", 60*time.Second, `document.querySelector('`+msg+` .reaction[data-emoji="👍"]')`)
	at.react("react too", 10*time.Second, msg, "👍")
	bt.waitJS("two reactions counted at bob", 60*time.Second, `document.querySelector('`+msg+` .reaction[data-emoji="👍"]')?.dataset.count === '2'`)

	// Edit.
	at.clickJS("edit", 10*time.Second, msg+" .act-edit")
	at.do("edit", 10*time.Second, chromedp.WaitVisible(css(`#compose-banner[data-mode="edit"]`)),
		clearField("#composer"), chromedp.SendKeys(css("#composer"), "dinner at 8?"), pressEnter())
	at.waitJS("the edit at alice", 20*time.Second, `document.querySelector('`+msg+` .text').textContent === 'dinner at 8?' && document.querySelector('`+msg+` .edited')`)
	bt.waitJS("the edit at bob", 60*time.Second, `document.querySelector('`+msg+` .text').textContent === 'dinner at 8?' && document.querySelector('`+msg+` .edited')`)
	bt.waitJS("the quote follows the edit", 10*time.Second, `[...document.querySelectorAll('.quote-text')].some(e => e.textContent === 'dinner at 8?')`)
	bt.shot("msgops-02-reaction-edit-desktop")

	// Typing.
	at.do("type", 10*time.Second, chromedp.SendKeys(css("#composer"), "let me che"))
	bt.waitJS("typing at bob", 30*time.Second, `(() => { const e = document.querySelector('#typing-indicator'); return e && !e.hidden && e.offsetParent; })()`)
	bt.shot("msgops-03-typing-desktop")
	at.do("stop typing", 10*time.Second, clearField("#composer"), chromedp.SendKeys(css("#composer"), " "))
	bt.waitJS("typing to go at bob", 30*time.Second, `document.querySelector('#typing-indicator').hidden`)

	// Delete for everyone.
	at.clickJS("delete", 10*time.Second, msg+" .act-delete")
	at.do("delete", 10*time.Second, chromedp.Click(css("#delete-for-everyone")))
	for _, tb := range []*tab{at, bt} {
		tb.waitJS("the deleted mark", 60*time.Second, `document.querySelector('`+msg+` .text.deleted')?.textContent === 'This message was deleted' &&
			!document.querySelector('`+msg+` .reaction') && !document.querySelector('`+msg+` .edited') &&
			![...document.querySelectorAll('.msg .text')].some(e => e.textContent.includes('dinner'))`)
	}
	bt.shot("msgops-04-deleted-desktop")
	var ms []client.Message
	if err := bob.get("/api/v1/messages?with="+aliceID, &ms); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID == first.ID && (m.Text != "" || !m.Deleted) {
			t.Errorf("bob's daemon still holds the deleted message: %+v", m)
		}
	}
	b.checkFaults()
	t.Logf("browser test took %.1fs", time.Since(start).Seconds())
}
