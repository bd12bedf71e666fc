package client_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/memswarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// Engine tests on the in-memory swarm, in virtual time (memnet_test.go).
// TestChatEndToEnd and the devnet tests (e2e_test.go) run the same paths
// on real nodes.

// TestChatRoundTrip: a first message, its delivered receipt, an answer
// over the pairwise mailboxes and a read receipt; the engine reads by
// long-polls, and all its goroutines end on Close (or the bubble would
// not end).
func TestChatRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		befriend(t, alice, bob)
		var m *client.Message
		waitFor(t, 15*time.Second, "a first send to succeed", func() bool {
			var err error
			m, err = alice.e.Send(ctx, bob.id, "hello bob")
			return err == nil
		})
		if m.State != client.StateSent {
			t.Fatalf("send returned state %q, want sent", m.State)
		}
		waitFor(t, 15*time.Second, "bob to receive", func() bool { return countFrom(bob, alice, "hello bob") == 1 })
		waitFor(t, 15*time.Second, "alice's message to be delivered", func() bool {
			return countState(alice, bob, "", client.StateDelivered) == 1
		})
		if _, err := bob.e.Send(ctx, alice.id, "hi alice"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "alice to receive the answer", func() bool { return countFrom(alice, bob, "hi alice") == 1 })
		if k, err := bob.e.MarkRead(ctx, alice.id); err != nil || k != 1 {
			t.Fatalf("mark read: %d, %v", k, err)
		}
		waitFor(t, 15*time.Second, "a read receipt", func() bool { return countState(alice, bob, "", client.StateRead) == 1 })
		// The first message went to bob's request bucket with its work,
		// the rest to inboxes.
		var puts [4]int
		for _, s := range n.s.Seen() {
			if s.Op == memswarm.OpPut && s.Err == nil && s.Namespace >= 0 && s.Namespace < 4 {
				puts[s.Namespace]++
			}
		}
		if puts[wire.DropNamespace] < 1 || puts[wire.RequestNamespace] != 0 || puts[0] < 3 || puts[wire.PublicNamespace] < 2 {
			t.Fatalf("stores by namespace %v: want a first contact in a bucket, 3 inbox messages (answer, 2 receipts) and 2 cards", puts)
		}
	})
}

// TestCrossingFirstMessages: both sides write first, at once, each before
// it has seen the other's first message, so each starts a session of its
// own. Nothing is lost: every message opens on the session it was sealed
// with, and both sides end up sending on the same session.
func TestCrossingFirstMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		befriend(t, alice, bob)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		for _, u := range []*user{alice, bob} {
			if err := u.e.PublishPrekeys(ctx); err != nil {
				t.Fatal(err)
			}
		}
		const k = 30
		errs := make(chan error, 2)
		for _, p := range []struct {
			from, to *user
			prefix   string
		}{{alice, bob, "a"}, {bob, alice, "b"}} {
			go func() {
				for i := range k {
					if _, err := p.from.e.Queue(ctx, p.to.id, fmt.Sprintf("%s%d", p.prefix, i)); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 60*time.Second, "both sides to receive everything", func() bool {
			return countFrom(bob, alice, "a") == k && countFrom(alice, bob, "b") == k
		}, func() string {
			return fmt.Sprintf("bob has %d, alice has %d", countFrom(bob, alice, "a"), countFrom(alice, bob, "b"))
		})
		checkConversation(t, bob, alice, "a", k)
		checkConversation(t, alice, bob, "b", k)
		if a, b := alice.e.SessionCount(bob.id), bob.e.SessionCount(alice.id); a != 2 || b != 2 {
			t.Fatalf("alice holds %d sessions with bob and bob %d with alice; a crossing makes 2 each", a, b)
		}
		// A second round goes over the session both now agree on.
		for i := range 5 {
			if _, err := alice.e.Send(ctx, bob.id, fmt.Sprintf("c%d", i)); err != nil {
				t.Fatal(err)
			}
			if _, err := bob.e.Send(ctx, alice.id, fmt.Sprintf("d%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 30*time.Second, "the second round", func() bool {
			return countFrom(bob, alice, "c") == 5 && countFrom(alice, bob, "d") == 5
		})
		as, bs := alice.e.ActiveSession(bob.id), bob.e.ActiveSession(alice.id)
		if as == "" || as != bs {
			t.Fatalf("alice sends on session %q, bob on %q: they should agree", as, bs)
		}
	})
}

// TestPrekeyRotation: a week after the last rotation the published bundle
// carries a new signed prekey and last-resort ML-KEM prekey, and a first
// message built on the bundle published before still opens.
func TestPrekeyRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		var mu sync.Mutex
		now := time.Now()
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		bu := n.account("bob")
		bob, _ := n.openEngine(bu, client.Config{Now: clock})
		bu.e = bob
		t.Cleanup(bu.stop)
		alice := n.newUser("alice")
		befriend(t, alice, bu)
		if err := bob.PublishPrekeys(ctx); err != nil {
			t.Fatal(err)
		}
		before := bob.CurrentBundle(t)
		// alice seals her first message against the bundle published now...
		if _, err := alice.e.Queue(ctx, bu.id, "on the old bundle"); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		now = now.Add(8 * 24 * time.Hour)
		mu.Unlock()
		if err := bob.PublishPrekeys(ctx); err != nil {
			t.Fatal(err)
		}
		after := bob.CurrentBundle(t)
		if after.SignedPrekey.ID == before.SignedPrekey.ID || after.LastResortKEM.ID == before.LastResortKEM.ID {
			t.Fatalf("after a week: signed prekey %d -> %d, last-resort KEM %d -> %d; both should rotate",
				before.SignedPrekey.ID, after.SignedPrekey.ID, before.LastResortKEM.ID, after.LastResortKEM.ID)
		}
		if err := bob.PublishPrekeys(ctx); err != nil {
			t.Fatal(err)
		}
		if again := bob.CurrentBundle(t); again.SignedPrekey.ID != after.SignedPrekey.ID {
			t.Fatal("the signed prekey rotated again within the week")
		}
		// ...and bob, now on the new keys, still opens it (his clock back
		// to the network's, so he reads the bucket it is in).
		mu.Lock()
		now = time.Now()
		mu.Unlock()
		bob.Start()
		waitFor(t, 30*time.Second, "bob to open the message sealed against the old bundle", func() bool {
			return countFrom(bu, alice, "on the old") == 1
		})
	})
}

// TestOfflineAcrossEpochs: pairwise mailboxes rotate every epoch and the
// long-polls cover only the last two; a recipient offline for several
// epochs still gets what was sent meanwhile (the catch-up reads back), and
// so does the CLI path (SyncOnce).
func TestOfflineAcrossEpochs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		const period = 2 * time.Second
		cfg := client.Config{EpochPeriod: period}
		alice, bob := n.account("alice"), n.account("bob")
		n.start(alice, cfg)
		n.start(bob, cfg)
		befriend(t, alice, bob)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		// A first exchange both ways moves the session onto pairwise mailboxes.
		waitFor(t, 30*time.Second, "the first message to be sent", func() bool {
			_, err := alice.e.Send(ctx, bob.id, "e0")
			return err == nil
		})
		waitFor(t, 30*time.Second, "bob to get it", func() bool { return countFrom(bob, alice, "e") == 1 })
		if _, err := bob.e.Send(ctx, alice.id, "reply"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "alice to get the reply", func() bool { return countFrom(alice, bob, "reply") == 1 })
		bob.stop()
		if _, err := alice.e.Send(ctx, bob.id, "e1"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * period) // bob is away for several epochs
		// The CLI path: an engine that is not started, syncing once.
		e, _ := n.openEngine(bob, cfg)
		if err := e.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
		ms, _ := e.Messages(alice.id)
		got := 0
		for _, m := range ms {
			if m.Text == "e1" {
				got++
			}
		}
		e.Close()
		if got != 1 {
			t.Fatalf("after %s away, SyncOnce found e1 %d times, want 1", 4*period, got)
		}
		// The daemon path: another message from epochs ago, then bob's engine.
		if _, err := alice.e.Send(ctx, bob.id, "e2"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * period)
		n.start(bob, cfg)
		waitFor(t, 30*time.Second, "bob's engine to catch up on e2", func() bool { return countFrom(bob, alice, "e") == 3 })
	})
}

// TestReceiveSurvivesWriteFailures: while the recipient's database refuses
// writes, received messages are neither lost nor marked seen; once writes
// work again, each arrives exactly once.
func TestReceiveSurvivesWriteFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.account("bob")
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		be, bnet := n.openEngine(bob, client.Config{})
		var fail atomic.Bool
		be.FailWritesWhen(&fail)
		be.Start()
		bob.e = be
		t.Cleanup(bob.stop)
		befriend(t, alice, bob)
		waitFor(t, 30*time.Second, "the first message to be sent", func() bool {
			_, err := alice.e.Send(ctx, bob.id, "w0")
			return err == nil
		})
		waitFor(t, 30*time.Second, "bob to get w0", func() bool { return countFrom(bob, alice, "w") == 1 })
		fail.Store(true)
		for i := 1; i <= 3; i++ {
			if _, err := alice.e.Send(ctx, bob.id, fmt.Sprintf("w%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		reads := func() int { return bnet.Calls(memswarm.OpGet) + bnet.Calls(memswarm.OpReadDrop) }
		gets := reads()
		time.Sleep(3 * time.Second) // bob reads them and fails to store them
		if reads() == gets {
			t.Fatal("bob did not read while his writes failed: the test proves nothing")
		}
		if k := countFrom(bob, alice, "w"); k != 1 {
			t.Fatalf("bob holds %d messages while his writes fail, want 1", k)
		}
		fail.Store(false)
		waitFor(t, 30*time.Second, "bob to store them once writes work", func() bool { return countFrom(bob, alice, "w") == 4 })
		time.Sleep(time.Second)
		checkConversation(t, bob, alice, "w", 4)
	})
}

// TestSendRetriesNetworkFailures: stores that fail are retried from the
// outbox; each message arrives once.
func TestSendRetriesNetworkFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.account("alice"), n.newUser("bob")
		anet := n.start(alice, client.Config{})
		befriend(t, alice, bob)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		waitFor(t, 30*time.Second, "the first message to be sent", func() bool {
			_, err := alice.e.Send(ctx, bob.id, "f0")
			return err == nil
		})
		anet.FailNext(memswarm.OpPut, 10, nil)
		before := anet.Calls(memswarm.OpPut)
		for i := 1; i <= 3; i++ {
			if _, err := alice.e.Queue(ctx, bob.id, fmt.Sprintf("f%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, time.Minute, "bob to get them despite the failures", func() bool { return countFrom(bob, alice, "f") == 4 })
		if k := anet.Calls(memswarm.OpPut) - before; k < 13 {
			t.Fatalf("alice stored %d times for 3 messages and 10 failures: the failures were not retried", k)
		}
		checkConversation(t, bob, alice, "f", 4)
	})
}
