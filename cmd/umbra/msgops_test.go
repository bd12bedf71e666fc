package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// TestMessageCommands: on in-process nodes, without daemons, bob replies
// to alice's message by an ID prefix ('send --reply'), reacts to it, alice
// edits it and deletes it for everyone; 'messages' shows the short IDs,
// the quote, the reaction, the edited and deleted marks. Bad IDs and
// emoji are refused with one-line errors.
func TestMessageCommands(t *testing.T) {
	t.Setenv("UMBRA_HOME", "")
	t.Setenv("UMBRA_PASSPHRASE", "")
	dir := t.TempDir()
	live := writeFile(t, "network.txt", strings.Join(inProcessNodes(t, 7), "\n")+"\n")
	time.Sleep(time.Second) // the nodes learn of each other
	aliceHome, bobHome := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	ids := map[string]string{}
	for name, home := range map[string]string{"alice": aliceHome, "bob": bobHome} {
		if _, errOut, err := run(t, "init", "--home", home, "--network", live); err != nil {
			t.Fatalf("init %s: %v\n%s", name, err, errOut)
		}
		out, _, err := run(t, "id", "--home", home)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = strings.TrimSpace(out)
	}
	must := func(home string, args ...string) string {
		t.Helper()
		out, errOut, err := run(t, append(args, "--home", home)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut)
		}
		return out
	}
	must(aliceHome, "contacts", "add", ids["bob"], "--name", "bob")
	must(bobHome, "contacts", "add", ids["alice"], "--name", "alice")
	must(bobHome, "messages") // publishes bob's prekeys
	var sent struct{ ID string }
	if err := json.Unmarshal([]byte(must(aliceHome, "send", "bob", "dinner at 7?", "--json")), &sent); err != nil {
		t.Fatal(err)
	}
	// bob's copy of a message, once it is as want says.
	bobSees := func(id string, want func(client.Message) bool) client.Message {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			for _, l := range strings.Split(must(bobHome, "messages", "--with", "alice", "--json"), "\n") {
				var m client.Message
				if json.Unmarshal([]byte(l), &m) == nil && m.ID == id && want(m) {
					return m
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("bob never saw message %s as wanted", id)
		return client.Message{}
	}
	bobSees(sent.ID, func(client.Message) bool { return true })
	prefix := sent.ID[:7]

	out := must(bobHome, "send", "alice", "yes!", "--reply", prefix, "--json")
	var reply struct{ ID string }
	json.Unmarshal([]byte(out), &reply)
	if out := must(bobHome, "react", "alice", prefix, "👍"); !strings.HasPrefix(out, "Reacted 👍 to "+sent.ID[:8]) {
		t.Fatalf("react: %q", out)
	}
	for _, bad := range [][]string{
		{"react", "alice", sent.ID[:4], "👍"},      // too short
		{"react", "alice", "0123456789", "👍"},     // no such message
		{"react", "alice", prefix, "a b"},         // not an emoji
		{"react", "alice", prefix},                // no emoji
		{"edit", "alice", prefix, "bob's words"},  // not bob's
		{"delete", "alice", prefix, "--everyone"}, // not bob's
		{"send", "alice", "x", "--reply", "zzzzzz"},
	} {
		_, _, err := run(t, append(bad, "--home", bobHome)...)
		if err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want a one-line error", bad, err)
		}
	}
	if out := must(aliceHome, "edit", "bob", prefix, "dinner at 8?"); !strings.HasPrefix(out, "Edited "+sent.ID[:8]) {
		t.Fatalf("edit: %q", out)
	}
	bobSees(sent.ID, func(m client.Message) bool { return m.Edited && m.Text == "dinner at 8?" })
	plain := must(aliceHome, "messages", "--with", "bob")
	for _, want := range []string{"[" + sent.ID[:8] + "]", "dinner at 8? (edited)", "👍 bob", "↪ reply to [" + sent.ID[:8] + "]", "[" + reply.ID[:8] + "]"} {
		if !strings.Contains(plain, want) {
			t.Errorf("alice's 'messages' lacks %q:\n%s", want, plain)
		}
	}
	must(aliceHome, "delete", "bob", prefix, "--everyone")
	bobSees(sent.ID, func(m client.Message) bool { return m.Deleted && m.Text == "" })
	if plain := must(bobHome, "messages", "--with", "alice"); !strings.Contains(plain, "(This message was deleted)") || strings.Contains(plain, "dinner") {
		t.Errorf("bob's 'messages' after the delete:\n%s", plain)
	}
	must(bobHome, "delete", "alice", reply.ID[:8])
	if plain := must(bobHome, "messages", "--with", "alice"); strings.Contains(plain, reply.ID[:8]) {
		t.Errorf("the message bob deleted is still listed:\n%s", plain)
	}
	if out := must(bobHome, "react", "--help"); !strings.Contains(out, "--remove") || !strings.Contains(out, "at least 6") {
		t.Errorf("react --help:\n%s", out)
	}
}
