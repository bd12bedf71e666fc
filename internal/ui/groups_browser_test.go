package ui_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/umbra-im/umbra/internal/client"
)

// TestBrowserGroups drives groups in the web UI of three daemons. Alice
// creates a group with bob and carol from the "New group" form; bob, who
// has alice as a contact, is in it at once; carol, who does not, gets an
// invitation in her list and accepts it. Alice writes: both see her
// message with her name over it, and alice's tab counts it read by 2; bob
// replies with a quote and carol reacts. Alice makes bob an admin from the
// member panel (a system line says so in every tab), bob renames the group
// (every tab shows the new name and a system line), alice removes carol
// (carol's tab says she was removed and no longer has a composer; alice's
// next message reaches bob, not carol), and bob leaves. The accounts and
// contacts are made through the API.
func TestBrowserGroups(t *testing.T) {
	chromiumPath(t)
	start := time.Now()
	bin := buildUmbra(t)
	net := startNetwork(t, bin, 6)
	alice := startDaemon(t, bin, "alice", net.BootstrapFile())
	bob := startDaemon(t, bin, "bob", net.BootstrapFile())
	carol := startDaemon(t, bin, "carol", net.BootstrapFile())
	ids := newAccounts(t, alice, bob, carol)
	aliceID, bobID, carolID := ids[0], ids[1], ids[2]
	addContact := func(p *daemonProc, id, name string) {
		p.do(t, http.MethodPost, "/api/v1/contacts", map[string]string{"id": id, "name": name}, nil)
	}
	addContact(alice, bobID, "Bob")
	addContact(alice, carolID, "Carol")
	addContact(bob, aliceID, "Alice")
	addContact(bob, carolID, "Carol")
	// carol has no contacts: alice's group reaches her as an invitation.
	t.Logf("network and accounts in %.1fs", time.Since(start).Seconds())

	b := newBrowser(t)
	at := b.openTab("alice", true, 1280, 800, 1)
	bt := b.openTab("bob", false, 1024, 760, 1)
	ct := b.openTab("carol", false, 1024, 760, 1)
	at.do("open alice's app", 30*time.Second, chromedp.Navigate(alice.uiURL()),
		chromedp.WaitVisible(css(`#conv-list button[data-peer="`+carolID+`"]`)))
	bt.do("open bob's app", 30*time.Second, chromedp.Navigate(bob.uiURL()), chromedp.WaitVisible(css("#new-group-btn")))
	ct.do("open carol's app", 30*time.Second, chromedp.Navigate(carol.uiURL()), chromedp.WaitVisible(css("#new-group-btn")))

	// Alice creates the group from the form.
	at.do("fill the new group form", 20*time.Second, chromedp.Click(css("#new-group-btn")), chromedp.WaitVisible(css("#new-group-form")),
		chromedp.SendKeys(css("#group-name"), "Hikers"), chromedp.SendKeys(css("#group-desc"), "Saturday trip"),
		chromedp.Click(css(`#new-group-members input[value="`+bobID+`"]`)),
		chromedp.Click(css(`#new-group-members input[value="`+carolID+`"]`)))
	at.shot("groups-01-new-group-desktop")
	at.do("create the group", 30*time.Second, chromedp.Click(css("#create-group")), chromedp.WaitVisible(css(".chat[data-group] #composer")))
	gid := eval[string](at, "the group's ID", `document.querySelector('.chat').dataset.group`)
	if len(gid) != 64 {
		t.Fatalf("the open chat's group ID is %q", gid)
	}
	var groups []client.Group
	alice.do(t, http.MethodGet, "/api/v1/groups", nil, &groups)
	if len(groups) != 1 || groups[0].ID != gid || groups[0].Name != "Hikers" || groups[0].Role != "admin" || len(groups[0].Members) != 3 {
		t.Fatalf("alice's groups after the form: %+v", groups)
	}
	groupBtn := `#group-list button[data-group="` + gid + `"]`
	at.waitJS("the group in alice's list and its first line", 10*time.Second, `document.querySelector('`+groupBtn+`[aria-current="true"]') &&
		[...document.querySelectorAll('.group-line')].some(e => e.textContent === 'You created the group "Hikers"') &&
		document.querySelector('#chat-title').textContent === 'Hikers' && document.querySelector('#group-sub').textContent.includes('3 members')`)

	// Bob is in at once; carol accepts the invitation.
	bt.waitJS("the group in bob's list", 90*time.Second, `document.querySelector('`+groupBtn+`[data-status="member"]')`)
	bt.do("open the group at bob", 10*time.Second, chromedp.Click(css(groupBtn)), chromedp.WaitVisible(css(".chat[data-group] #composer")))
	ct.waitJS("the invitation in carol's list", 90*time.Second, `document.querySelector('#group-list li.group-invite[data-group="`+gid+`"] .group-accept')`)
	ct.shot("groups-02-invitation-desktop")
	ct.do("open the invitation", 10*time.Second, chromedp.Click(css(groupBtn)), chromedp.WaitVisible(css(`#group-banner[data-status="invited"]`)))
	if !eval[bool](ct, "no composer before accepting", `document.querySelector('form.composer').hidden`) {
		t.Error("carol's invited group shows a composer")
	}
	ct.do("accept", 30*time.Second, chromedp.Click(css(`#group-banner .group-accept`)), chromedp.WaitVisible(css(".chat[data-group] #composer")))
	ct.waitJS("carol is a member", 10*time.Second, `document.querySelector('`+groupBtn+`[data-status="member"]') && !document.querySelector('#group-banner')`)

	// Alice writes; both read it, with her name over it; alice sees "read by 2".
	at.do("alice writes", 10*time.Second, chromedp.SendKeys(css("#composer"), "Hello, hikers!"), pressEnter())
	hello := `[...document.querySelectorAll('.msg.in')].find(m => m.querySelector('.text')?.textContent === 'Hello, hikers!')`
	bt.waitJS("alice's message at bob", 90*time.Second, `(() => { const m = `+hello+`; return m && m.querySelector('.msg-sender').textContent === 'Alice'; })()`)
	ct.waitJS("alice's message at carol", 90*time.Second, `(() => { const m = `+hello+`; return m && m.querySelector('.msg-sender').dataset.from === `+jsString(aliceID)+`; })()`)
	helloID := eval[string](bt, "the message's ID", hello+`.dataset.id`)
	at.waitJS("read by 2 at alice", 90*time.Second, `document.querySelector('.msg.out[data-id="`+helloID+`"] .receipt-count')?.textContent === 'read by 2'`)
	at.shot("groups-03-read-by-desktop")

	// Bob replies with a quote; carol reacts.
	bt.clickJS("bob replies", 10*time.Second, `.msg[data-id="`+helloID+`"] .act-reply`)
	bt.do("bob replies", 10*time.Second,
		chromedp.WaitVisible(css(`#compose-banner[data-mode="reply"]`)), chromedp.SendKeys(css("#composer"), "Count me in"), pressEnter())
	reply := `[...document.querySelectorAll('.msg.in')].find(m => m.querySelector('.text')?.textContent === 'Count me in')`
	at.waitJS("bob's reply at alice", 90*time.Second, `(() => { const m = `+reply+`; return m && m.querySelector('.msg-sender').textContent === 'Bob' &&
		m.querySelector('.quote')?.dataset.quote === `+jsString(helloID)+` && m.querySelector('.quote-who').textContent === 'You'; })()`)
	ct.waitJS("bob's reply at carol", 90*time.Second, reply)
	ct.react("carol reacts", 30*time.Second, `.msg[data-id="`+helloID+`"]`, "👍")
	at.waitJS("carol's reaction at alice", 90*time.Second, `document.querySelector('.msg[data-id="`+helloID+`"] .reaction[data-emoji="👍"]')`)
	bt.waitJS("carol's reaction at bob", 90*time.Second, `document.querySelector('.msg[data-id="`+helloID+`"] .reaction[data-emoji="👍"]')`)

	// Alice makes bob an admin from the member panel.
	at.do("open alice's member panel", 10*time.Second, chromedp.Click(css("#group-info-btn")), chromedp.WaitVisible(css("#group-panel #member-list")))
	at.waitJS("roles in the panel", 10*time.Second, `document.querySelector('li.member[data-member="`+aliceID+`"][data-role="admin"] .role-badge') &&
		document.querySelector('li.member[data-member="`+bobID+`"][data-role="member"] .act-promote') && document.querySelector('#group-info-form')`)
	at.do("promote bob", 30*time.Second, chromedp.Click(css(`li.member[data-member="`+bobID+`"] .act-promote`)),
		chromedp.WaitVisible(css(`li.member[data-member="`+bobID+`"][data-role="admin"] .role-badge`)))
	at.shot("groups-04-members-desktop")
	bt.waitJS("the admin line at bob", 90*time.Second, `[...document.querySelectorAll('.group-line')].some(e => e.textContent === 'Alice made you admin')`)
	ct.waitJS("the admin line at carol", 90*time.Second, `[...document.querySelectorAll('.group-line')].some(e => e.textContent.endsWith(' admin') && e.textContent.includes('made'))`)
	// carol is no admin: her panel offers no changes, only Leave.
	ct.do("open carol's member panel", 10*time.Second, chromedp.Click(css("#group-info-btn")), chromedp.WaitVisible(css("#group-panel #member-list")))
	if eval[bool](ct, "carol's panel", `!!document.querySelector('#group-info-form, .act-promote, .act-demote, .act-remove, #group-add-form') || !document.querySelector('#leave-group')`) {
		t.Error("carol, a plain member, is offered admin changes or no Leave")
	}
	ct.do("carol back to the chat", 10*time.Second, chromedp.Click(css("#group-panel .panel-head .icon-btn")), chromedp.WaitVisible(css(".chat[data-group] #composer")))

	// Bob, now an admin, renames the group.
	bt.do("open bob's member panel", 10*time.Second, chromedp.Click(css("#group-info-btn")), chromedp.WaitVisible(css("#group-info-form")))
	bt.do("rename", 30*time.Second, clearField("#group-rename"), chromedp.SendKeys(css("#group-rename"), "Hikers 2026"), chromedp.Click(css("#group-info-save")),
		chromedp.WaitVisible(css(`#group-panel-title`)))
	bt.waitJS("the new name at bob", 30*time.Second, `document.querySelector('#group-panel-title').textContent === 'Hikers 2026'`)
	bt.do("bob back to the chat", 10*time.Second, chromedp.Click(css("#group-panel .panel-head .icon-btn")), chromedp.WaitVisible(css(".chat[data-group] #composer")))
	at.do("alice back to the chat", 10*time.Second, chromedp.Click(css("#group-panel .panel-head .icon-btn")), chromedp.WaitVisible(css(".chat[data-group] #composer")))
	renamed := `[...document.querySelectorAll('.group-line')].some(e => e.textContent.endsWith('changed the group\'s name to "Hikers 2026"')) &&
		document.querySelector('#chat-title').textContent === 'Hikers 2026' &&
		document.querySelector('` + groupBtn + ` .conv-name').textContent === 'Hikers 2026'`
	at.waitJS("the rename at alice", 90*time.Second, renamed)
	ct.waitJS("the rename at carol", 90*time.Second, renamed)
	if !eval[bool](at, "the rename line's author", `[...document.querySelectorAll('.group-line')].some(e => e.textContent === 'Bob changed the group\'s name to "Hikers 2026"')`) {
		t.Error(`alice's tab has no line "Bob changed the group's name"`)
	}

	// Alice removes carol.
	at.do("remove carol", 30*time.Second, chromedp.Click(css("#group-info-btn")),
		chromedp.Click(css(`li.member[data-member="`+carolID+`"] .act-remove`)), chromedp.WaitVisible(css("dialog[open]")),
		chromedp.Click(css(`dialog[open] button[type="submit"]`)))
	at.waitJS("carol out of alice's panel", 30*time.Second, `document.querySelector('#member-list') && !document.querySelector('li.member[data-member="`+carolID+`"]') &&
		document.querySelectorAll('#member-list li.member').length === 2`)
	at.do("alice back to the chat", 10*time.Second, chromedp.Click(css("#group-panel .panel-head .icon-btn")), chromedp.WaitVisible(css(".chat[data-group] #composer")))
	at.waitJS("the removal line at alice", 10*time.Second, `[...document.querySelectorAll('.group-line')].some(e => e.textContent === 'You removed Carol')`)
	bt.waitJS("the removal line at bob", 90*time.Second, `[...document.querySelectorAll('.group-line')].some(e => e.textContent === 'Alice removed Carol')`)
	ct.waitJS("carol's removed banner", 90*time.Second, `document.querySelector('#group-banner[data-status="removed"]') &&
		document.querySelector('form.composer').hidden && document.querySelector('`+groupBtn+`[data-status="removed"]')`)
	ct.shot("groups-05-removed-desktop")

	// What alice sends now reaches bob, not carol.
	at.do("alice writes again", 10*time.Second, chromedp.SendKeys(css("#composer"), "Carol cannot read this"), pressEnter())
	bt.waitJS("the new message at bob", 90*time.Second, `[...document.querySelectorAll('.msg.in .text')].some(e => e.textContent === 'Carol cannot read this')`)
	time.Sleep(2 * time.Second) // what carol could still fetch has had time to arrive
	var cms []client.Message
	carol.do(t, http.MethodGet, "/api/v1/groups/"+gid+"/messages", nil, &cms)
	for _, m := range cms {
		if strings.Contains(m.Text, "cannot read") {
			t.Errorf("carol holds a message sent after her removal: %+v", m)
		}
	}
	if eval[bool](ct, "carol's chat", `[...document.querySelectorAll('.msg .text')].some(e => e.textContent.includes('cannot read'))`) {
		t.Error("carol's tab shows a message sent after her removal")
	}

	// Bob leaves.
	bt.do("bob leaves", 30*time.Second, chromedp.Click(css("#group-info-btn")), chromedp.Click(css("#leave-group")),
		chromedp.WaitVisible(css("dialog[open]")), chromedp.Click(css(`dialog[open] button[type="submit"]`)))
	bt.waitJS("bob's left state", 30*time.Second, `document.querySelector('`+groupBtn+`[data-status="left"]')`)
	at.waitJS("bob's leaving at alice", 90*time.Second, `[...document.querySelectorAll('.group-line')].some(e => e.textContent === 'Bob left') &&
		document.querySelector('#group-sub').textContent.includes('1 member')`)
	at.shot("groups-06-chat-desktop")
	bt.do("phone width", 10*time.Second, chromedp.Click(css("#group-panel .panel-head .icon-btn")), chromedp.WaitVisible(css(`#group-banner[data-status="left"]`)),
		chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2)))
	bt.shot("groups-07-left-phone")
	alice.do(t, http.MethodGet, "/api/v1/groups/"+gid, nil, &groups[0])
	if g := groups[0]; g.Name != "Hikers 2026" || len(g.Members) != 1 || g.Members[0].ID != aliceID {
		t.Errorf("alice's group at the end: %+v", g)
	}
	b.checkFaults()
	t.Logf("browser test took %.1fs", time.Since(start).Seconds())
}
