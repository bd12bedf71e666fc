package client_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/node/nodetest"
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
func startNodes(t testing.TB, n int) []string {
	t.Helper()
	return startNodesCfg(t, n, nil)
}

// startNodesCfg is startNodes with a change to every node's configuration.
func startNodesCfg(t testing.TB, n int, change func(*node.Config)) []string {
	t.Helper()
	_, addrs := startNodeSet(t, n, change)
	return addrs
}

// startNodeSet runs n in-process nodes on 127.0.x.1, each configured by
// change (if not nil), and waits until every node lists every other live;
// it returns the nodes and their addresses.
func startNodeSet(t testing.TB, n int, change func(*node.Config)) ([]*node.Node, []string) {
	t.Helper()
	dir := t.TempDir()
	var boot []string
	var nodes []*node.Node
	for i := 0; i < n; i++ {
		cfg := nodetest.Config(dir, i, boot)
		if change != nil {
			change(&cfg)
		}
		nd, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Close() })
		boot = append(boot, nd.Addrs()[0])
		nodes = append(nodes, nd)
	}
	// Every node knows every other live before a client asks for the
	// list: on a loaded machine gossip takes a while, and clients that
	// ask too early get lists that agree on nothing.
	deadline := time.Now().Add(60 * time.Second)
	for _, nd := range nodes {
		for len(nd.Table().Live()) < n && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if k := len(nd.Table().Live()); k < n {
			t.Fatalf("node %s knows %d of %d nodes after a minute", nd.ID(), k, n)
		}
	}
	return nodes, boot
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

// testSchedule reads often and without long pauses, so tests run fast.
var testSchedule = client.Schedule{
	PollWait:   [2]time.Duration{2 * time.Second, 5 * time.Second},
	PollGap:    [2]time.Duration{10 * time.Millisecond, 100 * time.Millisecond},
	CatchUpGap: [2]time.Duration{10 * time.Millisecond, 50 * time.Millisecond},
}
