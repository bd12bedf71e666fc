//go:build linux

package netlab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/netlab"
	"github.com/umbra-im/umbra/internal/node"
)

// peersOf fetches node i's /peers (its live and down nodes).
func peersOf(ctx context.Context, lab *netlab.Lab, d *devnet.Devnet, i int) (*node.Peers, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.Procs[i-1].AdminURL()+"/peers", nil)
	if err != nil {
		return nil, err
	}
	resp, err := lab.Host(i).HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var p node.Peers
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

// waitViews polls the nodes in watchers every 100 ms until ok holds for
// each node's /peers or limit passes, and returns when each first held
// (zero for never), measured from start.
func waitViews(lab *netlab.Lab, d *devnet.Devnet, watchers []int, start time.Time, limit time.Duration, ok func(*node.Peers) bool) map[int]time.Duration {
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(limit))
	defer cancel()
	var mu sync.Mutex
	got := make(map[int]time.Duration)
	var wg sync.WaitGroup
	for _, i := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if p, err := peersOf(ctx, lab, d, i); err == nil && ok(p) {
					mu.Lock()
					got[i] = time.Since(start)
					mu.Unlock()
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	wg.Wait()
	return got
}

// txBytes is the bytes host h has sent on its lab interface.
func txBytes(t testing.TB, lab *netlab.Lab, h *netlab.Host) int64 {
	out, err := lab.Command(h, "cat", "/sys/class/net/"+h.Iface+"/statistics/tx_bytes").Output()
	if err != nil {
		t.Fatalf("tx_bytes of host %d: %v", h.Index, err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func dumpLogs(t *testing.T, d *devnet.Devnet, tail int) {
	for _, p := range d.Procs {
		b, _ := os.ReadFile(filepath.Join(p.Dir, "node.log"))
		t.Logf("node %d log:\n%s", p.Index, b[max(0, len(b)-tail):])
	}
}

// TestFailureDetection (issue 11, finding 3): 7 real nodes in 7 hosts. A
// node frozen with SIGSTOP, a node whose link is cut, and a node killed
// with SIGKILL must each be marked down by every other node within 5 s
// (libp2p's keepalive alone takes 30 s and more); the frozen and cut-off
// nodes come back when they resume. It also reports the idle traffic of
// each node.
func TestFailureDetection(t *testing.T) {
	if testing.Short() {
		t.Skip("builds umbra and runs 7 nodes")
	}
	const nodes = 7
	hosts := make([]netlab.HostConfig, nodes)
	for i := range hosts {
		hosts[i].Delay = 10 * time.Millisecond
	}
	lab := netlab.NewForTest(t, netlab.Config{Hosts: hosts})
	bin, err := devnet.BuildUmbra("../..", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := StartNodes(t, lab, bin, nodes)

	// Idle traffic: what each node sends in 6 s of nothing to do.
	const idle = 6 * time.Second
	before := make([]int64, nodes+1)
	for i := 1; i <= nodes; i++ {
		before[i] = txBytes(t, lab, lab.Host(i))
	}
	time.Sleep(idle)
	var rates []string
	for i := 1; i <= nodes; i++ {
		rates = append(rates, fmt.Sprintf("%.0f", float64(txBytes(t, lab, lab.Host(i))-before[i])/idle.Seconds()))
	}
	t.Logf("idle traffic sent per node, bytes/s: %s", strings.Join(rates, " "))

	const want = 5 * time.Second
	const limit = 10 * time.Second // how long the test waits
	others := func(x int) []int {
		var out []int
		for i := 1; i <= nodes; i++ {
			if i != x && d.Procs[i-1].Running() {
				out = append(out, i)
			}
		}
		return out
	}
	failed := false
	check := func(what string, x int) {
		id := d.Procs[x-1].ID.String()
		start := time.Now()
		got := waitViews(lab, d, others(x), start, limit, func(p *node.Peers) bool { return !slices.Contains(p.Live, id) })
		var worst time.Duration
		var all []string
		for _, i := range others(x) {
			if dt, ok := got[i]; ok {
				all = append(all, fmt.Sprintf("%d:%.1fs", i, dt.Seconds()))
			}
			dt, ok := got[i]
			if !ok {
				t.Errorf("%s node %d: node %d still lists it live after %v", what, x, i, limit)
				failed = true
				continue
			}
			worst = max(worst, dt)
		}
		t.Logf("%s node %d: marked down by %d of %d nodes, the last after %v (%s)", what, x, len(got), len(others(x)), worst.Round(10*time.Millisecond), strings.Join(all, " "))
		if worst > want {
			t.Errorf("%s node %d: detection took %v, want at most %v", what, x, worst, want)
			failed = true
		}
	}
	back := func(what string, x int) {
		id := d.Procs[x-1].ID.String()
		start := time.Now()
		got := waitViews(lab, d, others(x), start, 15*time.Second, func(p *node.Peers) bool { return slices.Contains(p.Live, id) })
		if len(got) != len(others(x)) {
			t.Errorf("%s node %d: live again for %d of %d nodes after 15 s", what, x, len(got), len(others(x)))
			failed = true
		}
	}

	// A frozen process: its kernel still acknowledges TCP.
	pid := d.Procs[nodes-1].Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	check("frozen (SIGSTOP)", nodes)
	_ = syscall.Kill(pid, syscall.SIGCONT)
	back("resumed", nodes)

	// A cut link: nothing crosses, not even a reset.
	lab.SetLink(lab.Host(nodes-1), 10*time.Millisecond, 1)
	check("cut off (loss 1)", nodes-1)
	lab.SetLink(lab.Host(nodes-1), 10*time.Millisecond, 0)
	back("reconnected", nodes-1)

	// A crash.
	if err := d.Kill(nodes - 2); err != nil {
		t.Fatal(err)
	}
	check("killed (SIGKILL)", nodes-2)
	if failed {
		dumpLogs(t, d, 3000)
	}
}
