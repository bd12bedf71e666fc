package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
)

// umbraCLI runs the umbra binary with args, failing the test on error.
func umbraCLI(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = hermeticEnv()
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("umbra %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return string(out)
}

// TestBrowserSearch: alice's daemon holds a conversation with bob; typing
// in the sidebar's search box shows the matching messages (contact,
// snippet with the match marked, time) in place of the chat list; a click
// opens the conversation scrolled to that message, marked; clearing the
// box brings the chat list back.
func TestBrowserSearch(t *testing.T) {
	chromiumPath(t)
	bin := buildUmbra(t)
	net := startNetwork(t, bin, 6)
	dir := t.TempDir()
	aliceHome, bobHome := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	umbraCLI(t, bin, "init", "--home", aliceHome, "--network", net.BootstrapFile())
	umbraCLI(t, bin, "init", "--home", bobHome, "--network", net.BootstrapFile())
	umbraCLI(t, bin, "messages", "--home", bobHome) // publishes bob's prekeys
	bobID := strings.TrimSpace(umbraCLI(t, bin, "id", "--home", bobHome))
	umbraCLI(t, bin, "contacts", "add", "--home", aliceHome, bobID, "--name", "Bob")

	alice := &daemonProc{name: "alice", home: aliceHome, bin: bin, net: net.BootstrapFile(), logPath: filepath.Join(dir, "alice-daemon.log")}
	alice.start(t)
	t.Cleanup(func() { alice.stop(t) })
	c := api.NewClient(alice.url, alice.token)
	send := func(text string) client.Message {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		var m client.Message
		if err := c.Do(ctx, http.MethodPost, "/api/v1/messages", map[string]string{"to": bobID, "text": text}, &m); err != nil {
			t.Fatalf("send %q: %v", text, err)
		}
		return m
	}
	target := send("Don't forget the blue umbrella, rain on Friday")
	for i := range 30 { // the target scrolls out of view
		send(fmt.Sprintf("filler message number %d about nothing much", i))
	}

	b := newBrowser(t)
	at := b.openTab("alice", true, 1280, 800, 1)
	at.do("open alice's UI", 20*time.Second, chromedp.Navigate(alice.uiURL()),
		chromedp.WaitVisible(css(`#conv-list button[data-peer="`+bobID+`"]`)))
	at.do("type in the search box", 10*time.Second, chromedp.SendKeys(css("#search"), "UMBR"))
	at.waitJS("the search result", 10*time.Second, `(() => {
		const r = document.querySelectorAll('#search-results .search-result');
		return r.length === 1 && r[0].dataset.id === `+jsString(target.ID)+`;
	})()`)
	got := eval[[]string](at, "read the result", `(() => {
		const r = document.querySelector('#search-results .search-result');
		return [r.querySelector('.conv-name').textContent, [...r.querySelectorAll('mark')].map(m => m.textContent).join(','),
			r.querySelector('.search-snippet').textContent, r.querySelector('time').textContent,
			String(document.querySelector('#conv-list').offsetParent === null)];
	})()`)
	if got[0] != "Bob" || got[1] != "umbrella" || !strings.Contains(got[2], "Don't forget the blue umbrella") || got[3] == "" || got[4] != "true" {
		t.Errorf("the result shows name %q, marked %q, snippet %q, time %q, chat list hidden %s", got[0], got[1], got[2], got[3], got[4])
	}
	at.shot("search-01-results")
	// Two words, both prefixes: still the one message; a word of the
	// fillers alone: many.
	at.do("refine the query", 10*time.Second, clearField("#search"), chromedp.SendKeys(css("#search"), "rain fri"))
	at.waitJS("the refined result", 10*time.Second, `(() => {
		const r = document.querySelectorAll('#search-results .search-result');
		return r.length === 1 && [...r[0].querySelectorAll('mark')].map(m => m.textContent).join(',') === 'rain,Friday';
	})()`)
	at.do("open the result", 10*time.Second, chromedp.Click(css("#search-results .search-result")),
		chromedp.WaitVisible(css(`section.chat[data-peer="`+bobID+`"]`)))
	at.waitJS("the message shown and marked", 15*time.Second, `(() => {
		const m = document.querySelector('.msg.found[data-id=`+jsString(target.ID)+`]');
		if (!m) return false;
		const box = document.querySelector('#messages').getBoundingClientRect(), r = m.getBoundingClientRect();
		return r.top >= box.top && r.bottom <= box.bottom && document.querySelector('#messages').scrollTop + box.height < document.querySelector('#messages').scrollHeight - 50;
	})()`)
	at.shot("search-02-opened")
	// Clearing the search (Escape) brings back the chat list.
	at.do("clear the search", 10*time.Second, chromedp.Click(css("#search")), chromedp.SendKeys(css("#search"), kb.Escape))
	at.waitJS("the chat list back", 10*time.Second, `document.querySelector('#conv-list').offsetParent !== null && document.querySelector('#search').value === ''`)
	// A message sent now is found at once (the index follows events).
	fresh := send("umbrellas are on sale")
	at.do("search again", 10*time.Second, chromedp.SendKeys(css("#search"), "umbrella"))
	at.waitJS("both results, newest first", 10*time.Second, `(() => {
		const r = [...document.querySelectorAll('#search-results .search-result')].map(e => e.dataset.id);
		return r.join(',') === `+jsString(fresh.ID+","+target.ID)+`;
	})()`)
	b.checkFaults()
}
