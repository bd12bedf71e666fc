package client_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// TestResendAfterDeliveryStaysDelivered is the bug found when Umbra was
// tried as a new user would: a message that bob had received (and so
// deleted from the swarm) and that alice saw as delivered was sent again
// from alice's outbox after a crash (kill -9 between the store and the
// outbox entry's removal). The store of something already stored and
// deleted by its recipient must read as stored (the recipient's signed
// deletion proves it), and the message must never go back from delivered
// or read to failed.
func TestResendAfterDeliveryStaysDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		bob, alice := n.newUser("bob"), n.account("alice")
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		e, _ := n.openEngine(alice, client.Config{})
		replay := e.KeepSentOutbox()
		e.Start()
		alice.e = e
		t.Cleanup(alice.stop)
		befriend(t, alice, bob)

		waitFor(t, 20*time.Second, "a first send to succeed", func() bool {
			_, err := alice.e.Send(ctx, bob.id, "hello bob")
			return err == nil
		})
		if _, err := alice.e.Send(ctx, bob.id, "second"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "both messages to be delivered", func() bool {
			return countState(alice, bob, "", client.StateDelivered) == 2
		})
		if _, err := bob.e.MarkRead(ctx, alice.id); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "both messages to be read", func() bool {
			return countState(alice, bob, "", client.StateRead) == 2
		})
		// bob's client has deleted what it read from the swarm. alice's
		// engine "crashes" after the stores: its outbox entries come back.
		if k := replay(); k < 2 {
			t.Fatalf("%d outbox entries to replay, want at least the 2 messages", k)
		}
		waitFor(t, 60*time.Second, "the replayed outbox to drain", func() bool { return alice.e.OutboxLen() == 0 })
		ms, err := alice.e.Messages(bob.id)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Outgoing && m.State != client.StateRead {
				t.Errorf("message %q went from read to %q (%s)", m.Text, m.State, m.Error)
			}
		}
		if got := countFrom(bob, alice, ""); got != 2 {
			t.Errorf("bob holds %d messages from alice, want 2 (shown once)", got)
		}
	})
}
