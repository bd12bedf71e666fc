package trafficstat

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// Observation is one access to a mailbox as some node saw it: a read or a
// write, at an exit or a swarm node.
type Observation struct {
	Mailbox string    // the mailbox ID, as the node saw it
	At      time.Time // when the node saw the request
	Node    string    // which node saw it (an exit, a swarm member)
	Size    int       // request or reply size in bytes, as the node saw it
}

// Attacker is the linking attacker: it clusters mailboxes into clients from
// what colluding nodes saw, knowing the number of clients. The zero value
// is not useful; start from DefaultAttacker.
type Attacker struct {
	// Window is Δ: two accesses within Δ of each other coincide, and
	// repeated sightings of one mailbox within Δ (an exit and three swarm
	// members seeing one request) count as one access.
	Window time.Duration
	// Weights of the features added into one pairwise similarity.
	Timing  float64 // co-occurrence of accesses, in excess of chance
	Handoff float64 // one mailbox picks up the other's rhythm where it stops
	Size    float64 // cosine of the size histograms
	Node    float64 // cosine of the histograms of nodes that saw them
	Linkage Linkage
}

// DefaultAttacker uses every feature, timing first, with a window that
// catches the 150 ms lock-step of one client's long-polls, and single
// linkage, which follows a rotating inbox's chain of handoffs.
func DefaultAttacker() Attacker {
	return Attacker{Window: 250 * time.Millisecond, Timing: 1, Handoff: 1, Size: 0.1, Node: 0.1, Linkage: SingleLinkage}
}

// Attackers are the variants an unlinkability test should all defeat: the
// default, the default with average linkage, and each feature alone.
func Attackers() map[string]Attacker {
	def := DefaultAttacker()
	average := def
	average.Linkage = AverageLinkage
	only := func(f func(*Attacker), l Linkage) Attacker {
		a := Attacker{Window: def.Window, Linkage: l}
		f(&a)
		return a
	}
	return map[string]Attacker{
		"default": def,
		"average": average,
		"timing":  only(func(a *Attacker) { a.Timing = 1 }, AverageLinkage),
		"handoff": only(func(a *Attacker) { a.Handoff = 1 }, SingleLinkage),
		"size":    only(func(a *Attacker) { a.Size = 1 }, AverageLinkage),
		"node":    only(func(a *Attacker) { a.Node = 1 }, AverageLinkage),
	}
}

// BestAttack runs every variant of Attackers on obs and returns the name and
// adjusted Rand index of the one that links best: what a test asserting
// "no better than chance" should bound. (The maximum of several scores near
// 0 is slightly above 0; with 200 mailboxes in 20 clients their spread is
// about 0.01.)
func BestAttack(obs []Observation, truth map[string]int) (name string, ari float64, err error) {
	ari = math.Inf(-1)
	variants := Attackers()
	names := make([]string, 0, len(variants))
	for n := range variants {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, err := variants[n].Score(obs, truth)
		if err != nil {
			return "", math.NaN(), err
		}
		if math.IsNaN(v) {
			return n, v, fmt.Errorf("trafficstat: attack %s scored NaN", n)
		}
		if v > ari {
			name, ari = n, v
		}
	}
	return name, ari, nil
}

// profile is what the attacker keeps per mailbox.
type profile struct {
	times []float64 // distinct accesses, seconds from the trace start, sorted
	gap   float64   // median gap between accesses (NaN below two accesses)
	sizes map[int]float64
	nodes map[string]float64
}

// Link clusters the observed mailboxes into k clients. It returns the
// mailboxes (in the order of their SHA-256) and a label per mailbox.
func (at Attacker) Link(obs []Observation, k int) (mailboxes []string, labels []int) {
	profiles, mailboxes := at.profiles(obs)
	return mailboxes, Agglomerate(at.similarity(profiles), k, at.Linkage)
}

// Score runs the attack on obs, told the number of distinct clients among the
// observed mailboxes, and returns its adjusted Rand index against truth,
// which maps every observed mailbox to its client. Fewer than two observed
// mailboxes is an error: there is nothing to link, and a test must not pass
// on an empty recording.
func (at Attacker) Score(obs []Observation, truth map[string]int) (float64, error) {
	profiles, mailboxes := at.profiles(obs)
	if len(mailboxes) < 2 {
		return math.NaN(), fmt.Errorf("trafficstat: %d mailboxes observed, nothing to link", len(mailboxes))
	}
	want := make([]int, len(mailboxes))
	clients := map[int]bool{}
	for i, mb := range mailboxes {
		c, ok := truth[mb]
		if !ok {
			return math.NaN(), fmt.Errorf("trafficstat: no client for observed mailbox %q", mb)
		}
		want[i], clients[c] = c, true
	}
	got := Agglomerate(at.similarity(profiles), len(clients), at.Linkage)
	return AdjustedRandIndex(want, got), nil
}

func (at Attacker) profiles(obs []Observation) ([]profile, []string) {
	if len(obs) == 0 {
		return nil, nil
	}
	start := obs[0].At
	byMailbox := map[string][]Observation{}
	for _, o := range obs {
		if o.At.Before(start) {
			start = o.At
		}
		byMailbox[o.Mailbox] = append(byMailbox[o.Mailbox], o)
	}
	mailboxes := make([]string, 0, len(byMailbox))
	for mb := range byMailbox {
		mailboxes = append(mailboxes, mb)
	}
	// Order by a hash of the ID, not the ID: agglomeration breaks ties by
	// index, and readable IDs in a test ("client3-epoch2") must not leak
	// the answer through that order.
	slices.SortFunc(mailboxes, func(a, b string) int {
		ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
		return bytes.Compare(ha[:], hb[:])
	})
	win := at.Window.Seconds()
	profiles := make([]profile, len(mailboxes))
	for i, mb := range mailboxes {
		p := profile{sizes: map[int]float64{}, nodes: map[string]float64{}}
		var ts []float64
		for _, o := range byMailbox[mb] {
			ts = append(ts, o.At.Sub(start).Seconds())
			p.sizes[o.Size]++
			p.nodes[o.Node]++
		}
		slices.Sort(ts)
		for _, t := range ts {
			if len(p.times) == 0 || t-p.times[len(p.times)-1] > win {
				p.times = append(p.times, t)
			}
		}
		p.gap = math.NaN()
		if len(p.times) >= 2 {
			var gaps []float64
			for j := 1; j < len(p.times); j++ {
				gaps = append(gaps, p.times[j]-p.times[j-1])
			}
			slices.Sort(gaps)
			p.gap = gaps[len(gaps)/2]
		}
		profiles[i] = p
	}
	return profiles, mailboxes
}

// similarity is the attacker's pairwise similarity matrix: the weighted sum
// of its features.
func (at Attacker) similarity(ps []profile) [][]float64 {
	win := at.Window.Seconds()
	sim := make([][]float64, len(ps))
	for i := range sim {
		sim[i] = make([]float64, len(ps))
	}
	var hand [][]float64
	if at.Handoff != 0 {
		hand = handoffs(ps, win)
	}
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			var s float64
			if at.Timing != 0 {
				s += at.Timing * cooccurrence(ps[i].times, ps[j].times, win)
			}
			if at.Handoff != 0 {
				s += at.Handoff * hand[i][j]
			}
			if at.Size != 0 {
				s += at.Size * cosine(ps[i].sizes, ps[j].sizes)
			}
			if at.Node != 0 {
				s += at.Node * cosine(ps[i].nodes, ps[j].nodes)
			}
			sim[i][j], sim[j][i] = s, s
		}
	}
	return sim
}

// cooccurrence is how much more often than chance the accesses of a and b
// fall within win of each other: (observed − expected)/√(nₐ·n_b), where
// observed averages the number of a's accesses with a b access within win
// and vice versa, and expected is that number for independent Poisson
// streams at the same rates over the time both were active: for each access
// 1 − exp(−2·win·rate) (the probability of at least one event of the other
// stream in a window of 2·win). Lock-step mailboxes score about 1,
// independent ones about 0.
func cooccurrence(a, b []float64, win float64) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	lo := max(a[0], b[0]) - win
	hi := min(a[len(a)-1], b[len(b)-1]) + win
	if hi <= lo {
		return 0
	}
	na, nb := countIn(a, lo, hi), countIn(b, lo, hi)
	observed := float64(coincide(a, b, win)+coincide(b, a, win)) / 2
	expected := float64(na) * (1 - math.Exp(-2*win*float64(nb)/(hi-lo)))
	expected = (expected + float64(nb)*(1-math.Exp(-2*win*float64(na)/(hi-lo)))) / 2
	return (observed - expected) / math.Sqrt(float64(len(a))*float64(len(b)))
}

// coincide counts the elements of a with an element of b within win; both
// sorted.
func coincide(a, b []float64, win float64) int {
	n, j := 0, 0
	for _, t := range a {
		for j < len(b) && b[j] < t-win {
			j++
		}
		if j < len(b) && b[j] <= t+win {
			n++
		}
	}
	return n
}

func countIn(xs []float64, lo, hi float64) int {
	return sort.SearchFloat64s(xs, hi) - sort.SearchFloat64s(xs, lo)
}

// handoffs scores, for every ordered pair (a, b) where b starts after a
// stops, how well b continues a's rhythm (a rotated mailbox): the error
// |first(b) − last(a) − gap(a)|. A pair within win scores 1 when it is a
// mutual best match — b is a's best successor and a is b's best predecessor
// — so that the one true successor of an exact cadence stands out from
// chance matches. All other pairs score 0. The result is symmetric.
func handoffs(ps []profile, win float64) [][]float64 {
	m := len(ps)
	errs := make([][]float64, m)
	for i := range errs {
		errs[i] = make([]float64, m)
		for j := range errs[i] {
			errs[i][j] = math.Inf(1)
			a, b := ps[i], ps[j]
			if i == j || len(a.times) == 0 || len(b.times) == 0 || math.IsNaN(a.gap) {
				continue
			}
			gap := b.times[0] - a.times[len(a.times)-1]
			if e := math.Abs(gap - a.gap); gap > 0 && e <= win {
				errs[i][j] = e
			}
		}
	}
	argmin := func(f func(k int) float64) int {
		best := -1
		for k := range m {
			if !math.IsInf(f(k), 1) && (best < 0 || f(k) < f(best)) {
				best = k
			}
		}
		return best
	}
	out := make([][]float64, m)
	for i := range out {
		out[i] = make([]float64, m)
	}
	for i := range m {
		j := argmin(func(k int) float64 { return errs[i][k] })
		if j >= 0 && argmin(func(k int) float64 { return errs[k][j] }) == i {
			out[i][j], out[j][i] = 1, 1
		}
	}
	return out
}

// cosine is the cosine similarity of two histograms.
func cosine[K comparable](a, b map[K]float64) float64 {
	var dot, na, nb float64
	for k, x := range a {
		dot += x * b[k]
		na += x * x
	}
	for _, y := range b {
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}
