package client_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/node"
)

// inboundLog records, per node, the peers that opened a connection to it.
type inboundLog struct {
	mu   sync.Mutex
	seen map[peer.ID][]peer.ID // node -> remote peers, in order
}

func (l *inboundLog) watch(nd *node.Node) {
	self := nd.ID()
	nd.Host().Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.Stat().Direction != network.DirInbound {
			return
		}
		l.mu.Lock()
		l.seen[self] = append(l.seen[self], c.RemotePeer())
		l.mu.Unlock()
	}})
}

func (l *inboundLog) reset() {
	l.mu.Lock()
	l.seen = map[peer.ID][]peer.ID{}
	l.mu.Unlock()
}

// strangers lists, for the node, inbound peers that are neither nodes nor
// one of allowed.
func (l *inboundLog) strangers(at peer.ID, nodes map[peer.ID]bool, allowed ...peer.ID) []peer.ID {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []peer.ID
	for _, p := range l.seen[at] {
		if !nodes[p] && !slices.Contains(allowed, p) {
			out = append(out, p)
		}
	}
	return out
}

// TestNoDirectBootstrapAfterFirstRun: a client's first run fetches the
// node list from a bootstrap node directly; later runs of the same home
// (a daemon-like engine and a CLI-like open and close) start from the
// stored list and refresh it through onion paths, so no bootstrap node
// sees a connection from the client except its own onion host (when it is
// the first hop); they still send and receive. A stored list older than
// swarmclient.MaxListAge falls back to the bootstrap nodes.
func TestNoDirectBootstrapAfterFirstRun(t *testing.T) {
	const n = 8
	nodes, addrs := startNodeSet(t, n, nil)
	isNode := map[peer.ID]bool{}
	for _, nd := range nodes {
		isNode[nd.ID()] = true
	}
	log := &inboundLog{seen: map[peer.ID][]peer.ID{}}
	// The clients know only two of the nodes as bootstrap nodes.
	boot := nodes[:2]
	for _, b := range boot {
		log.watch(b)
	}
	// strangersAtBoot counts inbound connections to bootstrap nodes from
	// peers that are neither nodes nor allowed.
	strangersAtBoot := func(allowed ...peer.ID) int {
		k := 0
		for _, b := range boot {
			k += len(log.strangers(b.ID(), isNode, allowed...))
		}
		return k
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mk := func(name string) *user {
		home := filepath.Join(t.TempDir(), name)
		acct, err := client.Init(home, "", addrs[:2], "")
		if err != nil {
			t.Fatal(err)
		}
		return &user{home: home, id: acct.ID().String()}
	}
	alice, bob := mk("alice"), mk("bob")

	// First runs: the node list comes from a bootstrap node, directly.
	log.reset()
	alice.start(t)
	if f := alice.e.Network().BootstrapFetches(); f == 0 {
		t.Fatal("a first run fetched no node list from a bootstrap node")
	}
	if k := strangersAtBoot(alice.e.Network().Host().ID()); k == 0 {
		t.Fatal("the bootstrap nodes saw no direct fetch on a first run")
	}
	bob.start(t)
	befriend(t, alice, bob)
	waitFor(t, 30*time.Second, "a first send to succeed", func() bool {
		_, err := alice.e.Send(ctx, bob.id, "m0")
		return err == nil
	})
	waitFor(t, 30*time.Second, "bob to receive the first message", func() bool { return countFrom(bob, alice, "m") == 1 })
	alice.stop()

	// Second run of alice's home: nothing but onion traffic.
	log.reset()
	alice.start(t)
	if f := alice.e.Network().BootstrapFetches(); f != 0 {
		t.Fatalf("a second run fetched the node list from bootstrap nodes %d times", f)
	}
	if _, err := alice.e.Send(ctx, bob.id, "m1"); err != nil {
		t.Fatalf("send on a second run: %v", err)
	}
	waitFor(t, 30*time.Second, "bob to receive from alice's second run", func() bool { return countFrom(bob, alice, "m") == 2 })
	if _, err := bob.e.Send(ctx, alice.id, "r0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "alice's second run to receive", func() bool { return countFrom(alice, bob, "r") == 1 })
	if err := alice.e.Network().Refresh(ctx); err != nil { // as refreshLoop does
		t.Fatalf("refresh through onion paths: %v", err)
	}
	if f := alice.e.Network().BootstrapFetches(); f != 0 {
		t.Fatalf("a refresh fetched the node list from bootstrap nodes %d times", f)
	}
	if k := strangersAtBoot(alice.e.Network().Host().ID(), bob.e.Network().Host().ID()); k != 0 {
		t.Fatalf("on a second run the bootstrap nodes saw %d connections from other client hosts (direct fetches)", k)
	}
	aliceHost := alice.e.Network().Host().ID()
	for _, b := range boot {
		if slices.Contains(log.strangers(b.ID(), isNode, bob.e.Network().Host().ID()), aliceHost) {
			t.Logf("bootstrap node %s was a first hop of alice's (guards %v)", b.ID().ShortString(), alice.e.Guards())
		}
	}
	alice.stop()

	// A CLI command: open, one request, close.
	log.reset()
	e, err := client.Open(ctx, client.Config{Home: alice.home, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.PublishPrekeys(ctx); err != nil {
		t.Fatalf("a request from a CLI-style open: %v", err)
	}
	fetches, cliHost := e.Network().BootstrapFetches(), e.Network().Host().ID()
	e.Close()
	if fetches != 0 {
		t.Fatalf("a CLI-style open fetched the node list from bootstrap nodes %d times", fetches)
	}
	if k := strangersAtBoot(cliHost, bob.e.Network().Host().ID()); k != 0 {
		t.Fatalf("a CLI-style open showed the bootstrap nodes %d direct connections", k)
	}

	// A stored list older than MaxListAge: back to the bootstrap nodes.
	restore := client.SetNetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
	defer restore()
	log.reset()
	e, err = client.Open(ctx, client.Config{Home: alice.home, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	fetches, cliHost = e.Network().BootstrapFetches(), e.Network().Host().ID()
	e.Close()
	if fetches == 0 {
		t.Fatal("a stale stored list was used instead of asking a bootstrap node")
	}
	if k := strangersAtBoot(cliHost, bob.e.Network().Host().ID()); k == 0 {
		t.Fatal("the bootstrap nodes saw no direct fetch for a stale stored list")
	}
}
