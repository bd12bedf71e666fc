//go:build linux

package netlab_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/netlab"
	"github.com/umbra-im/umbra/internal/netlab/nemesis"
)

// envInt reads a positive integer from the environment (development runs
// shrink the lab with it), else def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestLabNemesis: 20 real nodes and 4 chatting daemons in 24 hosts over WAN
// links (20-80 ms one way each, from the seed) under a 5-minute seeded
// nemesis schedule (partitions, kill -9, pauses, wiped disks, ±30 s
// clocks). After the last heal and a settle period, every message a sender
// was told is sent (then or later) must be shown exactly once by its
// recipient, in send order. UMBRA_NEMESIS_SEED replays a schedule;
// UMBRA_NEMESIS_NODES, _CLIENTS and _SECONDS shrink the lab while
// developing, and UMBRA_NEMESIS_KINDS (e.g. "wipe,skew") limits the faults.
func TestLabNemesis(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 20 nodes and 4 clients for several minutes")
	}
	seed, err := nemesis.Seed()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("nemesis seed %d (replay with %s=%d)", seed, nemesis.SeedEnv, seed)
	nodes := envInt("UMBRA_NEMESIS_NODES", 20)
	nclients := envInt("UMBRA_NEMESIS_CLIENTS", 4)
	duration := time.Duration(envInt("UMBRA_NEMESIS_SECONDS", 300)) * time.Second

	rng := nemesis.Rand(seed, 2)
	hosts := make([]netlab.HostConfig, nodes+nclients)
	for i := range hosts {
		hosts[i].Delay = time.Duration(20+rng.IntN(61)) * time.Millisecond
	}
	lab := netlab.NewForTest(t, netlab.Config{Hosts: hosts})
	bin, err := devnet.BuildUmbra("../..", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	load := sampleLoad(t)
	nem := &nemesis.Nemesis{Lab: lab, NodeHost: lab.Host, Logf: t.Logf,
		ClientHost: func(c int) *netlab.Host { return lab.Host(nodes + 1 + c) }}
	t0 := time.Now()
	d := StartNodesEnv(t, lab, bin, nodes, nem.Env, 4*time.Minute)
	nem.Devnet = d
	t.Logf("%d nodes ready in %v", nodes, time.Since(t0).Round(time.Millisecond))
	// Nodes take swarm seats only once they are MinAge old.
	time.Sleep(time.Until(t0.Add(devnet.MinAge + 2*time.Second)))

	clients := make([]*labClient, nclients)
	for c := range clients {
		clients[c] = StartClient(t, lab, nem.ClientHost(c), bin, d.BootstrapFile(), c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, a := range clients {
		for _, b := range clients {
			if a != b {
				if err := a.Do(ctx, http.MethodPost, "/api/v1/contacts", map[string]string{"ID": b.ID, "Name": fmt.Sprintf("c%d", b.Index)}, nil); err != nil {
					t.Fatalf("client %d adds %d: %v", a.Index, b.Index, err)
				}
			}
		}
	}
	swarms := cardSwarms(ctx, t, clients, d)
	t.Logf("%d clients ready %v after the nodes; their cards' swarms (node indices): %v", nclients, time.Since(t0).Round(time.Millisecond), swarms)

	var kinds []nemesis.Kind
	for _, k := range strings.Fields(strings.ReplaceAll(os.Getenv("UMBRA_NEMESIS_KINDS"), ",", " ")) {
		kinds = append(kinds, nemesis.Kind(k))
	}
	evs := nemesis.Schedule(seed, nemesis.ScheduleConfig{Duration: duration, Nodes: nodes, Clients: nclients, Swarms: swarms, Kinds: kinds})
	t.Logf("schedule: %s over %v", nemesis.Summary(evs), duration)
	for _, e := range evs {
		t.Logf("  %s", e)
	}

	start := time.Now()
	var wg sync.WaitGroup
	var windows []nemesis.Window
	var nemErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		windows, nemErr = nem.Run(context.Background(), start, evs)
	}()
	sends := make([][]nemesis.Send, nclients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sends[c] = chatter(clients, c, start.Add(duration), nemesis.Rand(seed, 10+uint64(c)))
		}()
	}
	wg.Wait()
	if nemErr != nil {
		t.Errorf("nemesis: %v", nemErr)
	}
	t.Logf("schedule over after %v", time.Since(start).Round(time.Second))

	h := nemesis.History{Windows: windows}
	for _, s := range sends {
		h.Sends = append(h.Sends, s...)
	}
	settle := time.Now()
	var rep nemesis.Report
	for {
		observe(t, clients, &h)
		rep = nemesis.Check(h)
		if rep.OK() && rep.StillQueued == 0 || time.Since(settle) > 4*time.Minute {
			break
		}
		time.Sleep(5 * time.Second)
	}
	t.Logf("settled in %v; whole run %v", time.Since(settle).Round(time.Second), time.Since(t0).Round(time.Second))
	t.Logf("CPU: %s", load.report(d, clients))
	for _, line := range strings.Split(strings.TrimSpace(rep.String()), "\n") {
		t.Logf("checker: %s", line)
	}
	if !rep.OK() {
		t.Errorf("checker found lost, duplicated, reordered or phantom messages (seed %d)", seed)
	}
	if rep.Failed > 0 {
		// The outbox gives a message up only after nodes refused it five
		// times; with a quorum always reachable none should be.
		t.Errorf("%d messages marked failed by their sender (seed %d)", rep.Failed, seed)
	}
	if rep.StillQueued > 0 {
		t.Errorf("%d messages still queued 4 minutes after the last heal (seed %d)", rep.StillQueued, seed)
	}
}

// chatter sends numbered messages from client c to random others, one at a
// time, every 1-3 s until stop.
func chatter(clients []*labClient, c int, stop time.Time, rng interface{ IntN(int) int }) []nemesis.Send {
	var out []nemesis.Send
	seq := map[int]int{}
	me := clients[c]
	for {
		time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
		if time.Now().After(stop) {
			return out
		}
		to := rng.IntN(len(clients) - 1)
		if to >= c {
			to++
		}
		seq[to]++
		s := nemesis.Send{From: c, To: to, Seq: seq[to], At: time.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		var m client.Message
		err := me.Do(ctx, http.MethodPost, "/api/v1/messages", map[string]string{"To": clients[to].ID, "Text": nemesis.Text(c, to, s.Seq)}, &m)
		cancel()
		s.Done, s.ID = time.Now(), m.ID
		switch {
		case isTransport(err):
			s.Outcome = nemesis.Unknown
		case err != nil:
			s.Outcome = nemesis.Refused
		case m.State == client.StateQueued:
			s.Outcome = nemesis.Queued
		default:
			s.Outcome = nemesis.Acked
		}
		out = append(out, s)
	}
}

// observe fills h's received lists and sender states from the clients.
func observe(t *testing.T, clients []*labClient, h *nemesis.History) {
	h.Received = make([][]nemesis.Received, len(clients))
	h.SenderState = map[string]string{}
	for c, cl := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ms, err := cl.Messages(ctx)
		cancel()
		if err != nil {
			t.Logf("client %d: messages: %v", c, err)
			continue
		}
		for _, m := range ms {
			if m.Outgoing {
				h.SenderState[m.Text] = m.State
			} else {
				h.Received[c] = append(h.Received[c], nemesis.Received{To: c, Text: m.Text, ID: m.ID, ReceivedAt: m.ReceivedAt})
			}
		}
	}
}

// cardSwarms is the swarm (as node indices) of each client's card, as its
// engine sees it.
func cardSwarms(ctx context.Context, t *testing.T, clients []*labClient, d *devnet.Devnet) [][]int {
	index := map[string]int{}
	for _, p := range d.Nodes() {
		index[p.ID.String()] = p.Index
	}
	var out [][]int
	for _, c := range clients {
		var st client.NetworkStatus
		if err := c.Do(ctx, http.MethodGet, "/api/v1/network", nil, &st); err != nil {
			t.Logf("client %d: network: %v", c.Index, err)
			continue
		}
		var sw []int
		for _, m := range st.Swarm {
			if i, ok := index[m.PeerID]; ok {
				sw = append(sw, i)
			}
		}
		if len(sw) >= 3 {
			out = append(out, sw)
		}
	}
	return out
}

// loadSampler records the machine's 1-minute load average every 10 s.
type loadSampler struct {
	mu      sync.Mutex
	samples []float64
	stop    chan struct{}
}

func sampleLoad(t *testing.T) *loadSampler {
	l := &loadSampler{stop: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(10 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tk.C:
				b, _ := os.ReadFile("/proc/loadavg")
				if f := strings.Fields(string(b)); len(f) > 0 {
					if v, err := strconv.ParseFloat(f[0], 64); err == nil {
						l.mu.Lock()
						l.samples = append(l.samples, v)
						l.mu.Unlock()
					}
				}
			}
		}
	}()
	t.Cleanup(func() { close(l.stop); <-done })
	return l
}

// cpuSeconds is a process's user+system CPU time so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ
}

func (l *loadSampler) report(d *devnet.Devnet, clients []*labClient) string {
	l.mu.Lock()
	var sum, peak float64
	for _, v := range l.samples {
		sum += v
		peak = max(peak, v)
	}
	n := len(l.samples)
	l.mu.Unlock()
	var nodeCPU, clientCPU float64
	for _, p := range d.Nodes() {
		if pid := p.Pid(); pid > 0 {
			nodeCPU += cpuSeconds(pid)
		}
	}
	for _, c := range clients {
		clientCPU += cpuSeconds(c.Pid)
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return fmt.Sprintf("load average (1 min) mean %.1f max %.1f over %d samples; CPU seconds: nodes %.0f (current processes), client daemons %.0f, test process (switch, race detector) %.0f",
		sum/float64(max(n, 1)), peak, n, nodeCPU, clientCPU, self.Seconds())
}
