package client_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestGroupDropsFormerMembersChains: once a member is removed, the others
// forget its chain (and keep everyone else's), record and index alike.
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
		waitFor(t, time.Minute, "bob to drop carol's chain", func() bool {
			held, records := bob.e.GroupChains(gid)
			return !slices.Contains(held, carol.id) && records == len(held)
		})
		sendGroupWhenReady(t, ctx, alice, gid, "after carol left")
		waitFor(t, time.Minute, "bob to read alice after the removal", func() bool { return hasText(t, bob, gid, alice.id, "after carol left") })
		held, records = bob.e.GroupChains(gid)
		if !slices.Contains(held, alice.id) || slices.Contains(held, carol.id) || records != len(held) {
			t.Fatalf("after the removal bob holds chains of %v (%d records), want alice's only", held, records)
		}
	})
}
