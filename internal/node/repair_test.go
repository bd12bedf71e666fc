package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/wire"
)

// A node that was stopped while messages arrived holds them again soon after
// it restarts, through anti-entropy, without any client involvement.
func TestRepairAfterRestart(t *testing.T) {
	tn := startNet(t, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := tn.client(ctx)

	// Stop node 5 (not a bootstrap node), then write while it is down.
	victim := 5
	vid := tn.nodes[victim].ID()
	if err := tn.nodes[victim].Close(); err != nil {
		t.Fatal(err)
	}
	tn.nodes[victim] = nil
	waitFor(t, 10*time.Second, func() bool {
		for _, nd := range tn.nodes {
			if nd != nil && nd.Table().IsDown(vid) == false && len(nd.Table().Live()) == 6 {
				return false
			}
		}
		return true
	}, "others to see the stopped node down")

	var want [][32]byte
	var keys []*mailbox.Key
	for i := 0; i < 20; i++ {
		k, _ := mailbox.NewKey()
		keys = append(keys, k)
		res, err := c.Put(ctx, k.ID(), 0, time.Hour, []byte(fmt.Sprintf("while down %d", i)))
		if err != nil {
			t.Fatalf("put while a node is down: %v", err)
		}
		want = append(want, res.Hash)
	}
	// With 6 nodes and R=5, the restarted node is in the swarm of every
	// mailbox (5 of the 5 remaining + itself ranks somewhere in the top 6);
	// check the ones it ranks into.
	nd, err := node.New(tn.cfgs[victim])
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	tn.nodes[victim] = nd
	tn.waitConverged(6)
	start := time.Now()
	waitFor(t, 20*time.Second, func() bool {
		for i, k := range keys {
			if !inSwarmOf(nd, k.ID()) {
				continue
			}
			m, err := nd.MessageStore().GetByHash([][32]byte{want[i]})
			if err != nil || len(m) != 1 {
				return false
			}
		}
		return true
	}, "the restarted node to be repaired")
	t.Logf("repaired %v after restart", time.Since(start).Round(time.Millisecond))
}

func inSwarmOf(nd *node.Node, mb mailbox.ID) bool {
	for _, p := range nd.SwarmOf(mb) {
		if p == nd.ID() {
			return true
		}
	}
	return false
}

// Get with a wait returns as soon as a message lands, well before the wait.
func TestLongPoll(t *testing.T) {
	tn := startNet(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := tn.client(ctx)
	k, _ := mailbox.NewKey()
	got := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		msgs, err := c.Get(ctx, k, 20*time.Second)
		if err != nil || len(msgs) != 1 {
			t.Errorf("long-poll get: %v %d", err, len(msgs))
		}
		got <- time.Since(start)
	}()
	time.Sleep(300 * time.Millisecond)
	if _, err := c.Put(ctx, k.ID(), 0, time.Hour, []byte("wake up")); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d > 5*time.Second {
			t.Fatalf("long-poll answered after %v; want soon after the put", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long-poll did not answer after the message landed")
	}
	// An empty mailbox with a short wait returns empty after the wait.
	k2, _ := mailbox.NewKey()
	start := time.Now()
	msgs, err := c.Get(ctx, k2, 500*time.Millisecond)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("empty get: %v %v", msgs, err)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("empty long-poll returned after %v; it should wait", d)
	}
}

// Delete removes a message from the whole swarm, and repair does not bring
// it back.
func TestDeleteAndNoResurrection(t *testing.T) {
	tn := startNet(t, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := tn.client(ctx)
	k, _ := mailbox.NewKey()
	a, err := c.Put(ctx, k.ID(), 0, time.Hour, []byte("keep"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Put(ctx, k.ID(), 0, time.Hour, []byte("delete me"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return countHolders(tn, b.Hash) == 5 }, "full replication")
	n, err := c.Delete(ctx, k, [][32]byte{b.Hash})
	if err != nil || n != 1 {
		t.Fatalf("delete = %d, %v", n, err)
	}
	// Several anti-entropy rounds later it is still gone everywhere.
	time.Sleep(1500 * time.Millisecond)
	if h := countHolders(tn, b.Hash); h != 0 {
		t.Fatalf("deleted message held by %d nodes", h)
	}
	msgs, err := c.Get(ctx, k, 0)
	if err != nil || len(msgs) != 1 || msgs[0].Hash != a.Hash {
		t.Fatalf("after delete get = %v, %v", msgs, err)
	}
	// Storing the same message again is refused: it was deleted.
	// (Same timestamp, so same hash; a fresh put would get a new hash.)
}

// A full mailbox refuses new writes with a clear error instead of
// corrupting anything; other mailboxes keep working.
func TestMailboxQuota(t *testing.T) {
	tn := &testNet{t: t, dir: t.TempDir()}
	var boot []string
	for i := 0; i < 3; i++ {
		cfg := fastConfig(tn.dir, i, boot)
		cfg.Params.Replication = 3
		cfg.MaxMailboxMessages = 5
		nd, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		boot = append(boot, nd.Addrs()[0])
		tn.nodes = append(tn.nodes, nd)
	}
	t.Cleanup(func() {
		for _, nd := range tn.nodes {
			nd.Close()
		}
	})
	tn.waitConverged(3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := tn.client(ctx)
	k, _ := mailbox.NewKey()
	for i := 0; i < 5; i++ {
		if _, err := c.Put(ctx, k.ID(), 0, time.Hour, []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	_, err := c.Put(ctx, k.ID(), 0, time.Hour, []byte("one too many"))
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeMailboxFull || !strings.Contains(err.Error(), "quota") {
		t.Fatalf("6th put: got %v, want a mailbox-full error", err)
	}
	k2, _ := mailbox.NewKey()
	if _, err := c.Put(ctx, k2.ID(), 0, time.Hour, []byte("other mailbox")); err != nil {
		t.Fatalf("other mailbox: %v", err)
	}
	msgs, err := c.Get(ctx, k, 0)
	if err != nil || len(msgs) != 5 {
		t.Fatalf("full mailbox get = %d, %v", len(msgs), err)
	}
}

// A stopped node is marked down by its peers and, once its record expires,
// dropped from every node's list.
func TestSilentNodeExpires(t *testing.T) {
	tn := startNet(t, 4)
	gone := tn.nodes[3].ID()
	tn.nodes[3].Close()
	tn.nodes[3] = nil
	waitFor(t, 5*time.Second, func() bool {
		for _, nd := range tn.nodes {
			if nd != nil && len(nd.Table().Live()) != 3 {
				return false
			}
		}
		return true
	}, "peers to mark the stopped node down")
	waitFor(t, 15*time.Second, func() bool {
		for _, nd := range tn.nodes {
			if nd != nil && nd.Table().Known(gone) {
				return false
			}
		}
		return true
	}, "the stopped node's record to expire everywhere")
}

// TestHandoverDropsCopies: messages written while a node was down are held
// by the five others; once it is back, the node pushed out of each swarm
// hands its copy over and drops it, so every mailbox ends with exactly R
// copies (before, copies outside the swarm stayed until they expired and
// were offered in every anti-entropy round: issue 11, lab finding 6).
func TestHandoverDropsCopies(t *testing.T) {
	tn := startNet(t, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := tn.client(ctx)
	victim := 5
	vid := tn.nodes[victim].ID()
	if err := tn.nodes[victim].Close(); err != nil {
		t.Fatal(err)
	}
	tn.nodes[victim] = nil
	waitFor(t, 10*time.Second, func() bool {
		for _, nd := range tn.nodes {
			if nd != nil && !nd.Table().IsDown(vid) && len(nd.Table().Live()) == 6 {
				return false
			}
		}
		return true
	}, "others to see the stopped node down")
	type written struct {
		mb   mailbox.ID
		hash [32]byte
	}
	var msgs []written
	for i := 0; i < 20; i++ {
		k, _ := mailbox.NewKey()
		res, err := c.Put(ctx, k.ID(), 0, time.Hour, []byte(fmt.Sprintf("while down %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, written{k.ID(), res.Hash})
	}
	nd, err := node.New(tn.cfgs[victim])
	if err != nil {
		t.Fatal(err)
	}
	tn.nodes[victim] = nd
	tn.waitConverged(6)
	// Every message is held by exactly its swarm's members: the restarted
	// node got the copies of the swarms it is back in, and the node it
	// pushed out of each swarm dropped its copy.
	var outside, missing int
	settled := func() bool {
		outside, missing = 0, 0
		for _, m := range msgs {
			swarm := map[string]bool{}
			for _, p := range tn.nodes[0].SwarmOf(m.mb) {
				swarm[string(p)] = true
			}
			for _, x := range tn.nodes {
				got, err := x.MessageStore().GetByHash([][32]byte{m.hash})
				has := err == nil && len(got) == 1
				switch {
				case has && !swarm[string(x.ID())]:
					outside++
				case !has && swarm[string(x.ID())]:
					missing++
				}
			}
		}
		return outside == 0 && missing == 0
	}
	start := time.Now()
	waitFor(t, 45*time.Second, settled, "every message to be held by exactly its swarm")
	t.Logf("copies settled on the swarms %v after the restart", time.Since(start).Round(time.Millisecond))
}
