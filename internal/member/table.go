package member

import (
	"bytes"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/wire"
)

// Table limits.
const (
	// DefaultMaxNodes bounds the verified records a table holds. When it is
	// full, a new node takes the place of an expired, unreachable or young
	// record; aged reachable nodes are never pushed out.
	DefaultMaxNodes = 4096
	// MaxPerSubnet bounds the verified records that share one diversity key
	// (a /24 or /48): one subnet cannot fill the table.
	MaxPerSubnet = 32
	// MaxPending bounds the records waiting for their reachability probe,
	// and MaxPendingPerSource those introduced by one peer, so that one
	// peer's flood of records cannot crowd out another's.
	MaxPending          = 1024
	MaxPendingPerSource = 64
	// A record whose probe failed is not probed again (unless a newer
	// record of the node arrives) for FailedFirst, doubling with each
	// failure in a row up to FailedMemory; maxFailed bounds how many such
	// verdicts are kept. A flat 10 minutes was right while records were
	// refreshed every 20 s (a new record was probed anyway); with records
	// refreshed every 10 minutes, a probe that failed in a start-up storm
	// (100 nodes starting at once on 2 cores) kept the node out of the
	// table for 10 minutes, and 100 nodes never converged.
	FailedFirst  = 15 * time.Second
	FailedMemory = 10 * time.Minute
	maxFailed    = 8192
	// AgeGrace is how long a node's age survives its absence from the
	// table (its record expired while it was down): a node that restarts,
	// or is down for hours, keeps its age; one that leaves for longer
	// starts again. It was 1 h: then the daily outages and ordinary leaves
	// of the churn simulation (internal/swarm/churn_test.go) left only 194
	// of 1,000 nodes old enough to hold mailboxes, against 690 with 24 h,
	// and mailboxes stayed unreadable after an outage until their holders
	// were old again.
	AgeGrace = 24 * time.Hour
	// maxAges bounds the ages remembered of nodes no longer listed (each
	// entered the table with admission work and a probe; the oldest goes
	// first).
	maxAges = 65536
	// LostMemory is how long the address of a node whose record expired
	// is kept (MaxLost of them), so that gossip can try it again: halves
	// of a network split for longer than a record's lifetime find each
	// other through them when the split heals, whatever their bootstrap
	// lists say.
	LostMemory = 10 * time.Minute
	MaxLost    = 256
	// DownScopeGrace is how long a node may stay marked down and still
	// count in placements (All): a node that is briefly unreachable does
	// not move its mailboxes, one that stays away does, without waiting
	// for its record to expire (records live 30 minutes by default).
	DownScopeGrace = time.Minute
)

type entry struct {
	node      *Node
	down      bool      // locally observed unreachable: not used for placement
	downSince time.Time // when it was marked down
	since     time.Time // reachable since (its age); kept across short absences
}

type pending struct {
	node    *Node
	source  peer.ID
	probing bool
}

type ageMem struct {
	since, last time.Time
}

// lostNode is a node whose verified record expired: where it was.
type lostNode struct {
	info peer.AddrInfo
	at   time.Time
}

type failure struct {
	seq   uint64
	until time.Time
	n     int // failures in a row
}

// Table is the set of known node records. It is safe for concurrent use.
//
// A record learned from another peer (Offer) is *pending* until a probe
// proves the node is reachable at the address it claims (Probed); only
// then is it *verified*: listed, gossiped, used for paths and, once it has
// been reachable for the network's minimum age, for placement. Changes of
// the live set (a node added, removed, marked down or up, or its addresses
// changed) bump a generation and signal Changes.
type Table struct {
	params   wire.Params
	now      func() time.Time
	maxNodes int

	mu      sync.RWMutex
	nodes   map[peer.ID]*entry // verified
	pend    map[peer.ID]*pending
	queues  map[peer.ID][]peer.ID // pending IDs by source, oldest first
	sources []peer.ID             // sources with queued IDs, round-robin order
	next    int                   // next source to serve
	ages    map[peer.ID]ageMem
	failed  map[peer.ID]failure
	lost    map[peer.ID]lostNode
	gen     uint64
	live    []*Node // cache of Live for gen
	liveGen uint64
	liveEnd int64 // unix ms when the first cached record expires
	changed chan struct{}
	admit   func(peer.ID) bool // nil: every node (see SetAdmit)
}

// NewTable makes an empty table for a network.
func NewTable(p wire.Params, now func() time.Time) *Table {
	if now == nil {
		now = time.Now
	}
	return &Table{
		params: p, now: now, maxNodes: DefaultMaxNodes,
		nodes: make(map[peer.ID]*entry), pend: make(map[peer.ID]*pending), queues: make(map[peer.ID][]peer.ID),
		ages: make(map[peer.ID]ageMem), failed: make(map[peer.ID]failure), lost: make(map[peer.ID]lostNode),
		changed: make(chan struct{}, 1), liveGen: ^uint64(0),
	}
}

// Params returns the network parameters.
func (t *Table) Params() wire.Params { return t.params }

// MinAge is how long a node must have been reachable to take placements.
func (t *Table) MinAge() time.Duration { return time.Duration(t.params.MinAgeMs) * time.Millisecond }

// Changes is signalled (coalesced) when the live set changes.
func (t *Table) Changes() <-chan struct{} { return t.changed }

func (t *Table) bump() {
	t.gen++
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// Upsert verifies raw and stores it as a verified record if it is newer
// than what the table has: for the node's own record, and for records
// whose node was reached already. It reports whether the table changed.
func (t *Table) Upsert(raw []byte) (bool, error) {
	n, err := Open(raw, t.params, t.now())
	if err != nil {
		return false, err
	}
	if !t.admitted(n.ID) {
		return false, ErrNotAdmitted
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.putLocked(n, time.Time{}), nil
}

// Restore stores a record cached by an earlier run as verified, with the
// age it had then (reachable since since).
func (t *Table) Restore(raw []byte, since time.Time) error {
	n, err := Open(raw, t.params, t.now())
	if err != nil {
		return err
	}
	if !t.admitted(n.ID) {
		return ErrNotAdmitted
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.ages[n.ID]; !ok || (!since.IsZero() && since.Before(m.since)) {
		t.ages[n.ID] = ageMem{since: since, last: t.now()}
	}
	t.putLocked(n, since)
	return nil
}

// putLocked stores n as verified if newer than what the table has. since
// is its age (zero: from the age memory, or now).
func (t *Table) putLocked(n *Node, since time.Time) bool {
	now := t.now()
	old, ok := t.nodes[n.ID]
	if ok && old.node.Record.Seq >= n.Record.Seq {
		return false
	}
	if !ok {
		if !t.roomLocked(n, now) {
			return false
		}
		if since.IsZero() {
			since = now
			if m, ok := t.ages[n.ID]; ok && now.Sub(m.last) <= AgeGrace {
				since = m.since
			}
		}
		t.nodes[n.ID] = &entry{node: n, since: since}
		if _, ok := t.ages[n.ID]; !ok && len(t.ages) >= maxAges {
			t.forgetOldestAgeLocked()
		}
		t.ages[n.ID] = ageMem{since: since, last: now}
		t.dropPendingLocked(n.ID)
		delete(t.failed, n.ID)
		delete(t.lost, n.ID)
		t.bump()
		return true
	}
	e := &entry{node: n, since: old.since}
	t.nodes[n.ID] = e
	if old.down || !sameAddrs(old.node, n) {
		t.bump()
	} else {
		// The live set is the same (no Changes signal), but the cached
		// list holds the old record: served, its remaining life would
		// run down to zero.
		t.liveGen = ^uint64(0)
	}
	return true
}

// forgetOldestAgeLocked drops the age memory of the unlisted node seen
// longest ago.
func (t *Table) forgetOldestAgeLocked() {
	var oldest peer.ID
	var ot time.Time
	for id, m := range t.ages {
		if _, held := t.nodes[id]; held {
			continue
		}
		if oldest == "" || m.last.Before(ot) {
			oldest, ot = id, m.last
		}
	}
	if oldest != "" {
		delete(t.ages, oldest)
	}
}

// roomLocked makes room for a new verified record n, evicting an expired,
// long-down or young record if the table is full, and reports whether n
// may enter (the table and its subnets have room).
func (t *Table) roomLocked(n *Node, now time.Time) bool {
	same := 0
	for _, e := range t.nodes {
		if sharesSubnet(e.node, n) {
			same++
		}
	}
	if same >= MaxPerSubnet {
		return false
	}
	if len(t.nodes) < t.maxNodes {
		return true
	}
	nowMs := now.UnixMilli()
	var victim peer.ID
	for id, e := range t.nodes {
		if e.node.Record.Expires <= nowMs {
			victim = id
			break
		}
	}
	if victim == "" {
		var oldest time.Time
		for id, e := range t.nodes {
			if e.down && (victim == "" || e.downSince.Before(oldest)) {
				victim, oldest = id, e.downSince
			}
		}
	}
	if victim == "" {
		var youngest time.Time
		for id, e := range t.nodes {
			if !t.agedLocked(e, now) && (victim == "" || e.since.After(youngest)) {
				victim, youngest = id, e.since
			}
		}
	}
	if victim == "" {
		return false // full of aged, reachable nodes
	}
	delete(t.nodes, victim)
	t.bump()
	return true
}

func sharesSubnet(a, b *Node) bool {
	for _, x := range a.Subnets {
		for _, y := range b.Subnets {
			if x == y {
				return true
			}
		}
	}
	return false
}

// Offered says what Offer did with a record.
type Offered int

const (
	OfferIgnored Offered = iota // not newer, or refused by a bound
	OfferUpdated                // a newer record of a verified node
	OfferPending                // a new node, waiting for its probe
)

// Offer takes a record learned from peer source (gossip). A newer record
// of a verified node replaces the old one; a record of a node the table
// does not hold waits, pending, for a probe of its address (see ToProbe
// and Probed). A record of a node whose probe failed recently is ignored
// unless it is newer than the one probed.
func (t *Table) Offer(raw []byte, source peer.ID) (Offered, error) {
	now := t.now()
	// A cheap look first: a record that could change nothing is not
	// worth a signature check.
	id, seq, err := Peek(raw)
	if err != nil {
		return OfferIgnored, err
	}
	if !t.admitted(id) {
		return OfferIgnored, nil
	}
	if !t.mayOffer(id, seq, source, now) {
		return OfferIgnored, nil
	}
	n, err := Open(raw, t.params, now)
	if err != nil {
		return OfferIgnored, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.nodes[n.ID]; ok {
		if t.putLocked(n, time.Time{}) {
			return OfferUpdated, nil
		}
		return OfferIgnored, nil
	}
	if f, ok := t.failed[n.ID]; ok && now.Before(f.until) && n.Record.Seq <= f.seq {
		return OfferIgnored, nil
	}
	if p, ok := t.pend[n.ID]; ok {
		if p.node.Record.Seq < n.Record.Seq {
			p.node = n
		}
		return OfferIgnored, nil
	}
	if len(t.queues[source]) >= MaxPendingPerSource {
		return OfferIgnored, nil
	}
	if len(t.pend) >= MaxPending && !t.evictPendingLocked(source) {
		return OfferIgnored, nil
	}
	t.pend[n.ID] = &pending{node: n, source: source}
	if len(t.queues[source]) == 0 {
		t.sources = append(t.sources, source)
	}
	t.queues[source] = append(t.queues[source], n.ID)
	return OfferPending, nil
}

// mayOffer reports whether a record of id with seq from source could
// change the table.
func (t *Table) mayOffer(id peer.ID, seq uint64, source peer.ID, now time.Time) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if e, ok := t.nodes[id]; ok {
		return e.node.Record.Seq < seq
	}
	if p, ok := t.pend[id]; ok {
		return p.node.Record.Seq < seq
	}
	if f, ok := t.failed[id]; ok && now.Before(f.until) && seq <= f.seq {
		return false
	}
	return len(t.queues[source]) < MaxPendingPerSource
}

// evictPendingLocked drops the newest pending record of the source with
// the most queued, if that source has more than source does.
func (t *Table) evictPendingLocked(source peer.ID) bool {
	var big peer.ID
	for s, q := range t.queues {
		if big == "" || len(q) > len(t.queues[big]) {
			big = s
		}
	}
	if big == "" || len(t.queues[big]) <= len(t.queues[source])+1 {
		return false
	}
	q := t.queues[big]
	for i := len(q) - 1; i >= 0; i-- {
		if p := t.pend[q[i]]; p != nil && !p.probing {
			t.dropPendingLocked(q[i])
			return true
		}
	}
	return false
}

func (t *Table) dropPendingLocked(id peer.ID) {
	p, ok := t.pend[id]
	if !ok {
		return
	}
	delete(t.pend, id)
	q := t.queues[p.source]
	for i, x := range q {
		if x == id {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(t.queues, p.source)
		for i, s := range t.sources {
			if s == p.source {
				t.sources = append(t.sources[:i:i], t.sources[i+1:]...)
				if t.next > i {
					t.next--
				}
				break
			}
		}
	} else {
		t.queues[p.source] = q
	}
}

// ToProbe returns up to max pending records that are not being probed,
// taking one from each source in turn, and marks them as being probed.
func (t *Table) ToProbe(max int) []*Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Node
	for idle := 0; len(out) < max && idle < len(t.sources); {
		if t.next >= len(t.sources) {
			t.next = 0
		}
		s := t.sources[t.next]
		t.next++
		found := false
		for _, id := range t.queues[s] {
			if p := t.pend[id]; p != nil && !p.probing {
				p.probing = true
				out = append(out, p.node)
				found = true
				break
			}
		}
		if found {
			idle = 0
		} else {
			idle++
		}
	}
	return out
}

// Probed records the outcome of probing pending node id: reachable, it
// becomes verified; not, it is dropped and not probed again for a while.
func (t *Table) Probed(id peer.ID, reachable bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.pend[id]
	if !ok {
		return
	}
	t.dropPendingLocked(id)
	if reachable && t.admittedLocked(id) {
		t.putLocked(p.node, time.Time{})
		return
	}
	if len(t.failed) >= maxFailed {
		// Forget expired verdicts, then, if still full, any half.
		now := t.now()
		for fid, f := range t.failed {
			if now.After(f.until) {
				delete(t.failed, fid)
			}
		}
		for fid := range t.failed {
			if len(t.failed) < maxFailed/2 {
				break
			}
			delete(t.failed, fid)
		}
	}
	f := failure{seq: p.node.Record.Seq, n: 1}
	if prev, ok := t.failed[id]; ok {
		f.n = prev.n + 1
	}
	f.until = t.now().Add(min(FailedFirst<<min(f.n-1, 16), FailedMemory))
	t.failed[id] = f
}

// PendingLen is the number of records waiting for a probe.
func (t *Table) PendingLen() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.pend)
}

func sameAddrs(a, b *Node) bool {
	if len(a.Record.Addrs) != len(b.Record.Addrs) {
		return false
	}
	for i := range a.Record.Addrs {
		if !bytes.Equal(a.Record.Addrs[i], b.Record.Addrs[i]) {
			return false
		}
	}
	return bytes.Equal(a.Record.OnionKey, b.Record.OnionKey)
}

// Get returns the verified record of id, live or not.
func (t *Table) Get(id peer.ID) (*Node, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.nodes[id]
	if !ok {
		return nil, false
	}
	return e.node, true
}

// Known reports whether id has an unexpired verified record (down or not).
func (t *Table) Known(id peer.ID) bool {
	now := t.now().UnixMilli()
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.nodes[id]
	return ok && e.node.Record.Expires > now
}

// Since is when id was first seen reachable (its age), if it is verified.
func (t *Table) Since(id peer.ID) (time.Time, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.nodes[id]
	if !ok {
		return time.Time{}, false
	}
	return e.since, true
}

// Aged reports whether id has been reachable for the network's minimum age.
func (t *Table) Aged(id peer.ID) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.nodes[id]
	return ok && t.agedLocked(e, t.now())
}

func (t *Table) agedLocked(e *entry, now time.Time) bool {
	return now.Sub(e.since) >= t.MinAge()
}

// Ages returns, for every record held, when its node was first seen
// reachable, for the cache a node keeps across restarts.
func (t *Table) Ages() map[peer.ID]time.Time {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[peer.ID]time.Time, len(t.nodes))
	for id, e := range t.nodes {
		out[id] = e.since
	}
	return out
}

// SetDown marks a node unreachable (true) or reachable again (false).
func (t *Table) SetDown(id peer.ID, down bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.nodes[id]
	if !ok || e.down == down {
		return
	}
	e.down = down
	if down {
		e.downSince = t.now()
	}
	t.bump()
}

// IsDown reports whether id is marked down.
func (t *Table) IsDown(id peer.ID) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.nodes[id]
	return ok && e.down
}

// Sweep drops expired records (verified and pending) and old verdicts and
// ages, and reports how many verified records went.
func (t *Table) Sweep() int {
	now := t.now()
	nowMs := now.UnixMilli()
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for id, e := range t.nodes {
		if e.node.Record.Expires <= nowMs {
			delete(t.nodes, id)
			t.rememberLostLocked(e.node, now)
			n++
			continue
		}
		if !e.down {
			t.ages[id] = ageMem{since: e.since, last: now}
		}
	}
	for id, p := range t.pend {
		if p.node.Record.Expires <= nowMs && !p.probing {
			t.dropPendingLocked(id)
		}
	}
	for id, f := range t.failed {
		// Kept for FailedMemory past its end, to count failures in a row.
		if now.After(f.until.Add(FailedMemory)) {
			delete(t.failed, id)
		}
	}
	for id, l := range t.lost {
		if now.Sub(l.at) > LostMemory {
			delete(t.lost, id)
		}
	}
	for id, m := range t.ages {
		if _, held := t.nodes[id]; !held && now.Sub(m.last) > AgeGrace {
			delete(t.ages, id)
		}
	}
	if n > 0 {
		t.bump()
	}
	return n
}

// rememberLostLocked keeps the addresses of n, whose record expired; when
// MaxLost are kept, the oldest is forgotten.
func (t *Table) rememberLostLocked(n *Node, now time.Time) {
	if _, ok := t.lost[n.ID]; !ok && len(t.lost) >= MaxLost {
		var oldest peer.ID
		var at time.Time
		for id, l := range t.lost {
			if oldest == "" || l.at.Before(at) {
				oldest, at = id, l.at
			}
		}
		delete(t.lost, oldest)
	}
	t.lost[n.ID] = lostNode{info: n.AddrInfo(), at: now}
}

// Lost returns up to max nodes (chosen at random) whose records expired
// within LostMemory and that have not come back since: the addresses
// they had, to try again.
func (t *Table) Lost(max int) []peer.AddrInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if max <= 0 {
		return nil
	}
	out := make([]peer.AddrInfo, 0, min(max, len(t.lost)))
	i := 0
	for _, l := range t.lost { // reservoir sampling
		if len(out) < max {
			out = append(out, l.info)
		} else if j := rand.IntN(i + 1); j < max {
			out[j] = l.info
		}
		i++
	}
	return out
}

// Live returns the unexpired verified records not marked down, sorted by
// peer ID. The slice is shared: callers must not modify it.
func (t *Table) Live() []*Node {
	now := t.now().UnixMilli()
	t.mu.RLock()
	if t.liveGen == t.gen && now < t.liveEnd {
		l := t.live
		t.mu.RUnlock()
		return l
	}
	t.mu.RUnlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	l := make([]*Node, 0, len(t.nodes))
	end := int64(math.MaxInt64)
	for _, e := range t.nodes {
		if !e.down && e.node.Record.Expires > now {
			l = append(l, e.node)
			end = min(end, e.node.Record.Expires)
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].ID < l[j].ID })
	t.live, t.liveGen, t.liveEnd = l, t.gen, end
	return l
}

// All returns every unexpired verified record that is up, or down for no
// longer than DownScopeGrace, sorted by peer ID (the scope of a mailbox is
// computed over these).
func (t *Table) All() []*Node {
	at := t.now()
	now := at.UnixMilli()
	t.mu.RLock()
	defer t.mu.RUnlock()
	l := make([]*Node, 0, len(t.nodes))
	for _, e := range t.nodes {
		if e.node.Record.Expires > now && !(e.down && at.Sub(e.downSince) > DownScopeGrace) {
			l = append(l, e.node)
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].ID < l[j].ID })
	return l
}

// Gen is the live-set generation; it changes whenever Live may change.
func (t *Table) Gen() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.gen
}

// Len is the number of verified records held (including down ones).
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.nodes)
}

// Versions lists every verified record held as (node, seq), for gossip.
func (t *Table) Versions() []wire.MemberVersion {
	t.mu.RLock()
	defer t.mu.RUnlock()
	v := make([]wire.MemberVersion, 0, len(t.nodes))
	for id, e := range t.nodes {
		v = append(v, wire.MemberVersion{Node: []byte(id), Seq: e.node.Record.Seq})
	}
	return v
}

// Delta compares peer source's versions with ours: the raw verified
// records the peer lacks or holds older, and the nodes whose records we
// lack or hold older (not already waiting for a probe, nor failed one; at
// most as many new nodes as source may still queue for probes). With a
// filter (see InBuckets), only the nodes it keeps are given: the peer
// sent the versions of those only.
func (t *Table) Delta(theirs []wire.MemberVersion, source peer.ID, in func(peer.ID) bool) (give [][]byte, want [][]byte) {
	now := t.now()
	t.mu.RLock()
	defer t.mu.RUnlock()
	seen := make(map[peer.ID]bool, len(theirs))
	room := MaxPendingPerSource - len(t.queues[source])
	for _, v := range theirs {
		id := peer.ID(v.Node)
		seen[id] = true
		if !t.admittedLocked(id) {
			continue
		}
		e, ok := t.nodes[id]
		switch {
		case !ok:
			if p, pending := t.pend[id]; pending && p.node.Record.Seq >= v.Seq {
				continue
			}
			if f, failed := t.failed[id]; failed && now.Before(f.until) && v.Seq <= f.seq {
				continue
			}
			if room <= 0 {
				continue
			}
			room--
			want = append(want, v.Node)
		case e.node.Record.Seq < v.Seq:
			want = append(want, v.Node)
		case e.node.Record.Seq > v.Seq:
			give = append(give, e.node.Raw)
		}
	}
	for id, e := range t.nodes {
		if !seen[id] && (in == nil || in(id)) {
			give = append(give, e.node.Raw)
		}
	}
	return give, want
}

// Raw returns the raw verified records of the named nodes that the table
// holds, each once: a peer that names one node many times gets one record,
// so what it can make us send is bounded by the table, not by its list.
func (t *Table) Raw(ids [][]byte) [][]byte {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([][]byte, 0, min(len(ids), len(t.nodes)))
	sent := make(map[peer.ID]bool, min(len(ids), len(t.nodes)))
	for _, id := range ids {
		if e, ok := t.nodes[peer.ID(id)]; ok && !sent[e.node.ID] {
			sent[e.node.ID] = true
			out = append(out, e.node.Raw)
		}
	}
	return out
}

// LiveRaw returns the raw records of Live.
func (t *Table) LiveRaw() [][]byte {
	l := t.Live()
	out := make([][]byte, len(l))
	for i, n := range l {
		out[i] = n.Raw
	}
	return out
}

// LiveAges returns the raw records of Live and, for each, how long its
// node has been reachable (whole seconds), as nodes answer a node-list
// request.
func (t *Table) LiveAges() (raws [][]byte, ages []uint64) {
	l := t.Live()
	now := t.now()
	t.mu.RLock()
	defer t.mu.RUnlock()
	raws = make([][]byte, len(l))
	ages = make([]uint64, len(l))
	for i, n := range l {
		raws[i] = n.Raw
		if e, ok := t.nodes[n.ID]; ok && now.After(e.since) {
			ages[i] = uint64(now.Sub(e.since) / time.Second)
		}
	}
	return raws, ages
}
