package api

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/memswarm"
)

// swarmEngine starts an account's engine on an in-memory swarm.
func swarmEngine(t *testing.T, sw *memswarm.Swarm, name string) *client.Engine {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	if _, err := client.Init(home, "", nil, ""); err != nil {
		t.Fatal(err)
	}
	e, err := client.Open(context.Background(), client.Config{Home: home, Network: sw.Client(name), Logger: quiet(),
		Schedule: client.Schedule{
			PollWait:   [2]time.Duration{time.Second, 2 * time.Second},
			PollGap:    [2]time.Duration{10 * time.Millisecond, 50 * time.Millisecond},
			CatchUpGap: [2]time.Duration{10 * time.Millisecond, 50 * time.Millisecond},
		}})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	t.Cleanup(func() { e.Close() })
	return e
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestMessageActionsAPI: replies, reactions, edits, deletes and typing
// through the API, by ID prefix, with their errors (no token, unknown or
// ambiguous-short IDs, someone else's message, a bad emoji).
func TestMessageActionsAPI(t *testing.T) {
	sw := memswarm.New(memswarm.Options{})
	ae, be := swarmEngine(t, sw, "alice"), swarmEngine(t, sw, "bob")
	alice, bob := ae.AccountID(), be.AccountID()
	if _, err := ae.AddContact(bob, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := be.AddContact(alice, ""); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, ae)
	tok := s.Token()
	var hello client.Message
	eventually(t, "a first send", func() bool { // the card may not be published yet
		code, _ := call(t, s, tok, http.MethodPost, "/api/v1/messages", map[string]string{"to": bob, "text": "hello"}, &hello)
		return code == http.StatusOK
	})
	// The API answers "queued" at once; the outbox sends it.
	eventually(t, "the first message sent", func() bool {
		m, _ := ae.FindMessage(bob, hello.ID)
		return m != nil && m.State != client.StateQueued
	})
	var theirs *client.Message
	eventually(t, "bob's reply", func() bool {
		if m, _ := be.FindMessage(alice, hello.ID); m == nil {
			return false
		}
		if theirs == nil {
			var err error
			if theirs, err = be.Reply(context.Background(), alice, hello.ID, "hi", true); err != nil {
				t.Fatal(err)
			}
		}
		m, _ := ae.FindMessage(bob, theirs.ID)
		return m != nil
	})

	var reply client.Message
	if code, body := call(t, s, tok, http.MethodPost, "/api/v1/messages", map[string]string{"to": bob, "text": "re", "reply_to": theirs.ID[:6]}, &reply); code != http.StatusOK || reply.ReplyTo != theirs.ID {
		t.Fatalf("reply: %d %s", code, body)
	}
	path := func(id, op string) string { return "/api/v1/messages/" + id + "/" + op }
	if code, _ := call(t, s, "", http.MethodPost, path(hello.ID, "react"), map[string]string{"with": bob, "emoji": "👍"}, nil); code != http.StatusUnauthorized {
		t.Fatalf("react without the token: %d", code)
	}
	var m client.Message
	if code, body := call(t, s, tok, http.MethodPost, path(theirs.ID[:8], "react"), map[string]string{"with": bob, "emoji": "👍"}, &m); code != http.StatusOK || m.Reactions[alice] != "👍" {
		t.Fatalf("react: %d %s", code, body)
	}
	for _, c := range []struct {
		id, op string
		body   map[string]any
		want   int
	}{
		{theirs.ID, "react", map[string]any{"with": bob, "emoji": "a\nb"}, http.StatusBadRequest},
		{"ffffffffff", "react", map[string]any{"with": bob, "emoji": "👍"}, http.StatusNotFound},
		{theirs.ID[:4], "react", map[string]any{"with": bob, "emoji": "👍"}, http.StatusBadRequest},
		{theirs.ID, "edit", map[string]any{"with": bob, "text": "not mine"}, http.StatusBadRequest},
		{theirs.ID, "delete", map[string]any{"with": bob, "everyone": true}, http.StatusBadRequest},
		{hello.ID, "edit", map[string]any{"with": bob, "text": " "}, http.StatusBadRequest},
	} {
		if code, body := call(t, s, tok, http.MethodPost, path(c.id, c.op), c.body, nil); code != c.want {
			t.Errorf("%s %s %v: %d %s, want %d", c.op, c.id, c.body, code, body, c.want)
		}
	}
	if code, body := call(t, s, tok, http.MethodPost, path(hello.ID, "edit"), map[string]any{"with": bob, "text": "hello!"}, &m); code != http.StatusOK || !m.Edited || m.Text != "hello!" {
		t.Fatalf("edit: %d %s", code, body)
	}
	eventually(t, "bob to see the edit", func() bool {
		m, _ := be.FindMessage(alice, hello.ID)
		return m.Text == "hello!" && m.Edited
	})
	if code, body := call(t, s, tok, http.MethodPost, path(hello.ID, "delete"), map[string]any{"with": bob, "everyone": true}, &m); code != http.StatusOK || !m.Deleted || m.Text != "" {
		t.Fatalf("delete for everyone: %d %s", code, body)
	}
	eventually(t, "bob to see the delete", func() bool {
		m, _ := be.FindMessage(alice, hello.ID)
		return m.Deleted && m.Text == ""
	})
	if code, body := call(t, s, tok, http.MethodPost, path(theirs.ID, "delete"), map[string]any{"with": bob}, nil); code != http.StatusOK {
		t.Fatalf("delete for me: %d %s", code, body)
	}
	var ms []client.Message
	call(t, s, tok, http.MethodGet, "/api/v1/messages?with="+bob, nil, &ms)
	for _, m := range ms {
		if m.ID == theirs.ID {
			t.Fatal("the message deleted for me is still listed")
		}
	}

	// Typing: sent while on, not once read receipts are off.
	ev, stop := be.Subscribe()
	defer stop()
	var sent map[string]bool
	if code, body := call(t, s, tok, http.MethodPost, "/api/v1/typing", map[string]any{"with": bob, "typing": true}, &sent); code != http.StatusOK || !sent["sent"] {
		t.Fatalf("typing: %d %s", code, body)
	}
	eventually(t, "bob to see alice typing", func() bool {
		select {
		case e := <-ev:
			return e.Type == client.EventTyping && e.Peer == alice && e.Typing
		default:
			return false
		}
	})
	var st client.Settings
	if code, body := call(t, s, tok, http.MethodPut, "/api/v1/settings", map[string]bool{"read_receipts": false}, &st); code != http.StatusOK || !st.TypingIndicators {
		t.Fatalf("settings: %d %s", code, body)
	}
	if code, body := call(t, s, tok, http.MethodPost, "/api/v1/typing", map[string]any{"with": bob, "typing": true}, &sent); code != http.StatusOK || sent["sent"] {
		t.Fatalf("typing with read receipts off: %d %s", code, body)
	}
	if code, body := call(t, s, tok, http.MethodPut, "/api/v1/settings", map[string]bool{"typing_indicators": false}, &st); code != http.StatusOK || st.TypingIndicators {
		t.Fatalf("typing_indicators off: %d %s", code, body)
	}
	if code, body := call(t, s, tok, http.MethodPut, "/api/v1/settings", map[string]bool{"typing": false}, nil); code != http.StatusBadRequest || !strings.Contains(body, "typing_indicators") {
		t.Fatalf("an unknown setting: %d %s", code, body)
	}
}
