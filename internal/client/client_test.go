package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/wire"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testLogger is quiet unless UMBRA_TEST_LOG names a folder: then each
// engine logs (at debug level) to a file there named after its home.
func testLogger(t *testing.T, home string) *slog.Logger {
	dir := os.Getenv("UMBRA_TEST_LOG")
	if dir == "" {
		return quiet()
	}
	f, err := os.OpenFile(filepath.Join(dir, filepath.Base(home)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startNodes runs n in-process nodes on 127.0.x.1 and returns their addresses.
func startNodes(t *testing.T, n int) []string {
	t.Helper()
	return startNodesCfg(t, n, nil)
}

// startNodesCfg is startNodes with a change to every node's configuration.
func startNodesCfg(t *testing.T, n int, change func(*node.Config)) []string {
	t.Helper()
	dir := t.TempDir()
	var boot []string
	for i := 0; i < n; i++ {
		cfg := node.Config{
			DataDir:        filepath.Join(dir, fmt.Sprintf("node-%d", i)),
			Listen:         []string{fmt.Sprintf("/ip4/127.0.%d.1/tcp/0", i+1)},
			Bootstrap:      boot,
			Params:         wire.Params{Network: "test", Replication: 5, PoWBits: 4},
			GossipInterval: 100 * time.Millisecond,
			SyncInterval:   500 * time.Millisecond,
			ProbeInterval:  200 * time.Millisecond,
			Logger:         quiet(),
		}
		if change != nil {
			change(&cfg)
		}
		nd, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Close() })
		boot = append(boot, nd.Addrs()[0])
	}
	return boot
}

type user struct {
	home string
	e    *client.Engine
	id   string
}

func newUser(t *testing.T, net []string, name string) *user {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	acct, err := client.Init(home, "", net, "")
	if err != nil {
		t.Fatal(err)
	}
	u := &user{home: home, id: acct.ID().String()}
	u.start(t)
	return u
}

func (u *user) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := client.Open(ctx, client.Config{Home: u.home, Schedule: testSchedule, Logger: testLogger(t, u.home)})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	u.e = e
	t.Cleanup(func() { u.stop() })
}

func (u *user) stop() {
	if u.e != nil {
		u.e.Close()
		u.e = nil
	}
}

// waitFor polls f until it holds or d passes; then it fails, saying what
// it waited for and, if given, the progress made. It logs progress every
// 20 s while it waits.
func waitFor(t *testing.T, d time.Duration, what string, f func() bool, progress ...func() string) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(d)
	lastLog := start
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		if len(progress) > 0 && time.Since(lastLog) > 20*time.Second {
			t.Logf("waiting %s for %s: %s", time.Since(start).Round(time.Second), what, progress[0]())
			lastLog = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(progress) > 0 {
		t.Fatalf("timed out waiting for %s: %s", what, progress[0]())
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestChatEndToEnd(t *testing.T) {
	net := startNodes(t, 7)
	time.Sleep(time.Second)
	alice := newUser(t, net, "alice")
	bob := newUser(t, net, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if _, err := alice.e.AddContact(bob.id, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.e.AddContact(alice.id, "alice"); err != nil {
		t.Fatal(err)
	}
	// bob's prekeys must be published before alice can start a session
	var m *client.Message
	waitFor(t, 15*time.Second, "a first send to succeed", func() bool {
		var err error
		m, err = alice.e.Send(ctx, bob.id, "hello bob")
		return err == nil
	})
	if m.State != client.StateSent {
		t.Fatalf("send returned state %q, want sent", m.State)
	}
	waitFor(t, 15*time.Second, "bob to receive", func() bool {
		ms, _ := bob.e.Messages(alice.id)
		return len(ms) == 1 && ms[0].Text == "hello bob"
	})
	waitFor(t, 15*time.Second, "alice's message to be delivered", func() bool {
		ms, _ := alice.e.Messages(bob.id)
		return len(ms) == 1 && ms[0].State == client.StateDelivered
	})
	// bob answers over the pairwise mailboxes, then reads
	if _, err := bob.e.Send(ctx, alice.id, "hi alice"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "alice to receive the answer", func() bool {
		ms, _ := alice.e.Messages(bob.id)
		return len(ms) == 2
	})
	if n, err := bob.e.MarkRead(ctx, alice.id); err != nil || n != 1 {
		t.Fatalf("mark read: %d, %v", n, err)
	}
	waitFor(t, 15*time.Second, "a read receipt", func() bool {
		ms, _ := alice.e.Messages(bob.id)
		for _, m := range ms {
			if m.Outgoing && m.State == client.StateRead {
				return true
			}
		}
		return false
	})
}

// TestCrossingFirstMessages: both sides write first, at once, each before
// it has seen the other's first message, so each starts a session of its
// own. Nothing is lost: every message opens on the session it was sealed
// with, and both sides end up sending on the same session.
func TestCrossingFirstMessages(t *testing.T) {
	net := startNodes(t, 7)
	time.Sleep(time.Second)
	alice := newUser(t, net, "alice")
	bob := newUser(t, net, "bob")
	befriend(t, alice, bob)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, u := range []*user{alice, bob} {
		if err := u.e.PublishPrekeys(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const n = 30
	errs := make(chan error, 2)
	for _, p := range []struct {
		from, to *user
		prefix   string
	}{{alice, bob, "a"}, {bob, alice, "b"}} {
		go func() {
			for i := range n {
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
		return countFrom(bob, alice, "a") == n && countFrom(alice, bob, "b") == n
	}, func() string {
		return fmt.Sprintf("bob has %d, alice has %d", countFrom(bob, alice, "a"), countFrom(alice, bob, "b"))
	})
	checkConversation(t, bob, alice, "a", n)
	checkConversation(t, alice, bob, "b", n)
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
}

// TestGuardsKeptAcrossRestarts: a restarted client uses the guards it had.
func TestGuardsKeptAcrossRestarts(t *testing.T) {
	net := startNodes(t, 7)
	time.Sleep(time.Second)
	alice := newUser(t, net, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := alice.e.PublishPrekeys(ctx); err != nil { // a request through onion paths picks guards
		t.Fatal(err)
	}
	before := alice.e.Guards()
	if len(before) != 2 {
		t.Fatalf("%d guards after a request, want 2", len(before))
	}
	alice.stop()
	alice.start(t)
	if got := alice.e.Guards(); !slices.Equal(got, before) {
		t.Fatalf("guards after a restart %v, want %v", got, before)
	}
	if err := alice.e.PublishPrekeys(ctx); err != nil {
		t.Fatal(err)
	}
	if got := alice.e.Guards(); !slices.Equal(got, before) {
		t.Fatalf("guards after a request on restart %v, want %v", got, before)
	}
}

// TestPrekeyRotation: a week after the last rotation the published bundle
// carries a new signed prekey and last-resort ML-KEM prekey, and a first
// message built on the bundle published before still opens.
func TestPrekeyRotation(t *testing.T) {
	net := startNodes(t, 5)
	time.Sleep(time.Second)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	home := filepath.Join(t.TempDir(), "bob")
	acct, err := client.Init(home, "", net, "")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := client.Open(ctx, client.Config{Home: home, Schedule: testSchedule, Logger: testLogger(t, home), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	alice := newUser(t, net, "alice")
	befriend(t, alice, &user{e: bob, id: acct.ID().String()})
	if err := bob.PublishPrekeys(ctx); err != nil {
		t.Fatal(err)
	}
	before := bob.CurrentBundle(t)
	// alice seals her first message against the bundle published now...
	if _, err := alice.e.Queue(ctx, acct.ID().String(), "on the old bundle"); err != nil {
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
	// ...and bob, now on the new keys, still opens it.
	bob.Start()
	bu := &user{e: bob, id: acct.ID().String()}
	waitFor(t, 30*time.Second, "bob to open the message sealed against the old bundle", func() bool {
		return countFrom(bu, alice, "on the old") == 1
	})
}

// TestOfflineAcrossEpochs: pairwise mailboxes rotate every epoch and the
// long-polls cover only the last two; a recipient offline for several
// epochs still gets what was sent meanwhile (the catch-up reads back), and
// so does the CLI path (SyncOnce).
func TestOfflineAcrossEpochs(t *testing.T) {
	net := startNodes(t, 5)
	time.Sleep(time.Second)
	const period = 2 * time.Second
	mk := func(name string) *user {
		home := filepath.Join(t.TempDir(), name)
		acct, err := client.Init(home, "", net, "")
		if err != nil {
			t.Fatal(err)
		}
		return &user{home: home, id: acct.ID().String()}
	}
	open := func(u *user) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		e, err := client.Open(ctx, client.Config{Home: u.home, Schedule: testSchedule, Logger: testLogger(t, u.home), EpochPeriod: period})
		if err != nil {
			t.Fatal(err)
		}
		e.Start()
		u.e = e
		t.Cleanup(func() { u.stop() })
	}
	alice, bob := mk("alice"), mk("bob")
	open(alice)
	open(bob)
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
	// The CLI path: an offline-started engine syncing once.
	e, err := client.Open(ctx, client.Config{Home: bob.home, Schedule: testSchedule, Logger: quiet(), EpochPeriod: period})
	if err != nil {
		t.Fatal(err)
	}
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
	open(bob)
	waitFor(t, 30*time.Second, "bob's engine to catch up on e2", func() bool { return countFrom(bob, alice, "e") == 3 })
}

// TestReceiveSurvivesWriteFailures: while the recipient's database refuses
// writes, received messages are neither lost nor marked seen; once writes
// work again, each arrives exactly once.
func TestReceiveSurvivesWriteFailures(t *testing.T) {
	net := startNodes(t, 5)
	time.Sleep(time.Second)
	alice := newUser(t, net, "alice")
	home := filepath.Join(t.TempDir(), "bob")
	acct, err := client.Init(home, "", net, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	be, err := client.Open(ctx, client.Config{Home: home, Schedule: testSchedule, Logger: testLogger(t, home)})
	if err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	be.FailWritesWhen(&fail)
	be.Start()
	defer be.Close()
	bob := &user{home: home, e: be, id: acct.ID().String()}
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
	time.Sleep(3 * time.Second) // bob reads them and fails to store them
	if n := countFrom(bob, alice, "w"); n != 1 {
		t.Fatalf("bob holds %d messages while his writes fail, want 1", n)
	}
	fail.Store(false)
	waitFor(t, 30*time.Second, "bob to store them once writes work", func() bool { return countFrom(bob, alice, "w") == 4 })
	time.Sleep(time.Second)
	checkConversation(t, bob, alice, "w", 4)
}

// testSchedule reads often and without long pauses, so tests run fast.
var testSchedule = client.Schedule{
	PollWait:   [2]time.Duration{2 * time.Second, 5 * time.Second},
	PollGap:    [2]time.Duration{10 * time.Millisecond, 100 * time.Millisecond},
	CatchUpGap: [2]time.Duration{10 * time.Millisecond, 50 * time.Millisecond},
}
