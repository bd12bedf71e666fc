package trafficstat

import (
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
// catches the 150 ms lock-step of one client's long-polls.
func DefaultAttacker() Attacker {
	return Attacker{Window: 250 * time.Millisecond, Timing: 1, Handoff: 1, Size: 0.25, Node: 0.25}
}

// profile is what the attacker keeps per mailbox.
type profile struct {
	times []float64 // distinct accesses, seconds from the trace start, sorted
	gap   float64   // median gap between accesses (NaN below two accesses)
	sizes map[int]float64
	nodes map[string]float64
}

// Link clusters the observed mailboxes into k clients. It returns the
// mailboxes (sorted) and a label per mailbox.
func (at Attacker) Link(obs []Observation, k int) (mailboxes []string, labels []int) {
	profiles, mailboxes := at.profiles(obs)
	return mailboxes, Agglomerate(at.similarity(profiles), k, at.Linkage)
}

// Score runs the attack on obs, told the number of distinct clients among the
// observed mailboxes, and returns its adjusted Rand index against truth,
// which maps every observed mailbox to its client.
func (at Attacker) Score(obs []Observation, truth map[string]int) (float64, error) {
	_, mailboxes := at.profiles(obs)
	want := make([]int, len(mailboxes))
	clients := map[int]bool{}
	for i, mb := range mailboxes {
		c, ok := truth[mb]
		if !ok {
			return math.NaN(), fmt.Errorf("trafficstat: no client for observed mailbox %q", mb)
		}
		want[i], clients[c] = c, true
	}
	_, got := at.Link(obs, len(clients))
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
	sort.Strings(mailboxes)
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
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			var s float64
			if at.Timing != 0 {
				s += at.Timing * cooccurrence(ps[i].times, ps[j].times, win)
			}
			if at.Handoff != 0 {
				s += at.Handoff * max(handoff(ps[i], ps[j], win), handoff(ps[j], ps[i], win))
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

// handoff scores b continuing a's rhythm after a stops (a rotated mailbox):
// 1 when b's first access comes one of a's typical gaps (within win) after
// a's last access, and b starts after a ends; otherwise 0.
func handoff(a, b profile, win float64) float64 {
	if len(a.times) == 0 || len(b.times) == 0 || math.IsNaN(a.gap) {
		return 0
	}
	gap := b.times[0] - a.times[len(a.times)-1]
	if gap <= 0 || math.Abs(gap-a.gap) > win {
		return 0
	}
	return 1
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
