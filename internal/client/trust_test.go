package client_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

func newAccountID(t *testing.T) identity.AccountID {
	t.Helper()
	a, err := identity.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID()
}

// TestSafetyNumberProperties: both sides compute the same 60 digits, and
// the number changes when either side's key changes.
func TestSafetyNumberProperties(t *testing.T) {
	for range 20 {
		a, b := newAccountID(t), newAccountID(t)
		ab, ba := client.SafetyNumberOf(a, b), client.SafetyNumberOf(b, a)
		if ab != ba {
			t.Fatalf("not symmetric: %s vs %s", ab, ba)
		}
		if len(ab) != 60 || strings.Trim(ab, "0123456789") != "" {
			t.Fatalf("safety number %q: want 60 digits", ab)
		}
		if g := client.GroupSafetyNumber(ab); len(g) != 12 || strings.Join(g, "") != ab {
			t.Fatalf("groups %v", g)
		}
		// Change one bit of either key (a random other key too).
		for _, side := range []int{0, 1} {
			a2, b2 := a, b
			k := &a2
			if side == 1 {
				k = &b2
			}
			var bit [1]byte
			rand.Read(bit[:])
			k[bit[0]%32] ^= 1 << (bit[0] % 8)
			if n := client.SafetyNumberOf(a2, b2); n == ab {
				t.Fatalf("flipping a bit of side %d's key kept the number %s", side, ab)
			}
			if n := client.SafetyNumberOf(a, newAccountID(t)); n == ab {
				t.Fatalf("another peer key gave the same number")
			}
		}
	}
}

// TestTrustActions: the safety number both engines show matches; marking
// verified sticks; a blocked contact's messages are dropped until unblocked;
// mute is a flag; deleting a conversation empties it and keeps the contact,
// and new messages still arrive.
func TestTrustActions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		befriend(t, alice, bob)

		sa, err := alice.e.SafetyNumber(bob.id)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := bob.e.SafetyNumber(alice.id)
		if err != nil {
			t.Fatal(err)
		}
		if sa.Number != sb.Number || len(sa.Groups) != 12 || sa.Verified {
			t.Fatalf("alice sees %+v, bob sees %+v", sa, sb)
		}
		if _, err := alice.e.SetVerified(bob.id, true); err != nil {
			t.Fatal(err)
		}
		if s, _ := alice.e.SafetyNumber(bob.id); !s.Verified {
			t.Fatal("not verified after marking")
		}
		if cs, _ := alice.e.Conversations(); len(cs) != 1 || !cs[0].Verified {
			t.Fatalf("conversations %+v: want bob verified", cs)
		}

		greet(ctx, t, bob, alice, "one")

		// Block: later messages are dropped.
		if err := alice.e.Block(bob.id); err != nil {
			t.Fatal(err)
		}
		if bl, _ := alice.e.Blocked(); len(bl) != 1 || bl[0].ID != bob.id {
			t.Fatalf("blocked list %+v", bl)
		}
		if _, err := bob.e.Send(ctx, alice.id, "two"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute) // virtual: many polls
		if k := countFrom(alice, bob, "two"); k != 0 {
			t.Fatalf("a blocked contact's message arrived (%d)", k)
		}
		c, err := alice.e.Unblock(bob.id)
		if err != nil || c.State != client.ContactAccepted {
			t.Fatalf("unblock: %+v, %v", c, err)
		}
		if _, err := alice.e.Unblock(bob.id); err == nil {
			t.Fatal("unblocking an account not blocked succeeded")
		}
		if _, err := bob.e.Send(ctx, alice.id, "three"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "alice to get three after unblocking", func() bool { return countFrom(alice, bob, "three") == 1 })

		// Mute.
		if c, err := alice.e.SetMuted(bob.id, true); err != nil || !c.Muted {
			t.Fatalf("mute: %+v, %v", c, err)
		}
		if cs, _ := alice.e.Conversations(); !cs[0].Muted {
			t.Fatal("conversation not muted")
		}
		if c, _ := alice.e.SetMuted(bob.id, false); c.Muted {
			t.Fatal("still muted")
		}

		// Delete the conversation: local history only.
		if _, err := alice.e.Send(ctx, bob.id, "mine"); err != nil {
			t.Fatal(err)
		}
		k, err := alice.e.DeleteConversation(bob.id)
		if err != nil || k != 3 {
			t.Fatalf("delete conversation: %d, %v; want 3 messages", k, err)
		}
		if ms, _ := alice.e.Messages(bob.id); len(ms) != 0 {
			t.Fatalf("%d messages left", len(ms))
		}
		if cs, _ := alice.e.Contacts(); len(cs) != 1 || cs[0].ID != bob.id || !cs[0].Verified {
			t.Fatalf("contacts after deleting the chat: %+v", cs)
		}
		if k := countFrom(bob, alice, "mine"); k != 1 {
			waitFor(t, 30*time.Second, "bob to keep his copy", func() bool { return countFrom(bob, alice, "mine") == 1 })
		}
		if _, err := bob.e.Send(ctx, alice.id, "four"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "a message after deleting the chat", func() bool { return countFrom(alice, bob, "four") == 1 })
	})
}

// notices counts the session-reset notices in u's conversation with peer.
func notices(u *user, peer string) int {
	ms, _ := u.e.Messages(peer)
	k := 0
	for _, m := range ms {
		if m.Notice == client.NoticeSessionReset {
			k++
		}
	}
	return k
}

// TestSessionResetNotice: a contact who restores their account on a new
// device starts a new session; the other side writes a notice into the
// conversation (not on the first exchange, nor on a crossing) and keeps the
// verified mark, as the safety number did not change.
func TestSessionResetNotice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice := n.newUser("alice")
		bobHome := filepath.Join(t.TempDir(), "bob")
		acct, err := client.Init(bobHome, "", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		bob := &user{home: bobHome, id: acct.ID().String()}
		n.start(bob, client.Config{})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		befriend(t, alice, bob)
		greet(ctx, t, alice, bob, "hi bob")
		if _, err := bob.e.Send(ctx, alice.id, "hi alice"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "alice to receive", func() bool { return countFrom(alice, bob, "hi alice") == 1 })
		if k := notices(alice, bob.id) + notices(bob, alice.id); k != 0 {
			t.Fatalf("%d reset notices on a first exchange", k)
		}
		if _, err := alice.e.SetVerified(bob.id, true); err != nil {
			t.Fatal(err)
		}
		before, _ := alice.e.SafetyNumber(bob.id)

		// Much later bob restores his account on a new device.
		time.Sleep(time.Hour)
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bob.stop()
		bob2Home := filepath.Join(t.TempDir(), "bob2")
		acct2, err := client.Init(bob2Home, "", nil, acct.Phrase())
		if err != nil {
			t.Fatal(err)
		}
		if !acct2.ID().Equal(acct.ID()) {
			t.Fatal("restored a different account")
		}
		bob2 := &user{home: bob2Home, id: bob.id}
		n.start(bob2, client.Config{})
		if _, err := bob2.e.AddContact(alice.id, "alice"); err != nil {
			t.Fatal(err)
		}
		var sendErr error
		waitFor(t, 30*time.Second, "a send from the restored device", func() bool {
			_, sendErr = bob2.e.Send(ctx, alice.id, "new phone")
			return sendErr == nil
		}, func() string { return fmt.Sprint(sendErr) })
		waitFor(t, 60*time.Second, "alice to receive from the new device", func() bool { return countFrom(alice, bob, "new phone") == 1 })
		if k := notices(alice, bob.id); k != 1 {
			t.Fatalf("%d reset notices, want 1", k)
		}
		after, _ := alice.e.SafetyNumber(bob.id)
		if after.Number != before.Number || !after.Verified || after.ResetAt.IsZero() {
			t.Fatalf("after the reset: %+v (before %+v)", after, before)
		}
		cs, _ := alice.e.Conversations()
		if len(cs) != 1 || cs[0].Unread != 2 { // "hi alice" and "new phone"
			t.Fatalf("conversations %+v: the notice must not count as unread", cs)
		}
	})
}

// TestCrossingNoNotice: both sides writing first at once make two sessions
// each; that is a crossing, not a reset, and writes no notice.
func TestCrossingNoNotice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		befriend(t, alice, bob)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, u := range []*user{alice, bob} {
			if err := u.e.PublishPrekeys(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := alice.e.Queue(ctx, bob.id, "a0"); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.e.Queue(ctx, alice.id, "b0"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 60*time.Second, "both first messages", func() bool {
			return countFrom(bob, alice, "a0") == 1 && countFrom(alice, bob, "b0") == 1
		})
		if a, b := alice.e.SessionCount(bob.id), bob.e.SessionCount(alice.id); a != 2 || b != 2 {
			t.Fatalf("sessions %d and %d: not a crossing", a, b)
		}
		if k := notices(alice, bob.id) + notices(bob, alice.id); k != 0 {
			t.Fatalf("%d reset notices on a crossing", k)
		}
	})
}
