package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// TestNoReceiptEchoEndToEnd: alice's messages landing together at bob are
// acknowledged by one delivered receipt, which reaches alice no sooner than
// bob's floor after the first landed and within his cap; with read
// receipts off alice never sees "read", and once they are on again she
// does. It runs on the in-memory swarm in virtual time, with the
// production receipt delays and read schedule.
func TestNoReceiptEchoEndToEnd(t *testing.T) {
	synctest.Test(t, testNoReceiptEcho)
}

func testNoReceiptEcho(t *testing.T) {
	n := newMemNet(t)
	alice, bob := n.newUser("alice"), n.account("bob")
	delay := client.DefaultReceiptDelay
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	be, _ := n.openEngine(bob, client.Config{ReceiptDelay: delay, Schedule: client.DefaultSchedule()})
	queued := be.CountQueuedReceipts()
	be.Start()
	bob.e = be
	t.Cleanup(bob.stop)
	befriend(t, alice, bob)

	// When each of alice's messages turned delivered or read, on her side.
	var mu sync.Mutex
	seen := map[string]time.Time{}
	events, stop := alice.e.Subscribe()
	done := make(chan struct{})
	var watching sync.WaitGroup
	watching.Go(func() {
		for {
			select {
			case ev := <-events:
				if ev.Type == client.EventState && ev.Message != nil && ev.Message.Outgoing {
					mu.Lock()
					seen[ev.Message.State+"/"+ev.Message.ID] = time.Now()
					mu.Unlock()
				}
			case <-done:
				return
			}
		}
	})
	defer func() {
		stop()
		close(done)
		watching.Wait()
	}()
	at := func(state, id string) (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		x, ok := seen[state+"/"+id]
		return x, ok
	}

	var ids []string
	waitFor(t, 20*time.Second, "a first send to succeed", func() bool {
		m, err := alice.e.Send(ctx, bob.id, "m0")
		if err == nil {
			ids = append(ids, m.ID)
		}
		return err == nil
	})
	for i := 1; i < 5; i++ {
		m, err := alice.e.Queue(ctx, bob.id, fmt.Sprintf("m%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	var first, last time.Time
	waitFor(t, 20*time.Second, "bob to receive the five", func() bool {
		ms, _ := bob.e.Messages(alice.id)
		if len(ms) != 5 {
			return false
		}
		first, last = ms[0].ReceivedAt, ms[0].ReceivedAt
		for _, m := range ms {
			if m.ReceivedAt.Before(first) {
				first = m.ReceivedAt
			}
			if m.ReceivedAt.After(last) {
				last = m.ReceivedAt
			}
		}
		return true
	})
	if last.Sub(first) >= delay.Floor {
		t.Fatalf("the five landed over %v, not together: the test needs them within the floor", last.Sub(first))
	}
	waitFor(t, delay.Max+15*time.Second, "alice to see the five delivered", func() bool {
		return countState(alice, bob, "m", client.StateDelivered) == 5
	})
	for _, id := range ids {
		d, ok := at(client.StateDelivered, id)
		if !ok {
			t.Fatalf("no delivered event for %s", id)
		}
		if d.Before(first.Add(delay.Floor)) {
			t.Errorf("delivered %v after the first message landed: an echo (floor %v)", d.Sub(first), delay.Floor)
		}
		if d.After(last.Add(delay.Max + 10*time.Second)) {
			t.Errorf("delivered %v after the last message landed, beyond the cap %v", d.Sub(last), delay.Max)
		}
	}
	if n := queued.Load(); n != 1 {
		t.Errorf("bob queued %d receipts for five messages landing together, want one", n)
	}

	// Read receipts off: bob reads, alice never sees "read".
	if _, err := bob.e.SetSettings(client.Settings{ReadReceipts: false}); err != nil {
		t.Fatal(err)
	}
	if n, err := bob.e.MarkRead(ctx, alice.id); err != nil || n != 5 {
		t.Fatalf("mark read: %d, %v", n, err)
	}
	if _, read := bob.e.OwedReceipts(); read != 0 {
		t.Fatalf("bob owes %d read receipts with read receipts off", read)
	}
	time.Sleep(delay.Max + 3*time.Second)
	if n := countState(alice, bob, "m", client.StateRead); n != 0 {
		t.Fatalf("alice sees %d messages read although bob turned read receipts off", n)
	}
	if n := queued.Load(); n != 1 {
		t.Fatalf("bob queued %d receipts, want still one", n)
	}

	// On again: a new message read is reported, later than the floor.
	if _, err := bob.e.SetSettings(client.Settings{ReadReceipts: true}); err != nil {
		t.Fatal(err)
	}
	m5, err := alice.e.Send(ctx, bob.id, "m5")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "bob to receive m5", func() bool {
		ms, _ := bob.e.Messages(alice.id)
		return len(ms) == 6
	})
	readAt := time.Now()
	if n, err := bob.e.MarkRead(ctx, alice.id); err != nil || n != 1 {
		t.Fatalf("mark read: %d, %v", n, err)
	}
	waitFor(t, delay.Max+15*time.Second, "alice to see m5 read", func() bool {
		_, ok := at(client.StateRead, m5.ID)
		return ok
	})
	if r, _ := at(client.StateRead, m5.ID); r.Sub(readAt) < delay.Floor {
		t.Errorf("read receipt %v after bob read: an echo", r.Sub(readAt))
	}
	if n := countState(alice, bob, "m", client.StateRead); n != 1 {
		t.Errorf("alice sees %d messages read, want m5 only", n)
	}
}
