package client_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/envelope"
)

// msgOf is u's copy of message id with peer (nil when it has none).
func msgOf(t *testing.T, u *client.Engine, peer, id string) *client.Message {
	t.Helper()
	ms, err := u.Messages(peer)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ms {
		if ms[i].ID == id {
			return &ms[i]
		}
	}
	return nil
}

// sendFirst sends text from a to b once a session can start, and waits for
// b to hold it.
func sendFirst(t *testing.T, ctx context.Context, a, b *user, text string) *client.Message {
	t.Helper()
	var m *client.Message
	waitFor(t, 20*time.Second, "a send to succeed", func() bool {
		var err error
		m, err = a.e.Send(ctx, b.id, text)
		return err == nil
	})
	waitFor(t, 20*time.Second, "the message to arrive", func() bool { return msgOf(t, b.e, a.id, m.ID) != nil })
	return m
}

// TestMessageActions: a reply quotes its message on both sides; reactions
// replace each other and can be taken back; an edit changes the text on
// both sides with an edited mark; delete for everyone leaves a deleted
// mark without the text on both sides; delete for me removes the message
// here only. Message IDs are accepted by unique prefix.
func TestMessageActions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		befriend(t, alice, bob)
		hello := sendFirst(t, ctx, alice, bob, "hello bob")

		// Reply, by an 8-character prefix.
		r, err := bob.e.Reply(ctx, alice.id, hello.ID[:8], "hi alice", true)
		if err != nil {
			t.Fatal(err)
		}
		if r.ReplyTo != hello.ID {
			t.Fatalf("reply quotes %q, want %q", r.ReplyTo, hello.ID)
		}
		waitFor(t, 20*time.Second, "alice to get the reply", func() bool {
			m := msgOf(t, alice.e, bob.id, r.ID)
			return m != nil && m.ReplyTo == hello.ID && m.Text == "hi alice"
		})
		if _, err := bob.e.Reply(ctx, alice.id, hello.ID[:5], "x", true); err == nil {
			t.Fatal("a 5-character prefix was accepted")
		}
		if _, err := bob.e.Reply(ctx, alice.id, "abcdef0123", "x", true); err == nil {
			t.Fatal("a reply to an unknown message was accepted")
		}

		// Reactions: one per person, the newest wins; "" takes it back.
		for _, emoji := range []string{"👍", "❤️"} {
			m, err := bob.e.React(ctx, alice.id, hello.ID, emoji)
			if err != nil {
				t.Fatal(err)
			}
			if m.Reactions[bob.id] != emoji {
				t.Fatalf("bob's own copy has reactions %v", m.Reactions)
			}
			waitFor(t, 20*time.Second, "alice to see "+emoji, func() bool {
				m := msgOf(t, alice.e, bob.id, hello.ID)
				return m.Reactions[bob.id] == emoji && len(m.Reactions) == 1
			})
		}
		if _, err := alice.e.React(ctx, bob.id, hello.ID, "😮"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "bob to see both reactions", func() bool {
			return len(msgOf(t, bob.e, alice.id, hello.ID).Reactions) == 2
		})
		if _, err := bob.e.React(ctx, alice.id, hello.ID, ""); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "bob's reaction to go", func() bool {
			m := msgOf(t, alice.e, bob.id, hello.ID)
			_, has := m.Reactions[bob.id]
			return !has && m.Reactions[alice.id] == "😮"
		})
		for _, bad := range []string{strings.Repeat("👍", 9), "a\nb", "\u202e👍", "a b"} {
			if _, err := bob.e.React(ctx, alice.id, hello.ID, bad); err == nil {
				t.Fatalf("reaction %q was accepted", bad)
			}
		}

		// Edit: only one's own messages.
		if _, err := bob.e.Edit(ctx, alice.id, hello.ID, "bob was here"); err == nil {
			t.Fatal("bob edited alice's message")
		}
		ed, err := alice.e.Edit(ctx, bob.id, hello.ID[:10], "hello bob, edited")
		if err != nil {
			t.Fatal(err)
		}
		if !ed.Edited || ed.Text != "hello bob, edited" {
			t.Fatalf("alice's copy after the edit: %+v", ed)
		}
		waitFor(t, 20*time.Second, "bob to see the edit", func() bool {
			m := msgOf(t, bob.e, alice.id, hello.ID)
			return m.Edited && m.Text == "hello bob, edited"
		})

		// Delete for everyone: only one's own.
		if _, err := alice.e.Delete(ctx, bob.id, r.ID, true); err == nil {
			t.Fatal("alice deleted bob's message for everyone")
		}
		if _, err := alice.e.Delete(ctx, bob.id, hello.ID, true); err != nil {
			t.Fatal(err)
		}
		for _, u := range []*client.Engine{alice.e, bob.e} {
			peer := bob.id
			if u == bob.e {
				peer = alice.id
			}
			waitFor(t, 20*time.Second, "the message to be deleted", func() bool {
				m := msgOf(t, u, peer, hello.ID)
				return m != nil && m.Deleted && m.Text == "" && m.Reactions == nil && !m.Edited
			})
		}
		if _, err := bob.e.React(ctx, alice.id, hello.ID, "👍"); err == nil {
			t.Fatal("a reaction to a deleted message was accepted")
		}

		// Delete for me: gone here, kept there.
		if _, err := alice.e.Delete(ctx, bob.id, r.ID, false); err != nil {
			t.Fatal(err)
		}
		if msgOf(t, alice.e, bob.id, r.ID) != nil {
			t.Fatal("the message deleted for me is still there")
		}
		if _, err := alice.e.FindMessage(bob.id, r.ID); err == nil {
			t.Fatal("FindMessage found a deleted message")
		}
		time.Sleep(30 * time.Second)
		if msgOf(t, bob.e, alice.id, r.ID) == nil {
			t.Fatal("delete for me deleted bob's copy")
		}
	})
}

// TestHostileMessageActions: a contact that sends edits, deletes and
// reactions it may not send (of our messages, of a third party's, to
// unknown messages, malformed emoji) changes nothing; its own edit, sent
// after them, is applied.
func TestHostileMessageActions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, mallory, carol := n.newUser("alice"), n.newUser("mallory"), n.newUser("carol")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		befriend(t, alice, mallory)
		befriend(t, alice, carol)
		mine := sendFirst(t, ctx, alice, mallory, "alice's own words")
		theirs := sendFirst(t, ctx, mallory, alice, "mallory's words")
		carols := sendFirst(t, ctx, carol, alice, "carol's words")

		hostile := []struct {
			kind envelope.Kind
			body string
			refs []string
		}{
			{envelope.KindEdit, "alice says something else", []string{mine.ID}},
			{envelope.KindDelete, "", []string{mine.ID}},
			{envelope.KindEdit, "carol says something else", []string{carols.ID}},
			{envelope.KindDelete, "", []string{carols.ID, mine.ID}},
			{envelope.KindReaction, "💩", []string{carols.ID}},
			{envelope.KindReaction, strings.Repeat("x", 33), []string{mine.ID}},
			{envelope.KindReaction, "a\x00", []string{mine.ID}},
			{envelope.KindReaction, "👍", []string{mine.ID, theirs.ID}},
			{envelope.KindEdit, "unknown", []string{"00112233445566778899aabbccddeeff"}},
			{envelope.KindEdit, "  ", []string{theirs.ID}},
		}
		for _, h := range hostile {
			if err := mallory.e.SendRawOp(ctx, alice.id, h.kind, []byte(h.body), h.refs...); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 20*time.Second, "mallory's outbox to empty", func() bool { return mallory.e.OutboxLen() == 0 })
		if err := mallory.e.SendRawOp(ctx, alice.id, envelope.KindEdit, []byte("mallory's edited words"), theirs.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "mallory's own edit", func() bool {
			m := msgOf(t, alice.e, mallory.id, theirs.ID)
			return m.Edited && m.Text == "mallory's edited words"
		})
		time.Sleep(time.Minute) // time for anything still on its way
		for _, c := range []struct {
			peer string
			m    *client.Message
		}{{mallory.id, mine}, {carol.id, carols}} {
			got := msgOf(t, alice.e, c.peer, c.m.ID)
			if got == nil || got.Text != c.m.Text || got.Edited || got.Deleted || len(got.Reactions) != 0 {
				t.Fatalf("a hostile action changed a message: %+v", got)
			}
		}
		if got := msgOf(t, alice.e, mallory.id, theirs.ID); len(got.Reactions) != 0 {
			t.Fatalf("a reaction with two targets was applied: %v", got.Reactions)
		}
	})
}

// TestTypingIndicators: a typing indicator becomes an event at the
// contact, never a message; with read receipts off on either side, none
// is sent or shown.
func TestTypingIndicators(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		befriend(t, alice, bob)
		sendFirst(t, ctx, alice, bob, "hello")
		sendFirst(t, ctx, bob, alice, "hi") // both sides have a session with inboxes
		events, stop := bob.e.Subscribe()
		defer stop()
		next := func(d time.Duration) *client.Event {
			timeout := time.After(d)
			for {
				select {
				case ev := <-events:
					if ev.Type == client.EventTyping {
						return &ev
					}
				case <-timeout:
					return nil
				}
			}
		}
		for _, typing := range []bool{true, false} {
			sent, err := alice.e.SendTyping(ctx, bob.id, typing)
			if err != nil || !sent {
				t.Fatalf("send typing: %v, %v", sent, err)
			}
			ev := next(30 * time.Second)
			if ev == nil || ev.Peer != alice.id || ev.Typing != typing {
				t.Fatalf("typing %v: got event %+v", typing, ev)
			}
		}
		if ms, _ := bob.e.Messages(alice.id); len(ms) != 2 {
			t.Fatalf("bob holds %d messages, want 2: a typing indicator was stored", len(ms))
		}
		// Bob turns read receipts off: he is shown nothing.
		st, _ := bob.e.Settings()
		st.ReadReceipts = false
		if _, err := bob.e.SetSettings(st); err != nil {
			t.Fatal(err)
		}
		if sent, _ := alice.e.SendTyping(ctx, bob.id, true); !sent {
			t.Fatal("alice's typing indicator was not sent")
		}
		if ev := next(45 * time.Second); ev != nil {
			t.Fatalf("with read receipts off, bob was shown %+v", ev)
		}
		// Alice turns them off: she sends none.
		st, _ = alice.e.Settings()
		st.ReadReceipts = false
		if _, err := alice.e.SetSettings(st); err != nil {
			t.Fatal(err)
		}
		if sent, err := alice.e.SendTyping(ctx, bob.id, true); sent || err != nil {
			t.Fatalf("with read receipts off alice sent a typing indicator (%v)", err)
		}
	})
}

// FuzzValidReaction: an accepted reaction is short, UTF-8, and holds no
// control, space or bidi-override character.
func FuzzValidReaction(f *testing.F) {
	for _, s := range []string{"", "👍", "❤️", "👩‍👩‍👧", "a\x00", "\u202e", strings.Repeat("👍", 9)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if client.ValidReaction(s) != nil {
			return
		}
		if len(s) > client.MaxReactionBytes || !utf8.ValidString(s) {
			t.Fatalf("accepted %q", s)
		}
		for _, r := range s {
			if unicode.IsControl(r) || unicode.IsSpace(r) || r == '\u202e' || r == '\u2066' {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}

// TestActionsBeforeTheirMessage: the nodes return a mailbox's messages of
// one minute in no set order, so an edit or reaction can come before the
// text it targets. It is kept aside and applied when the text comes, in
// the order the actions were made; kept aside by another sender, it is
// not applied to a text of someone else.
func TestActionsBeforeTheirMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob, carol := n.newUser("alice"), n.newUser("bob"), n.newUser("carol")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		befriend(t, alice, bob)
		befriend(t, alice, carol)
		sendFirst(t, ctx, bob, alice, "hi")
		sendFirst(t, ctx, carol, alice, "hi")
		const early, other = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
		for _, op := range []struct {
			kind envelope.Kind
			body string
		}{{envelope.KindEdit, "second"}, {envelope.KindEdit, "third"}, {envelope.KindReaction, "🎉"}} {
			if err := bob.e.SendRawOp(ctx, alice.id, op.kind, []byte(op.body), early); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // distinct sender clocks
		}
		if err := bob.e.SendRawOp(ctx, alice.id, envelope.KindEdit, []byte("bob's words"), other); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "bob's outbox to empty", func() bool { return bob.e.OutboxLen() == 0 })
		time.Sleep(30 * time.Second) // alice reads them all
		if err := bob.e.SendRawText(ctx, alice.id, early, "first"); err != nil {
			t.Fatal(err)
		}
		if err := carol.e.SendRawText(ctx, alice.id, other, "carol's words"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the early actions to apply", func() bool {
			m := msgOf(t, alice.e, bob.id, early)
			return m != nil && m.Text == "third" && m.Edited && m.Reactions[bob.id] == "🎉"
		})
		waitFor(t, 30*time.Second, "carol's text", func() bool { return msgOf(t, alice.e, carol.id, other) != nil })
		if m := msgOf(t, alice.e, carol.id, other); m.Text != "carol's words" || m.Edited {
			t.Fatalf("bob's early edit changed carol's text: %+v", m)
		}
	})
}
