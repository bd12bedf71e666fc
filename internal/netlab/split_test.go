//go:build linux

package netlab_test

import (
	"slices"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/netlab"
	"github.com/umbra-im/umbra/internal/node"
)

// TestSplitHeals (issue 11, finding 5): 8 real nodes, every one
// bootstrapped from node 1 only. The lab is split in halves {1..4} and
// {5..8} for longer than a record's lifetime, so each half forgets the
// other; node 1 is then killed and the split healed. The halves must
// merge (every running node lists every running node live) within 30 s,
// though no node's bootstrap list can help.
func TestSplitHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds umbra and runs 8 nodes")
	}
	const nodes = 8
	const ttl = 12 * time.Second
	hosts := make([]netlab.HostConfig, nodes)
	for i := range hosts {
		hosts[i].Delay = 10 * time.Millisecond
	}
	lab := netlab.NewForTest(t, netlab.Config{Hosts: hosts})
	bin, err := devnet.BuildUmbra("../..", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := startNodesWith(t, lab, bin, nodes, func(c *devnet.Config) {
		c.BootstrapNodes = 1
		c.NodeArgs = append(c.NodeArgs, "--record-ttl", ttl.String())
	})
	ids := make([]string, nodes+1)
	for i := 1; i <= nodes; i++ {
		ids[i] = d.Procs[i-1].ID.String()
	}
	half := func(lo, hi int) (hs []*netlab.Host, idx []int) {
		for i := lo; i <= hi; i++ {
			hs = append(hs, lab.Host(i))
			idx = append(idx, i)
		}
		return
	}
	ha, a := half(1, 4)
	hb, b := half(5, 8)
	lab.Partition(ha, hb)
	t0 := time.Now()
	// Wait until each half has forgotten the other (records expired, not
	// merely marked down).
	forgot := func(other []int) func(*node.Peers) bool {
		return func(p *node.Peers) bool {
			for _, j := range other {
				if slices.Contains(p.Live, ids[j]) || slices.Contains(p.Down, ids[j]) {
					return false
				}
			}
			return true
		}
	}
	limit := ttl + 15*time.Second
	ga := waitViews(lab, d, a, t0, limit, forgot(b))
	gb := waitViews(lab, d, b, t0, limit, forgot(a))
	if len(ga)+len(gb) != nodes {
		t.Fatalf("after %v of split, %d of %d nodes had forgotten the other half", limit, len(ga)+len(gb), nodes)
	}
	t.Logf("halves forgot each other %v after the split", time.Since(t0).Round(100*time.Millisecond))
	// A record that has just expired may linger in a table until its next
	// sweep (and its node be probed meanwhile): let the split last a
	// little longer, as real splits do.
	time.Sleep(6 * time.Second)

	if err := d.Kill(1); err != nil {
		t.Fatal(err)
	}
	lab.Heal()
	start := time.Now()
	running := []int{2, 3, 4, 5, 6, 7, 8}
	const want = 30 * time.Second
	got := waitViews(lab, d, running, start, want, func(p *node.Peers) bool {
		for _, j := range running {
			if !slices.Contains(p.Live, ids[j]) {
				return false
			}
		}
		return true
	})
	var worst time.Duration
	for _, i := range running {
		dt, ok := got[i]
		if !ok {
			p, _ := peersOf(t.Context(), lab, d, i)
			t.Errorf("node %d does not see every running node %v after healing: %+v", i, want, p)
			continue
		}
		worst = max(worst, dt)
	}
	if t.Failed() {
		dumpLogs(t, d, 3000)
	}
	t.Logf("merged: %d of %d nodes see all %d running nodes, the last %v after healing", len(got), len(running), len(running), worst.Round(100*time.Millisecond))
}
