package adversary_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/devnet/adversary"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

var umbraBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "umbra-bin-")
	if err != nil {
		panic(err)
	}
	if umbraBin, err = devnet.BuildUmbra("../../..", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// attackNet is a devnet of real node processes under attack.
type attackNet struct {
	t     *testing.T
	d     *devnet.Devnet
	boot  []string
	infos []peer.AddrInfo
	mem   *memWatch // every honest node's RSS and heap, for the whole test
}

func startNet(t *testing.T, n int, nodeArgs ...string) *attackNet {
	t.Helper()
	d := devnet.StartForTest(t, devnet.Config{Dir: t.TempDir(), Nodes: n, Binary: umbraBin, NodeArgs: nodeArgs})
	boot, err := swarmclient.ReadNetworkFile(d.BootstrapFile())
	if err != nil {
		t.Fatal(err)
	}
	infos, err := swarmclient.ParseBootstrap(boot)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range d.Procs {
				if b, err := os.ReadFile(filepath.Join(p.Dir, "node.log")); err == nil {
					lines := strings.Split(strings.TrimSpace(string(b)), "\n")
					t.Logf("node %d log (last lines):\n%s", p.Index, strings.Join(lines[max(0, len(lines)-15):], "\n"))
				}
			}
		}
	})
	an := &attackNet{t: t, d: d, boot: boot, infos: infos}
	// Whatever the attack, no honest node may grow past rssLimit.
	an.mem = watchMemory(an)
	t.Cleanup(func() { an.mem.finish(t, rssLimit) })
	return an
}

// client dials the network as an honest client (direct: straight to swarm
// nodes; else through onion paths).
func (an *attackNet) client(ctx context.Context, direct bool) *swarmclient.Client {
	an.t.Helper()
	c, err := swarmclient.Dial(ctx, an.boot, swarmclient.Options{Direct: direct})
	if err != nil {
		an.t.Fatalf("client: %v", err)
	}
	an.t.Cleanup(func() { c.Close() })
	return c
}

// adversary starts a hostile node on ip that joins the network.
func (an *attackNet) adversary(ctx context.Context, ip string) *adversary.Node {
	an.t.Helper()
	params := an.params(ctx)
	a, err := adversary.NewNode(ip, params)
	if err != nil {
		an.t.Fatalf("adversary: %v", err)
	}
	an.t.Cleanup(a.Close)
	if err := a.Join(an.infos); err != nil {
		an.t.Fatalf("adversary join: %v", err)
	}
	return a
}

func (an *attackNet) params(ctx context.Context) wire.Params {
	an.t.Helper()
	h, err := p2p.NewClientHost()
	if err != nil {
		an.t.Fatal(err)
	}
	defer h.Close()
	p, err := adversary.Params(ctx, h, an.infos[0])
	if err != nil {
		an.t.Fatalf("params: %v", err)
	}
	return p
}

// waitListed refreshes c until its node list holds every id (or fails).
func waitListed(t *testing.T, ctx context.Context, c *swarmclient.Client, d time.Duration, ids ...peer.ID) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		_ = c.Refresh(ctx)
		have := map[peer.ID]bool{}
		for _, n := range c.Nodes() {
			have[n.ID] = true
		}
		missing := 0
		for _, id := range ids {
			if !have[id] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d nodes still not in the client's node list after %s", missing, len(ids), d)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// findMailbox draws mailbox keys until ok holds for the mailbox's
// placement in c's view (refreshing c between rounds), or fails after d.
func findMailbox(t *testing.T, ctx context.Context, c *swarmclient.Client, d time.Duration, ok func(ranked []*member.Node) bool) *mailbox.Key {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for i := 0; i < 5000; i++ {
			k, _ := mailbox.NewKey()
			if ok(c.Ranked(k.ID())) {
				return k
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mailbox with the wanted placement after %s", d)
		}
		time.Sleep(time.Second)
		_ = c.Refresh(ctx)
	}
}

// rankOf is the position of id in ranked (-1 if absent).
func rankOf(ranked []*member.Node, id peer.ID) int {
	return slices.IndexFunc(ranked, func(n *member.Node) bool { return n.ID == id })
}

// storeStats collects the outcome of honest stores made during an attack.
type storeStats struct {
	mu   sync.Mutex
	ok   int
	errs []error
	lat  []time.Duration
}

func (s *storeStats) add(d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, err)
		return
	}
	s.ok++
	s.lat = append(s.lat, d)
}

func (s *storeStats) total() int { return s.ok + len(s.errs) }

func (s *storeStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := slices.Clone(s.lat)
	slices.Sort(l)
	q := func(p float64) time.Duration {
		if len(l) == 0 {
			return 0
		}
		return l[min(len(l)-1, int(p*float64(len(l))))]
	}
	return fmt.Sprintf("honest stores: %d of %d acknowledged (%.1f%%), p50=%s p99=%s",
		s.ok, s.ok+len(s.errs), 100*float64(s.ok)/float64(max(1, s.ok+len(s.errs))),
		q(0.5).Round(100*time.Microsecond), q(0.99).Round(100*time.Microsecond))
}

// requireSuccess fails unless at least 99% of the honest stores succeeded.
func (s *storeStats) requireSuccess(t *testing.T) {
	t.Helper()
	t.Log(s.String())
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.ok + len(s.errs); n == 0 || float64(s.ok) < 0.99*float64(n) {
		for i, err := range s.errs {
			if i == 5 {
				break
			}
			t.Logf("store error: %v", err)
		}
		t.Fatalf("only %d of %d honest stores succeeded during the attack; want >= 99%%", s.ok, n)
	}
}

// honestLoad stores small messages in fresh mailboxes every interval until
// ctx ends, recording each outcome in st. It returns when ctx ends.
func honestLoad(ctx context.Context, c *swarmclient.Client, every time.Duration, st *storeStats) {
	t := time.NewTicker(every)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _ := mailbox.NewKey()
			start := time.Now()
			// As long as a client's outbox gives one attempt: a path
			// through a node that swallows packets costs 8 s or more.
			cctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			_, err := c.Put(cctx, k.ID(), 0, time.Hour, []byte("honest message"))
			cancel()
			st.add(time.Since(start), err)
		}()
	}
}

// rssBytes is a process's resident set size.
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// cpuTime is a process's user+system CPU time.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad stat")
	}
	f := strings.Fields(s[i+2:])
	// fields after ")": state(0) ppid(1) ... utime(11) stime(12), in ticks of 1/100 s
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad stat times")
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// metric reads one Prometheus gauge from a node's /metrics.
func metric(adminURL, name string) (float64, error) {
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// memWatch samples the RSS and Go heap of every running node of the
// devnet until stop is called, and reports the largest values seen.
type memWatch struct {
	mu      sync.Mutex
	maxRSS  map[int]int64
	maxHeap map[int]float64
	stop    func()
	done    chan struct{}
	once    sync.Once
}

func watchMemory(an *attackNet) *memWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &memWatch{maxRSS: map[int]int64{}, maxHeap: map[int]float64{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			for _, p := range an.d.Nodes() {
				pid := p.Pid()
				if pid == 0 || !p.Running() {
					continue
				}
				r, err := rssBytes(pid)
				h, herr := metric(p.AdminURL(), "go_memstats_heap_inuse_bytes")
				w.mu.Lock()
				if err == nil && r > w.maxRSS[p.Index] {
					w.maxRSS[p.Index] = r
				}
				if herr == nil && h > w.maxHeap[p.Index] {
					w.maxHeap[p.Index] = h
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return w
}

// finish stops sampling and fails the test if any node's RSS went over
// limit; it logs the peaks.
func (w *memWatch) finish(t *testing.T, limit int64) {
	t.Helper()
	w.once.Do(func() { w.check(t, limit) })
}

func (w *memWatch) check(t *testing.T, limit int64) {
	t.Helper()
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	var worst int
	for i, r := range w.maxRSS {
		if r > w.maxRSS[worst] {
			worst = i
		}
	}
	t.Logf("peak RSS over nodes: %.1f MiB (node %d); peak Go heap in use there: %.1f MiB",
		float64(w.maxRSS[worst])/(1<<20), worst, w.maxHeap[worst]/(1<<20))
	for i, r := range w.maxRSS {
		if r > limit {
			t.Errorf("node %d RSS reached %.1f MiB (Go heap %.1f MiB); limit %.0f MiB", i, float64(r)/(1<<20), w.maxHeap[i]/(1<<20), float64(limit)/(1<<20))
		}
	}
	for i, h := range w.maxHeap {
		if int64(h) > limit {
			t.Errorf("node %d Go heap reached %.1f MiB; limit %.0f MiB", i, h/(1<<20), float64(limit)/(1<<20))
		}
	}
}
