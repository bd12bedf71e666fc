//go:build linux

package netlab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/netlab"
	"github.com/umbra-im/umbra/internal/node"
)

// BenchmarkLab100 is issue 11's 100-node lab run: 100 `umbra node`
// processes in 100 hosts (10 ms one way on every link) and a client host,
// the nodes on the production defaults of their gossip, sync, probe and
// record intervals (not a devnet's faster ones). It prints the time for
// membership to converge after start, idle CPU, RSS and traffic sent per
// node, the time to converge again after 30% of the nodes are
// killed at once (kill -9), and how many of the messages stored before
// the kill are lost (must be 0).
//
// Not in CI (a benchmark); run as root:
//
//	go test -run '^$' -bench BenchmarkLab100 -benchtime 1x -timeout 30m ./internal/netlab
func BenchmarkLab100(b *testing.B) {
	const nodes, dead, mailboxes = 100, 30, 40
	lab, bin := labWithUmbra(b, nodes+1, 10*time.Millisecond)
	t0 := time.Now()
	d := startProductionNodes(b, lab, bin, nodes, 15*time.Minute)
	converge := time.Since(t0)
	time.Sleep(time.Until(t0.Add(devnet.MinAge + 2*time.Second)))

	// Messages stored before the kill, one per mailbox.
	client := lab.Host(nodes + 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	type box struct{ Mailbox, Secret, text string }
	boxes := make([]box, mailboxes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	var putErrs []string
	var mu sync.Mutex
	for i := range boxes {
		out, err := exec.CommandContext(ctx, bin, "mailbox", "new").Output()
		if err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(out, &boxes[i]); err != nil {
			b.Fatal(err)
		}
		boxes[i].text = fmt.Sprintf("before the kill %d", i)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := runIn(ctx, lab, client, bin, "mailbox", "put", "--network", d.BootstrapFile(), "--mailbox", boxes[i].Mailbox, boxes[i].text); err != nil {
				mu.Lock()
				putErrs = append(putErrs, err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(putErrs) > 0 {
		b.Fatalf("%d stores failed: %s", len(putErrs), putErrs[0])
	}

	// Idle: CPU over 30 s and RSS of every node.
	cpus, rss, tx := idleFigures(b, lab, d, 30*time.Second)

	// 30% killed at once.
	b.ResetTimer()
	victims := rand.Perm(nodes)[:dead]
	for _, v := range victims {
		wg.Add(1)
		go func() { defer wg.Done(); _ = d.Kill(v + 1) }()
	}
	wg.Wait()
	t1 := time.Now()
	if err := d.WaitReady(ctx, nodes-dead); err != nil {
		b.Fatal(err)
	}
	reconverge := time.Since(t1)
	b.StopTimer()

	lost := 0
	for _, bx := range boxes {
		out, err := runIn(ctx, lab, client, bin, "mailbox", "get", "--network", d.BootstrapFile(), "--secret", bx.Secret)
		if err != nil || !strings.Contains(out, bx.text) {
			lost++
			b.Logf("mailbox %s: %v %q", bx.Mailbox[:8], err, strings.TrimSpace(out))
		}
	}
	b.ReportMetric(converge.Seconds(), "converge-s")
	b.ReportMetric(reconverge.Seconds(), "reconverge-s")
	b.ReportMetric(cpus[len(cpus)/2], "idle-cpu-%")
	b.ReportMetric(rss[len(rss)/2], "rss-MiB")
	b.ReportMetric(tx[len(tx)/2], "idle-tx-KiB/s")
	b.ReportMetric(float64(lost), "lost")
	b.Logf("%d nodes: membership converged %v after start; idle CPU per node p50 %.2f%% max %.2f%% of a core; RSS p50 %.1f MiB max %.1f MiB; idle traffic sent p50 %.2f KiB/s max %.2f KiB/s; %d killed at once: converged again in %v; %d of %d messages stored before the kill lost",
		nodes, converge.Round(time.Millisecond), cpus[len(cpus)/2], cpus[len(cpus)-1], rss[len(rss)/2], rss[len(rss)-1], tx[len(tx)/2], tx[len(tx)-1],
		dead, reconverge.Round(time.Millisecond), lost, mailboxes)
	if lost > 0 {
		b.Errorf("%d messages lost", lost)
	}
}

// startProductionNodes starts n nodes in the lab's first n hosts on the
// production defaults of their gossip, sync, probe and record intervals
// (not a devnet's faster ones) and waits up to wait for them to converge.
func startProductionNodes(b *testing.B, lab *netlab.Lab, bin string, n int, wait time.Duration) *devnet.Devnet {
	def := node.DefaultConfig()
	return startNodes(b, lab, bin, n, nil, func(c *devnet.Config) {
		c.NodeArgs = []string{"--gossip-interval", def.GossipInterval.String(), "--sync-interval", def.SyncInterval.String(),
			"--probe-interval", def.ProbeInterval.String(), "--record-ttl", def.RecordTTL.String()}
	}, wait)
}

// idleFigures measures, over span, each node's CPU (% of a core), RSS
// (MiB) and traffic sent (KiB/s), each sorted.
func idleFigures(b *testing.B, lab *netlab.Lab, d *devnet.Devnet, span time.Duration) (cpus, rss, tx []float64) {
	procs := d.Nodes()
	cpu0 := make([]float64, len(procs))
	tx0 := make([]int64, len(procs))
	for i, p := range procs {
		cpu0[i] = cpuSeconds(p.Pid())
		tx0[i] = txBytes(b, lab, lab.Host(i+1))
	}
	time.Sleep(span)
	for i, p := range procs {
		cpus = append(cpus, (cpuSeconds(p.Pid())-cpu0[i])/span.Seconds()*100)
		rss = append(rss, rssMiB(p.Pid()))
		tx = append(tx, float64(txBytes(b, lab, lab.Host(i+1))-tx0[i])/span.Seconds()/1024)
	}
	slices.Sort(cpus)
	slices.Sort(rss)
	slices.Sort(tx)
	return cpus, rss, tx
}

// BenchmarkLabIdle30 measures what 30 idle nodes on the production
// defaults cost each (the idle figures of BenchmarkLab100, quicker): CPU,
// RSS and traffic sent, after the nodes are old enough to take
// placements. Not in CI; run as root:
//
//	go test -run '^$' -bench BenchmarkLabIdle30 -benchtime 1x ./internal/netlab
func BenchmarkLabIdle30(b *testing.B) {
	const nodes = 30
	lab, bin := labWithUmbra(b, nodes, 10*time.Millisecond)
	t0 := time.Now()
	d := startProductionNodes(b, lab, bin, nodes, 5*time.Minute)
	converge := time.Since(t0)
	time.Sleep(time.Until(t0.Add(devnet.MinAge + 2*time.Second)))
	cpus, rss, tx := idleFigures(b, lab, d, 30*time.Second)
	b.ReportMetric(converge.Seconds(), "converge-s")
	b.ReportMetric(cpus[len(cpus)/2], "idle-cpu-%")
	b.ReportMetric(rss[len(rss)/2], "rss-MiB")
	b.ReportMetric(tx[len(tx)/2], "idle-tx-KiB/s")
	b.Logf("%d nodes: converged %v; idle CPU p50 %.2f%% max %.2f%%; RSS p50 %.1f MiB; idle traffic sent p50 %.2f KiB/s max %.2f KiB/s",
		nodes, converge.Round(time.Millisecond), cpus[len(cpus)/2], cpus[len(cpus)-1], rss[len(rss)/2], tx[len(tx)/2], tx[len(tx)-1])
}

// rssMiB is a process's resident set size.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
