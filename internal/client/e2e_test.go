package client_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

// The umbra binary the devnet tests run, built on first use (most of this
// package's tests need none).
var (
	umbraOnce sync.Once
	umbraBin  string
	umbraErr  error
	umbraDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if umbraDir != "" {
		os.RemoveAll(umbraDir)
	}
	os.Exit(code)
}

func buildUmbra(t *testing.T) string {
	t.Helper()
	umbraOnce.Do(func() {
		if umbraDir, umbraErr = os.MkdirTemp("", "umbra-bin-"); umbraErr == nil {
			umbraBin, umbraErr = devnet.BuildUmbra("../..", umbraDir)
		}
	})
	if umbraErr != nil {
		t.Fatal(umbraErr)
	}
	return umbraBin
}

func startDevnet(t *testing.T, n int) (*devnet.Devnet, []string) {
	t.Helper()
	d := devnet.StartForTest(t, devnet.Config{Dir: t.TempDir(), Nodes: n, Binary: buildUmbra(t)})
	addrs, err := swarmclient.ReadNetworkFile(d.BootstrapFile())
	if err != nil {
		t.Fatal(err)
	}
	return d, addrs
}

func befriend(t testing.TB, a, b *user) {
	t.Helper()
	if _, err := a.e.AddContact(b.id, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.e.AddContact(a.id, ""); err != nil {
		t.Fatal(err)
	}
}

// greet sends a first text from a to b, trying again while b's card can't
// be read yet, and waits until b holds it once.
func greet(ctx context.Context, t *testing.T, a, b *user, text string) {
	t.Helper()
	waitFor(t, 15*time.Second, "a first send", func() bool {
		_, err := a.e.Send(ctx, b.id, text)
		return err == nil
	})
	waitFor(t, 30*time.Second, "the first text to arrive", func() bool { return countFrom(b, a, text) == 1 })
}

// checkConversation asserts that to holds exactly the n texts from sent by
// from, once each, in the sender's order.
func checkConversation(t *testing.T, to, from *user, prefix string, n int) {
	t.Helper()
	ms, err := to.e.Messages(from.id)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, m := range ms {
		if m.Outgoing || len(m.Text) < len(prefix) || m.Text[:len(prefix)] != prefix {
			continue
		}
		if want := fmt.Sprintf("%s%d", prefix, got); m.Text != want {
			t.Fatalf("message %d from %s is %q, want %q (lost, duplicated or out of order)", got, prefix, m.Text, want)
		}
		got++
	}
	if got != n {
		t.Fatalf("%d messages %q arrived, want %d", got, prefix, n)
	}
}

func countFrom(u, from *user, prefix string) int {
	ms, _ := u.e.Messages(from.id)
	k := 0
	for _, m := range ms {
		if !m.Outgoing && len(m.Text) >= len(prefix) && m.Text[:len(prefix)] == prefix {
			k++
		}
	}
	return k
}

func countState(u, to *user, prefix, state string) int {
	ms, _ := u.e.Messages(to.id)
	k := 0
	for _, m := range ms {
		if m.Outgoing && m.State == state && len(m.Text) >= len(prefix) && m.Text[:len(prefix)] == prefix {
			k++
		}
	}
	return k
}

// TestThousandEachWayThroughKills: two clients exchange 1,000 messages each
// way while 4 of 12 node processes are killed with SIGKILL midway and later
// restarted. Every message arrives exactly once, in order per sender, and
// every sent message reaches "delivered".
func TestThousandEachWayThroughKills(t *testing.T) {
	const n = 1000
	d, net := startDevnet(t, 12)
	alice := newUser(t, net, "alice")
	bob := newUser(t, net, "bob")
	befriend(t, alice, bob)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The first message opens the session (and waits for bob's prekeys).
	waitFor(t, 30*time.Second, "the first message to be sent", func() bool {
		_, err := alice.e.Send(ctx, bob.id, "a0")
		return err == nil
	})
	killed := []int{3, 6, 9, 12}
	errs := make(chan error, 2)
	send := func(from, to *user, prefix string, start int) {
		for i := start; i < n; i++ {
			if i == n/2 && prefix == "a" {
				for _, k := range killed {
					if err := d.Kill(k); err != nil {
						errs <- err
						return
					}
				}
				t.Logf("killed nodes %v with SIGKILL after %d messages", killed, i)
			}
			if _, err := from.e.Queue(ctx, to.id, fmt.Sprintf("%s%d", prefix, i)); err != nil {
				errs <- fmt.Errorf("queue %s%d: %w", prefix, i, err)
				return
			}
			time.Sleep(time.Millisecond)
		}
		errs <- nil
	}
	go send(alice, bob, "a", 1)
	go send(bob, alice, "b", 0)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	progress := func() string {
		return fmt.Sprintf("bob has %d of alice's, alice has %d of bob's; sent: alice %d, bob %d; delivered: alice %d, bob %d",
			countFrom(bob, alice, "a"), countFrom(alice, bob, "b"),
			countState(alice, bob, "a", client.StateSent), countState(bob, alice, "b", client.StateSent),
			countState(alice, bob, "a", client.StateDelivered), countState(bob, alice, "b", client.StateDelivered))
	}
	waitFor(t, 4*time.Minute, "all messages to arrive with 4 nodes down", func() bool {
		return countFrom(bob, alice, "a") >= n && countFrom(alice, bob, "b") >= n
	}, progress)
	for _, k := range killed {
		if err := d.Restart(k); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 3*time.Minute, "every message to be delivered", func() bool {
		return countState(alice, bob, "a", client.StateDelivered) == n && countState(bob, alice, "b", client.StateDelivered) == n
	}, progress)
	checkConversation(t, bob, alice, "a", n)
	checkConversation(t, alice, bob, "b", n)
}

// TestOfflineRecipient: messages sent while the recipient's client is off
// all arrive when it comes back.
func TestOfflineRecipient(t *testing.T) {
	_, net := startDevnet(t, 12)
	alice := newUser(t, net, "alice")
	bob := newUser(t, net, "bob")
	befriend(t, alice, bob)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waitFor(t, 30*time.Second, "the first message to be sent", func() bool {
		_, err := alice.e.Send(ctx, bob.id, "x0")
		return err == nil
	})
	waitFor(t, 30*time.Second, "bob to get the first message", func() bool { return countFrom(bob, alice, "x") == 1 })
	bob.stop()
	for i := 1; i < 50; i++ {
		if _, err := alice.e.Send(ctx, bob.id, fmt.Sprintf("x%d", i)); err != nil {
			t.Fatalf("send while bob is offline: %v", err)
		}
	}
	bob.start(t)
	waitFor(t, time.Minute, "bob to receive everything sent while offline", func() bool { return countFrom(bob, alice, "x") == 50 })
	checkConversation(t, bob, alice, "x", 50)
	waitFor(t, time.Minute, "alice to see them delivered", func() bool { return countState(alice, bob, "x", client.StateDelivered) == 50 })
}

// TestSenderRestartMidSend: a sender whose outbox is full of encrypted
// messages is stopped mid-send, twice; after each restart it resends what
// was not acknowledged, and each message arrives exactly once.
func TestSenderRestartMidSend(t *testing.T) {
	_, net := startDevnet(t, 12)
	alice := newUser(t, net, "alice")
	bob := newUser(t, net, "bob")
	befriend(t, alice, bob)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waitFor(t, 30*time.Second, "the first message to be sent", func() bool {
		_, err := alice.e.Send(ctx, bob.id, "r0")
		return err == nil
	})
	// Queue the rest while alice is offline: all 199 wait in her outbox.
	const n = 200
	alice.stop()
	off, err := client.Open(ctx, client.Config{Home: alice.home, Schedule: testSchedule, Logger: quiet(), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if _, err := off.Queue(ctx, bob.id, fmt.Sprintf("r%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	off.Close()
	// Online again; stop her as soon as some, not all, have gone out.
	alice.start(t)
	waitFor(t, time.Minute, "some messages to be sent", func() bool {
		return countState(alice, bob, "r", client.StateSent)+countState(alice, bob, "r", client.StateDelivered) > 20
	})
	alice.stop()
	sent := countSent(t, alice.home)
	if sent >= n {
		t.Fatalf("all %d messages went out before the stop; the test needs a stop mid-send", sent)
	}
	t.Logf("alice stopped mid-send with %d of %d messages acknowledged", sent, n)
	alice.start(t)
	waitFor(t, 2*time.Minute, "bob to receive every message", func() bool { return countFrom(bob, alice, "r") >= n })
	time.Sleep(2 * time.Second) // would-be duplicates have time to land
	checkConversation(t, bob, alice, "r", n)
}

// countSent counts sent-or-better messages in a stopped home (reopened offline).
func countSent(t *testing.T, home string) int {
	e, err := client.Open(context.Background(), client.Config{Home: home, Schedule: testSchedule, Logger: quiet(), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ms, _ := e.Messages("")
	k := 0
	for _, m := range ms {
		if m.Outgoing && m.State != client.StateQueued {
			k++
		}
	}
	return k
}
