package swarm

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The churn simulation follows mailboxes over days of node churn, with
// repair modelled as internal/node does it:
//
//   - Membership. A node that goes down is marked down by its neighbours
//     within seconds (internal/node/liveness.go) and by any other node on
//     its first failed call to it; after member.DownScopeGrace (60 s) down
//     it leaves placements (member.Table.All), and its record expires
//     after RecordTTL (30 minutes, node.Config; it was 60 s when this
//     model was written, with the same effect at a 10-minute step). At
//     the simulation's step (10 minutes) a down node is simply absent from
//     placement.
//   - Age. Placement (Place, member.Place) ranks nodes reachable for the
//     minimum age (node.DefaultMinAge, 24 h) first; with hundreds of old
//     nodes up, a young node is never in a swarm or a scope, so it counts
//     as absent. A fresh node becomes placeable 24 h after it joins. A
//     node that comes back keeps its age only if it was away for at most
//     member.AgeGrace (1 h; member.Table.putLocked restores the age only if
//     now - last seen <= AgeGrace); away longer, it starts again and is out
//     of placement for another 24 h, although its disk still holds its
//     copies.
//   - Swarm and scope. The swarm is the first R placeable live nodes in
//     rendezvous order, the scope the first R+k with k = ScopeExtra(R) = R
//     (member.InScope over member.Table.All; once records expire, All is
//     the live nodes).
//   - Repair. node.syncLoop runs node.SyncOnce every SyncInterval (5 s) and
//     300 ms after any change of the live set. A node holding a mailbox
//     offers its digest to every member of the mailbox's swarm as long as
//     it is itself in the mailbox's scope (it need not be in the swarm: a
//     copy outside the swarm but in scope is handed over, pushed by
//     syncRange's "give"); a swarm member pulls what it misses (fetchFrom,
//     only when in the swarm). A holder outside the scope is skipped ("no
//     node would take it from us"): its copy is neither handed over nor
//     dropped (nothing deletes out-of-scope copies; only expiry, 14 days by
//     default, does) and counts again once the node is back in scope. So
//     within seconds of any change, which is instant at a 10-minute step:
//     if some live holder is in the scope, every swarm member holds the
//     mailbox; otherwise the swarm holds only what is written after.
//   - Reads. A client asks the first R live nodes of its placement
//     (swarmclient.Client.fanOut, the next in rank when one fails), i.e.
//     the current swarm: a mailbox is unreadable while no live holder is
//     in its scope (the swarm cannot have been repaired).
//   - Writes are sloppy (node.fanOut goes on to the next ranked live node
//     when a replica fails; replicas accept only in-scope writes,
//     node.applyReplicas): a write needs W = Quorum(R) live nodes in the
//     scope. Once down records expire the scope is all live nodes, so
//     writes fail only if fewer than W placeable nodes are up. In the
//     first RecordTTL after a failure the scope is still the old one,
//     down nodes included: the moment a mass outage hits, a write needs W
//     live nodes among the old first 2R (measured as the worst transient),
//     and a non-sloppy write would need W live among the old swarm (the
//     "strict" figure, for comparison with simOutage).
//   - Holders. A mailbox's holders are the nodes with a copy of its
//     messages, down or young ones included. A node that leaves for good
//     takes its copies with it; when none is left anywhere the mailbox's
//     messages are lost for good (then its new messages start a new copy
//     on the current swarm). Messages written while the old holders were
//     away are not tracked separately.
//
// Churn: every up node leaves with probability LeavePerHour per hour (5%:
// each node leaves about once a day); PermanentShare of the leaves are for
// good (disk gone), the rest come back with their data after TempMin to
// TempMax. Fresh, empty nodes join at the rate permanent leavers go, so
// the network stays at Nodes nodes: with the returns, nodes join at the
// rate they leave. Once a day, at a random time, OutageShare of the
// network's nodes go down at once for OutageLen and come back with their
// data.
type churnParams struct {
	Nodes, Mailboxes, R int
	Step                time.Duration
	WarmupDays, Days    int
	LeavePerHour        float64
	PermanentShare      float64
	TempMin, TempMax    time.Duration
	OutageShare         float64
	OutageLen           time.Duration
	MinAge, AgeGrace    time.Duration
	Seed                uint64
	// RealScore ranks with Score (SHA-256), as Place does; otherwise a
	// fast 64-bit mix with the same independence.
	RealScore bool
	// Brute recomputes every step's placement with Place and every
	// mailbox's readability from scratch and fails on any difference.
	Brute bool
}

func defaultChurn(r int) churnParams {
	return churnParams{
		Nodes: 1000, Mailboxes: 10000, R: r,
		Step:       10 * time.Minute,
		WarmupDays: 2, Days: 14,
		LeavePerHour:   0.05,
		PermanentShare: 0.2,
		TempMin:        10 * time.Minute, TempMax: 8 * time.Hour,
		OutageShare: 0.3, OutageLen: time.Hour,
		MinAge: 24 * time.Hour, AgeGrace: time.Hour,
		Seed: 1,
	}
}

type churnResult struct {
	Lost            int     // mailboxes whose messages were lost for good
	UnreadableHours float64 // mailbox-hours with no live holder in scope
	UnwritableHours float64 // mailbox-hours with fewer than W placeable nodes up
	WorstUnreadable int     // most mailboxes unreadable at one step
	WorstAt         int     // that step, counted from the end of warm-up
	WorstInOutage   bool    // whether a mass outage was on then
	WorstOutage     int     // most mailboxes unreadable at one step of a mass outage
	// Transient, in the first RecordTTL after a step's failures: most
	// mailboxes at one step with fewer than W live nodes in the old scope
	// (sloppy writes fail) and in the old swarm (what a non-sloppy write
	// would need).
	TransientUnwritable, StrictBelowW int
	Stranded                          int // at the end: copies exist, none live in scope
	NodesEver                         int
	Refills                           int // full rescans of a short ranking
	// Placeable (old enough, up) nodes: fewest at one step, and on average.
	MinPlaceable  int
	MeanPlaceable float64
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

type churnSim struct {
	p    churnParams
	rng  *rand.Rand
	w    int
	keep int // ranking depth kept per mailbox

	mbs    [][32]byte
	mbSeed []uint64
	keys   [][]byte
	nmix   []uint64

	up, gone, placeable []bool
	agedAt, downAt      []int
	returnAt            map[int][]int // step -> nodes coming back

	ranks   [][]int32 // per mailbox: exact top placeable nodes, best first
	scores  [][]uint64
	last    []uint64 // per mailbox: the last kept score (0: empty)
	holders [][]int32
	holdOf  [][]int32 // per node: mailboxes it holds (append-only)
	unread  []bool
	lost    []bool
	mark    []uint32
	stamp   uint32
	dirty   []bool
}

func newChurnSim(p churnParams) *churnSim {
	s := &churnSim{p: p, rng: rand.New(rand.NewPCG(p.Seed, 0x636875726e)), w: Quorum(p.R), keep: 3 * p.R,
		returnAt: map[int][]int{}}
	s.mbs = make([][32]byte, p.Mailboxes)
	s.mbSeed = make([]uint64, p.Mailboxes)
	for m := range s.mbs {
		binary.BigEndian.PutUint64(s.mbs[m][:], s.rng.Uint64())
		binary.BigEndian.PutUint64(s.mbs[m][8:], s.rng.Uint64())
		s.mbSeed[m] = binary.BigEndian.Uint64(s.mbs[m][:])
	}
	for range p.Nodes {
		s.addNode(0, true)
	}
	s.ranks = make([][]int32, p.Mailboxes)
	s.scores = make([][]uint64, p.Mailboxes)
	s.last = make([]uint64, p.Mailboxes)
	s.holders = make([][]int32, p.Mailboxes)
	s.unread = make([]bool, p.Mailboxes)
	s.lost = make([]bool, p.Mailboxes)
	s.dirty = make([]bool, p.Mailboxes)
	live := s.placeableList()
	for m := range s.mbs {
		s.refill(m, live)
		for _, n := range s.ranks[m][:p.R] {
			s.addHolder(m, n)
		}
	}
	return s
}

// addNode adds a node, up; aged nodes are placeable at once, fresh ones
// after MinAge.
func (s *churnSim) addNode(t int, aged bool) int {
	n := len(s.keys)
	h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("sim-node"), uint64(n)))
	s.keys = append(s.keys, h[:])
	s.nmix = append(s.nmix, mix64(binary.BigEndian.Uint64(h[:8])))
	s.up = append(s.up, true)
	s.gone = append(s.gone, false)
	s.placeable = append(s.placeable, false)
	at := t + s.steps(s.p.MinAge)
	if aged {
		at = t
	}
	s.agedAt = append(s.agedAt, at)
	s.downAt = append(s.downAt, 0)
	s.holdOf = append(s.holdOf, nil)
	s.mark = append(s.mark, 0)
	s.placeable[n] = aged
	return n
}

func (s *churnSim) steps(d time.Duration) int { return int((d + s.p.Step - 1) / s.p.Step) }

func (s *churnSim) score(m int, n int32) uint64 {
	if s.p.RealScore {
		return Score(s.mbs[m], s.keys[n])
	}
	return mix64(s.mbSeed[m] ^ s.nmix[n])
}

func (s *churnSim) placeableList() []int32 {
	var l []int32
	for n, ok := range s.placeable {
		if ok {
			l = append(l, int32(n))
		}
	}
	return l
}

// refill recomputes mailbox m's ranking from every placeable node.
func (s *churnSim) refill(m int, live []int32) {
	rk, sc := s.ranks[m][:0], s.scores[m][:0]
	for _, n := range live {
		v := s.score(m, n)
		if len(rk) == s.keep && !s.before(v, n, sc[len(sc)-1], rk[len(rk)-1]) {
			continue
		}
		i := len(rk)
		for i > 0 && s.before(v, n, sc[i-1], rk[i-1]) {
			i--
		}
		rk, sc = slices.Insert(rk, i, n), slices.Insert(sc, i, v)
		if len(rk) > s.keep {
			rk, sc = rk[:s.keep], sc[:s.keep]
		}
	}
	s.setRank(m, rk, sc)
}

func (s *churnSim) setRank(m int, rk []int32, sc []uint64) {
	s.ranks[m], s.scores[m], s.last[m] = rk, sc, 0
	if len(sc) > 0 {
		s.last[m] = sc[len(sc)-1]
	}
}

// before reports whether node a with score va ranks before node b with vb
// (Place's order: higher score first, then lower key).
func (s *churnSim) before(va uint64, a int32, vb uint64, b int32) bool {
	if va != vb {
		return va > vb
	}
	return slices.Compare(s.keys[a], s.keys[b]) < 0
}

func (s *churnSim) addHolder(m int, n int32) {
	s.holders[m] = append(s.holders[m], n)
	s.holdOf[n] = append(s.holdOf[n], int32(m))
}

// leave takes node n down at step t: for good, or back after a while.
func (s *churnSim) leave(n, t int, back int, forGood bool) {
	s.up[n] = false
	s.downAt[n] = t
	if forGood {
		s.gone[n] = true
		for _, m := range s.holdOf[n] {
			s.dirty[m] = true
		}
		s.holdOf[n] = nil
		return
	}
	s.returnAt[t+back] = append(s.returnAt[t+back], n)
}

func (s *churnSim) run() (churnResult, error) {
	p := s.p
	var res churnResult
	stepsPerDay := s.steps(24 * time.Hour)
	warm := p.WarmupDays * stepsPerDay
	total := warm + p.Days*stepsPerDay
	stepH := p.Step.Hours()
	leaveP := p.LeavePerHour * stepH
	outageStart, outageEnd := -1, -1
	removed := make([]bool, 0)
	for t := 1; t <= total; t++ {
		// Events.
		if t%stepsPerDay == 1 && p.OutageShare > 0 {
			outageStart = t + s.rng.IntN(stepsPerDay-s.steps(p.OutageLen))
			outageEnd = outageStart + s.steps(p.OutageLen)
		}
		for _, n := range s.returnAt[t] {
			s.up[n] = true
			if time.Duration(t-s.downAt[n])*p.Step >= p.AgeGrace {
				s.agedAt[n] = t + s.steps(p.MinAge) // its age is forgotten
			}
		}
		delete(s.returnAt, t)
		nodes := len(s.keys)
		fresh := 0
		for n := range nodes {
			if !s.up[n] || leaveP == 0 || s.rng.Float64() >= leaveP {
				continue
			}
			if s.rng.Float64() < p.PermanentShare {
				s.leave(n, t, 0, true)
				fresh++
			} else {
				lo, hi := s.steps(p.TempMin), s.steps(p.TempMax)
				s.leave(n, t, lo+s.rng.IntN(hi-lo+1), false)
			}
		}
		for range fresh {
			s.addNode(t, false)
		}
		if t == outageStart {
			var ups []int
			for n, u := range s.up {
				if u {
					ups = append(ups, n)
				}
			}
			k := min(len(ups), int(math.Round(p.OutageShare*float64(p.Nodes))))
			for _, i := range s.rng.Perm(len(ups))[:k] {
				s.leave(ups[i], t, s.steps(p.OutageLen), false)
			}
		}
		// Placeability changes.
		removed = append(removed[:0], make([]bool, len(s.keys))...)
		anyRemoved := false
		var added []int32
		for n := range s.keys {
			now := s.up[n] && t >= s.agedAt[n]
			if now == s.placeable[n] {
				continue
			}
			s.placeable[n] = now
			if now {
				added = append(added, int32(n))
			} else {
				removed[n], anyRemoved = true, true
			}
		}
		// Rankings: drop nodes that left, insert nodes that became
		// placeable where they beat the last kept, rescan short ones.
		transient, strict := 0, 0
		if anyRemoved {
			for m := range s.ranks {
				rk := s.ranks[m]
				scope := min(len(rk), 2*p.R)
				downScope, downSwarm, any := 0, 0, false
				for i, n := range rk {
					if removed[n] {
						any = true
						if i < scope {
							downScope++
						}
						if i < p.R {
							downSwarm++
						}
					}
				}
				if !any {
					continue
				}
				if downScope > 0 {
					s.dirty[m] = true // the scope changed
				}
				if scope-downScope < s.w {
					transient++
				}
				if min(len(rk), p.R)-downSwarm < s.w {
					strict++
				}
				j := 0
				for i, n := range rk {
					if !removed[n] {
						rk[j], s.scores[m][j] = n, s.scores[m][i]
						j++
					}
				}
				s.setRank(m, rk[:j], s.scores[m][:j])
			}
		}
		for _, n := range added {
			for m, last := range s.last {
				if last == 0 {
					continue
				}
				v := s.score(m, n)
				if v <= last {
					continue
				}
				rk, sc := s.ranks[m], s.scores[m]
				i, _ := slices.BinarySearchFunc(sc, v, func(a, b uint64) int {
					if a > b {
						return -1
					}
					if a < b {
						return 1
					}
					return 0
				})
				rk, sc = slices.Insert(rk, i, n), slices.Insert(sc, i, v)
				if len(rk) > s.keep {
					rk, sc = rk[:s.keep], sc[:s.keep]
				}
				s.setRank(m, rk, sc)
				if i < 2*p.R {
					s.dirty[m] = true // the scope changed
				}
			}
		}
		var live []int32
		if n := len(s.placeableList()); n < 2*p.R {
			return res, fmt.Errorf("step %d: only %d placeable nodes: young nodes would enter scopes, which the model leaves out", t, n)
		}
		for m := range s.ranks {
			if len(s.ranks[m]) < 2*p.R {
				if live == nil {
					live = s.placeableList()
				}
				s.refill(m, live)
				res.Refills++
				s.dirty[m] = true
			}
		}
		// Repair and reads.
		for m := range s.ranks {
			if !s.dirty[m] {
				continue
			}
			s.dirty[m] = false
			s.repair(m)
		}
		if p.Brute {
			if err := s.check(t); err != nil {
				return res, err
			}
		}
		if t <= warm {
			continue
		}
		unread := 0
		for _, u := range s.unread {
			if u {
				unread++
			}
		}
		res.UnreadableHours += float64(unread) * stepH
		placeable := 0
		for _, ok := range s.placeable {
			if ok {
				placeable++
			}
		}
		if res.MinPlaceable == 0 || placeable < res.MinPlaceable {
			res.MinPlaceable = placeable
		}
		res.MeanPlaceable += float64(placeable) / float64(total-warm)
		if placeable < s.w {
			res.UnwritableHours += float64(p.Mailboxes) * stepH
		}
		if unread > res.WorstUnreadable {
			res.WorstUnreadable, res.WorstAt = unread, t-warm
			res.WorstInOutage = t >= outageStart && t < outageEnd
		}
		if t >= outageStart && t < outageEnd {
			res.WorstOutage = max(res.WorstOutage, unread)
		}
		res.TransientUnwritable = max(res.TransientUnwritable, transient)
		res.StrictBelowW = max(res.StrictBelowW, strict)
	}
	for m := range s.ranks {
		if s.lost[m] {
			res.Lost++
		}
		if s.unread[m] {
			res.Stranded++
		}
	}
	res.NodesEver = len(s.keys)
	return res, nil
}

// repair brings mailbox m up to date after a change: holders that left for
// good are forgotten; if none is left the messages are lost; if a live
// holder is in the scope, the whole swarm gets a copy; if not, the
// mailbox is unreadable.
func (s *churnSim) repair(m int) {
	h := s.holders[m][:0]
	for _, n := range s.holders[m] {
		if !s.gone[n] {
			h = append(h, n)
		}
	}
	s.holders[m] = h
	rk := s.ranks[m]
	if len(h) == 0 {
		s.lost[m] = true
		for _, n := range rk[:s.p.R] {
			s.addHolder(m, n)
		}
		s.unread[m] = false
		return
	}
	s.stamp++
	for _, n := range h {
		s.mark[n] = s.stamp
	}
	ok := false
	for _, n := range rk[:2*s.p.R] {
		if s.mark[n] == s.stamp {
			ok = true
			break
		}
	}
	s.unread[m] = !ok
	if !ok {
		return
	}
	for _, n := range rk[:s.p.R] {
		if s.mark[n] != s.stamp {
			s.addHolder(m, n)
		}
	}
}

// check recomputes every mailbox's placement with Place over the live
// nodes (young ones included, unaged) and its readability from its
// holders, and compares them with the incremental state.
func (s *churnSim) check(t int) error {
	var ids []int
	var cands []Candidate
	for n, u := range s.up {
		if u {
			ids = append(ids, n)
			cands = append(cands, Candidate{Key: s.keys[n], Aged: s.placeable[n]})
		}
	}
	r := s.p.R
	for m := range s.mbs {
		order := Place(s.mbs[m], cands, r)
		if len(order) < 2*r {
			return fmt.Errorf("step %d: only %d live nodes", t, len(order))
		}
		readable := false
		for i, j := range order[:2*r] {
			n := ids[j]
			if !s.placeable[n] {
				return fmt.Errorf("step %d: mailbox %d: a young node ranks %d (too few old nodes)", t, m, i)
			}
			if int(s.ranks[m][i]) != n {
				return fmt.Errorf("step %d: mailbox %d: rank %d is node %d, Place says %d", t, m, i, s.ranks[m][i], n)
			}
			if slices.Contains(s.holders[m], int32(n)) {
				readable = true
			}
		}
		if readable == s.unread[m] {
			return fmt.Errorf("step %d: mailbox %d: readable %v, incremental state says %v", t, m, readable, !s.unread[m])
		}
		if readable {
			for _, j := range order[:r] {
				if !slices.Contains(s.holders[m], int32(ids[j])) {
					return fmt.Errorf("step %d: mailbox %d: swarm member %d not repaired", t, m, ids[j])
				}
			}
		}
	}
	return nil
}

func simChurn(p churnParams) (churnResult, error) { return newChurnSim(p).run() }

func smallChurn(r int) churnParams {
	p := defaultChurn(r)
	p.Nodes, p.Mailboxes = 100, 400
	p.WarmupDays, p.Days = 1, 3
	return p
}

// TestChurnBruteForce checks the incremental rankings and repair state
// against Place and a from-scratch recomputation at every step of a small
// network with SHA-256 scores, churn and a daily outage.
func TestChurnBruteForce(t *testing.T) {
	p := smallChurn(3)
	p.Nodes, p.Mailboxes, p.Days = 80, 150, 2
	p.MinAge = 6 * time.Hour // enough old nodes that no young one ranks in a scope
	p.RealScore, p.Brute = true, true
	res, err := simChurn(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("R=3 brute-force run: %+v", res)
	if res.UnreadableHours == 0 {
		t.Error("the brute-force case never made a mailbox unreadable: it checks nothing")
	}
}

// TestChurnInvariants: without churn nothing is lost or unreadable; with
// it, unreadable mailbox-hours and the worst moment fall as R grows; an
// outage alone, with ages kept, makes exactly the mailboxes whose whole
// scope went down unreadable.
func TestChurnInvariants(t *testing.T) {
	calm := smallChurn(3)
	calm.LeavePerHour, calm.OutageShare = 0, 0
	res, err := simChurn(calm)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || res.UnreadableHours != 0 || res.UnwritableHours != 0 || res.WorstUnreadable != 0 || res.TransientUnwritable != 0 {
		t.Errorf("no churn, yet %+v", res)
	}

	var prev churnResult
	for i, r := range []int{3, 5, 7} {
		p := smallChurn(r)
		p.Nodes, p.Mailboxes = 300, 3000
		res, err := simChurn(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("R=%d, %d nodes, %d mailboxes, %d days: lost %d, unreadable %.1f mailbox-hours (worst %d at once, in outage %v), unwritable %.1f, transient unwritable %d, strict below W %d",
			r, p.Nodes, p.Mailboxes, p.Days, res.Lost, res.UnreadableHours, res.WorstUnreadable, res.WorstInOutage, res.UnwritableHours, res.TransientUnwritable, res.StrictBelowW)
		if i > 0 && (res.UnreadableHours > prev.UnreadableHours || res.WorstUnreadable > prev.WorstUnreadable || res.Lost > prev.Lost || res.StrictBelowW > prev.StrictBelowW) {
			t.Errorf("R=%d does worse than R-2: %+v vs %+v", r, res, prev)
		}
		if r == 3 && res.UnreadableHours == 0 {
			t.Error("R=3 under churn never lost a mailbox: the test checks nothing")
		}
		prev = res
	}

	// One outage of 30%, no other churn, ages kept: the worst moment is
	// the outage, and the mailboxes unreadable then are those whose R
	// holders (the swarm: nothing else ever held them) all went down.
	p := smallChurn(3)
	p.Nodes, p.Mailboxes, p.Days, p.WarmupDays = 200, 4000, 1, 0
	p.LeavePerHour, p.AgeGrace = 0, 48*time.Hour
	res, err = simChurn(p)
	if err != nil {
		t.Fatal(err)
	}
	want := math.Pow(0.3, 3) * float64(p.Mailboxes) // only the swarm holds data
	if !res.WorstInOutage || res.Lost != 0 || math.Abs(float64(res.WorstUnreadable)-want) > 5*math.Sqrt(want)+1 {
		t.Errorf("outage only: %+v; want about %.0f unreadable in the outage", res, want)
	}
	if got := res.UnreadableHours; got != float64(res.WorstUnreadable)*p.OutageLen.Hours() {
		t.Errorf("outage only: %.2f mailbox-hours unreadable, want %d for %s", got, res.WorstUnreadable, p.OutageLen)
	}
}

// BenchmarkChurn runs the 14-day churn simulation on 1,000 nodes for
// R = 5, 7 and 9 with the code's parameters (AgeGrace 1 h, MinAge 24 h),
// and, to show what the age rule costs, with an AgeGrace longer than the
// outage. Run it with -benchtime=1x.
func BenchmarkChurn(b *testing.B) {
	for _, grace := range []time.Duration{time.Hour, 24 * time.Hour} {
		for _, r := range []int{5, 7, 9} {
			b.Run(fmt.Sprintf("grace=%s/R=%d", grace, r), func(b *testing.B) {
				p := defaultChurn(r)
				p.AgeGrace = grace
				var res churnResult
				for b.Loop() {
					var err error
					if res, err = simChurn(p); err != nil {
						b.Fatal(err)
					}
				}
				mh := float64(p.Mailboxes) * float64(p.Days) * 24
				b.Logf("R=%d W=%d grace=%s: %d nodes (%d ever), %d mailboxes, %d days: lost for good %d; unreadable %.0f mailbox-hours (%.4f%%), worst %d at once (%.3f%%, in outage %v, hour %d; %d during an outage); unwritable %.0f mailbox-hours; transient (first RecordTTL) unwritable %d, strict below W %d (%.2f%%); stranded at end %d; placeable nodes mean %.0f, min %d",
					r, Quorum(r), grace, p.Nodes, res.NodesEver, p.Mailboxes, p.Days, res.Lost,
					res.UnreadableHours, 100*res.UnreadableHours/mh, res.WorstUnreadable, 100*float64(res.WorstUnreadable)/float64(p.Mailboxes), res.WorstInOutage, res.WorstAt/6, res.WorstOutage,
					res.UnwritableHours, res.TransientUnwritable, res.StrictBelowW, 100*float64(res.StrictBelowW)/float64(p.Mailboxes), res.Stranded, res.MeanPlaceable, res.MinPlaceable)
				b.ReportMetric(float64(res.Lost), "lost")
				b.ReportMetric(res.UnreadableHours, "unread-mbh")
				b.ReportMetric(float64(res.WorstUnreadable), "worst-unread")
				b.ReportMetric(float64(res.WorstOutage), "worst-unread-in-outage")
				b.ReportMetric(res.UnwritableHours, "unwrit-mbh")
				b.ReportMetric(float64(res.TransientUnwritable), "transient-unwrit")
				b.ReportMetric(float64(res.StrictBelowW), "strict-belowW")
			})
		}
	}
}
