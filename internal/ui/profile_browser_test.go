package ui_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
)

// do calls the daemon's API with its token.
// TestBrowserProfileTimer: two daemons with accounts made through the API;
// the tab titles name the account (a short ID, then the name set); alice
// sets her name and uploads an avatar in her Settings, bob sets his name
// by the API; after a message each way, each tab shows the other's
// profile name in the chat list and the chat header, and bob's shows
// alice's picture; alice picks a timer from the chat header, both chats
// show the change; with a 10 s timer (set by the API: the UI offers 5 min
// and more) a message carries the timer mark and then vanishes from both
// tabs.
func TestBrowserProfileTimer(t *testing.T) {
	chromiumPath(t)
	bin := buildUmbra(t)
	net := startNetwork(t, bin, 6)
	alice := startDaemon(t, bin, "alice", net.BootstrapFile())
	bob := startDaemon(t, bin, "bob", net.BootstrapFile())
	ids := newAccounts(t, alice, bob)
	aliceID, bobID := ids[0], ids[1]
	alice.do(t, http.MethodPost, "/api/v1/contacts", map[string]string{"id": bobID}, nil)
	bob.do(t, http.MethodPost, "/api/v1/contacts", map[string]string{"id": aliceID}, nil)

	b := newBrowser(t)
	at := b.openTab("alice", true, 1280, 800, 1)
	bt := b.openTab("bob", false, 1280, 800, 1)
	at.do("open alice's UI", 20*time.Second, chromedp.Navigate(alice.uiURL()), chromedp.WaitVisible(css("#conv-list")))
	bt.do("open bob's UI", 20*time.Second, chromedp.Navigate(bob.uiURL()), chromedp.WaitVisible(css("#conv-list")))
	at.waitJS("a tab title with alice's short ID", 10*time.Second, `document.title === `+jsString(aliceID[:10]+"…"+aliceID[len(aliceID)-4:]+" · Umbra"))

	// alice sets her name and picture in her Settings.
	var img bytes.Buffer
	pic := image.NewRGBA(image.Rect(0, 0, 400, 300))
	for y := range 300 {
		for x := range 400 {
			pic.Set(x, y, color.RGBA{uint8(x), 80, uint8(y), 255})
		}
	}
	png.Encode(&img, pic)
	file := filepath.Join(t.TempDir(), "alice.png")
	if err := os.WriteFile(file, img.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	at.do("open the settings from the profile button", 10*time.Second, chromedp.Click(css("#me-btn")), chromedp.WaitVisible(css("#settings-panel #profile-name")))
	at.do("fill in the profile", 10*time.Second,
		chromedp.SendKeys(css("#profile-name"), "Alice Liddell"),
		chromedp.SetUploadFiles(css("#profile-avatar"), []string{file}),
		chromedp.Click(css("#profile-save")))
	at.waitJS("alice's picture in her panel", 20*time.Second, `!!document.querySelector('#profile-card img.avatar[src^="data:image/png"]')`)
	at.waitJS("alice's tab title", 10*time.Second, `document.title === 'Alice Liddell · Umbra'`)
	at.shot("p01-profile-panel")
	var prof api.ProfileJSON
	alice.get("/api/v1/profile", &prof)
	if prof.Name != "Alice Liddell" || !strings.HasPrefix(prof.Avatar, "data:image/png") {
		t.Fatalf("alice's profile after the panel: %+v", prof.Name)
	}
	bob.do(t, http.MethodPut, "/api/v1/profile", map[string]string{"name": "Bob"}, nil)
	bt.waitJS("bob's tab title", 10*time.Second, `document.title === 'Bob · Umbra'`)

	// A message each way carries each profile.
	alice.do(t, http.MethodPost, "/api/v1/messages", map[string]string{"to": bobID, "text": "hi from alice"}, nil)
	bob.do(t, http.MethodPost, "/api/v1/messages", map[string]string{"to": aliceID, "text": "hi from bob"}, nil)
	bt.waitJS("alice's name and picture in bob's list", 60*time.Second, `(() => {
		const b = document.querySelector('#conv-list .conv[data-peer=`+jsString(aliceID)+`]');
		return b && b.querySelector('.conv-name').textContent === 'Alice Liddell' && !!b.querySelector('img.avatar[src^="data:image/"]');
	})()`)
	at.waitJS("bob's name in alice's list", 60*time.Second, `(() => {
		const b = document.querySelector('#conv-list .conv[data-peer=`+jsString(bobID)+`]');
		return b && b.querySelector('.conv-name').textContent === 'Bob' && !b.querySelector('img.avatar');
	})()`)
	bt.do("open the chat with alice", 10*time.Second, chromedp.Click(css(`#conv-list .conv[data-peer="`+aliceID+`"]`)), chromedp.WaitVisible(css("#chat-title")))
	bt.waitJS("alice in bob's chat header", 10*time.Second, `document.querySelector('#chat-title').textContent === 'Alice Liddell' && !!document.querySelector('.chat-head img.avatar')`)
	bt.shot("p02-bob-sees-alice")
	at.do("open the chat with bob", 10*time.Second, chromedp.Click(css(`#conv-list .conv[data-peer="`+bobID+`"]`)), chromedp.WaitVisible(css("#timer-btn")))

	// alice picks 5 minutes from the chat header.
	at.do("open the timer choice", 10*time.Second, chromedp.Click(css("#timer-btn")), chromedp.WaitVisible(css(`input[name=timer][value="300"]`)))
	at.shot("p03-timer-dialog")
	at.do("pick 5 minutes", 10*time.Second, chromedp.Click(css(`input[name=timer][value="300"]`)), chromedp.Click(css(`dialog button[type=submit]`)))
	at.waitJS("alice's timer line", 20*time.Second, `[...document.querySelectorAll('.sys-line')].some(e => e.textContent === 'You set disappearing messages to 5 minutes')`)
	bt.waitJS("bob's timer line", 60*time.Second, `[...document.querySelectorAll('.sys-line')].some(e => e.textContent === 'Alice Liddell set disappearing messages to 5 minutes')`)

	// 10 s, through the API; then a message vanishes on both sides.
	alice.do(t, http.MethodPut, "/api/v1/conversations/"+bobID+"/timer", map[string]int{"seconds": 10}, nil)
	bt.waitJS("bob's 10 s line", 60*time.Second, `[...document.querySelectorAll('.sys-line')].some(e => e.textContent === 'Alice Liddell set disappearing messages to 10 seconds')`)
	at.do("write a disappearing message", 10*time.Second, chromedp.SendKeys(css("#composer"), "this will vanish"), chromedp.Click(css(".send-btn")))
	const vanishing = `[...document.querySelectorAll('.msg')].find(e => e.querySelector('.text').textContent === 'this will vanish')`
	at.waitJS("the message with its timer mark at alice", 10*time.Second, `(() => { const m = `+vanishing+`; return m && !!m.querySelector('.timer-mark'); })()`)
	bt.waitJS("the message at bob", 60*time.Second, `(() => { const m = `+vanishing+`; return m && !!m.querySelector('.timer-mark'); })()`)
	bt.shot("p04-disappearing")
	at.waitJS("the message to vanish at alice", 30*time.Second, `!(`+vanishing+`)`)
	bt.waitJS("the message to vanish at bob", 30*time.Second, `!(`+vanishing+`)`)
	var ms []client.Message
	bob.get("/api/v1/messages?with="+aliceID, &ms)
	for _, m := range ms {
		if m.Text == "this will vanish" {
			t.Fatal("bob's daemon still lists the message")
		}
	}
	if !eval[bool](bt, "look for the earlier message", `[...document.querySelectorAll('.msg .text')].some(e => e.textContent === 'hi from alice')`) {
		t.Error("a message sent without a timer vanished too")
	}
}
