package member

import (
	"bytes"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/wire"
)

// DefaultMaxNodes bounds the table; records beyond it are refused.
const DefaultMaxNodes = 4096

type entry struct {
	node *Node
	down bool // locally observed unreachable: not used for placement
}

// Table is the set of known node records. It is safe for concurrent use.
// Changes of the live set (a node added, removed, marked down or up, or its
// addresses changed) bump a generation and signal Changes.
type Table struct {
	params   wire.Params
	now      func() time.Time
	maxNodes int

	mu      sync.RWMutex
	nodes   map[peer.ID]*entry
	gen     uint64
	live    []*Node // cache of Live for gen
	liveGen uint64
	liveEnd int64 // unix ms when the first cached record expires
	changed chan struct{}
}

// NewTable makes an empty table for a network.
func NewTable(p wire.Params, now func() time.Time) *Table {
	if now == nil {
		now = time.Now
	}
	return &Table{
		params: p, now: now, maxNodes: DefaultMaxNodes,
		nodes: make(map[peer.ID]*entry), changed: make(chan struct{}, 1), liveGen: ^uint64(0),
	}
}

// Params returns the network parameters.
func (t *Table) Params() wire.Params { return t.params }

// Changes is signalled (coalesced) when the live set changes.
func (t *Table) Changes() <-chan struct{} { return t.changed }

func (t *Table) bump() {
	t.gen++
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// Upsert verifies raw and stores it if it is newer than what the table has.
// It reports whether the table changed.
func (t *Table) Upsert(raw []byte) (bool, error) {
	n, err := Open(raw, t.params, t.now())
	if err != nil {
		return false, err
	}
	return t.put(n), nil
}

func (t *Table) put(n *Node) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.nodes[n.ID]
	if ok && old.node.Record.Seq >= n.Record.Seq {
		return false
	}
	if !ok && len(t.nodes) >= t.maxNodes {
		return false
	}
	t.nodes[n.ID] = &entry{node: n}
	if !ok || old.down || !sameAddrs(old.node, n) {
		t.bump()
	}
	return true
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

// Get returns the record of id, live or not.
func (t *Table) Get(id peer.ID) (*Node, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.nodes[id]
	if !ok {
		return nil, false
	}
	return e.node, true
}

// Known reports whether id has an unexpired record (down or not).
func (t *Table) Known(id peer.ID) bool {
	now := t.now().UnixMilli()
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.nodes[id]
	return ok && e.node.Record.Expires > now
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
	t.bump()
}

// IsDown reports whether id is marked down.
func (t *Table) IsDown(id peer.ID) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.nodes[id]
	return ok && e.down
}

// Sweep drops expired records and reports how many.
func (t *Table) Sweep() int {
	now := t.now().UnixMilli()
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for id, e := range t.nodes {
		if e.node.Record.Expires <= now {
			delete(t.nodes, id)
			n++
		}
	}
	if n > 0 {
		t.bump()
	}
	return n
}

// Live returns the unexpired records not marked down, sorted by peer ID.
// The slice is shared: callers must not modify it.
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

// Gen is the live-set generation; it changes whenever Live may change.
func (t *Table) Gen() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.gen
}

// Len is the number of records held (including down ones).
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.nodes)
}

// Versions lists every record held as (node, seq), for gossip.
func (t *Table) Versions() []wire.MemberVersion {
	t.mu.RLock()
	defer t.mu.RUnlock()
	v := make([]wire.MemberVersion, 0, len(t.nodes))
	for id, e := range t.nodes {
		v = append(v, wire.MemberVersion{Node: []byte(id), Seq: e.node.Record.Seq})
	}
	return v
}

// Delta compares a peer's versions with ours: the raw records the peer lacks
// or holds older, and the nodes whose records we lack or hold older.
func (t *Table) Delta(theirs []wire.MemberVersion) (give [][]byte, want [][]byte) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	seen := make(map[peer.ID]bool, len(theirs))
	for _, v := range theirs {
		id := peer.ID(v.Node)
		seen[id] = true
		e, ok := t.nodes[id]
		switch {
		case !ok || e.node.Record.Seq < v.Seq:
			want = append(want, v.Node)
		case e.node.Record.Seq > v.Seq:
			give = append(give, e.node.Raw)
		}
	}
	for id, e := range t.nodes {
		if !seen[id] {
			give = append(give, e.node.Raw)
		}
	}
	return give, want
}

// Raw returns the raw records of the named nodes that the table holds.
func (t *Table) Raw(ids [][]byte) [][]byte {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([][]byte, 0, len(ids))
	for _, id := range ids {
		if e, ok := t.nodes[peer.ID(id)]; ok {
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
