// Package cover is the client's Loopix-style cover traffic schedule
// (Piotrowska et al., "The Loopix Anonymity System", USENIX Security
// 2017, §4.2): three independent Poisson processes, whose ticks an
// observer of the client's link sees at the same rates whatever the
// client is doing.
//
//   - Send (rate λ_P): each tick sends the next queued real request, or a
//     cover request when the queue is empty.
//   - Loop (rate λ_L): each tick sends a loop cover request (one that
//     comes back to the client, so it can notice active attacks).
//   - Fetch (rate λ_F): each tick runs the next queued read, or a cover
//     read.
//
// Real operations replace cover ticks: they never add a request, and they
// never move a tick, so the times of the client's requests are the same
// Poisson processes busy or idle. A queued operation waits for the next
// tick of its process: 1/λ on average (the process is memoryless).
//
// The clock and the randomness are injected (Clock, *rand.Rand), so tests
// drive the schedule in fake time.
package cover

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// Kind is one of the schedule's processes.
type Kind int

const (
	Send  Kind = iota // real requests, else cover requests (λ_P)
	Loop              // loop cover only (λ_L)
	Fetch             // real reads, else cover reads (λ_F)
	nKinds
)

func (k Kind) String() string {
	switch k {
	case Send:
		return "send"
	case Loop:
		return "loop"
	case Fetch:
		return "fetch"
	}
	return "unknown"
}

// Op is one operation run at a tick. Its error is the caller's business
// (a real op reports its own outcome); the schedule only counts it.
type Op func(ctx context.Context) error

// Config is the schedule: the rate of each process (ticks per second) and
// the cover operation each process runs when it has nothing real to do.
// A process with rate 0 does not run (and Enqueue on it fails).
type Config struct {
	SendRate, LoopRate, FetchRate float64 // λ_P, λ_L, λ_F per second

	CoverSend  Op // a cover request (e.g. to a random mailbox), for a send tick with an empty queue
	LoopCover  Op // a loop cover request, for every loop tick
	CoverFetch Op // a cover read, for a fetch tick with an empty queue

	// MaxQueue bounds each process's queue of real operations (0: 1024);
	// Enqueue beyond it fails with ErrQueueFull rather than grow memory
	// or add a request.
	MaxQueue int
	// MaxInFlight bounds the operations of one process running at once
	// (0: 32).
	MaxInFlight int
}

// DefaultConfig is the strict mode's schedule: a send tick every second,
// a loop every 2 s, a fetch every second on average (see Budget for the
// latency and bandwidth these give; the client reads its current inbox
// at every other fetch).
var DefaultConfig = Config{SendRate: 1, LoopRate: 0.5, FetchRate: 1}

func (c Config) rate(k Kind) float64 {
	switch k {
	case Send:
		return c.SendRate
	case Loop:
		return c.LoopRate
	case Fetch:
		return c.FetchRate
	}
	return 0
}

func (c Config) cover(k Kind) Op {
	switch k {
	case Send:
		return c.CoverSend
	case Loop:
		return c.LoopCover
	case Fetch:
		return c.CoverFetch
	}
	return nil
}

// Clock is the time the schedule runs on.
type Clock interface {
	Now() time.Time
	// After is time.After.
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time                         { return time.Now() }
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Errors of Enqueue.
var (
	ErrQueueFull = errors.New("cover: queue full")
	ErrNoProcess = errors.New("cover: this process does not run (rate 0) or carries no real operations")
	ErrStopped   = errors.New("cover: schedule stopped")
)

// Stats counts the ticks of each process, real and cover.
type Stats struct {
	Real, Cover [nKinds]int64
	Errors      [nKinds]int64 // operations (real or cover) that returned an error
	Skipped     [nKinds]int64 // ticks skipped: MaxInFlight operations of the process were still running
}

// Tick is one tick as it happened (for tests and traces).
type Tick struct {
	Kind Kind
	At   time.Time
	Real bool
}

// Scheduler runs the three processes.
type Scheduler struct {
	cfg   Config
	clock Clock

	rnd [nKinds]*rand.Rand // one generator per process (used by its goroutine only)

	mu      sync.Mutex
	queue   [nKinds][]Op
	stats   Stats
	stopped bool

	onTick func(Tick)
}

// New makes a schedule. clock nil is the wall clock; rnd nil is a
// generator seeded from the operating system (the tick times must be
// unpredictable to an observer).
func New(cfg Config, clock Clock, rnd *rand.Rand) *Scheduler {
	if clock == nil {
		clock = RealClock{}
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 1024
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 32
	}
	s := &Scheduler{cfg: cfg, clock: clock}
	for k := range s.rnd {
		if rnd == nil {
			s.rnd[k] = rand.New(rand.NewChaCha8(seed()))
		} else {
			// Derived in a fixed order: a seeded schedule is the same
			// schedule every time.
			s.rnd[k] = rand.New(rand.NewPCG(rnd.Uint64(), rnd.Uint64()))
		}
	}
	return s
}

// OnTick sets a function called at every tick, before its operation runs
// (tests, traces). Set it before Run.
func (s *Scheduler) OnTick(f func(Tick)) { s.onTick = f }

// Enqueue queues a real operation for process kind (Send or Fetch): it
// runs at one of the process's next ticks, in place of a cover
// operation, exactly once (unless the schedule stops first: see Run).
func (s *Scheduler) Enqueue(kind Kind, op Op) error {
	if kind != Send && kind != Fetch || s.cfg.rate(kind) <= 0 || op == nil {
		return ErrNoProcess
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if len(s.queue[kind]) >= s.cfg.MaxQueue {
		return ErrQueueFull
	}
	s.queue[kind] = append(s.queue[kind], op)
	return nil
}

// Queued is the number of real operations waiting for process kind.
func (s *Scheduler) Queued(kind Kind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue[kind])
}

// Stats returns the counts so far.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// interval draws the time to process k's next tick: Exp(rate).
func (s *Scheduler) interval(k Kind, rate float64) time.Duration {
	return time.Duration(s.rnd[k].ExpFloat64() / rate * float64(time.Second))
}

// Run runs the processes until ctx ends, then waits for the operations
// in flight and returns ctx's error. Each process runs in a goroutine of
// its own and keeps its own schedule of absolute tick times (each the
// last plus an Exp(λ) interval), so how long operations take never moves
// a tick: a tick's operation runs in a goroutine of its own, with ctx. At
// most MaxInFlight operations of one process run at once; a tick that
// finds them all busy is skipped (counted in Stats.Skipped) and its real
// operation, if any, stays queued. Operations still queued when Run
// returns are left unrun; Drain returns them.
func (s *Scheduler) Run(ctx context.Context) error {
	var procs, ops sync.WaitGroup
	for k := Kind(0); k < nKinds; k++ {
		rate := s.cfg.rate(k)
		if rate <= 0 {
			continue
		}
		procs.Add(1)
		go func() {
			defer procs.Done()
			s.process(ctx, k, rate, &ops)
		}()
	}
	procs.Wait()
	ops.Wait()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	return ctx.Err()
}

// Drain removes and returns the real operations never run (after Run has
// returned: the caller fails them, so none is lost silently).
func (s *Scheduler) Drain() map[Kind][]Op {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[Kind][]Op{}
	for k := range s.queue {
		if len(s.queue[k]) > 0 {
			out[Kind(k)] = s.queue[k]
			s.queue[k] = nil
		}
	}
	return out
}

// process is one Poisson process: tick at t₀ + X₁, + X₂, … with Xᵢ ~ Exp(rate).
func (s *Scheduler) process(ctx context.Context, k Kind, rate float64, ops *sync.WaitGroup) {
	busy := make(chan struct{}, s.cfg.MaxInFlight)
	next := s.clock.Now()
	for {
		next = next.Add(s.interval(k, rate))
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(next.Sub(s.clock.Now())):
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case busy <- struct{}{}:
		default:
			s.mu.Lock()
			s.stats.Skipped[k]++
			s.mu.Unlock()
			continue
		}
		op, real := s.take(k)
		if s.onTick != nil {
			s.onTick(Tick{Kind: k, At: next, Real: real})
		}
		ops.Add(1)
		go func() {
			defer ops.Done()
			defer func() { <-busy }()
			if op == nil {
				return
			}
			if err := op(ctx); err != nil {
				s.mu.Lock()
				s.stats.Errors[k]++
				s.mu.Unlock()
			}
		}()
	}
}

// take removes the next real operation of k, or returns its cover
// operation, and counts it.
func (s *Scheduler) take(k Kind) (op Op, real bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queue[k]; len(q) > 0 {
		op = q[0]
		q[0] = nil
		s.queue[k] = q[1:]
		s.stats.Real[k]++
		return op, true
	}
	s.stats.Cover[k]++
	return s.cfg.cover(k), false
}
