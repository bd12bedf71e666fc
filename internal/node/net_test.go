package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/node/nodetest"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

// testNet is N in-process nodes on 127.0.0.1 with fast timers.
type testNet struct {
	t     testing.TB
	dir   string
	nodes []*node.Node
	cfgs  []node.Config
}

func fastConfig(dir string, i int, boot []string) node.Config {
	c := nodetest.Config(dir, i, boot)
	c.RecordTTL = 10 * time.Second
	return c
}

func startNet(t testing.TB, n int) *testNet { return startNetCfg(t, n, nil) }

// startNetCfg starts n nodes, letting mod adjust each node's config.
func startNetCfg(t testing.TB, n int, mod func(i int, c *node.Config)) *testNet {
	t.Helper()
	tn := &testNet{t: t, dir: t.TempDir()}
	var boot []string
	for i := 0; i < n; i++ {
		cfg := fastConfig(tn.dir, i, boot)
		if mod != nil {
			mod(i, &cfg)
		}
		nd, err := node.New(cfg)
		if err != nil {
			t.Fatalf("start node %d: %v", i, err)
		}
		if i < 3 {
			boot = append(boot, nd.Addrs()[0])
		}
		tn.nodes = append(tn.nodes, nd)
		tn.cfgs = append(tn.cfgs, cfg)
	}
	t.Cleanup(func() {
		for _, nd := range tn.nodes {
			if nd != nil {
				nd.Close()
			}
		}
	})
	tn.waitConverged(n)
	return tn
}

func (tn *testNet) boot() []string {
	var b []string
	for _, nd := range tn.nodes[:3] {
		if nd != nil {
			b = append(b, nd.Addrs()[0])
		}
	}
	return b
}

// waitConverged waits until every running node sees want live nodes.
func (tn *testNet) waitConverged(want int) {
	tn.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, nd := range tn.nodes {
			if nd != nil && len(nd.Table().Live()) != want {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, nd := range tn.nodes {
		if nd != nil {
			tn.t.Logf("node %d sees %d live", i, len(nd.Table().Live()))
		}
	}
	tn.t.Fatalf("nodes did not converge on %d live nodes", want)
}

func (tn *testNet) client(ctx context.Context) *swarmclient.Client {
	tn.t.Helper()
	c, err := swarmclient.Dial(ctx, tn.boot())
	if err != nil {
		tn.t.Fatalf("client: %v", err)
	}
	tn.t.Cleanup(func() { c.Close() })
	return c
}

func TestPutGetQuorum(t *testing.T) {
	tn := startNet(t, 7)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := tn.client(ctx)
	if got := len(c.Nodes()); got != 7 {
		t.Fatalf("client knows %d nodes, want 7", got)
	}
	key, _ := mailbox.NewKey()
	res, err := c.Put(ctx, key.ID(), 0, time.Hour, []byte("hello"))
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if res.Receipts < 3 {
		t.Fatalf("receipts = %d, want >= 3", res.Receipts)
	}
	msgs, err := c.Get(ctx, key, 0)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(msgs) != 1 || string(msgs[0].Data) != "hello" || msgs[0].Hash != res.Hash {
		t.Fatalf("get = %+v", msgs)
	}
	// all R swarm members hold it soon (background fan-out)
	waitFor(t, 5*time.Second, func() bool { return countHolders(tn, res.Hash) == 5 }, "5 replicas")
}

func countHolders(tn *testNet, h [32]byte) int {
	k := 0
	for _, nd := range tn.nodes {
		if nd == nil {
			continue
		}
		m, err := nd.MessageStore().GetByHash([][32]byte{h})
		if err == nil && len(m) == 1 {
			k++
		}
	}
	return k
}

func waitFor(t *testing.T, d time.Duration, f func() bool, what string) {
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
