package client_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/memswarm"
)

// testPNG is a w x h PNG.
func testPNG(t testing.TB, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func convWith(t *testing.T, u *user, peer string) client.Conversation {
	t.Helper()
	cs, err := u.e.Conversations()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Peer == peer {
			return c
		}
	}
	return client.Conversation{}
}

// TestProfileEndToEnd: alice's profile reaches bob with her first text and
// again when it changes; bob keeps it apart from his own name for her.
func TestProfileEndToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		befriend(t, alice, bob)
		ctx := context.Background()
		name := "Alice"
		p, err := alice.e.SetProfile(ctx, client.ProfileUpdate{Name: &name, Avatar: testPNG(t, 300, 200)})
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(p.Avatar))
		if err != nil || cfg.Width != 96 || cfg.Height != 64 {
			t.Fatalf("avatar scaled to %dx%d (%v), want 96x64", cfg.Width, cfg.Height, err)
		}
		if _, err := alice.e.Send(ctx, bob.id, "hello"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "bob to see alice's profile", func() bool {
			c := convWith(t, bob, alice.id)
			return c.ProfileName == "Alice" && strings.HasPrefix(c.Avatar, "data:image/png;base64,")
		})
		if _, err := bob.e.RenameContact(alice.id, "Ally"); err != nil {
			t.Fatal(err)
		}
		name = "Alice B"
		if _, err := alice.e.SetProfile(ctx, client.ProfileUpdate{Name: &name, ClearAvatar: true}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "bob to see alice's new profile", func() bool {
			c := convWith(t, bob, alice.id)
			return c.ProfileName == "Alice B" && c.Avatar == "" && c.Name == "Ally"
		})
		bad := "x\u202eevil"
		if _, err := alice.e.SetProfile(ctx, client.ProfileUpdate{Name: &bad}); err == nil {
			t.Fatal("a name with a bidi override was accepted")
		}
	})
}

// TestDisappearingMessages: alice sets a timer, bob sees it; a text sent
// with it is deleted on both sides once the (fake) clock passes the timer,
// with an expired event; a text from bob carries the timer too.
func TestDisappearingMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		var skew atomic.Int64
		clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		alice, bob := n.account("alice"), n.account("bob")
		n.start(alice, client.Config{Now: clock})
		n.start(bob, client.Config{Now: clock})
		befriend(t, alice, bob)
		ctx := context.Background()
		if _, err := alice.e.SetTimer(ctx, bob.id, time.Second); err == nil {
			t.Fatal("a 1 s timer was accepted")
		}
		line, err := alice.e.SetTimer(ctx, bob.id, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if line.Kind != client.KindTimerLine || line.Expire != 600 {
			t.Fatalf("timer line %+v", line)
		}
		waitFor(t, time.Minute, "bob to take alice's timer", func() bool {
			d, _ := bob.e.Timer(alice.id)
			return d == 10*time.Minute
		})
		bms, _ := bob.e.Messages(alice.id)
		if len(bms) != 1 || bms[0].Kind != client.KindTimerLine || bms[0].Outgoing {
			t.Fatalf("bob's conversation %+v, want alice's timer line", bms)
		}
		aevents, stopA := alice.e.Subscribe()
		defer stopA()
		bevents, stopB := bob.e.Subscribe()
		defer stopB()
		before := len(n.s.Seen())
		m, err := alice.e.Send(ctx, bob.id, "vanish")
		if err != nil {
			t.Fatal(err)
		}
		// The swarm keeps it no longer than the timer.
		short := false
		for _, s := range n.s.Seen()[before:] {
			if s.Op == memswarm.OpPut && s.Client == "alice" && s.Err == nil {
				if life := time.Duration(s.Expiry-s.Timestamp) * time.Millisecond; life <= 10*time.Minute {
					short = true
				}
			}
		}
		if !short {
			t.Error("no store of the disappearing text with a lifetime within its timer")
		}
		if m.Expire != 600 || m.ExpiresAt.IsZero() {
			t.Fatalf("sent %+v without the timer", m)
		}
		has := func(u *user, peer, id string) bool {
			ms, _ := u.e.Messages(peer)
			for _, x := range ms {
				if x.ID == id {
					return true
				}
			}
			return false
		}
		waitFor(t, time.Minute, "bob to receive it", func() bool { return has(bob, alice.id, m.ID) })
		// Bob's texts carry the timer too.
		r, err := bob.e.Send(ctx, alice.id, "reply")
		if err != nil {
			t.Fatal(err)
		}
		if r.Expire != 600 {
			t.Fatalf("bob's reply carries timer %d, want 600", r.Expire)
		}
		time.Sleep(5 * time.Second)
		if !has(alice, bob.id, m.ID) || !has(bob, alice.id, m.ID) {
			t.Fatal("the message disappeared before its time")
		}
		skew.Store(int64(10*time.Minute - 5*time.Second + time.Millisecond))
		// Alice counts from sending: 10 min after SentAt it is gone (the
		// message was sent 5 s ago in virtual time, the skew adds the rest).
		waitFor(t, 10*time.Second, "alice's copy to expire", func() bool { return !has(alice, bob.id, m.ID) })
		skew.Store(int64(11 * time.Minute))
		waitFor(t, 10*time.Second, "bob's copy to expire", func() bool { return !has(bob, alice.id, m.ID) })
		for _, ch := range []<-chan client.Event{aevents, bevents} {
			got := false
			for len(ch) > 0 {
				if ev := <-ch; ev.Type == client.EventExpired && ev.Message.ID == m.ID {
					got = true
				}
			}
			if !got {
				t.Error("no expired event for the message")
			}
		}

		// Bob turning the timer off reaches alice (the nodes' clock is
		// the real one again).
		skew.Store(0)
		if _, err := bob.e.SetTimer(ctx, alice.id, 0); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "alice to see the timer off", func() bool {
			return convWith(t, alice, bob.id).Timer == 0
		})
	})
}
