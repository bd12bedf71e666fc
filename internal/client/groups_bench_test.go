package client_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/memswarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// Benchmarks of groups (issue 13): whole engines on the in-memory swarm
// (internal/memswarm), in one process.
//
//	go test -run '^$' -bench 'BenchmarkGroup' -benchtime=3x ./internal/client/
//	UMBRA_BENCH_MEMBERS=100,1000 go test -run '^$' -bench 'BenchmarkGroup(Send|Admin)' -benchtime=2x ./internal/client/
//	UMBRA_BENCH_MEMBERS=200 go test -run '^$' -bench 'BenchmarkGroup$' -benchtime=1x -timeout 60m ./internal/client/
//
// BenchmarkGroup runs an engine per member: every member reads every
// other's chain distribution and delivered receipt, so its work grows with
// the square of the size; on a 2-core machine 200 members take minutes and
// 1,000 more than an hour (see the figures in issue 13).
//
// UMBRA_BENCH_MEMBERS lists the group sizes (default "10,100"); a size is
// the number of members, the creator included.
//
// Why real time and not a synctest bubble: synctest.Test takes a
// *testing.T, and inside a bubble time only moves when every goroutine is
// blocked, so the elapsed virtual time of a delivery is the engines'
// schedule (poll gaps, receipt delays), not the work they do. These
// benchmarks run on the wall clock with a schedule whose pauses are a few
// milliseconds (benchSchedule): long-polls wake as soon as a message lands,
// so the time a message takes to reach every member is the engines' CPU
// work plus milliseconds of gaps. It is not a network latency: the
// in-memory swarm answers at once, and N engines share this machine's
// cores, so at large N it is the total receive work divided among the
// cores. That is why each figure comes with the count of network
// operations and bytes (which do not depend on the machine) and the
// process's CPU time (getrusage: every engine's, the idle ones' polling
// included).
//
// Figures (custom units; "op" is one iteration of the benchmark):
//
//	BenchmarkGroupSend: ns/op and cpu-ns/op of one SendGroup that waits
//	  until the network holds the message (encrypt, store, queue, one
//	  write); put-B/op is the bytes of that write. Only the sender's engine
//	  runs: the members are account IDs.
//	BenchmarkGroup/members=N/fanout: one text from the creator to a group
//	  whose members all run engines. ms-to-all and ms-to-half: from the send to
//	  the last (the median) member holding it. Then until every delivered
//	  receipt is in and the network is quiet: puts/op and put-B/op (all
//	  clients, receipts included), cpu-ms/op (the whole process),
//	  stored-B/op (growth of the group's mailboxes).
//	BenchmarkGroup/members=N/members: remove one member, then add it back
//	  (it was removed, so it is invited again and accepts), each until
//	  every member has moved to the new epoch, handed out its new chain
//	  and the network is quiet. add-puts and add-B: every client's
//	  writes; add-admin-puts, add-admin-B: the admin's; add-ms: from the
//	  change to the last write it caused; add-cpu-ms: the whole process
//	  until quiet; the same for remove. setup-stored-B is
//	  what the group's mailboxes hold after creation and one message
//	  (distributions, ops, the text and its receipts).
//
// Receipts use a delay of a few hundred milliseconds instead of the
// production 5 s to 2 min, so that they fit in an iteration; their number
// and size do not depend on the delay, only how many are batched together.

var benchSchedule = client.Schedule{
	PollWait:   [2]time.Duration{20 * time.Second, 30 * time.Second},
	PollGap:    [2]time.Duration{time.Millisecond, 5 * time.Millisecond},
	CatchUpGap: [2]time.Duration{10 * time.Millisecond, 50 * time.Millisecond},
}

var benchReceiptDelay = client.ReceiptDelay{Floor: 200 * time.Millisecond, Scale: 300 * time.Millisecond, Max: 2 * time.Second}

// benchSizes is the group sizes to measure (UMBRA_BENCH_MEMBERS).
func benchSizes(b *testing.B) []int {
	spec := os.Getenv("UMBRA_BENCH_MEMBERS")
	if spec == "" {
		spec = "10,100"
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || n > 1000 {
			b.Fatalf("UMBRA_BENCH_MEMBERS: %q is not a group size (2 to 1000)", f)
		}
		out = append(out, n)
	}
	return out
}

// putCount is what one client stored.
type putCount struct {
	puts  int
	bytes int64
}

// putTally counts the stores the swarm accepts, by client. Cards (the
// public namespace: prekeys, republished as they are used up) are counted
// apart: they are no group's cost.
type putTally struct {
	mu    sync.Mutex
	by    map[string]putCount
	cards map[string]int
	last  time.Time // wall clock of the last store
}

func newPutTally() *putTally {
	return &putTally{by: map[string]putCount{}, cards: map[string]int{}}
}

func (p *putTally) see(v memswarm.Seen) {
	if v.Op != memswarm.OpPut || v.Err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if v.Namespace == wire.PublicNamespace {
		p.cards[v.Client]++
		return
	}
	c := p.by[v.Client]
	c.puts++
	c.bytes += int64(v.Size)
	p.by[v.Client] = c
	p.last = time.Now()
}

func (p *putTally) snap() map[string]putCount {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]putCount, len(p.by))
	for k, v := range p.by {
		out[k] = v
	}
	return out
}

// lastAt is when the last store was.
func (p *putTally) lastAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (p *putTally) quietFor() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Since(p.last)
}

// diff is after minus before: every client's total, and label's.
func diff(before, after map[string]putCount, label string) (all, one putCount) {
	for k, a := range after {
		d := putCount{a.puts - before[k].puts, a.bytes - before[k].bytes}
		all.puts += d.puts
		all.bytes += d.bytes
		if k == label {
			one = d
		}
	}
	return all, one
}

// benchWatch follows the events of every engine of a group.
type benchWatch struct {
	mu      sync.Mutex
	gid     string
	creator string
	arrived map[string][]time.Time // text from the creator -> when each member had it
	epoch   map[string]uint64      // member ID -> epoch of its latest group event
	status  map[string]string      // member ID -> status in its latest group event
	stops   []func()
}

func newBenchWatch() *benchWatch {
	return &benchWatch{arrived: map[string][]time.Time{},
		epoch: map[string]uint64{}, status: map[string]string{}}
}

// follow reads u's events until the benchmark ends.
func (w *benchWatch) follow(b *testing.B, u *user) {
	ch, stop := u.e.Subscribe()
	done := make(chan struct{})
	w.stops = append(w.stops, func() { stop(); close(done) })
	go func() {
		for {
			select {
			case <-done:
				return
			case ev := <-ch:
				w.take(u.id, ev)
			}
		}
	}()
}

func (w *benchWatch) take(who string, ev client.Event) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gid == "" {
		return
	}
	switch {
	case ev.Group != nil && ev.Group.ID == w.gid:
		w.epoch[who], w.status[who] = ev.Group.Epoch, ev.Group.Status
	case ev.Message != nil && ev.Message.Group == w.gid:
		m := ev.Message
		if ev.Type == client.EventMessage && !m.Outgoing && m.From == w.creator && m.Kind == "" {
			w.arrived[m.Text] = append(w.arrived[m.Text], now)
		}
	}
}

func (w *benchWatch) stop() {
	for _, f := range w.stops {
		f()
	}
}

// await polls f every 20 ms for up to d, and fails the benchmark then.
func await(b *testing.B, d time.Duration, what string, f func() bool, progress func() string) {
	b.Helper()
	deadline := time.Now().Add(d)
	lastLog := time.Now()
	for !f() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out after %v waiting for %s: %s", d, what, progress())
		}
		if time.Since(lastLog) > 30*time.Second {
			b.Logf("waiting for %s: %s", what, progress())
			lastLog = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// benchGroup is a group whose creator and members run engines on one
// in-memory swarm.
type benchGroup struct {
	s       *memswarm.Swarm
	tally   *putTally
	watch   *benchWatch
	creator *user
	members []*user // without the creator
	gid     string
	probe   *memswarm.Client
}

// benchEngine makes an account and starts its engine on s.
func benchEngine(s *memswarm.Swarm, dir, label string) (*user, error) {
	home := filepath.Join(dir, label)
	acct, err := client.Init(home, "", nil, "")
	if err != nil {
		return nil, err
	}
	e, err := client.Open(context.Background(), client.Config{Home: home, Network: s.Client(label),
		Schedule: benchSchedule, ReceiptDelay: benchReceiptDelay, Logger: quiet()})
	if err != nil {
		return nil, err
	}
	e.Start()
	return &user{home: home, e: e, id: acct.ID().String()}, nil
}

// benchEngines starts n engines, two at a time; the benchmark stops them
// when it ends.
func benchEngines(b *testing.B, s *memswarm.Swarm, dir, prefix string, n int) []*user {
	out := make([]*user, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 2 {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = benchEngine(s, dir, fmt.Sprintf("%s%04d", prefix, i))
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	b.Cleanup(func() {
		var wg sync.WaitGroup
		for _, u := range out {
			if u != nil {
				wg.Go(u.stop)
			}
		}
		wg.Wait()
	})
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// randomID is a fresh account ID, of an account that runs no engine.
func randomID(b *testing.B) string {
	a, err := identity.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	return a.ID().String()
}

// newBenchGroup makes a group of n (the creator and n-1 members who have
// it as a contact, so that they join at once), and
// waits until every member holds a first text from the creator and the
// receipts are in.
func newBenchGroup(b *testing.B, n int) *benchGroup {
	b.Helper()
	start := time.Now()
	dir := b.TempDir()
	g := &benchGroup{s: memswarm.New(memswarm.Options{}), tally: newPutTally(), watch: newBenchWatch()}
	g.s.Watch(g.tally.see)
	g.probe = g.s.Client("probe")
	all := benchEngines(b, g.s, dir, "u", n)
	b.Cleanup(g.watch.stop) // before the engines stop: cleanups run last first
	g.creator, g.members = all[0], all[1:]
	b.Logf("members=%d: %d engines started in %v", n, len(all), time.Since(start).Round(time.Millisecond))
	var ids []string
	for _, u := range all[1:] {
		befriend(b, g.creator, u)
		ids = append(ids, u.id)
	}
	for _, u := range all {
		g.watch.follow(b, u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	made := time.Now()
	grp, err := g.creator.e.CreateGroup(ctx, "bench", "", ids)
	if err != nil {
		b.Fatal(err)
	}
	g.gid = grp.ID
	g.watch.mu.Lock()
	g.watch.gid, g.watch.creator = grp.ID, g.creator.id
	g.watch.mu.Unlock()
	b.Logf("members=%d: group created in %v", n, time.Since(made).Round(time.Millisecond))
	first := time.Now()
	m, err := g.creator.e.SendGroup(ctx, g.gid, "bench warm-up", "", true)
	if err != nil {
		b.Fatal(err)
	}
	g.awaitArrivals(b, "bench warm-up", 20*time.Minute)
	b.Logf("members=%d: every member holds the first text %v after it was sent", n, time.Since(first).Round(time.Millisecond))
	g.awaitReceipts(b, m.ID, 20*time.Minute)
	g.awaitQuiet(b, time.Second, 10*time.Minute)
	b.Logf("members=%d: set up in %v", n, time.Since(start).Round(time.Millisecond))
	return g
}

// awaitArrivals waits until every member holds text; it returns when
// each did, in order.
func (g *benchGroup) awaitArrivals(b *testing.B, text string, d time.Duration) []time.Time {
	b.Helper()
	var got []time.Time
	await(b, d, fmt.Sprintf("%q to reach %d members", text, len(g.members)), func() bool {
		g.watch.mu.Lock()
		defer g.watch.mu.Unlock()
		got = slices.Clone(g.watch.arrived[text])
		return len(got) >= len(g.members)
	}, func() string { return fmt.Sprintf("%d members hold it", len(got)) })
	slices.SortFunc(got, func(x, y time.Time) int { return x.Compare(y) })
	return got
}

// awaitReceipts waits until every member's delivered receipt for the
// creator's message id has been counted. It reads the message: the
// creator's events come in hundreds at once, more than a subscription
// holds.
func (g *benchGroup) awaitReceipts(b *testing.B, id string, d time.Duration) {
	b.Helper()
	var k int
	await(b, d, "every delivered receipt", func() bool {
		ms, err := g.creator.e.GroupMessages(g.gid)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range ms {
			if m.ID == id {
				k = m.DeliveredCount
			}
		}
		return k >= len(g.members)
	}, func() string { return fmt.Sprintf("%d of %d", k, len(g.members)) })
}

// awaitQuiet waits until nothing has been stored for quiet.
func (g *benchGroup) awaitQuiet(b *testing.B, quiet, d time.Duration) {
	b.Helper()
	await(b, d, "a quiet network", func() bool { return g.tally.quietFor() >= quiet },
		func() string { return fmt.Sprintf("last store %v ago", g.tally.quietFor()) })
}

// stored is what the group's mailboxes hold now: messages and bytes.
func (g *benchGroup) stored(b *testing.B) (msgs int, bytes int64) {
	b.Helper()
	for _, k := range g.creator.e.GroupBoxKeys(g.gid) {
		ms, err := g.probe.Get(context.Background(), k, 0)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range ms {
			msgs++
			bytes += int64(len(m.Data))
		}
	}
	return msgs, bytes
}

// BenchmarkGroupSend: what sending one text to a group costs its sender.
func BenchmarkGroupSend(b *testing.B) {
	for _, n := range append([]int{2}, benchSizes(b)...) {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			s := memswarm.New(memswarm.Options{})
			tally := newPutTally()
			s.Watch(tally.see)
			u := benchEngines(b, s, dir, "sender", 1)[0]
			// The members are accounts without engines: their invitations
			// wait in the sender's queue (it cannot read their cards), and
			// the sender's chain is made at creation.
			ids := make([]string, n-1)
			for i := range ids {
				ids[i] = randomID(b)
			}
			ctx := context.Background()
			g, err := u.e.CreateGroup(ctx, "bench", "", ids)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := u.e.SendGroup(ctx, g.ID, "warm-up", "", true); err != nil {
				b.Fatal(err)
			}
			before, cpu0 := tally.snap(), cpuTime(b)
			i := 0
			for b.Loop() {
				if _, err := u.e.SendGroup(ctx, g.ID, fmt.Sprintf("bench text %06d", i), "", true); err != nil {
					b.Fatal(err)
				}
				i++
			}
			cpu := cpuTime(b) - cpu0
			_, mine := diff(before, tally.snap(), "sender0000")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(i), "cpu-ns/op")
			b.ReportMetric(float64(mine.puts)/float64(i), "puts/op")
			b.ReportMetric(float64(mine.bytes)/float64(i), "put-B/op")
		})
	}
}

// BenchmarkGroup: a group whose members all run engines, set up once per
// size for both sub-benchmarks: fanout (one text from the creator to every
// member) and members (remove one member, then add it back).
func BenchmarkGroup(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			g := newBenchGroup(b, n)
			_, setupStored := g.stored(b)
			b.Logf("members=%d: the group's mailboxes hold %d bytes after setup", n, setupStored)
			b.Run("fanout", func(b *testing.B) { benchFanout(b, g) })
			b.Run("members", func(b *testing.B) { benchMembers(b, g, setupStored) })
		})
	}
}

// benchFanout: one text from the creator to every member.
func benchFanout(b *testing.B, g *benchGroup) {
	_, stored0 := g.stored(b)
	ctx := context.Background()
	var toAll, toHalf, cpu time.Duration
	var all putCount
	i := 0
	for b.Loop() {
		text := fmt.Sprintf("bench text %06d", i)
		before, cpu0, t0 := g.tally.snap(), cpuTime(b), time.Now()
		m, err := g.creator.e.SendGroup(ctx, g.gid, text, "", false)
		if err != nil {
			b.Fatal(err)
		}
		got := g.awaitArrivals(b, text, 20*time.Minute)
		toAll += got[len(got)-1].Sub(t0)
		toHalf += got[len(got)/2].Sub(t0)
		// Logged at once: at 1,000 members the receipts that follow take
		// longer than a run may.
		b.Logf("%q reached half the members in %v, all in %v", text, got[len(got)/2].Sub(t0), got[len(got)-1].Sub(t0))
		g.awaitReceipts(b, m.ID, 20*time.Minute)
		g.awaitQuiet(b, time.Second, 10*time.Minute)
		cpu += cpuTime(b) - cpu0
		d, _ := diff(before, g.tally.snap(), "")
		all.puts += d.puts
		all.bytes += d.bytes
		i++
	}
	_, stored1 := g.stored(b)
	per := func(x float64) float64 { return x / float64(i) }
	b.ReportMetric(per(float64(toAll.Milliseconds())), "ms-to-all")
	b.ReportMetric(per(float64(toHalf.Milliseconds())), "ms-to-half")
	b.ReportMetric(per(float64(cpu.Milliseconds())), "cpu-ms/op")
	b.ReportMetric(per(float64(all.puts)), "puts/op")
	b.ReportMetric(per(float64(all.bytes)), "put-B/op")
	b.ReportMetric(per(float64(stored1-stored0)), "stored-B/op")
}

// benchMembers: removing one member from the group and adding it back.
func benchMembers(b *testing.B, g *benchGroup, setupStored int64) {
	ctx := context.Background()
	var addAll, addMine, rmAll, rmMine putCount
	var addT, rmT, addCPU, rmCPU time.Duration
	admin := filepath.Base(g.creator.home)
	i := 0
	// step makes a change and waits until everyone in the group
	// after it has handed out a chain for the new epoch and the
	// network is quiet.
	step := func(change func() (*client.Group, error), in []*user) (all, mine putCount, took, cpu time.Duration) {
		before, cpu0, t0 := g.tally.snap(), cpuTime(b), time.Now()
		grp, err := change()
		if err != nil {
			b.Fatal(err)
		}
		var behind int
		await(b, 20*time.Minute, "every member to take the change", func() bool {
			now := g.tally.snap()
			behind = 0
			for _, u := range in {
				l := filepath.Base(u.home)
				g.watch.mu.Lock()
				ep, st := g.watch.epoch[u.id], g.watch.status[u.id]
				g.watch.mu.Unlock()
				if now[l].puts == before[l].puts || ep < grp.Epoch || st != client.GroupJoined {
					behind++
				}
			}
			return behind == 0
		}, func() string { return fmt.Sprintf("%d of %d behind", behind, len(in)) })
		g.awaitQuiet(b, time.Second, 10*time.Minute)
		took, cpu = g.tally.lastAt().Sub(t0), cpuTime(b)-cpu0
		all, mine = diff(before, g.tally.snap(), admin)
		return all, mine, took, cpu
	}
	for b.Loop() {
		// Remove the last member, then add it back: it was removed, so
		// it is invited again and accepts.
		x := g.members[len(g.members)-1]
		a, m, t, c := step(func() (*client.Group, error) {
			return g.creator.e.RemoveGroupMembers(ctx, g.gid, []string{x.id})
		}, g.members[:len(g.members)-1])
		rmAll, rmMine = rmAll.add(a), rmMine.add(m)
		rmT, rmCPU = rmT+t, rmCPU+c
		a, m, t, c = step(func() (*client.Group, error) {
			grp, err := g.creator.e.AddGroupMembers(ctx, g.gid, []string{x.id})
			if err != nil {
				return nil, err
			}
			await(b, 10*time.Minute, "the invitation", func() bool {
				g.watch.mu.Lock()
				defer g.watch.mu.Unlock()
				return g.watch.status[x.id] == client.GroupInvited
			}, func() string { return "" })
			_, err = x.e.AcceptGroup(ctx, g.gid)
			return grp, err
		}, g.members)
		addAll, addMine = addAll.add(a), addMine.add(m)
		addT, addCPU = addT+t, addCPU+c
		i++
	}
	per := func(x float64) float64 { return x / float64(i) }
	b.ReportMetric(float64(setupStored), "setup-stored-B")
	b.ReportMetric(per(float64(addAll.puts)), "add-puts")
	b.ReportMetric(per(float64(addAll.bytes)), "add-B")
	b.ReportMetric(per(float64(addMine.puts)), "add-admin-puts")
	b.ReportMetric(per(float64(addMine.bytes)), "add-admin-B")
	b.ReportMetric(per(float64(addT.Milliseconds())), "add-ms")
	b.ReportMetric(per(float64(addCPU.Milliseconds())), "add-cpu-ms")
	b.ReportMetric(per(float64(rmAll.puts)), "remove-puts")
	b.ReportMetric(per(float64(rmAll.bytes)), "remove-B")
	b.ReportMetric(per(float64(rmMine.puts)), "remove-admin-puts")
	b.ReportMetric(per(float64(rmMine.bytes)), "remove-admin-B")
	b.ReportMetric(per(float64(rmT.Milliseconds())), "remove-ms")
	b.ReportMetric(per(float64(rmCPU.Milliseconds())), "remove-cpu-ms")
}

func (p putCount) add(q putCount) putCount { return putCount{p.puts + q.puts, p.bytes + q.bytes} }

// BenchmarkGroupAdmin: what creating a group, adding a member and
// removing one cost the admin, at sizes where every member running an
// engine is too much for one machine (each member reads every other
// member's chain distribution, N^2 records group-wide, and every delivered
// receipt). The members' engines run only until they have published their
// cards, so the admin can open sessions with them; then they stop, and the
// admin's invitations and secrets wait in their mailboxes. The admin's
// writes are the same as with the members online: one op and one
// distribution in the group's mailbox, and one pairwise control per member
// concerned.
//
// Per change: admin-puts and admin-B (the admin's writes, until its queue
// is empty), admin-ms and cpu-ms (the whole process: the admin's work, the
// members are stopped). create-* is the group's creation with its
// invitations.
func BenchmarkGroupAdmin(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			start := time.Now()
			s := memswarm.New(memswarm.Options{})
			tally := newPutTally()
			s.Watch(tally.see)
			all := benchEngines(b, s, b.TempDir(), "u", n)
			admin, members := all[0], all[1:]
			x := members[len(members)-1] // removed and added back
			label := func(u *user) string { return filepath.Base(u.home) }
			var missing int
			await(b, 10*time.Minute, "every card", func() bool {
				tally.mu.Lock()
				defer tally.mu.Unlock()
				missing = 0
				for _, u := range all {
					if tally.cards[label(u)] == 0 {
						missing++
					}
				}
				return missing == 0
			}, func() string { return fmt.Sprintf("%d missing", missing) })
			for _, u := range all[1:] {
				u.stop()
			}
			var ids []string
			for _, u := range all[1:] {
				if _, err := admin.e.AddContact(u.id, ""); err != nil {
					b.Fatal(err)
				}
				ids = append(ids, u.id)
			}
			b.Logf("members=%d: %d engines started, cards published, members stopped in %v", n, len(all), time.Since(start).Round(time.Millisecond))
			ctx := context.Background()
			// change makes a change and waits until the admin has made at
			// least want writes and nothing for a second.
			change := func(f func() error, want int) (mine putCount, took, cpu time.Duration) {
				before, cpu0, t0 := tally.snap(), cpuTime(b), time.Now()
				if err := f(); err != nil {
					b.Fatal(err)
				}
				await(b, 20*time.Minute, "the admin's writes", func() bool {
					_, mine = diff(before, tally.snap(), label(admin))
					return mine.puts >= want && tally.quietFor() >= time.Second
				}, func() string { return fmt.Sprintf("%d of %d writes", mine.puts, want) })
				took, cpu = tally.lastAt().Sub(t0), cpuTime(b)-cpu0
				_, mine = diff(before, tally.snap(), label(admin))
				return mine, took, cpu
			}
			var gid string
			// Creation: the admin's distribution and n-1 invitations.
			cr, crT, crCPU := change(func() error {
				g, err := admin.e.CreateGroup(ctx, "bench", "", ids)
				if err == nil {
					gid = g.ID
				}
				return err
			}, 1+len(members))
			var add, rm putCount
			var addT, rmT, addCPU, rmCPU time.Duration
			i := 0
			for b.Loop() {
				// Remove: the op in the old mailbox, the admin's new
				// distribution, a fresh secret to each of the n-2 who
				// stay.
				r, t, c := change(func() error {
					_, err := admin.e.RemoveGroupMembers(ctx, gid, []string{x.id})
					return err
				}, 2+len(members)-1)
				rm, rmT, rmCPU = rm.add(r), rmT+t, rmCPU+c
				// Add back: the op, the distribution, the invitation with
				// the whole log.
				a, t, c := change(func() error {
					_, err := admin.e.AddGroupMembers(ctx, gid, []string{x.id})
					return err
				}, 3)
				add, addT, addCPU = add.add(a), addT+t, addCPU+c
				i++
			}
			per := func(x float64) float64 { return x / float64(i) }
			b.ReportMetric(float64(cr.puts), "create-admin-puts")
			b.ReportMetric(float64(cr.bytes), "create-admin-B")
			b.ReportMetric(float64(crT.Milliseconds()), "create-ms")
			b.ReportMetric(float64(crCPU.Milliseconds()), "create-cpu-ms")
			b.ReportMetric(per(float64(add.puts)), "add-admin-puts")
			b.ReportMetric(per(float64(add.bytes)), "add-admin-B")
			b.ReportMetric(per(float64(addT.Milliseconds())), "add-ms")
			b.ReportMetric(per(float64(addCPU.Milliseconds())), "add-cpu-ms")
			b.ReportMetric(per(float64(rm.puts)), "remove-admin-puts")
			b.ReportMetric(per(float64(rm.bytes)), "remove-admin-B")
			b.ReportMetric(per(float64(rmT.Milliseconds())), "remove-ms")
			b.ReportMetric(per(float64(rmCPU.Milliseconds())), "remove-cpu-ms")
			g := &benchGroup{creator: admin, gid: gid, probe: s.Client("probe")}
			_, stored := g.stored(b)
			b.ReportMetric(float64(stored), "stored-B")
		})
	}
}
