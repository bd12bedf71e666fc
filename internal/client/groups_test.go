package client_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// groupOf is u's view of group gid (nil when it has none).
func groupOf(t *testing.T, u *user, gid string) *client.Group {
	t.Helper()
	gs, err := u.e.Groups()
	if err != nil {
		t.Fatal(err)
	}
	for i := range gs {
		if gs[i].ID == gid {
			return &gs[i]
		}
	}
	return nil
}

// groupTexts lists the texts (not system lines) u holds in group gid, as
// "from: text".
func groupTexts(t *testing.T, u *user, gid string) []string {
	t.Helper()
	ms, err := u.e.GroupMessages(gid)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		if m.Kind == "" {
			out = append(out, m.From[:8]+": "+m.Text)
		}
	}
	return out
}

func hasText(t *testing.T, u *user, gid, from, text string) bool {
	return slices.Contains(groupTexts(t, u, gid), from[:8]+": "+text)
}

// memberIDs lists a group's members, sorted.
func memberIDs(g *client.Group) []string {
	var ids []string
	for _, m := range g.Members {
		ids = append(ids, m.ID+"/"+m.Role)
	}
	slices.Sort(ids)
	return ids
}

// sendGroupWhenReady sends once the sender holds the group's key.
func sendGroupWhenReady(t *testing.T, ctx context.Context, u *user, gid, text string) *client.Message {
	t.Helper()
	var m *client.Message
	waitFor(t, 30*time.Second, "a group send", func() bool {
		var err error
		m, err = u.e.SendGroup(ctx, gid, text, "", true)
		return err == nil
	})
	return m
}

// TestGroupLifecycle: a group of three where one member is not the
// creator's contact (an invitation, accepted); texts reach every member
// once, attributed to their senders; receipts count; a non-admin cannot
// remove; a removed member reads nothing sent after the removal; renames
// and promotions reach everyone with system lines.
func TestGroupLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob, carol := n.newUser("alice"), n.newUser("bob"), n.newUser("carol")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		befriend(t, alice, bob)

		g, err := alice.e.CreateGroup(ctx, "club", "a test group", []string{bob.id, carol.id})
		if err != nil {
			t.Fatal(err)
		}
		if g.Status != client.GroupJoined || g.Role != "admin" || len(g.Members) != 3 {
			t.Fatalf("created %+v", g)
		}
		gid := g.ID
		waitFor(t, time.Minute, "bob to join (alice is his contact)", func() bool {
			g := groupOf(t, bob, gid)
			return g != nil && g.Status == client.GroupJoined && g.Name == "club"
		})
		waitFor(t, time.Minute, "carol's invitation", func() bool {
			g := groupOf(t, carol, gid)
			return g != nil && g.Status == client.GroupInvited && g.InvitedBy == alice.id
		})
		if _, err := carol.e.SendGroup(ctx, gid, "too early", "", false); err == nil {
			t.Fatal("sent before accepting the invitation")
		}
		if _, err := carol.e.AcceptGroup(ctx, gid); err != nil {
			t.Fatal(err)
		}

		hello := sendGroupWhenReady(t, ctx, alice, gid, "hello all")
		for _, u := range []*user{bob, carol} {
			waitFor(t, time.Minute, "alice's text to reach everyone", func() bool { return hasText(t, u, gid, alice.id, "hello all") })
		}
		sendGroupWhenReady(t, ctx, bob, gid, "hi from bob")
		sendGroupWhenReady(t, ctx, carol, gid, "hi from carol")
		for _, u := range []*user{alice, bob, carol} {
			waitFor(t, time.Minute, "every text everywhere", func() bool {
				return hasText(t, u, gid, bob.id, "hi from bob") && hasText(t, u, gid, carol.id, "hi from carol")
			})
		}
		time.Sleep(30 * time.Second)
		for _, u := range []*user{alice, bob, carol} {
			if got := groupTexts(t, u, gid); len(got) != 3 {
				t.Fatalf("%s holds %q, want each of the 3 texts once", u.id[:8], got)
			}
		}
		// Delivery receipts are counted: both others got alice's text.
		waitFor(t, 5*time.Minute, "two delivered receipts", func() bool {
			m := msgOf(t, alice.e, "", hello.ID)
			return m != nil && m.DeliveredCount == 2
		})
		if _, err := bob.e.MarkGroupRead(ctx, gid); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Minute, "a read receipt", func() bool {
			m := msgOf(t, alice.e, "", hello.ID)
			return m != nil && m.ReadCount == 1
		})

		// Only admins change membership.
		if _, err := bob.e.RemoveGroupMembers(ctx, gid, []string{carol.id}); err == nil {
			t.Fatal("a plain member removed someone")
		}

		// Removal: carol is out and reads nothing sent after.
		if _, err := alice.e.RemoveGroupMembers(ctx, gid, []string{carol.id}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "carol to learn she was removed", func() bool {
			g := groupOf(t, carol, gid)
			return g != nil && g.Status == client.GroupRemoved
		})
		waitFor(t, time.Minute, "bob to see two members", func() bool {
			g := groupOf(t, bob, gid)
			return g != nil && len(g.Members) == 2
		})
		sendGroupWhenReady(t, ctx, alice, gid, "after carol left")
		sendGroupWhenReady(t, ctx, bob, gid, "bob after carol left")
		waitFor(t, time.Minute, "bob to read alice after the removal", func() bool { return hasText(t, bob, gid, alice.id, "after carol left") })
		waitFor(t, time.Minute, "alice to read bob after the removal", func() bool { return hasText(t, alice, gid, bob.id, "bob after carol left") })
		time.Sleep(time.Minute)
		for _, text := range []string{"after carol left", "bob after carol left"} {
			for _, got := range groupTexts(t, carol, gid) {
				if strings.HasSuffix(got, text) {
					t.Fatalf("carol read %q sent after her removal", got)
				}
			}
		}
		if _, err := carol.e.SendGroup(ctx, gid, "still here?", "", false); err == nil {
			t.Fatal("a removed member could send")
		}

		// Promotion and rename, with system lines.
		if _, err := alice.e.PromoteGroupMembers(ctx, gid, []string{bob.id}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "bob to be admin", func() bool {
			g := groupOf(t, bob, gid)
			return g != nil && g.Role == "admin"
		})
		if _, err := bob.e.SetGroupInfo(ctx, gid, "club 2", "renamed"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "alice to see the new name", func() bool {
			g := groupOf(t, alice, gid)
			return g != nil && g.Name == "club 2"
		})
		ms, _ := alice.e.GroupMessages(gid)
		var lines []string
		for _, m := range ms {
			if m.Kind == client.KindGroupLine {
				lines = append(lines, m.Text)
			}
		}
		want := []string{"created the group", "removed", "made", "changed the group's name"}
		for _, w := range want {
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, w) }) {
				t.Fatalf("no system line with %q in %q", w, lines)
			}
		}
		if a, b := groupOf(t, alice, gid), groupOf(t, bob, gid); !slices.Equal(memberIDs(a), memberIDs(b)) || a.Epoch != b.Epoch {
			t.Fatalf("alice and bob disagree: %v/%d vs %v/%d", memberIDs(a), a.Epoch, memberIDs(b), b.Epoch)
		}
	})
}

// TestGroupConcurrentChanges: two admins change membership at the same
// time (one removes a member while the other adds one), each on its own
// view. Every member ends with the same member list and epoch, the admin
// the order picks rekeys, and afterwards every member's text reaches every
// other member and none reaches the removed one.
func TestGroupConcurrentChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob, carol, dave, erin := n.newUser("alice"), n.newUser("bob"), n.newUser("carol"), n.newUser("dave"), n.newUser("erin")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
		defer cancel()
		for _, u := range []*user{bob, carol, dave} {
			befriend(t, alice, u)
		}
		befriend(t, bob, erin)
		g, err := alice.e.CreateGroup(ctx, "team", "", []string{bob.id, carol.id, dave.id})
		if err != nil {
			t.Fatal(err)
		}
		gid := g.ID
		if _, err := alice.e.PromoteGroupMembers(ctx, gid, []string{bob.id}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Minute, "bob to be admin", func() bool {
			g := groupOf(t, bob, gid)
			return g != nil && g.Role == "admin" && g.Status == client.GroupJoined
		})
		// Neither has seen the other's op when it makes its own.
		if _, err := alice.e.RemoveGroupMembers(ctx, gid, []string{carol.id}); err != nil {
			t.Fatal(err)
		}
		// Bob may already have alice's op and wait for its secret: then he
		// is told so, and tries again.
		waitFor(t, 2*time.Minute, "bob's add", func() bool {
			_, err := bob.e.AddGroupMembers(ctx, gid, []string{erin.id})
			if err != nil && !strings.Contains(err.Error(), "try again") {
				t.Fatal(err)
			}
			return err == nil
		})
		stay := []*user{alice, bob, dave, erin}
		waitFor(t, 10*time.Minute, "every member to agree", func() bool {
			a := groupOf(t, alice, gid)
			if a == nil || len(a.Members) != 4 {
				return false
			}
			for _, u := range stay {
				g := groupOf(t, u, gid)
				if g == nil || g.Status != client.GroupJoined || !slices.Equal(memberIDs(g), memberIDs(a)) || g.Epoch != a.Epoch {
					return false
				}
			}
			return true
		}, func() string {
			var s []string
			for _, u := range stay {
				if g := groupOf(t, u, gid); g != nil {
					s = append(s, g.Status+"/"+strings.Join(memberIDs(g), ",")[:20]+"/"+string(rune('0'+g.Epoch)))
				}
			}
			return strings.Join(s, " ")
		})
		waitFor(t, 5*time.Minute, "carol to learn she was removed", func() bool {
			g := groupOf(t, carol, gid)
			return g != nil && g.Status == client.GroupRemoved
		})
		for i, u := range stay {
			sendGroupWhenReady(t, ctx, u, gid, "after the changes "+string(rune('A'+i)))
		}
		for i, from := range stay {
			for _, to := range stay {
				if to == from {
					continue
				}
				text := "after the changes " + string(rune('A'+i))
				waitFor(t, 5*time.Minute, "every text to every member", func() bool { return hasText(t, to, gid, from.id, text) })
			}
		}
		for _, got := range groupTexts(t, carol, gid) {
			if strings.Contains(got, "after the changes") {
				t.Fatalf("the removed member read %q", got)
			}
		}
	})
}

// TestGroupForgeryRefused: a hostile member tries to speak for another
// one: by handing out a chain under the other's chain ID, and by signing a
// distribution that names the other as its author. Neither is accepted:
// nothing shows up as written by the victim, and the victim's own texts
// still arrive under its name. A member added later reads nothing sent
// before it joined.
func TestGroupForgeryRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob, mallory, dave := n.newUser("alice"), n.newUser("bob"), n.newUser("mallory"), n.newUser("dave")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		for _, u := range []*user{bob, mallory, dave} {
			befriend(t, alice, u)
		}
		g, err := alice.e.CreateGroup(ctx, "g", "", []string{bob.id, mallory.id})
		if err != nil {
			t.Fatal(err)
		}
		gid := g.ID
		sendGroupWhenReady(t, ctx, alice, gid, "before dave")
		for _, u := range []*user{bob, mallory} {
			waitFor(t, time.Minute, "alice's text", func() bool { return hasText(t, u, gid, alice.id, "before dave") })
		}
		var aliceChain string
		for c, ms := range mallory.e.GroupChainsForTest(gid) {
			if slices.Contains(ms, alice.id) {
				aliceChain = c
			}
		}
		if aliceChain == "" {
			t.Fatal("mallory holds no chain of alice's")
		}
		aliceKey := alice.e.AccountKeyForTest()
		if err := mallory.e.ForgeChainForTest(gid, aliceChain, nil, "forged by chain ID"); err != nil {
			t.Fatal(err)
		}
		other := strings.Repeat("ab", 16)
		if err := mallory.e.ForgeChainForTest(gid, other, aliceKey, "forged by author"); err != nil {
			t.Fatal(err)
		}
		sendGroupWhenReady(t, ctx, alice, gid, "alice again")
		waitFor(t, time.Minute, "alice's next text", func() bool { return hasText(t, bob, gid, alice.id, "alice again") })
		time.Sleep(time.Minute)
		// Mallory's chain under alice's chain ID is mallory's: what it
		// carries shows as mallory's, never as alice's.
		waitFor(t, time.Minute, "mallory's text under her own name", func() bool {
			return hasText(t, bob, gid, mallory.id, "forged by chain ID")
		})
		for _, got := range groupTexts(t, bob, gid) {
			if strings.Contains(got, "forged") && strings.HasPrefix(got, alice.id[:8]) {
				t.Fatalf("bob shows a forged text as alice's: %q", got)
			}
		}
		if ms := bob.e.GroupChainsForTest(gid)[aliceChain]; !slices.Contains(ms, alice.id) {
			t.Fatalf("alice's chain is attributed to %q", ms)
		}
		if _, ok := bob.e.GroupChainsForTest(gid)[other]; ok {
			t.Fatal("a distribution with a false author was taken")
		}

		// A member added later reads nothing from before.
		if _, err := alice.e.AddGroupMembers(ctx, gid, []string{dave.id}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "dave to join", func() bool {
			g := groupOf(t, dave, gid)
			return g != nil && g.Status == client.GroupJoined
		})
		sendGroupWhenReady(t, ctx, alice, gid, "welcome dave")
		waitFor(t, 2*time.Minute, "dave to read the welcome", func() bool { return hasText(t, dave, gid, alice.id, "welcome dave") })
		time.Sleep(time.Minute)
		if got := groupTexts(t, dave, gid); len(got) != 1 {
			t.Fatalf("dave holds %q, want only the welcome", got)
		}
	})
}

// TestGroupTimer: a member sets the group's disappearing-message timer;
// everyone gets the system line and the timer, texts carry it, and they
// disappear on every member's device.
func TestGroupTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		befriend(t, alice, bob)
		g, err := alice.e.CreateGroup(ctx, "short-lived", "", []string{bob.id})
		if err != nil {
			t.Fatal(err)
		}
		gid := g.ID
		waitFor(t, time.Minute, "bob to join", func() bool {
			g := groupOf(t, bob, gid)
			return g != nil && g.Status == client.GroupJoined
		})
		sendGroupWhenReady(t, ctx, bob, gid, "before the timer")
		if _, err := alice.e.SetTimer(ctx, "group:"+gid, time.Minute); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Minute, "bob to get the timer", func() bool {
			d, err := bob.e.Timer("group:" + gid)
			return err == nil && d == time.Minute
		})
		m := sendGroupWhenReady(t, ctx, bob, gid, "gone soon")
		if m.Expire != 60 {
			t.Fatalf("the text carries timer %d, want 60", m.Expire)
		}
		waitFor(t, time.Minute, "alice to get it", func() bool { return hasText(t, alice, gid, bob.id, "gone soon") })
		time.Sleep(2 * time.Minute)
		for _, u := range []*user{alice, bob} {
			if hasText(t, u, gid, bob.id, "gone soon") {
				t.Fatal("the text outlived its timer")
			}
			if !hasText(t, u, gid, bob.id, "before the timer") {
				t.Fatal("a text sent before the timer disappeared")
			}
		}
	})
}

// TestGroupAvatar: an admin sets the group's picture from a large image;
// it is scaled and re-encoded within the log's limit and reaches every
// member; a plain member cannot change it; clearing removes it.
func TestGroupAvatar(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		befriend(t, alice, bob)
		g, err := alice.e.CreateGroup(ctx, "pictured", "", []string{bob.id})
		if err != nil {
			t.Fatal(err)
		}
		gid := g.ID
		waitFor(t, time.Minute, "bob to join", func() bool {
			g := groupOf(t, bob, gid)
			return g != nil && g.Status == client.GroupJoined
		})
		img := image.NewRGBA(image.Rect(0, 0, 800, 600))
		for i := range img.Pix {
			img.Pix[i] = byte(i * 7)
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.e.SetGroupAvatar(ctx, gid, buf.Bytes()); err == nil {
			t.Fatal("a plain member changed the picture")
		}
		if _, err := alice.e.SetGroupAvatar(ctx, gid, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "bob to get the picture", func() bool {
			g := groupOf(t, bob, gid)
			return g != nil && g.HasAvatar
		})
		b, mime, err := bob.e.GroupAvatar(gid)
		if err != nil || len(b) == 0 || len(b) > 16<<10 || !strings.HasPrefix(mime, "image/") {
			t.Fatalf("bob's copy: %d bytes, %q, %v", len(b), mime, err)
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width > 96 || cfg.Height > 96 {
			t.Fatalf("picture of %dx%d: %v", cfg.Width, cfg.Height, err)
		}
		if _, err := alice.e.SetGroupAvatar(ctx, gid, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "bob to see it removed", func() bool {
			g := groupOf(t, bob, gid)
			return g != nil && !g.HasAvatar && g.Name == "pictured"
		})
	})
}
