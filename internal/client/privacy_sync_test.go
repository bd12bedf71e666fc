package client_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/memswarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// TestMailboxHealsAfterCompromise: someone copies bob's home (all his
// keys and inbox roots). Bob and alice go on chatting; a couple of
// generations later, bob's inbox is one the copy cannot compute, while
// alice writes there. (Moved from privacy_test.go onto the in-memory
// swarm, in virtual time.)
func TestMailboxHealsAfterCompromise(t *testing.T) {
	synctest.Test(t, testMailboxHeals)
}

func testMailboxHeals(t *testing.T) {
	n := newMemNet(t)
	const period = 2 * time.Second // a generation is 7 epochs: 14 s
	cfg := client.Config{EpochPeriod: period, MessageTTL: 5 * time.Minute, Schedule: client.Schedule{
		PollWait:   [2]time.Duration{500 * time.Millisecond, time.Second},
		PollGap:    [2]time.Duration{10 * time.Millisecond, 50 * time.Millisecond},
		CatchUpGap: [2]time.Duration{5 * time.Millisecond, 20 * time.Millisecond},
	}}
	alice, bob := n.account("alice"), n.account("bob")
	n.start(alice, cfg)
	n.start(bob, cfg)
	befriend(t, alice, bob)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	exchange := func(i int) {
		t.Helper()
		tag := fmt.Sprintf("%d.", i)
		waitFor(t, 30*time.Second, "alice's "+tag, func() bool {
			_, err := alice.e.Send(ctx, bob.id, "a-"+tag)
			return err == nil
		})
		waitFor(t, 30*time.Second, "bob to get "+tag, func() bool { return countFrom(bob, alice, "a-"+tag) == 1 })
		if _, err := bob.e.Send(ctx, alice.id, "b-"+tag); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "alice to get "+tag, func() bool { return countFrom(alice, bob, "b-"+tag) == 1 })
	}
	exchange(0)

	// The compromise: a copy of bob's whole home.
	bob.stop()
	stolen := filepath.Join(t.TempDir(), "stolen")
	if err := os.CopyFS(stolen, os.DirFS(bob.home)); err != nil {
		t.Fatalf("copy the home: %v", err)
	}
	os.Remove(filepath.Join(stolen, "lock"))
	compromised := time.Now()
	n.start(bob, cfg)

	// Chat on for more than two generations.
	for i := 1; time.Since(compromised) < 2*7*period+6*time.Second; i++ {
		exchange(i)
		time.Sleep(period)
	}
	now := time.Now()
	cur, ok := bob.e.InboxID(now)
	if !ok {
		t.Fatal("bob has no inbox now")
	}
	// alice writes to bob's current inbox (or the next, at a boundary).
	aliceWrites, ok := alice.e.PeerInbox(bob.id, now)
	if !ok {
		t.Fatal("alice knows no current inbox of bob's")
	}
	next, _ := bob.e.InboxID(now.Add(period))
	if aliceWrites != cur && aliceWrites != next {
		t.Fatal("alice does not write to bob's current inbox")
	}
	thief, err := client.Open(ctx, client.Config{Home: stolen, Offline: true, EpochPeriod: period, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Close()
	derivable := thief.DerivableInboxes(compromised.Add(-time.Minute), now.Add(time.Minute))
	then, _ := bob.e.InboxID(compromised)
	if !derivable[then] {
		t.Fatal("the copy does not even give bob's inbox at the time of the copy: the test proves nothing")
	}
	if derivable[aliceWrites] || derivable[cur] {
		t.Fatal("the copy still gives the inbox bob reads and alice writes to, two generations later")
	}
	t.Logf("the copy gives %d inboxes; none of them after %s", len(derivable), time.Since(compromised).Round(time.Second))
}

// TestPublicReadTimeless: restarting a client, as a daemon or as CLI
// commands, changes nothing a public reader sees of the account, and
// stores nothing new in its public namespace. (Moved from privacy_test.go
// onto the in-memory swarm, in virtual time.)
func TestPublicReadTimeless(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice := n.newUser("alice")
		obs := n.s.Client("observer")
		publicStores := func() int {
			k := 0
			for _, s := range n.s.Seen() {
				if s.Op == memswarm.OpPut && s.Namespace == wire.PublicNamespace && s.Mailbox == accountMailbox(alice.id) {
					k++
				}
			}
			return k
		}
		var before []string
		waitFor(t, 30*time.Second, "alice's card to be published", func() bool {
			before = publicView(t, obs, alice.id)
			return len(before) > 0
		})
		stores := publicStores()
		for i := range 3 {
			alice.stop()
			time.Sleep(time.Duration(500+i*700) * time.Millisecond)
			if i == 1 { // a CLI command: open, publish if due, sync, close
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				e, _ := n.openEngine(alice, client.Config{Logger: quiet()})
				if err := e.PublishPrekeys(ctx); err != nil {
					t.Fatal(err)
				}
				if err := e.SyncOnce(ctx); err != nil {
					t.Fatal(err)
				}
				e.Close()
				cancel()
				continue
			}
			n.start(alice, client.Config{})
			time.Sleep(3 * time.Second)
		}
		after := publicView(t, obs, alice.id)
		if !slices.Equal(before, after) {
			t.Fatalf("restarts changed what a public reader sees:\nbefore %q\nafter  %q", before, after)
		}
		if k := publicStores(); k != stores {
			t.Fatalf("restarts stored %d more cards", k-stores)
		}
	})
}
