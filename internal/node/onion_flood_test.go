package node_test

import (
	"context"
	"crypto/rand"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/onion"
)

// floodResult is what a flood of a guard saw.
type floodResult struct {
	refused   int     // answered at once: 429 from the guard, or the guard's error box for a refusal further on
	held      int     // still waiting when the flood settled
	heapMiB   float64 // growth of the live heap (the three nodes, and the clients of the held packets) while they wait
	guardUsed int64   // the guard's onion budget in use while they wait
	failed    []error // anything else
}

// floodGuard sends n 1280 KiB packets at once, from hosts client hosts,
// along guard → middle → exit, where the exit holds every request until
// the flood has settled: the shape of the memory attack (packets held in
// flight at the guard). It returns once every packet is answered.
func floodGuard(t testing.TB, n, hosts int) floodResult {
	release := make(chan struct{})
	var blocked atomic.Int64 // requests the exit holds
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	tn := startNetCfg(t, 3, func(i int, c *node.Config) {
		if i == 2 {
			c.OnionObserver = func(ev node.OnionEvent) {
				if ev.Next == "" {
					blocked.Add(1)
					<-release
				}
			}
		}
	})
	defer free()
	guard, middle, exit := tn.nodes[0], tn.nodes[1], tn.nodes[2]
	ocs := make([]*onionClient, hosts)
	var path []onion.Hop
	for i := range ocs {
		ocs[i] = newOnionClient(t)
		path = []onion.Hop{ocs[i].hop(t, guard), ocs[i].hop(t, middle), ocs[i].hop(t, exit)}
	}
	// Connect every host first (one small request each), so the flood
	// measures the relays, not the dials.
	for _, oc := range ocs {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := oc.roundTrip(ctx, t, path[:1], junkRequest())
		cancel()
		if err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC() // a second cycle frees what sync.Pools kept through the first
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	req := make([]byte, 1200<<10)
	rand.Read(req)
	req[0] = 0xee
	pkts := make([][]byte, n)
	circs := make([]*onion.Circuit, n)
	for i := range pkts {
		var err error
		if pkts[i], circs[i], err = onion.Build(path, req); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var answered atomic.Int64
	var mu sync.Mutex
	var res floodResult
	var wg sync.WaitGroup
	for i := range pkts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkt := pkts[i]
			pkts[i] = nil // the client's copy is not the nodes' memory
			reply, err := ocs[i%hosts].send(ctx, guard.ID(), pkt)
			if err == nil {
				_, err = circs[i].Open(reply)
			}
			answered.Add(1)
			var he *onion.HopError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
			case wireCode(err) == 429, wireCode(err) == 503:
				// Refused at once: by the onion budget (429), or before
				// that by the resource manager, which reserves a frame's
				// memory as it arrives (503).
				res.refused++
			case errors.As(err, &he) && he.Hop == 0 && (strings.Contains(he.Msg, "refused: 429") || strings.Contains(he.Msg, "refused: 503")):
				res.refused++
			default:
				res.failed = append(res.failed, err)
			}
		}()
	}
	// Settled: every packet is answered or held at the exit.
	eventually(t, 30*time.Second, func() bool { return answered.Load()+blocked.Load() == int64(n) }, "the flood to settle")
	res.held = n - int(answered.Load())
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.heapMiB = (float64(ms.HeapAlloc) - float64(base)) / (1 << 20)
	res.guardUsed, _ = guard.OnionBudgetInUse()
	free()
	wg.Wait()
	for _, nd := range tn.nodes {
		eventually(t, 10*time.Second, func() bool { b, _ := nd.OnionBudgetInUse(); return b == 0 }, "budgets to return to zero")
	}
	return res
}

// TestOnionFloodBounded: a flood of 1280 KiB packets held in flight at a
// guard is cut to what the budgets allow: the rest is refused at once, the
// guard never holds more than its request budget, the packets held are
// served once the exit answers, and nothing stays charged.
func TestOnionFloodBounded(t *testing.T) {
	const n, hosts = 40, 4
	res := floodGuard(t, n, hosts)
	t.Logf("%d packets of 1280 KiB from %d hosts: %d refused at once, %d held; guard budget in use %.1f MiB; live heap +%.0f MiB",
		n, hosts, res.refused, res.held, float64(res.guardUsed)/(1<<20), res.heapMiB)
	if len(res.failed) > 0 {
		t.Fatalf("%d packets failed otherwise, first: %v", len(res.failed), res.failed[0])
	}
	// The middle takes at most one previous hop's budget from the guard.
	perPeer := int(node.DefaultOnionLimits.PeerBudget / (2 * int64(onion.MaxPacket+5)))
	if res.held == 0 || res.held > perPeer {
		t.Fatalf("%d packets held through the middle, want 1 to %d (one previous hop's budget)", res.held, perPeer)
	}
	if res.refused+res.held != n {
		t.Fatalf("%d refused + %d held of %d", res.refused, res.held, n)
	}
	if limit := node.DefaultOnionLimits.NodeBudget * 3 / 4; res.guardUsed > limit {
		t.Fatalf("guard holds %d bytes of onion work, over its request budget %d", res.guardUsed, limit)
	}
}

// BenchmarkOnionFlood is the memory attack of issue 9 in process: 150
// packets of 1280 KiB at once at one guard (whose exit holds them), from
// 10 hosts. It reports how many were refused at once, how many were held,
// and the growth of the live heap of the three nodes while they wait.
func BenchmarkOnionFlood(b *testing.B) {
	for i := 0; i < b.N; i++ {
		res := floodGuard(b, 150, 10)
		if len(res.failed) > 0 {
			b.Fatalf("%d failed, first: %v", len(res.failed), res.failed[0])
		}
		b.ReportMetric(float64(res.refused), "refused")
		b.ReportMetric(float64(res.held), "held")
		b.ReportMetric(res.heapMiB, "heap-MiB")
	}
}
