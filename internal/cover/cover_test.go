package cover

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/trafficstat"
)

// fakeClock fires After channels only when the test steps it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	return ch
}

// step waits (in real time) until n timers are set and ready() holds,
// then moves the clock to the earliest and fires it.
func (c *fakeClock) step(t *testing.T, n int, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		if len(c.waiters) >= n && ready() {
			i := 0
			for j, w := range c.waiters {
				if w.at.Before(c.waiters[i].at) {
					i = j
				}
			}
			w := c.waiters[i]
			c.waiters = slices.Delete(c.waiters, i, i+1)
			c.now = w.at
			c.mu.Unlock()
			w.ch <- w.at
			return
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("schedule stalled")
		}
		runtime.Gosched()
	}
}

// run drives a schedule in fake time for steps ticks; enqueue, if set,
// is called at every tick (in the process's goroutine, before its op).
type trace struct {
	ticks [nKinds][]time.Time
	real  [nKinds]int
}

func drive(t *testing.T, cfg Config, seed uint64, steps int, onTick func(*Scheduler, Tick)) (*Scheduler, trace) {
	t.Helper()
	clk := &fakeClock{now: time.Unix(0, 0)}
	var inflight atomic.Int64
	done := func(context.Context) error { inflight.Add(-1); return nil }
	cfg.CoverSend, cfg.LoopCover, cfg.CoverFetch = done, done, done
	s := New(cfg, clk, rand.New(rand.NewPCG(seed, 1)))
	var tr trace
	var mu sync.Mutex
	s.OnTick(func(tk Tick) {
		if !tk.Real {
			inflight.Add(1) // until the cover op has run
		}
		mu.Lock()
		tr.ticks[tk.Kind] = append(tr.ticks[tk.Kind], tk.At)
		if tk.Real {
			tr.real[tk.Kind]++
		}
		mu.Unlock()
		if onTick != nil {
			onTick(s, tk)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	for i := 0; i < steps; i++ {
		clk.step(t, 3, func() bool { return inflight.Load() == 0 })
	}
	cancel()
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	return s, tr
}

// ksExp is the one-sample Kolmogorov–Smirnov p-value of xs against the
// exponential distribution of the given rate.
func ksExp(xs []float64, rate float64) float64 {
	x := slices.Clone(xs)
	slices.Sort(x)
	n := float64(len(x))
	var d float64
	for i, v := range x {
		f := 1 - math.Exp(-rate*v)
		d = max(d, math.Abs(f-float64(i)/n), math.Abs(f-float64(i+1)/n))
	}
	sq := math.Sqrt(n)
	return trafficstat.KolmogorovQ((sq + 0.12 + 0.11/sq) * d)
}

// TestTicksPoissonBusyOrIdle: each process ticks as a Poisson process at
// its rate (exponential inter-arrivals by KS, the count within its
// Poisson bounds), whether the queues are empty or always full; the busy
// and idle inter-arrivals are the same distribution (two-sample KS); and
// with one seed, busy and idle tick at exactly the same times (real ops
// replace cover ticks, never add or move one).
func TestTicksPoissonBusyOrIdle(t *testing.T) {
	cfg := Config{SendRate: 1, LoopRate: 0.5, FetchRate: 1 / 1.5}
	const steps = 6000
	_, idle := drive(t, cfg, 7, steps, nil)
	keepFull := func(s *Scheduler, tk Tick) {
		for _, k := range []Kind{Send, Fetch} {
			for s.Queued(k) < 3 {
				if err := s.Enqueue(k, func(context.Context) error { return nil }); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}
	sBusy, busy := drive(t, cfg, 7, steps, keepFull)
	_, busy2 := drive(t, cfg, 8, steps, keepFull)
	st := sBusy.Stats()
	if st.Cover[Send] > 1 || st.Cover[Fetch] > 1 || st.Real[Send] == 0 {
		t.Fatalf("busy schedule sent cover while its queue was full: %+v", st)
	}
	if idle.real != [nKinds]int{} {
		t.Fatalf("idle schedule ran real ops: %v", idle.real)
	}
	for k := Kind(0); k < nKinds; k++ {
		rate := cfg.rate(k)
		for name, tr := range map[string]trace{"idle": idle, "busy": busy} {
			xs := trafficstat.Interarrivals(tr.ticks[k])
			if p := ksExp(xs, rate); p < 0.001 {
				t.Fatalf("%s %s: inter-arrivals not Exp(%g): KS p = %g", name, k, rate, p)
			}
			span := tr.ticks[k][len(tr.ticks[k])-1].Sub(time.Unix(0, 0)).Seconds()
			if lo, hi := trafficstat.PoissonBounds(rate*span, 0.001); len(tr.ticks[k]) < lo || len(tr.ticks[k]) > hi {
				t.Fatalf("%s %s: %d ticks in %.0f s, want within [%d, %d]", name, k, len(tr.ticks[k]), span, lo, hi)
			}
		}
		n := min(len(idle.ticks[k]), len(busy.ticks[k]))
		if !slices.Equal(idle.ticks[k][:n-1], busy.ticks[k][:n-1]) {
			t.Fatalf("%s: busy and idle schedules of one seed tick at different times", k)
		}
		_, p := trafficstat.KSTwoSample(trafficstat.Interarrivals(idle.ticks[k]), trafficstat.Interarrivals(busy2.ticks[k]))
		if p < 0.001 {
			t.Fatalf("%s: busy and idle inter-arrivals differ: KS p = %g", k, p)
		}
	}
}

// TestRealOpWait: a real op enqueued at a random moment runs at the next
// tick of its process, 1/λ later on average; every op runs exactly once,
// and none is lost (what Run leaves is returned by Drain).
func TestRealOpWait(t *testing.T) {
	cfg := Config{SendRate: 1, LoopRate: 0.5, FetchRate: 0.5}
	var (
		mu       sync.Mutex
		enqueued = map[int]time.Time{}
		ranAt    = map[int]time.Time{}
		runs     = map[int]int{}
		next     int
		pending  = map[Kind][]int{} // ids in queue order
	)
	r := rand.New(rand.NewPCG(3, 4))
	var waits [nKinds][]float64
	s, _ := drive(t, cfg, 9, 4000, func(s *Scheduler, tk Tick) {
		mu.Lock()
		defer mu.Unlock()
		if tk.Real {
			id := pending[tk.Kind][0]
			pending[tk.Kind] = pending[tk.Kind][1:]
			ranAt[id] = tk.At
			waits[tk.Kind] = append(waits[tk.Kind], tk.At.Sub(enqueued[id]).Seconds())
		}
		// Now and then (at a tick of any process: a moment independent
		// of the others' schedules), queue one op on an idle process.
		for _, k := range []Kind{Send, Fetch} {
			if len(pending[k]) == 0 && r.Float64() < 0.3 {
				id := next
				next++
				enqueued[id] = tk.At
				pending[k] = append(pending[k], id)
				if err := s.Enqueue(k, func(context.Context) error {
					mu.Lock()
					runs[id]++
					mu.Unlock()
					return nil
				}); err != nil {
					t.Error(err)
				}
			}
		}
	})
	for _, k := range []Kind{Send, Fetch} {
		w := waits[k]
		if len(w) < 200 {
			t.Fatalf("%s: only %d real ops ran", k, len(w))
		}
		var sum float64
		for _, x := range w {
			sum += x
		}
		mean, want := sum/float64(len(w)), 1/cfg.rate(k)
		// Exp wait: standard error want/√n; allow 4 of them.
		if math.Abs(mean-want) > 4*want/math.Sqrt(float64(len(w))) {
			t.Fatalf("%s: real ops waited %.3f s on average, want about 1/λ = %.3f s", k, mean, want)
		}
	}
	left := s.Drain()
	mu.Lock()
	defer mu.Unlock()
	for id, n := range runs {
		if n != 1 {
			t.Fatalf("op %d ran %d times", id, n)
		}
	}
	drained := len(left[Send]) + len(left[Fetch])
	if len(runs)+drained != next || len(ranAt) != len(runs) {
		t.Fatalf("%d ops enqueued, %d ran, %d drained: some lost", next, len(runs), drained)
	}
	if err := s.Enqueue(Send, func(context.Context) error { return nil }); err != ErrStopped {
		t.Fatalf("Enqueue after Run: %v", err)
	}
}

// TestRunStops: Run returns when ctx ends, after the operations in flight
// (which see ctx end) have returned; a process with rate 0 does not run
// and takes no ops; the queue is bounded.
func TestRunStops(t *testing.T) {
	var started, finished atomic.Int64
	op := func(ctx context.Context) error {
		started.Add(1)
		<-ctx.Done()
		finished.Add(1)
		return ctx.Err()
	}
	s := New(Config{SendRate: 200, FetchRate: 0, LoopRate: 200, CoverSend: op, LoopCover: op, MaxQueue: 2}, nil, nil)
	if err := s.Enqueue(Fetch, op); err != ErrNoProcess {
		t.Fatalf("Enqueue on a stopped process: %v", err)
	}
	if err := s.Enqueue(Loop, op); err != ErrNoProcess {
		t.Fatalf("Enqueue on the loop process: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := s.Enqueue(Send, op); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Enqueue(Send, op); err != ErrQueueFull {
		t.Fatalf("third op in a queue of 2: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	// Wait for both queued sends to have started too: the loop process
	// alone can start 5 ops first on a loaded machine.
	for (started.Load() < 5 || s.Stats().Real[Send] < 2) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-ran:
		if err != context.Canceled {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if started.Load() < 5 || finished.Load() != started.Load() {
		t.Fatalf("%d ops started, %d finished when Run returned", started.Load(), finished.Load())
	}
	if st := s.Stats(); st.Real[Send] != 2 || st.Errors[Send] == 0 {
		t.Fatalf("stats %+v", st)
	}
}
