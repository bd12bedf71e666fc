package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// jsonMessages is 'messages --json' of home (with peer).
func jsonMessages(t *testing.T, home, with string, extra ...string) []client.Message {
	t.Helper()
	out, errOut, err := run(t, append([]string{"messages", "--home", home, "--with", with, "--json"}, extra...)...)
	if err != nil {
		t.Fatalf("messages: %v\n%s", err, errOut)
	}
	var ms []client.Message
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m client.Message
		if l != "" && json.Unmarshal([]byte(l), &m) == nil {
			ms = append(ms, m)
		}
	}
	return ms
}

// waitMessage runs 'messages' on home until pred holds for a message with
// peer (30 s at most) and returns it.
func waitMessage(t *testing.T, home, with, what string, pred func(client.Message) bool) client.Message {
	t.Helper()
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); {
		for _, m := range jsonMessages(t, home, with, "--wait", "3s") {
			if pred(m) {
				return m
			}
		}
	}
	t.Fatalf("%s: never happened", what)
	return client.Message{}
}

// twoOnline makes alice and bob on live in-process nodes, contacts of each
// other, with a session (alice wrote to bob once). It returns the homes,
// bob's ID and the live network file.
func twoOnline(t *testing.T) (aliceHome, bobHome, aliceID, bobID, live string) {
	t.Helper()
	t.Setenv("UMBRA_HOME", "")
	t.Setenv("UMBRA_PASSPHRASE", "")
	dir := t.TempDir()
	live = writeFile(t, "network.txt", strings.Join(inProcessNodes(t, 7), "\n")+"\n")
	time.Sleep(time.Second) // the nodes learn of each other
	aliceHome, bobHome = filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	for _, h := range []string{aliceHome, bobHome} {
		if _, errOut, err := run(t, "init", "--home", h, "--network", live); err != nil {
			t.Fatalf("init: %v\n%s", err, errOut)
		}
	}
	id := func(h string) string {
		out, _, err := run(t, "id", "--home", h)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	aliceID, bobID = id(aliceHome), id(bobHome)
	if _, errOut, err := run(t, "contacts", "add", "--home", aliceHome, bobID, "--name", "bob"); err != nil {
		t.Fatalf("contacts add: %v\n%s", err, errOut)
	}
	if _, errOut, err := run(t, "contacts", "add", "--home", bobHome, aliceID, "--name", "alice"); err != nil {
		t.Fatalf("contacts add: %v\n%s", err, errOut)
	}
	out, errOut, err := run(t, "send", "--home", aliceHome, "bob", "hello bob, lunch on Friday?")
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), " sent") {
		t.Fatalf("first send: %q, %v\n%s", out, err, errOut)
	}
	waitMessage(t, bobHome, "alice", "bob gets the first message", func(m client.Message) bool { return strings.HasPrefix(m.Text, "hello bob") })
	return
}

// TestOfflineSendQueues: with no node reachable, 'send' to a contact with
// a session queues the message and says so; 'messages' shows the local
// history after a one-line warning; 'search' works; a first message to a
// contact without a session is refused with a clear error. Back online,
// the next command sends the queued message and bob gets it.
func TestOfflineSendQueues(t *testing.T) {
	aliceHome, bobHome, _, bobID, live := twoOnline(t)
	dead := offlineNetwork(t, 2)
	if _, errOut, err := run(t, "network", "set", dead, "--home", aliceHome); err != nil {
		t.Fatalf("network set: %v\n%s", err, errOut)
	}
	out, errOut, err := run(t, "send", "--home", aliceHome, "bob", "sent while offline: pizza tonight")
	if err != nil {
		t.Fatalf("send offline: %v\n%s", err, errOut)
	}
	fields := strings.Fields(out)
	if len(fields) != 2 || fields[1] != client.StateQueued {
		t.Fatalf("send offline printed %q, want ID queued", out)
	}
	queuedID := fields[0]
	if !strings.Contains(errOut, "can't reach any of the 2 nodes") || !strings.Contains(errOut, "working offline") ||
		!strings.Contains(errOut, "1 item in the outbox still queued") {
		t.Errorf("send offline stderr %q: want the offline warning and what is left queued", errOut)
	}

	out, errOut, err = run(t, "messages", "--home", aliceHome)
	if err != nil {
		t.Fatalf("messages offline: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "pizza tonight") || !strings.Contains(out, "[queued]") || !strings.Contains(out, "hello bob") {
		t.Errorf("messages offline printed %q: want the history with the queued message", out)
	}
	var warnings []string
	for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if strings.Contains(l, "working offline") {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 {
		t.Errorf("messages offline stderr %q: want one offline warning line", errOut)
	}

	out, errOut, err = run(t, "search", "--home", aliceHome, "PIZ")
	if err != nil || !strings.Contains(out, "pizza tonight") || !strings.Contains(out, "bob") || strings.Contains(out, "hello bob") {
		t.Errorf("search offline: %q, %v\n%s", out, err, errOut)
	}

	// A first message needs the contact's prekeys: refused, not lost.
	carol := filepath.Join(t.TempDir(), "carol")
	if _, errOut, err := run(t, "init", "--home", carol, "--network", live); err != nil {
		t.Fatalf("init carol: %v\n%s", err, errOut)
	}
	carolID, _, _ := run(t, "id", "--home", carol)
	if _, errOut, err := run(t, "contacts", "add", "--home", aliceHome, strings.TrimSpace(carolID), "--name", "carol"); err != nil {
		t.Fatalf("contacts add carol: %v\n%s", err, errOut)
	}
	if _, _, err := run(t, "send", "--home", aliceHome, "carol", "hi carol"); err == nil || !strings.Contains(err.Error(), "can't queue a first message") {
		t.Errorf("first message offline: %v, want it refused as needing the network", err)
	}

	// Back online: the next command that reaches the network sends it.
	if _, errOut, err := run(t, "network", "set", live, "--home", aliceHome); err != nil {
		t.Fatalf("network set: %v\n%s", err, errOut)
	}
	if _, errOut, err := run(t, "contacts", "list", "--home", aliceHome); err != nil {
		t.Fatalf("contacts list: %v\n%s", err, errOut) // local: sends nothing
	}
	_, errOut, err = run(t, "messages", "--home", aliceHome, "--with", bobID)
	if err != nil || strings.Contains(errOut, "still queued") {
		t.Fatalf("messages back online: %v\n%s", err, errOut)
	}
	m := waitMessage(t, bobHome, "alice", "bob gets the queued message", func(m client.Message) bool { return m.ID == queuedID })
	if m.Text != "sent while offline: pizza tonight" {
		t.Errorf("bob got %q", m.Text)
	}
}

// TestReadFlushesReceipt: 'read' without a daemon sends the read receipt
// before it exits (receipts otherwise wait 5 s to 2 min, long after a
// command ended): alice sees her message "read" without bob running
// anything else.
func TestReadFlushesReceipt(t *testing.T) {
	aliceHome, bobHome, _, _, _ := twoOnline(t)
	out, errOut, err := run(t, "read", "--home", bobHome, "alice")
	if err != nil || !strings.HasPrefix(out, "1 messages marked read") || strings.Contains(errOut, "still queued") {
		t.Fatalf("read: %q, %v\n%s", out, err, errOut)
	}
	waitMessage(t, aliceHome, "bob", "alice sees her message read", func(m client.Message) bool {
		return m.Outgoing && m.State == client.StateRead
	})
}

// TestDaemonSendQueued: a send through the daemon answers "queued" at once
// (the daemon's outbox sends it, the web UI follows its state) and the
// message arrives.
func TestDaemonSendQueued(t *testing.T) {
	aliceHome, bobHome, _, _, _ := twoOnline(t)
	d, err := startDaemon(context.Background(), daemonConfig{Home: aliceHome, Listen: "127.0.0.1:0", Log: quietTestLogger()})
	if err != nil {
		t.Fatalf("daemon: %v", err)
	}
	defer d.Stop()
	out, errOut, err := run(t, "send", "--home", aliceHome, "bob", "through the daemon")
	fields := strings.Fields(out)
	if err != nil || len(fields) != 2 || fields[1] != client.StateQueued {
		t.Fatalf("send through the daemon: %q, %v\n%s", out, err, errOut)
	}
	waitMessage(t, bobHome, "alice", "bob gets the daemon's message", func(m client.Message) bool { return m.ID == fields[0] })
	// The daemon moves it on to sent (or beyond) by itself.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ms := jsonMessages(t, aliceHome, "bob")
		if ms[len(ms)-1].ID == fields[0] && ms[len(ms)-1].State != client.StateQueued {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon's message stays %q", ms[len(ms)-1].State)
		}
	}
}

// TestSearchCommand: 'search' finds words by prefix in any case, newest
// first, with or without a daemon; --with limits it to one conversation,
// --limit bounds it, --json gives the snippet's segments; bad arguments
// get one-line errors.
func TestSearchCommand(t *testing.T) {
	home, bobHome, _, _, _ := twoOnline(t)
	for _, text := range []string{"Dinner at Noémie's on Friday", "see you Saturday", "FRIDAY again!"} {
		if _, errOut, err := run(t, "send", "--home", home, "bob", text); err != nil {
			t.Fatalf("send: %v\n%s", err, errOut)
		}
	}
	if _, errOut, err := run(t, "send", "--home", bobHome, "alice", "friday is fine"); err != nil {
		t.Fatalf("send: %v\n%s", err, errOut)
	}
	waitMessage(t, home, "bob", "alice gets bob's answer", func(m client.Message) bool { return m.Text == "friday is fine" })

	out, errOut, err := run(t, "search", "--home", home, "fri")
	if err != nil {
		t.Fatalf("search: %v\n%s", err, errOut)
	}
	// The first message ("lunch on Friday?") is found too.
	if n := strings.Count(out, "\n    "); n != 4 || !strings.Contains(out, "bob (") || strings.Index(out, "friday is fine") > strings.Index(out, "Dinner") {
		t.Errorf("search fri printed (want 3 results, newest first, names):\n%s", out)
	}
	out, _, err = run(t, "search", "--home", home, "FRI DIN", "--with", "bob", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rs []client.SearchResult
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r client.SearchResult
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("search --json line %q: %v", l, err)
		}
		rs = append(rs, r)
	}
	if len(rs) != 1 || rs[0].Message.Text != "Dinner at Noémie's on Friday" || rs[0].Name != "bob" || !rs[0].Message.Outgoing {
		t.Fatalf("search FRI DIN --with bob: %+v", rs)
	}
	var marked []string
	for _, r := range rs {
		for _, s := range r.Snippet {
			if s.Match {
				marked = append(marked, s.Text)
			}
		}
	}
	if strings.Join(marked, ",") != "Dinner,Friday" {
		t.Errorf("marked words %q, want Dinner and Friday", marked)
	}
	if out, _, _ := run(t, "search", "--home", home, "noém"); !strings.Contains(out, "Noémie") {
		t.Errorf("search noém: %q", out)
	}
	if out, _, _ := run(t, "search", "--home", home, "fri", "--limit", "1"); strings.Count(out, "\n    ") != 1 {
		t.Errorf("--limit 1 printed %q", out)
	}
	if out, _, _ := run(t, "search", "--home", home, "sunday"); strings.TrimSpace(out) != "No messages match." {
		t.Errorf("no match printed %q", out)
	}
	if _, _, err := run(t, "search", "--home", home, "..."); err == nil || !strings.Contains(err.Error(), "at least one word") {
		t.Errorf("search with no word: %v", err)
	}
	if _, _, err := run(t, "search", "--home", home, "fri", "--limit", "0"); err == nil || !strings.Contains(err.Error(), "--limit") {
		t.Errorf("--limit 0: %v", err)
	}
	// Through a daemon, which then keeps its index up to date.
	d, err := startDaemon(context.Background(), daemonConfig{Home: home, Listen: "127.0.0.1:0", Log: quietTestLogger()})
	if err != nil {
		t.Fatalf("daemon: %v", err)
	}
	defer d.Stop()
	if out, _, err := run(t, "search", "--home", home, "saturd"); err != nil || !strings.Contains(out, "see you Saturday") {
		t.Errorf("search through the daemon: %q, %v", out, err)
	}
	if _, errOut, err := run(t, "send", "--home", home, "bob", "Saturday works better"); err != nil {
		t.Fatalf("send: %v\n%s", err, errOut)
	}
	if out, _, err := run(t, "search", "--home", home, "saturd"); err != nil || strings.Count(out, "\n    ") != 2 || !strings.Contains(out, "works better") {
		t.Errorf("search after a new message: %q, %v", out, err)
	}
}
