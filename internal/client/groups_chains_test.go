package client_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestGroupDropsFormerMembersChains: once a member is removed, the others
// forget its chain once texts it sent before may no longer come (and keep
// everyone else's), record and index alike.
func TestGroupDropsFormerMembersChains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob, carol := n.newUser("alice"), n.newUser("bob"), n.newUser("carol")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		befriend(t, alice, bob)
		befriend(t, alice, carol)
		g, err := alice.e.CreateGroup(ctx, "club", "", []string{bob.id, carol.id})
		if err != nil {
			t.Fatal(err)
		}
		gid := g.ID
		sendGroupWhenReady(t, ctx, alice, gid, "from alice")
		sendGroupWhenReady(t, ctx, bob, gid, "from bob")
		sendGroupWhenReady(t, ctx, carol, gid, "from carol")
		waitFor(t, time.Minute, "bob to read alice and carol", func() bool {
			return hasText(t, bob, gid, alice.id, "from alice") && hasText(t, bob, gid, carol.id, "from carol")
		})
		held, records := bob.e.GroupChains(gid)
		if !slices.Contains(held, carol.id) || !slices.Contains(held, alice.id) || records != len(held) {
			t.Fatalf("before the removal bob holds chains of %v (%d records), want alice's and carol's", held, records)
		}
		if _, err := alice.e.RemoveGroupMembers(ctx, gid, []string{carol.id}); err != nil {
			t.Fatal(err)
		}
		sendGroupWhenReady(t, ctx, alice, gid, "after carol left")
		waitFor(t, time.Minute, "bob to read alice after the removal", func() bool { return hasText(t, bob, gid, alice.id, "after carol left") })
		// A former member's chain stays while texts it sent before its
		// removal may still come (48 h), then goes.
		if held, _ := bob.e.GroupChains(gid); !slices.Contains(held, carol.id) {
			t.Fatal("bob dropped carol's chain at once: her texts from before the removal would be lost")
		}
		if err := bob.e.DropFormerChainsAt(gid, time.Now().Add(49*time.Hour)); err != nil {
			t.Fatal(err)
		}
		held, records = bob.e.GroupChains(gid)
		if !slices.Contains(held, alice.id) || slices.Contains(held, carol.id) || records != len(held) {
			t.Fatalf("after the removal bob holds chains of %v (%d records), want alice's only", held, records)
		}
	})
}

// TestGroupOwnMessagesNotHeld: a sender reads its own messages back from
// the group's mailbox; it must not keep them aside as messages whose chain
// has not come (they would fill the bounded queue of held messages, and
// then messages of others that come before their chains would be lost).
func TestGroupOwnMessagesNotHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		befriend(t, alice, bob)
		g, err := alice.e.CreateGroup(ctx, "club", "", []string{bob.id})
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{"one", "two", "three"} {
			sendGroupWhenReady(t, ctx, alice, g.ID, text)
		}
		waitFor(t, time.Minute, "bob to read alice's texts", func() bool { return hasText(t, bob, g.ID, alice.id, "three") })
		time.Sleep(time.Minute) // every read of the mailbox done
		if k := alice.e.GroupHeld(g.ID); k != 0 {
			t.Fatalf("alice keeps %d of her own group messages aside, waiting for a chain", k)
		}
		if k := bob.e.GroupHeld(g.ID); k != 0 {
			t.Fatalf("bob keeps %d group messages aside after reading them all", k)
		}
	})
}
