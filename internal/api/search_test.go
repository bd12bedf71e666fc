package api

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/memswarm"
)

// memEngine opens and starts an engine for a new account on swarm.
func memEngine(t *testing.T, swarm *memswarm.Swarm, name string) *client.Engine {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	if _, err := client.Init(home, "", nil, ""); err != nil {
		t.Fatal(err)
	}
	e, err := client.Open(context.Background(), client.Config{Home: home, Network: swarm.Client(name), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	t.Cleanup(func() { e.Close() })
	return e
}

// TestSearchAPI: GET /api/v1/search finds messages by word prefixes in any
// case, newest first, with a marked snippet and the contact's name; peer
// and limit narrow it; bad parameters are 400s. POST /api/v1/messages
// answers "queued" without waiting for the network.
func TestSearchAPI(t *testing.T) {
	swarm := memswarm.New(memswarm.Options{})
	alice, bob := memEngine(t, swarm, "alice"), memEngine(t, swarm, "bob")
	s := newServer(t, alice)
	tok := s.Token()
	if _, err := alice.AddContact(bob.AccountID(), "Bob"); err != nil {
		t.Fatal(err)
	}
	post := func(text string) client.Message {
		t.Helper()
		var m client.Message
		var code int
		var body string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			// The first send waits for bob's prekeys to be published.
			if code, body = call(t, s, tok, http.MethodPost, "/api/v1/messages", map[string]string{"to": bob.AccountID(), "text": text}, &m); code == http.StatusOK {
				break
			}
		}
		if code != http.StatusOK || m.State != client.StateQueued {
			t.Fatalf("send %q: %d %s, state %q; want 200 and queued", text, code, body, m.State)
		}
		return m
	}
	first := post("Meet me at the Café Über on Friday")
	second := post("friday is a holiday, café closed")
	post("something else entirely")

	search := func(q url.Values) (int, string, []client.SearchResult) {
		var rs []client.SearchResult
		code, body := call(t, s, tok, http.MethodGet, "/api/v1/search?"+q.Encode(), nil, &rs)
		return code, body, rs
	}
	code, body, rs := search(url.Values{"q": {"FRI CAF"}})
	if code != http.StatusOK || len(rs) != 2 || rs[0].Message.ID != second.ID || rs[1].Message.ID != first.ID {
		t.Fatalf("search FRI CAF: %d %s", code, body)
	}
	if rs[1].Name != "Bob" || rs[1].Peer != bob.AccountID() {
		t.Errorf("result contact: %+v", rs[1])
	}
	var marked []string
	for _, sg := range rs[1].Snippet {
		if sg.Match {
			marked = append(marked, sg.Text)
		}
	}
	if strings.Join(marked, ",") != "Café,Friday" {
		t.Errorf("marked %q, want Café and Friday", marked)
	}
	if _, _, rs := search(url.Values{"q": {"über"}}); len(rs) != 1 || rs[0].Message.ID != first.ID {
		t.Errorf("search über: %+v", rs)
	}
	if _, _, rs := search(url.Values{"q": {"friday"}, "limit": {"1"}}); len(rs) != 1 || rs[0].Message.ID != second.ID {
		t.Errorf("limit 1: %+v", rs)
	}
	if _, _, rs := search(url.Values{"q": {"friday"}, "peer": {alice.AccountID()}}); len(rs) != 0 {
		t.Errorf("another peer: %+v", rs)
	}
	if code, _, rs := search(url.Values{"q": {"nothing"}}); code != http.StatusOK || rs == nil || len(rs) != 0 {
		t.Errorf("no match: %d %v, want 200 and []", code, rs)
	}
	for _, q := range []url.Values{
		{"q": {"  "}},
		{"q": {"x"}, "limit": {"0"}},
		{"q": {"x"}, "limit": {"100000"}},
		{"q": {"x"}, "peer": {"nobody"}},
		{"q": {strings.Repeat("a", 2000)}},
	} {
		if code, _, _ := search(q); code != http.StatusBadRequest {
			t.Errorf("search %v: %d, want 400", q, code)
		}
	}
}
