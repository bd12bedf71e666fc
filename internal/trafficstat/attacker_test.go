package trafficstat

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// A synthetic trace: what every exit and swarm node saw, and which client
// each mailbox belongs to.
type trace struct {
	obs   []Observation
	truth map[string]int
}

var t0 = time.Unix(1_800_000_000, 0)

// see records one access as an exit and three swarm members saw it, a few
// milliseconds apart, as the recorder of a real devnet would.
func (tr *trace) see(r *rand.Rand, mailbox string, client int, at time.Time, size int) {
	tr.truth[mailbox] = client
	tr.obs = append(tr.obs, Observation{Mailbox: mailbox, At: at, Node: fmt.Sprintf("exit%d", r.IntN(12)), Size: size})
	for range 3 {
		d := time.Duration(r.IntN(30)) * time.Millisecond
		tr.obs = append(tr.obs, Observation{Mailbox: mailbox, At: at.Add(d), Node: fmt.Sprintf("swarm%d", r.IntN(12)), Size: size})
	}
}

// lockStep is the old behaviour: each epoch every client long-polls all its
// mailboxes within 150 ms of each other, at a time of its own.
func lockStep(r *rand.Rand, clients, mailboxes, epochs int, epoch time.Duration) trace {
	tr := trace{truth: map[string]int{}}
	for e := range epochs {
		for c := range clients {
			at := t0.Add(time.Duration(e)*epoch + time.Duration(r.Int64N(int64(epoch))))
			for m := range mailboxes {
				jit := time.Duration(r.Int64N(int64(150 * time.Millisecond)))
				tr.see(r, fmt.Sprintf("c%d-m%d", c, m), c, at.Add(jit), 32768)
			}
		}
	}
	return tr
}

// rotating is the new behaviour: each client reads one inbox per epoch, the
// inbox rotating every epoch, on its own schedule (next gives the times in
// its whole run; the schedule runs on across epochs: the client doesn't
// restart its timer when the inbox rotates).
func rotating(r *rand.Rand, clients, epochs int, epoch time.Duration, next func(start time.Time) []time.Time) trace {
	tr := trace{truth: map[string]int{}}
	for c := range clients {
		times := next(t0)
		for _, at := range times {
			e := int(at.Sub(t0) / epoch)
			if e < epochs {
				tr.see(r, fmt.Sprintf("c%d-e%d", c, e), c, at, 4096)
			}
		}
	}
	return tr
}

func score(t *testing.T, at Attacker, tr trace) float64 {
	t.Helper()
	ari, err := at.Score(tr.obs, tr.truth)
	if err != nil {
		t.Fatal(err)
	}
	return ari
}

// The attacker is good: it links the old lock-step long-polls of 20 clients
// with 10 mailboxes each almost perfectly, although every access is also seen
// at random exits and swarm members.
func TestAttackerLinksLockStep(t *testing.T) {
	for seed := range uint64(3) {
		r := rand.New(rand.NewPCG(seed, 17))
		tr := lockStep(r, 20, 10, 20, 30*time.Second)
		for _, name := range []string{"default", "average", "timing"} {
			if ari := score(t, Attackers()[name], tr); ari < 0.95 {
				t.Errorf("seed %d, %s attacker: ARI %.3f on lock-step traffic, want ≥ 0.95", seed, name, ari)
			}
		}
	}
}

// A naive rotation — one inbox per epoch, read on an exact cadence that runs
// on across the rotation — is linked by the handoff feature: the next inbox
// is read exactly one period after the last read of the old one.
func TestAttackerLinksNaiveRotation(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 19))
	epoch := 5 * time.Minute
	tr := rotating(r, 20, 12, epoch, func(start time.Time) []time.Time {
		return JitteredArrivals(r, 10*time.Second, 0, start, 12*epoch)
	})
	for _, name := range []string{"default", "handoff"} {
		if ari := score(t, Attackers()[name], tr); ari < 0.8 {
			t.Errorf("%s attacker: ARI %.3f on a naive rotation, want ≥ 0.8", name, ari)
		}
	}
}

// Sizes that depend on the client link its mailboxes.
func TestAttackerLinksBySize(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 21))
	tr := rotating(r, 20, 6, 5*time.Minute, func(start time.Time) []time.Time {
		return PoissonArrivals(r, 0.1, start, 30*time.Minute)
	})
	for i := range tr.obs {
		tr.obs[i].Size = 1024 * (1 + tr.truth[tr.obs[i].Mailbox]) // one size per client
	}
	if ari := score(t, Attacker{Window: 250 * time.Millisecond, Size: 1}, tr); ari < 0.95 {
		t.Errorf("size attacker: ARI %.3f with per-client sizes, want ≥ 0.95", ari)
	}
}

// When each client reads one rotating inbox per epoch on an independent
// schedule — Poisson, or a cadence with jitter as large as half the period —
// even the best attacker variant scores about chance.
func TestAttackerChanceOnIndependentSchedules(t *testing.T) {
	epoch := 5 * time.Minute
	schedules := map[string]func(r *rand.Rand) func(time.Time) []time.Time{
		"poisson": func(r *rand.Rand) func(time.Time) []time.Time {
			return func(start time.Time) []time.Time { return PoissonArrivals(r, 0.1, start, 10*epoch) }
		},
		"jittered": func(r *rand.Rand) func(time.Time) []time.Time {
			return func(start time.Time) []time.Time {
				return JitteredArrivals(r, 10*time.Second, 5*time.Second, start, 10*epoch)
			}
		},
	}
	for sname, schedule := range schedules {
		for seed := range uint64(2) {
			r := rand.New(rand.NewPCG(seed, 22))
			tr := rotating(r, 20, 10, epoch, schedule(r))
			name, best, err := BestAttack(tr.obs, tr.truth)
			if err != nil || best > 0.05 || best < -0.05 {
				t.Errorf("%s schedule, seed %d: best attack %s scored %.3f (%v)", sname, seed, name, best, err)
			}
		}
	}
}

// BestAttack finds the variant that links, and reports it.
func TestBestAttack(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	tr := rotating(r, 10, 12, 5*time.Minute, func(start time.Time) []time.Time {
		return JitteredArrivals(r, 10*time.Second, 0, start, time.Hour)
	})
	if name, ari, err := BestAttack(tr.obs, tr.truth); err != nil || ari < 0.95 || (name != "default" && name != "handoff") {
		t.Errorf("naive rotation: best attack %s scored %.3f (%v), want the handoff feature to link it", name, ari, err)
	}
}

func TestAttackerScoreNeedsTruth(t *testing.T) {
	obs := []Observation{{Mailbox: "a", At: t0}, {Mailbox: "b", At: t0}}
	if _, err := DefaultAttacker().Score(obs, map[string]int{"a": 0}); err == nil {
		t.Error("a mailbox without a client must be an error")
	}
	for _, obs := range [][]Observation{nil, obs[:1]} {
		if _, err := DefaultAttacker().Score(obs, map[string]int{"a": 0, "b": 1}); err == nil {
			t.Errorf("%d observations: want an error, not a score", len(obs))
		}
		if _, _, err := BestAttack(obs, map[string]int{"a": 0, "b": 1}); err == nil {
			t.Errorf("%d observations: BestAttack must fail", len(obs))
		}
	}
}

func TestAgglomerate(t *testing.T) {
	// Two obvious groups {0,1,2} and {3,4}, with a weak 2–3 bridge.
	sim := [][]float64{
		{0, 1, 0.9, 0, 0},
		{1, 0, 0.8, 0, 0},
		{0.9, 0.8, 0, 0.3, 0},
		{0, 0, 0.3, 0, 1},
		{0, 0, 0, 1, 0},
	}
	for _, l := range []Linkage{AverageLinkage, SingleLinkage} {
		got := Agglomerate(sim, 2, l)
		if AdjustedRandIndex([]int{0, 0, 0, 1, 1}, got) != 1 {
			t.Errorf("linkage %d: %v", l, got)
		}
		if got := Agglomerate(sim, 5, l); AdjustedRandIndex([]int{0, 1, 2, 3, 4}, got) != 1 {
			t.Errorf("linkage %d, k = m: %v", l, got)
		}
		if got := Agglomerate(sim, 1, l); AdjustedRandIndex([]int{0, 0, 0, 0, 0}, got) != 1 {
			t.Errorf("linkage %d, k = 1: %v", l, got)
		}
	}
	// Average and single linkage differ on a chain: 0–1–2–3 linked in a
	// line, 4–5 a tight pair. Single linkage keeps the chain whole.
	chain := [][]float64{
		{0, 1, 0, 0, 0, 0},
		{1, 0, 1, 0, 0, 0},
		{0, 1, 0, 1, 0, 0},
		{0, 0, 1, 0, 0.1, 0},
		{0, 0, 0, 0.1, 0, 1},
		{0, 0, 0, 0, 1, 0},
	}
	if got := Agglomerate(chain, 2, SingleLinkage); AdjustedRandIndex([]int{0, 0, 0, 0, 1, 1}, got) != 1 {
		t.Errorf("single linkage broke the chain: %v", got)
	}
}
