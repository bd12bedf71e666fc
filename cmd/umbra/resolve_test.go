package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

// groupedID is an account ID as the web UI shows it (dom.js groupID): the
// prefix, then groups of 4 characters, separated by spaces.
func groupedID(id string) string {
	body := strings.TrimPrefix(id, identity.AccountIDPrefix)
	parts := []string{identity.AccountIDPrefix}
	for i := 0; i < len(body); i += 4 {
		parts = append(parts, body[i:min(i+4, len(body))])
	}
	return strings.Join(parts, " ")
}

func newTestID(t *testing.T) string {
	t.Helper()
	a, err := identity.New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID().String()
}

// TestParseAccountText: the canonical ID, the UI's grouped form, the same
// with line breaks, tabs or hyphens, in upper case, all give the canonical
// ID; a grouped ID with a typo, a name and half an ID do not parse.
func TestParseAccountText(t *testing.T) {
	id := newTestID(t)
	g := groupedID(id)
	for _, in := range []string{id, g, "  " + g + "\n", strings.ToUpper(g), strings.ReplaceAll(g, " ", "-"),
		strings.ReplaceAll(g, " ", "\t"), strings.Replace(g, " ", "\n", 5)} {
		got, ok := parseAccountText(in)
		if !ok || got != id {
			t.Errorf("parseAccountText(%q) = %q, %v; want %s", in, got, ok, id)
		}
	}
	typo := []byte(g)
	last := len(typo) - 2
	typo[last] = map[bool]byte{true: 'b', false: 'a'}[typo[last] == 'a']
	for _, in := range []string{string(typo), "bob", id[:30], ""} {
		if got, ok := parseAccountText(in); ok {
			t.Errorf("parseAccountText(%q) = %q, want no ID", in, got)
		}
	}
}

// TestContactsByName: every command that takes an account takes a
// contact's name (any case) or the UI's grouped ID; a name two contacts
// share and an unknown name are refused with the candidates listed; a
// mistyped ID gets the ID's own error; 'requests accept --name' names the
// new contact.
func TestContactsByName(t *testing.T) {
	t.Setenv("UMBRA_PASSPHRASE", "")
	t.Setenv("UMBRA_HOME", "")
	home := filepath.Join(t.TempDir(), "home")
	if _, errOut, err := run(t, "init", "--home", home, "--network", offlineNetwork(t, 1), "--json"); err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	serveOffline(t, home)
	carol, bob1, bob2, dave := newTestID(t), newTestID(t), newTestID(t), newTestID(t)
	must := func(args ...string) string {
		t.Helper()
		out, errOut, err := run(t, append(args, "--home", home)...)
		if err != nil {
			t.Fatalf("umbra %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	names := func() map[string]string {
		t.Helper()
		out := must("contacts", "list", "--json")
		m := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var c client.Contact
			if err := json.Unmarshal([]byte(line), &c); err != nil {
				t.Fatalf("contacts list --json: %q: %v", line, err)
			}
			m[c.ID] = c.Name
		}
		return m
	}

	// The grouped ID as copied from the web UI, and with its spaces left out.
	must("contacts", "add", groupedID(carol), "--name", "Carol")
	must("contacts", "add", strings.ToUpper(strings.ReplaceAll(groupedID(bob1), " ", "")), "--name", "Bob")
	must("contacts", "add", bob2, "--name", "bob")
	if got := names(); len(got) != 3 || got[carol] != "Carol" || got[bob1] != "Bob" || got[bob2] != "bob" {
		t.Fatalf("contacts after adding by grouped and compact IDs: %v", got)
	}

	// By name, in any case.
	must("contacts", "rename", " cAROL ", "Caroline")
	if got := names()[carol]; got != "Caroline" {
		t.Fatalf("rename by name: carol is named %q, want Caroline", got)
	}
	if out := must("messages", "--with", "caroline"); !strings.Contains(out, "No messages.") {
		t.Errorf("messages --with NAME: %q", out)
	}
	if out := must("read", "CAROLINE"); strings.TrimSpace(out) != "0 messages marked read" {
		t.Errorf("read NAME: %q", out)
	}
	// send by name reaches the engine with carol's ID: past the ID check
	// and the contact check, the offline engine cannot fetch her card.
	if _, _, err := run(t, "send", "--home", home, "caroline", "hi"); err == nil || !strings.Contains(err.Error(), "can't queue a first message") {
		t.Errorf("send NAME through an offline daemon: %v, want the engine's offline error", err)
	}
	if _, _, err := run(t, "send", "--home", home, "nobody", "hi"); err == nil || strings.Contains(err.Error(), "can't queue a first message") {
		t.Errorf("send to an unknown name reached the engine: %v", err)
	}

	// A name two contacts share: refused, both listed, for every command.
	for _, args := range [][]string{{"send", "BOB", "hi"}, {"read", "bob"}, {"messages", "--with", "Bob"},
		{"contacts", "remove", "bob"}, {"contacts", "rename", "bob", "x"}, {"requests", "block", "bob"}} {
		_, _, err := run(t, append(args, "--home", home)...)
		if err == nil || !strings.Contains(err.Error(), `2 contacts are named "`) ||
			!strings.Contains(err.Error(), bob1) || !strings.Contains(err.Error(), bob2) {
			t.Errorf("umbra %s with two Bobs: %v, want an error listing both", strings.Join(args, " "), err)
		}
	}
	if got := names(); len(got) != 3 || got[bob1] != "Bob" || got[bob2] != "bob" {
		t.Fatalf("an ambiguous name changed the contacts: %v", got)
	}

	// An unknown name: refused, the names listed.
	_, _, err := run(t, "send", "--home", home, "zed", "hi")
	if err == nil || !strings.Contains(err.Error(), "neither an account ID nor a contact's name") ||
		!strings.Contains(err.Error(), "Caroline") || !strings.Contains(err.Error(), bob2) {
		t.Errorf("send to an unknown name: %v, want an error listing the names", err)
	}
	// A grouped ID with a typo: the ID's own error, not "unknown name".
	typo := []byte(groupedID(dave))
	typo[len(typo)-2] = map[bool]byte{true: 'b', false: 'a'}[typo[len(typo)-2] == 'a']
	_, _, err = run(t, "contacts", "add", "--home", home, string(typo))
	if err == nil || !strings.Contains(err.Error(), identity.ErrInvalidAccountID.Error()) && !strings.Contains(err.Error(), identity.ErrAccountIDChecksum.Error()) {
		t.Errorf("a mistyped grouped ID: %v, want the account ID error", err)
	}

	// requests accept --name names the new contact.
	if out := must("requests", "accept", groupedID(dave), "--name", "Dave"); strings.TrimSpace(out) != "Accepted "+dave+" (Dave)" {
		t.Errorf("requests accept --name: %q", out)
	}
	if got := names()[dave]; got != "Dave" {
		t.Fatalf("after requests accept --name Dave: named %q", got)
	}

	// Remove by name.
	must("contacts", "remove", "dave")
	if _, ok := names()[dave]; ok {
		t.Fatal("contacts remove NAME left the contact")
	}
}

// serveOffline serves home's engine, offline, as its daemon would: the
// commands for home then go through it (messages, read and send need no
// network file).
func serveOffline(t *testing.T, home string) {
	t.Helper()
	e, err := client.Open(context.Background(), client.Config{Home: home, Offline: true, Logger: quietTestLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	srv := api.NewServer(e, quietTestLogger())
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := srv.WriteInfo(home); err != nil {
		t.Fatal(err)
	}
}
