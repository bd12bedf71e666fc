package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/wire"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startNodes runs n in-process nodes on 127.0.1.x and returns their addresses.
func startNodes(t *testing.T, n int) []string {
	t.Helper()
	dir := t.TempDir()
	var boot []string
	for i := 0; i < n; i++ {
		nd, err := node.New(node.Config{
			DataDir:        filepath.Join(dir, fmt.Sprintf("node-%d", i)),
			Listen:         []string{fmt.Sprintf("/ip4/127.0.1.%d/tcp/0", i+1)},
			Bootstrap:      boot,
			Params:         wire.Params{Network: "test", Replication: 5, PoWBits: 4},
			GossipInterval: 100 * time.Millisecond,
			SyncInterval:   500 * time.Millisecond,
			ProbeInterval:  200 * time.Millisecond,
			Logger:         quiet(),
		})
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
	e, err := client.Open(ctx, client.Config{Home: u.home, Logger: quiet()})
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

// waitMsgs waits until u holds n messages with peer matching pred.
func waitFor(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(50 * time.Millisecond)
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
