package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// TestGroupCommands: on in-process nodes, alice and bob without daemons
// (each command runs an engine of its own), carol with one. alice creates
// a group with bob (her contact, who has her as his: he joins at once)
// and carol (who does not have alice: an invitation, which 'groups list'
// shows with the command to accept it). Texts go with 'send --group'
// (from an argument and from stdin) and come back with 'messages
// --group', with system lines and alice's "read by 1" after bob's 'read
// --group'; a reaction goes with 'react --group'. A promotion, a rename
// by the new admin, a removal, a declined invitation and a leave reach
// the others. Unknown groups and a
// plain member's remove or rename get clear one-line errors.
func TestGroupCommands(t *testing.T) {
	t.Setenv("UMBRA_HOME", "")
	t.Setenv("UMBRA_PASSPHRASE", "")
	dir := t.TempDir()
	live := writeFile(t, "network.txt", strings.Join(inProcessNodes(t, 7), "\n")+"\n")
	time.Sleep(2 * time.Second) // the nodes learn of each other
	start := time.Now()
	must := func(home string, args ...string) string {
		t.Helper()
		out, errOut, err := run(t, append(args, "--home", home)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut)
		}
		return out
	}
	aliceHome, bobHome, carolHome := filepath.Join(dir, "alice"), filepath.Join(dir, "bob"), filepath.Join(dir, "carol")
	var aliceID, bobID, carolID string
	for _, u := range []struct {
		home string
		id   *string
	}{{aliceHome, &aliceID}, {bobHome, &bobID}, {carolHome, &carolID}} {
		if _, errOut, err := run(t, "init", "--home", u.home, "--network", live); err != nil {
			t.Fatalf("init: %v\n%s", err, errOut)
		}
		*u.id = strings.TrimSpace(must(u.home, "id"))
		must(u.home, "messages") // publishes the prekeys
	}
	// alice and bob have each other as contacts; carol has no one.
	must(aliceHome, "contacts", "add", bobID, "--name", "bob")
	must(aliceHome, "contacts", "add", carolID, "--name", "carol")
	must(bobHome, "contacts", "add", aliceID, "--name", "alice")
	// carol runs a daemon (her commands go through it); alice and bob
	// do not (each command runs an engine of its own).
	d, err := startDaemon(context.Background(), daemonConfig{Home: carolHome, Listen: "127.0.0.1:0", Log: quietTestLogger()})
	if err != nil {
		t.Fatalf("carol's daemon: %v", err)
	}
	t.Cleanup(d.Stop)
	t.Logf("%v: three accounts", time.Since(start).Round(time.Second))
	// fails runs a command that must fail with an error whose first line
	// (what the user sees: see errorText) holds want.
	fails := func(home, want string, args ...string) {
		t.Helper()
		_, _, err := run(t, append(args, "--home", home)...)
		if err == nil || !strings.Contains(errorText(err, false), want) {
			t.Errorf("%v: %v, want an error with %q on its first line", args, err, want)
		}
	}
	// eventually runs f until it holds (2 minutes at most: each command
	// of alice's and bob's starts an engine, slow on a busy machine).
	eventually := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); !f(); time.Sleep(300 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: never happened", what)
			}
		}
		t.Logf("%v: %s", time.Since(start).Round(time.Second), what)
	}
	groupsOf := func(home string) map[string]client.Group {
		t.Helper()
		gs := map[string]client.Group{}
		for _, l := range strings.Split(strings.TrimSpace(must(home, "groups", "list", "--json")), "\n") {
			var g client.Group
			if l != "" && json.Unmarshal([]byte(l), &g) == nil {
				gs[g.ID] = g
			}
		}
		return gs
	}
	groupMsgs := func(home, ref string) []client.Message {
		t.Helper()
		var ms []client.Message
		for _, l := range strings.Split(strings.TrimSpace(must(home, "messages", "--group", ref, "--json")), "\n") {
			var m client.Message
			if l != "" && json.Unmarshal([]byte(l), &m) == nil {
				ms = append(ms, m)
			}
		}
		return ms
	}
	has := func(ms []client.Message, from, text string) *client.Message {
		for i := range ms {
			if ms[i].From == from && ms[i].Text == text && ms[i].Kind == "" {
				return &ms[i]
			}
		}
		return nil
	}

	if out := must(aliceHome, "groups", "list"); !strings.Contains(out, "No groups") {
		t.Errorf("groups list before any group:\n%s", out)
	}
	fails(aliceHome, "at least", "groups", "create", "club") // no members
	fails(aliceHome, "neither an account ID nor a contact's name", "groups", "create", "club", "dave")

	var g client.Group
	if err := json.Unmarshal([]byte(must(aliceHome, "groups", "create", "club", "--description", "Friday dinners", "bob", carolID, "--json")), &g); err != nil {
		t.Fatal(err)
	}
	if g.Name != "club" || g.Role != "admin" || g.Status != client.GroupJoined || len(g.Members) != 3 {
		t.Fatalf("created %+v", g)
	}
	short := g.ID[:8]

	// Unknown groups: one line, and where to look.
	fails(aliceHome, `no such group "nosuch" (see 'umbra groups list')`, "groups", "info", "nosuch")
	fails(aliceHome, "no such group", "send", "--group", "nosuch", "hello?")
	fails(aliceHome, "no such group", "messages", "--group", "0123456789abcdef")

	info := must(aliceHome, "groups", "info", short)
	for _, want := range []string{"Name:", "club", "Friday dinners", g.ID, "member (admin)", "Epoch:", "Members (3):", "* you", "bob", "carol", "admin"} {
		if !strings.Contains(info, want) {
			t.Errorf("groups info lacks %q:\n%s", want, info)
		}
	}

	eventually("bob joins (alice is his contact)", func() bool {
		bg, ok := groupsOf(bobHome)[g.ID]
		return ok && bg.Status == client.GroupJoined && bg.Name == "club" && bg.Role == "member"
	})
	eventually("carol's invitation", func() bool {
		cg, ok := groupsOf(carolHome)[g.ID]
		return ok && cg.Status == client.GroupInvited && cg.InvitedBy == aliceID
	})
	list := must(carolHome, "groups", "list")
	for _, want := range []string{"INVITED", "umbra groups accept " + short, "umbra groups decline " + short} {
		if !strings.Contains(list, want) {
			t.Errorf("carol's groups list lacks %q:\n%s", want, list)
		}
	}
	fails(carolHome, "accept the invitation first", "send", "--group", short, "too early")
	if out := must(carolHome, "groups", "accept", short); !strings.HasPrefix(out, `Joined "club"`) {
		t.Errorf("accept: %q", out)
	}

	// alice sends; bob reads it and answers from stdin.
	out := must(aliceHome, "send", "--group", "club", "hello all", "--json")
	var sent struct{ ID, State string }
	if err := json.Unmarshal([]byte(out), &sent); err != nil || sent.State != client.StateSent {
		t.Fatalf("send --group: %q (%v)", out, err)
	}
	eventually("bob reads alice's text", func() bool { return has(groupMsgs(bobHome, "club"), aliceID, "hello all") != nil })
	var lastErr error
	eventually("bob's send (once he holds the group's key)", func() bool {
		out, errOut, err := runIn(t, strings.NewReader("hi from bob\n"), "send", "--group", short, "-", "--home", bobHome)
		if err == nil && !strings.HasSuffix(strings.TrimSpace(out), " sent") {
			err = fmt.Errorf("%q %s", out, errOut)
		}
		if err != nil && (lastErr == nil || err.Error() != lastErr.Error()) {
			t.Logf("bob's send: %v", err)
		}
		lastErr = err
		return err == nil
	})
	if out := must(bobHome, "read", "--group", "club"); !strings.Contains(out, "marked read") {
		t.Errorf("read --group: %q", out)
	}
	eventually("alice reads bob's text and sees hers read by 1", func() bool {
		ms := groupMsgs(aliceHome, "club")
		m := has(ms, aliceID, "hello all")
		return has(ms, bobID, "hi from bob") != nil && m != nil && m.ReadCount >= 1
	})
	eventually("carol reads both texts", func() bool {
		ms := groupMsgs(carolHome, "club")
		return has(ms, aliceID, "hello all") != nil && has(ms, bobID, "hi from bob") != nil
	})
	bobMsg := has(groupMsgs(aliceHome, "club"), bobID, "hi from bob")
	if out := must(aliceHome, "react", "--group", "club", bobMsg.ID[:8], "👍"); !strings.HasPrefix(out, "Reacted 👍 to "+bobMsg.ID[:8]) {
		t.Errorf("react --group: %q", out)
	}
	plain := must(aliceHome, "messages", "--group", "club")
	for _, want := range []string{`Group "club"`, `* you created the group "club"`, "[" + sent.ID[:8] + "]", "you  [", "read by 1]", "hello all", "from bob", "hi from bob", "👍 you"} {
		if !strings.Contains(plain, want) {
			t.Errorf("alice's messages --group lacks %q:\n%s", want, plain)
		}
	}

	// Only admins change membership.
	fails(bobHome, "only an admin", "groups", "remove", "club", carolID)
	fails(bobHome, "only an admin", "groups", "rename", "club", "bob's club")
	if out := must(aliceHome, "groups", "promote", "club", "bob"); !strings.HasPrefix(out, `Promoted in "club"`) {
		t.Errorf("promote: %q", out)
	}
	if !strings.Contains(must(aliceHome, "groups", "info", "club"), "* bob") {
		t.Error("groups info does not mark bob admin after the promotion")
	}
	eventually("bob learns he is admin", func() bool { return groupsOf(bobHome)[g.ID].Role == "admin" })
	if out := must(bobHome, "groups", "rename", "club", "dinner club"); !strings.HasPrefix(out, `Renamed "dinner club"`) {
		t.Errorf("rename: %q", out)
	}
	eventually("alice sees the new name", func() bool { return groupsOf(aliceHome)[g.ID].Name == "dinner club" })
	if out := must(aliceHome, "groups", "list"); !strings.Contains(out, "dinner club") || !strings.Contains(out, short) {
		t.Errorf("alice's groups list:\n%s", out)
	}
	if out := must(aliceHome, "messages", "--group", "dinner club"); !strings.Contains(out, `* bob changed the group's name to "dinner club"`) {
		t.Errorf("no rename line:\n%s", out)
	}

	// Removal: carol learns it, can no longer send, and her list says so.
	if out := must(aliceHome, "groups", "remove", "dinner club", "carol"); !strings.HasPrefix(out, `Removed from "dinner club"`) || !strings.Contains(out, "2 members") {
		t.Errorf("remove: %q", out)
	}
	eventually("carol learns she was removed", func() bool { return groupsOf(carolHome)[g.ID].Status == client.GroupRemoved })
	fails(carolHome, "no longer in this group", "send", "--group", short, "still here?")
	if out := must(carolHome, "groups", "list"); !strings.Contains(out, client.GroupRemoved) || strings.Contains(out, "INVITED") {
		t.Errorf("carol's groups list after the removal:\n%s", out)
	}

	// carol declines an invitation; bob leaves; alice sees both go.
	var picnic client.Group
	if err := json.Unmarshal([]byte(must(aliceHome, "groups", "create", "picnic", "carol", "--json")), &picnic); err != nil {
		t.Fatal(err)
	}
	eventually("carol's second invitation", func() bool { return groupsOf(carolHome)[picnic.ID].Status == client.GroupInvited })
	if out := must(carolHome, "groups", "decline", "picnic"); !strings.HasPrefix(out, `Declined "picnic"`) {
		t.Errorf("decline: %q", out)
	}
	fails(carolHome, "there is no invitation to accept", "groups", "accept", picnic.ID)
	if out := must(bobHome, "groups", "leave", short); !strings.HasPrefix(out, `Left "dinner club"`) {
		t.Errorf("leave: %q", out)
	}
	eventually("alice sees carol decline and bob leave", func() bool {
		gs := groupsOf(aliceHome)
		return len(gs[picnic.ID].Members) == 1 && len(gs[g.ID].Members) == 1
	})
	if out := must(aliceHome, "messages", "--group", short); !strings.Contains(out, "* bob left") {
		t.Errorf("no leave line:\n%s", out)
	}
	// Plain 'messages' names the group of each group message.
	all := must(aliceHome, "messages")
	for _, want := range []string{`* group "dinner club": bob left`, `) in group "dinner club"  [received]`, `to   group "dinner club"  [`} {
		if !strings.Contains(all, want) {
			t.Errorf("alice's messages lacks %q:\n%s", want, all)
		}
	}
}

// TestGroupFlagArgs: with --group, the commands that otherwise name a
// contact refuse one, and say what they want instead, before opening any
// home; a group message's state shows the members' acknowledgements.
func TestGroupFlagArgs(t *testing.T) {
	t.Setenv("UMBRA_HOME", t.TempDir())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "--group", "club", "bob", "hi"}, "with --group, want TEXT|- only"},
		{[]string{"react", "--group", "club", "bob", "3f9a1c", "👍"}, "with --group, want MSGID EMOJI|--remove (no ID|NAME)"},
		{[]string{"edit", "--group", "club", "3f9a1c"}, "with --group, want MSGID TEXT|- (no ID|NAME)"},
		{[]string{"delete", "--group", "club", "bob", "3f9a1c"}, "with --group, want MSGID [--everyone] (no ID|NAME)"},
		{[]string{"read", "--group", "club", "bob"}, "with --group, leave out ID|NAME"},
		{[]string{"messages", "--group", "club", "--with", "bob"}, "--group goes without --with"},
		{[]string{"groups", "create", "club"}, "at least 2"},
		{[]string{"groups", "rename", "club", " "}, "a group needs a name"},
	} {
		_, _, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	for _, c := range []struct {
		m    client.Message
		want string
	}{
		{client.Message{State: client.StateQueued, Outgoing: true}, "queued"},
		{client.Message{State: client.StateRead, Outgoing: true, DeliveredCount: 2, ReadCount: 1}, "delivered to 2, read by 1"},
		{client.Message{State: client.StateDelivered, Outgoing: true, ReadCount: 3}, "read by 3"},
		{client.Message{State: client.StateReceived, DeliveredCount: 2}, "received"},
	} {
		if got := groupState(c.m); got != c.want {
			t.Errorf("groupState(%+v) = %q, want %q", c.m, got, c.want)
		}
	}
}
