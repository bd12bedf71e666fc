package devnet_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

var umbraBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "umbra-bin-")
	if err != nil {
		panic(err)
	}
	if umbraBin, err = devnet.BuildUmbra("../..", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type sent struct {
	key    *mailbox.Key
	hashes map[[32]byte]bool
}

// TestKillThirdLosesNothing is the node network's promise on real
// processes: 12 nodes, 500 messages over 100 mailboxes, kill -9 of 4 nodes
// at once, and every acknowledged message is still retrievable; messages
// stored while they are down reach them after restart by repair.
func TestKillThirdLosesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, err := devnet.Start(devnet.Config{Dir: t.TempDir(), Nodes: 12, Binary: umbraBin})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Stop(); err != nil {
			t.Errorf("graceful stop: %v", err)
		}
	}()
	if err := d.WaitReady(ctx, 12); err != nil {
		t.Fatal(err)
	}
	boot, err := swarmclient.ReadNetworkFile(d.BootstrapFile())
	if err != nil {
		t.Fatal(err)
	}
	c, err := swarmclient.Dial(ctx, boot)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	boxes := make([]*sent, 100)
	for i := range boxes {
		k, _ := mailbox.NewKey()
		boxes[i] = &sent{key: k, hashes: map[[32]byte]bool{}}
	}
	put := func(n, from int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := from; i < from+n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				b := boxes[i%len(boxes)]
				res, err := c.Put(ctx, b.key.ID(), 0, time.Hour, fmt.Appendf(nil, "message %d", i))
				if err != nil {
					t.Errorf("put %d: %v", i, err)
					return
				}
				mu.Lock()
				b.hashes[res.Hash] = true
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	put(500, 0)
	if t.Failed() {
		t.FailNow()
	}

	killed := []int{2, 5, 8, 11}
	for _, i := range killed {
		if err := d.Kill(i); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("killed nodes %v with SIGKILL", killed)
	checkAll := func(stage string) {
		total := 0
		for bi, b := range boxes {
			msgs, err := c.Get(ctx, b.key, 0)
			if err != nil {
				t.Fatalf("%s: get mailbox %d: %v", stage, bi, err)
			}
			got := map[[32]byte]bool{}
			for _, m := range msgs {
				got[m.Hash] = true
			}
			for h := range b.hashes {
				if !got[h] {
					t.Errorf("%s: mailbox %d lost message %x", stage, bi, h[:6])
				}
			}
			total += len(b.hashes)
		}
		t.Logf("%s: all %d acknowledged messages retrieved", stage, total)
	}
	checkAll("after kill -9 of 4 nodes")

	// Messages that arrive while the 4 nodes are down.
	put(100, 500)
	checkAll("stored while 4 nodes down")

	for _, i := range killed {
		if err := d.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	restarted := time.Now()
	if err := d.WaitReady(ctx, 12); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// Every restarted node must come to hold every message of every
	// mailbox whose swarm it is in: read each such mailbox from it alone.
	deadline := time.Now().Add(60 * time.Second)
	checked := 0
	for _, ki := range killed {
		p := d.Procs[ki-1]
		for bi, b := range boxes {
			for _, n := range c.Swarm(b.key.ID()) {
				if n.ID != p.ID {
					continue
				}
				checked++
				for {
					have, err := heldBy(ctx, c, n, b)
					if have == len(b.hashes) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("restarted node %d holds %d of %d messages of mailbox %d (err %v)", ki, have, len(b.hashes), bi, err)
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no restarted node is in any swarm: the repair check checked nothing")
	}
	t.Logf("restarted nodes repaired %.1fs after restart", time.Since(restarted).Seconds())
	checkAll("after restart and repair")
}

// heldBy counts the messages of b that node n alone holds.
func heldBy(ctx context.Context, c *swarmclient.Client, n *member.Node, b *sent) (int, error) {
	resp, err := c.Retrieve(ctx, n, b.key, nil, 0)
	if err != nil {
		return 0, err
	}
	have := 0
	for _, m := range resp.Messages {
		if b.hashes[[32]byte(m.Hash)] {
			have++
		}
	}
	return have, nil
}

// TestOnionSurvivesGuardAndExitLoss kills, with SIGKILL, the guards a
// client is using (while a long-poll is in flight through them) and then an
// exit; the client's next requests still succeed on new paths.
func TestOnionSurvivesGuardAndExitLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := devnet.Start(devnet.Config{Dir: t.TempDir(), Nodes: 12, Binary: umbraBin})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	if err := d.WaitReady(ctx, 12); err != nil {
		t.Fatal(err)
	}
	boot, _ := swarmclient.ReadNetworkFile(d.BootstrapFile())
	c, err := swarmclient.Dial(ctx, boot)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key, _ := mailbox.NewKey()
	if _, err := c.Put(ctx, key.ID(), 0, time.Hour, []byte("before")); err != nil {
		t.Fatal(err)
	}
	index := map[string]int{}
	for _, p := range d.Procs {
		index[p.ID.String()] = p.Index
	}
	guards := c.Paths().Guards()
	if len(guards) != 2 {
		t.Fatalf("client has %d guards, want 2", len(guards))
	}
	// A long-poll on an empty mailbox is in flight through the guards...
	empty, _ := mailbox.NewKey()
	polled := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, empty, 5*time.Second)
		polled <- err
	}()
	time.Sleep(500 * time.Millisecond)
	// ...when both guards die.
	for _, g := range guards {
		if err := d.Kill(index[g.String()]); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("killed both guards (nodes %d and %d) mid-request", index[guards[0].String()], index[guards[1].String()])
	<-polled // may fail or succeed by retrying; what matters is the next request
	res, err := c.Put(ctx, key.ID(), 0, time.Hour, []byte("after guard loss"))
	if err != nil {
		t.Fatalf("put after losing both guards: %v", err)
	}
	msgs, err := c.Get(ctx, key, 0)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("get after losing both guards: %d messages, %v", len(msgs), err)
	}
	now := c.Paths().Guards()
	for _, g := range now {
		if g == guards[0] || g == guards[1] {
			t.Fatalf("a dead guard is still in use: %v", now)
		}
	}
	// Now kill a live exit: a swarm member of the mailbox.
	var exit int
	for _, n := range c.Swarm(key.ID()) {
		if i := index[n.ID.String()]; d.Procs[i-1].Running() && !slices.Contains(now, n.ID) {
			exit = i
			break
		}
	}
	if exit == 0 {
		t.Fatal("no live swarm member to kill")
	}
	if err := d.Kill(exit); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, key.ID(), 0, time.Hour, []byte("after exit loss")); err != nil {
		t.Fatalf("put after losing an exit: %v", err)
	}
	msgs, err = c.Get(ctx, key, 0)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("get after losing an exit: %d messages, %v", len(msgs), err)
	}
	_ = res
}
