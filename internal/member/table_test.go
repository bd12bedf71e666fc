package member_test

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/wire"
)

// signedAt signs a record of id with seq, expiring ttl after t0, with the
// given address.
func signedAt(t testing.TB, id ident, seq uint64, ttl time.Duration, a string) []byte {
	t.Helper()
	r := record(t, id, seq)
	r.Expires = t0.Add(ttl).UnixMilli()
	r.Addrs = [][]byte{addr(t, a)}
	return sign(t, r, id.priv)
}

const addrA = "/ip4/127.0.0.1/tcp/4001"

func upsert(t testing.TB, tb *member.Table, raw []byte) bool {
	t.Helper()
	ok, err := tb.Upsert(raw)
	if err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	return ok
}

// signalled drains Changes and reports whether it was signalled.
func signalled(tb *member.Table) bool {
	select {
	case <-tb.Changes():
		return true
	default:
		return false
	}
}

func liveIDs(tb *member.Table) []peer.ID {
	var out []peer.ID
	for _, n := range tb.Live() {
		out = append(out, n.ID)
	}
	return out
}

func sortedIDs(ids ...peer.ID) []peer.ID {
	out := append([]peer.ID(nil), ids...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func equalIDs(a, b []peer.ID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTableUpsertSeq(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	if tb.Params() != testParams {
		t.Fatalf("Params = %+v", tb.Params())
	}
	id := newIdent(t)
	steps := []struct {
		seq     uint64
		changed bool
		wantSeq uint64
	}{
		{5, true, 5},
		{3, false, 5}, // older: ignored
		{5, false, 5}, // same: ignored
		{6, true, 6},
		{1, false, 6},
		{1 << 62, true, 1 << 62},
	}
	for i, s := range steps {
		got := upsert(t, tb, signedAt(t, id, s.seq, time.Minute, addrA))
		if got != s.changed {
			t.Errorf("step %d (seq %d): changed = %v, want %v", i, s.seq, got, s.changed)
		}
		n, ok := tb.Get(id.id)
		if !ok || n.Record.Seq != s.wantSeq {
			t.Errorf("step %d: held seq = %v (ok %v), want %d", i, n.Record.Seq, ok, s.wantSeq)
		}
	}
	if tb.Len() != 1 {
		t.Errorf("Len = %d", tb.Len())
	}

	// An invalid record is refused with an error and changes nothing.
	bad := record(t, id, 1<<63)
	bad.Network = "other"
	if ok, err := tb.Upsert(sign(t, bad, id.priv)); ok || !errors.Is(err, member.ErrInvalid) {
		t.Errorf("invalid record: ok %v err %v", ok, err)
	}
	// The table checks against its own clock: a record expired by it is refused.
	clk.Advance(2 * time.Minute)
	if ok, err := tb.Upsert(signedAt(t, id, 1<<63, time.Minute, addrA)); ok || err == nil {
		t.Errorf("record expired by the table clock: ok %v err %v", ok, err)
	}
	if _, ok := tb.Get(newIdent(t).id); ok {
		t.Error("Get of an unknown node succeeded")
	}
}

func TestTableLive(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	short, long, down := newIdent(t), newIdent(t), newIdent(t)
	upsert(t, tb, signedAt(t, short, 1, 30*time.Second, addrA))
	upsert(t, tb, signedAt(t, long, 1, 5*time.Minute, addrA))
	upsert(t, tb, signedAt(t, down, 1, 5*time.Minute, addrA))

	if got, want := liveIDs(tb), sortedIDs(short.id, long.id, down.id); !equalIDs(got, want) {
		t.Fatalf("Live = %v, want %v (sorted)", got, want)
	}
	tb.SetDown(down.id, true)
	if !tb.IsDown(down.id) || tb.IsDown(long.id) || tb.IsDown(newIdent(t).id) {
		t.Fatal("IsDown wrong")
	}
	if got, want := liveIDs(tb), sortedIDs(short.id, long.id); !equalIDs(got, want) {
		t.Fatalf("Live with a down node = %v, want %v", got, want)
	}
	if !tb.Known(down.id) {
		t.Fatal("a down node must stay Known")
	}
	tb.SetDown(down.id, false)
	if got := liveIDs(tb); len(got) != 3 {
		t.Fatalf("Live after SetDown(false) = %v", got)
	}

	// short expires: Live (not cached before the clock moved) drops it
	// before any Sweep.
	clk2 := newClock()
	tb2 := member.NewTable(testParams, clk2.Now)
	upsert(t, tb2, signedAt(t, short, 2, 30*time.Second, addrA))
	upsert(t, tb2, signedAt(t, long, 2, 5*time.Minute, addrA))
	clk2.Advance(time.Minute)
	if got := liveIDs(tb2); !equalIDs(got, []peer.ID{long.id}) {
		t.Errorf("Live (uncached) after expiry = %v, want [%s]", got, long.id)
	}
	if tb3 := member.NewTable(testParams, nil); tb3.Len() != 0 || len(tb3.Live()) != 0 {
		t.Error("empty table not empty")
	}
}

// Live caches its answer per generation, but expiry is a matter of time, not
// of generation: a record that expires after Live was computed must still
// leave Live without waiting for a Sweep (or any other change).
//
// This fails against table.go as written (the cached slice is returned until
// the next bump); see the report for the fix.
func TestTableLiveExpiresWithoutSweep(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	short, long := newIdent(t), newIdent(t)
	upsert(t, tb, signedAt(t, short, 1, 30*time.Second, addrA))
	upsert(t, tb, signedAt(t, long, 1, 5*time.Minute, addrA))
	if got := liveIDs(tb); len(got) != 2 { // fills the cache
		t.Fatalf("Live = %v", got)
	}
	clk.Advance(time.Minute)
	if got := liveIDs(tb); !equalIDs(got, []peer.ID{long.id}) {
		t.Errorf("Live after short's expiry = %v, want only %s: a cached Live outlives record expiry", got, long.id)
	}
}

// TestTableLiveServesRefreshedRecords: a node's routine refresh (a newer
// record, same addresses) must reach what the table serves. The cached
// live list kept the old record until the first cached expiry, so nodes
// handed out records whose remaining life ran down to zero, and clients
// that took them found them expired (issue 11, "false failures").
func TestTableLiveServesRefreshedRecords(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	a, b := newIdent(t), newIdent(t)
	upsert(t, tb, signedAt(t, a, 1, 2*time.Minute, addrA))
	upsert(t, tb, signedAt(t, b, 1, 2*time.Minute, addrA))
	tb.Live() // fills the cache
	fresh := signedAt(t, a, 2, 4*time.Minute, addrA)
	if !upsert(t, tb, fresh) {
		t.Fatal("the refreshed record was not taken")
	}
	for _, raw := range tb.LiveRaw() {
		n, err := member.Open(raw, testParams, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if n.ID == a.id && n.Record.Seq != 2 {
			t.Fatalf("the table serves seq %d of a refreshed record; want 2", n.Record.Seq)
		}
	}
}

func TestTableSweep(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	a, b, c := newIdent(t), newIdent(t), newIdent(t)
	upsert(t, tb, signedAt(t, a, 1, 10*time.Second, addrA))
	upsert(t, tb, signedAt(t, b, 1, 20*time.Second, addrA))
	upsert(t, tb, signedAt(t, c, 1, 5*time.Minute, addrA))
	tb.SetDown(b.id, true)
	signalled(tb)
	gen := tb.Gen()

	if n := tb.Sweep(); n != 0 {
		t.Fatalf("Sweep before expiry dropped %d", n)
	}
	if signalled(tb) || tb.Gen() != gen {
		t.Fatal("a Sweep that dropped nothing signalled a change")
	}
	clk.Advance(10 * time.Second) // a expires exactly now
	if n := tb.Sweep(); n != 1 {
		t.Fatalf("Sweep at a's expiry dropped %d, want 1", n)
	}
	if !signalled(tb) || tb.Gen() == gen {
		t.Fatal("Sweep that dropped a record did not signal")
	}
	if tb.Known(a.id) {
		t.Fatal("swept record still Known")
	}
	clk.Advance(time.Minute) // b (down) expires too
	if n := tb.Sweep(); n != 1 {
		t.Fatalf("second Sweep dropped %d, want 1", n)
	}
	if tb.Len() != 1 || !tb.Known(c.id) {
		t.Fatalf("after sweeps: Len %d", tb.Len())
	}
	if got := liveIDs(tb); !equalIDs(got, []peer.ID{c.id}) {
		t.Fatalf("Live = %v", got)
	}
	// A swept node may come back with a new record.
	if _, err := tb.Upsert(signedAt(t, a, 1, 5*time.Minute, addrA)); err != nil {
		t.Fatalf("re-adding a swept node: %v", err)
	}
}

func TestTableDelta(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	older, newer, same, onlyOurs, onlyTheirs := newIdent(t), newIdent(t), newIdent(t), newIdent(t), newIdent(t)
	raws := map[peer.ID][]byte{}
	for _, id := range []ident{older, newer, same, onlyOurs} {
		raws[id.id] = signedAt(t, id, 5, time.Minute, addrA)
		upsert(t, tb, raws[id.id])
	}
	theirs := []wire.MemberVersion{
		{Node: []byte(older.id), Seq: 3},      // they hold older: give
		{Node: []byte(newer.id), Seq: 7},      // they hold newer: want
		{Node: []byte(same.id), Seq: 5},       // equal: nothing
		{Node: []byte(onlyTheirs.id), Seq: 1}, // we lack: want
		// onlyOurs missing: give
	}
	give, want := tb.Delta(theirs, "", nil)

	gotGive := map[string]bool{}
	for _, g := range give {
		gotGive[string(g)] = true
	}
	wantGive := map[string]bool{string(raws[older.id]): true, string(raws[onlyOurs.id]): true}
	if len(give) != 2 || !mapEq(gotGive, wantGive) {
		t.Errorf("give: %d records, want the records of 'older' and 'onlyOurs'", len(give))
	}
	gotWant := map[string]bool{}
	for _, w := range want {
		gotWant[string(w)] = true
	}
	wantWant := map[string]bool{string(newer.id): true, string(onlyTheirs.id): true}
	if len(want) != 2 || !mapEq(gotWant, wantWant) {
		t.Errorf("want = %q, want the IDs of 'newer' and 'onlyTheirs'", want)
	}

	// An empty digest gets every record; a full, equal one gets nothing.
	give, want = tb.Delta(nil, "", nil)
	if len(give) != 4 || len(want) != 0 {
		t.Errorf("Delta(nil) = %d give, %d want", len(give), len(want))
	}
	give, want = tb.Delta(tb.Versions(), "", nil)
	if len(give) != 0 || len(want) != 0 {
		t.Errorf("Delta(own versions) = %d give, %d want", len(give), len(want))
	}

	// Raw returns the held records of known IDs only.
	got := tb.Raw([][]byte{[]byte(older.id), []byte(onlyTheirs.id), []byte("junk")})
	if len(got) != 1 || !bytes.Equal(got[0], raws[older.id]) {
		t.Errorf("Raw = %d records", len(got))
	}
	if lr := tb.LiveRaw(); len(lr) != 4 {
		t.Errorf("LiveRaw = %d records", len(lr))
	}
}

func mapEq(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func TestTableChanges(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	id := newIdent(t)
	other := newIdent(t)
	steps := []struct {
		name string
		do   func()
		want bool
	}{
		{"add", func() { upsert(t, tb, signedAt(t, id, 1, time.Minute, addrA)) }, true},
		{"refresh: same addrs, higher seq", func() { upsert(t, tb, signedAt(t, id, 2, 2*time.Minute, addrA)) }, false},
		{"older record", func() { tb.Upsert(signedAt(t, id, 1, time.Minute, "/ip4/1.2.3.4/tcp/1")) }, false},
		{"new address", func() { upsert(t, tb, signedAt(t, id, 3, time.Minute, "/ip4/1.2.3.4/tcp/1")) }, true},
		{"new onion key", func() {
			r := record(t, id, 4)
			r.Addrs = [][]byte{addr(t, "/ip4/1.2.3.4/tcp/1")}
			r.OnionKey = bytes.Repeat([]byte{8}, 32)
			upsert(t, tb, sign(t, r, id.priv))
		}, true},
		{"SetDown(true)", func() { tb.SetDown(id.id, true) }, true},
		{"SetDown(true) again", func() { tb.SetDown(id.id, true) }, false},
		{"refresh of a down node brings it up", func() {
			r := record(t, id, 5)
			r.Addrs = [][]byte{addr(t, "/ip4/1.2.3.4/tcp/1")}
			r.OnionKey = bytes.Repeat([]byte{8}, 32)
			upsert(t, tb, sign(t, r, id.priv))
		}, true},
		{"SetDown(false) of an up node", func() { tb.SetDown(id.id, false) }, false},
		{"SetDown of an unknown node", func() { tb.SetDown(other.id, true) }, false},
		{"second node", func() { upsert(t, tb, signedAt(t, other, 1, time.Minute, addrA)) }, true},
		{"SetDown(true), SetDown(false)", func() { tb.SetDown(other.id, true); tb.SetDown(other.id, false) }, true},
	}
	for _, s := range steps {
		gen := tb.Gen()
		s.do()
		if got := signalled(tb); got != s.want {
			t.Errorf("%s: Changes signalled = %v, want %v", s.name, got, s.want)
		}
		if changed := tb.Gen() != gen; changed != s.want {
			t.Errorf("%s: Gen changed = %v, want %v", s.name, changed, s.want)
		}
	}
	if tb.IsDown(id.id) {
		t.Error("a newer record must clear the down mark")
	}
}

func TestTableMaxNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("signs DefaultMaxNodes records")
	}
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	var first ident
	for i := 0; i < member.DefaultMaxNodes; i++ {
		id := newIdent(t)
		if i == 0 {
			first = id
		}
		if !upsert(t, tb, signedAt(t, id, 1, time.Minute, spreadAddr(i))) {
			t.Fatalf("record %d refused below the limit", i)
		}
	}
	// Full of aged, reachable nodes (no minimum age here): a new one is
	// refused rather than pushing one of them out.
	if upsert(t, tb, signedAt(t, newIdent(t), 1, time.Minute, spreadAddr(member.DefaultMaxNodes))) {
		t.Fatal("record beyond DefaultMaxNodes accepted")
	}
	if tb.Len() != member.DefaultMaxNodes {
		t.Fatalf("Len = %d", tb.Len())
	}
	// Known nodes may still refresh at the limit.
	if !upsert(t, tb, signedAt(t, first, 2, time.Minute, addrA)) {
		t.Fatal("refresh of a known node refused at the limit")
	}
}

// Concurrent use; meaningful under -race.
func TestTableConcurrent(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	ids := make([]ident, 8)
	raws := make([][][]byte, len(ids))
	for i := range ids {
		ids[i] = newIdent(t)
		for seq := uint64(1); seq <= 5; seq++ {
			raws[i] = append(raws[i], signedAt(t, ids[i], seq, time.Duration(seq)*time.Minute, addrA))
		}
	}
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range raws[i] {
				if _, err := tb.Upsert(r); err != nil {
					t.Error(err)
				}
				tb.SetDown(ids[i].id, true)
				_ = tb.Live()
				tb.SetDown(ids[i].id, false)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; k < 200; k++ {
			_ = tb.Live()
			_ = tb.LiveRaw()
			_ = tb.Versions()
			_, _ = tb.Delta(nil, "", nil)
			_ = tb.Sweep()
			_ = tb.Gen()
			select {
			case <-tb.Changes():
			default:
			}
		}
	}()
	wg.Wait()
	if tb.Len() != len(ids) {
		t.Fatalf("Len = %d", tb.Len())
	}
	for _, v := range tb.Versions() {
		if v.Seq != 5 {
			t.Errorf("node ended at seq %d, want 5", v.Seq)
		}
	}
	if len(tb.Live()) != len(ids) {
		t.Fatalf("Live = %d", len(tb.Live()))
	}
}

// spreadAddr is an address in a /24 of its own for each i.
func spreadAddr(i int) string { return fmt.Sprintf("/ip4/11.%d.%d.1/tcp/4001", i/250, i%250) }

// TestTableSubnetCap: one /24 cannot hold more than MaxPerSubnet records.
func TestTableSubnetCap(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	for i := 0; i < member.MaxPerSubnet; i++ {
		if !upsert(t, tb, signedAt(t, newIdent(t), 1, time.Minute, fmt.Sprintf("/ip4/11.1.1.%d/tcp/1", i+1))) {
			t.Fatalf("record %d of the subnet refused below the cap", i)
		}
	}
	if upsert(t, tb, signedAt(t, newIdent(t), 1, time.Minute, "/ip4/11.1.1.200/tcp/1")) {
		t.Fatal("a record past the subnet cap was accepted")
	}
	if !upsert(t, tb, signedAt(t, newIdent(t), 1, time.Minute, "/ip4/11.1.2.1/tcp/1")) {
		t.Fatal("a record of another subnet was refused")
	}
}

// TestTableEvicts: a full table makes room for a new node by dropping an
// expired record, else the one down longest, else the youngest that is not
// old enough for placements; aged reachable nodes are never pushed out.
func TestTableEvicts(t *testing.T) {
	clk := newClock()
	params := testParams
	params.MinAgeMs = (2 * time.Minute).Milliseconds()
	tb := member.NewTable(params, clk.Now)
	tb.SetMaxNodes(4)
	signNow := func(id ident, ttl time.Duration, a string) []byte {
		r := record(t, id, 1)
		r.Expires = clk.Now().Add(ttl).UnixMilli()
		r.Addrs = [][]byte{addr(t, a)}
		return sign(t, r, id.priv)
	}
	ids := make([]ident, 4)
	for i := range ids {
		ids[i] = newIdent(t)
		ttl := 10 * time.Minute
		if i == 3 {
			ttl = 30 * time.Second // expires first
		}
		if !upsert(t, tb, signNow(ids[i], ttl, spreadAddr(i))) {
			t.Fatal("fill")
		}
	}
	clk.Advance(3 * time.Minute) // ids[0..2] are aged; ids[3] has expired
	add := func(i int) ident {
		id := newIdent(t)
		if !upsert(t, tb, signNow(id, 10*time.Minute, spreadAddr(100+i))) {
			t.Fatalf("new node %d refused", i)
		}
		return id
	}
	has := func(id ident) bool { _, ok := tb.Get(id.id); return ok }
	n1 := add(1)
	if has(ids[3]) || !has(n1) {
		t.Fatal("the expired record was not the one dropped")
	}
	tb.SetDown(ids[1].id, true)
	clk.Advance(time.Second)
	tb.SetDown(ids[2].id, true)
	n2 := add(2)
	if has(ids[1]) || !has(ids[2]) || !has(n2) {
		t.Fatal("the node down longest was not the one dropped")
	}
	clk.Advance(time.Second)
	n3 := add(3)
	if has(ids[2]) || !has(n3) {
		t.Fatal("the down node was not dropped")
	}
	// Now ids[0] is aged and n1, n2, n3 young: the youngest goes.
	clk.Advance(time.Second)
	n4 := add(4)
	if has(n3) || !has(n4) || !has(ids[0]) || !has(n1) || !has(n2) {
		t.Fatal("the youngest young node was not the one dropped, or an aged one was")
	}
	if !tb.Aged(ids[0].id) || tb.Aged(n4.id) {
		t.Fatal("Aged is wrong")
	}
	// Once all are aged, a new node is refused.
	clk.Advance(3 * time.Minute)
	if upsert(t, tb, signNow(newIdent(t), 10*time.Minute, spreadAddr(200))) {
		t.Fatal("a full table of aged nodes took a new one")
	}
}

// TestTableOfferAndProbe: records learned by gossip wait, pending, until a
// probe proves them; a peer can queue only so many; a failed probe is
// remembered until a newer record comes.
func TestTableOfferAndProbe(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	src, other := newIdent(t).id, newIdent(t).id
	a := newIdent(t)
	res, err := tb.Offer(signedAt(t, a, 1, time.Minute, spreadAddr(1)), src)
	if err != nil || res != member.OfferPending {
		t.Fatalf("Offer = %v, %v; want pending", res, err)
	}
	if tb.Known(a.id) || len(tb.Live()) != 0 || len(tb.Versions()) != 0 {
		t.Fatal("a pending record is listed")
	}
	// One source fills its share; another still gets in, and is served
	// first in turn.
	for i := 0; i < member.MaxPendingPerSource+10; i++ {
		tb.Offer(signedAt(t, newIdent(t), 1, time.Minute, spreadAddr(10+i)), src)
	}
	b := newIdent(t)
	if res, _ := tb.Offer(signedAt(t, b, 1, time.Minute, spreadAddr(900)), other); res != member.OfferPending {
		t.Fatalf("another source's record: %v", res)
	}
	if got := tb.PendingLen(); got != member.MaxPendingPerSource+1 {
		t.Fatalf("PendingLen = %d, want %d", got, member.MaxPendingPerSource+1)
	}
	batch := tb.ToProbe(2)
	if len(batch) != 2 || (batch[0].ID != b.id && batch[1].ID != b.id) {
		t.Fatalf("ToProbe did not take one from each source: %v", batch)
	}
	for _, n := range batch {
		tb.Probed(n.ID, n.ID == b.id)
	}
	if !tb.Known(b.id) || len(tb.Live()) != 1 {
		t.Fatal("a probed record is not verified")
	}
	failed := batch[0].ID
	if failed == b.id {
		failed = batch[1].ID
	}
	if tb.Known(failed) {
		t.Fatal("a record whose probe failed is verified")
	}
	if got := tb.ToProbe(1000); len(got) != member.MaxPendingPerSource-1 {
		t.Fatalf("ToProbe returned %d, want the %d left", len(got), member.MaxPendingPerSource-1)
	}
	if tb.ToProbe(10) != nil {
		t.Fatal("records being probed were handed out twice")
	}
}

// TestTableProbeFailureRemembered: a record whose probe failed is not
// pending again until a newer record of the node comes.
func TestTableProbeFailureRemembered(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	src := newIdent(t).id
	a := newIdent(t)
	tb.Offer(signedAt(t, a, 1, time.Minute, spreadAddr(1)), src)
	for _, n := range tb.ToProbe(1) {
		tb.Probed(n.ID, false)
	}
	if res, _ := tb.Offer(signedAt(t, a, 1, time.Minute, spreadAddr(1)), src); res != member.OfferIgnored {
		t.Fatalf("the same record after a failed probe: %v, want ignored", res)
	}
	if res, _ := tb.Offer(signedAt(t, a, 2, time.Minute, spreadAddr(1)), src); res != member.OfferPending {
		t.Fatalf("a newer record after a failed probe: %v, want pending", res)
	}
	// A newer record of a verified node updates it at once.
	for _, n := range tb.ToProbe(1) {
		tb.Probed(n.ID, true)
	}
	if res, _ := tb.Offer(signedAt(t, a, 3, time.Minute, spreadAddr(2)), src); res != member.OfferUpdated {
		t.Fatalf("a newer record of a verified node: %v, want updated", res)
	}
}

// TestTableAgeSurvivesShortAbsence: a node whose record expires while it
// is down keeps its age if it comes back within AgeGrace, not after.
func TestTableAgeSurvivesShortAbsence(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	a := newIdent(t)
	upsert(t, tb, signedAt(t, a, 1, time.Minute, spreadAddr(1)))
	since, _ := tb.Since(a.id)
	clk.Advance(2 * time.Minute)
	tb.Sweep()
	if tb.Known(a.id) {
		t.Fatal("expired record still known")
	}
	r := record(t, a, 2)
	r.Expires = clk.Now().Add(time.Minute).UnixMilli()
	r.Addrs = [][]byte{addr(t, spreadAddr(1))}
	upsert(t, tb, sign(t, r, a.priv))
	if got, _ := tb.Since(a.id); !got.Equal(since) {
		t.Fatalf("age after a short absence: since %v, want %v", got, since)
	}
	clk.Advance(member.AgeGrace + 2*time.Minute)
	tb.Sweep()
	tb.Sweep()
	r.Seq = 3
	r.Expires = clk.Now().Add(time.Minute).UnixMilli()
	upsert(t, tb, sign(t, r, a.priv))
	if got, _ := tb.Since(a.id); !got.Equal(clk.Now()) {
		t.Fatalf("age after a long absence: since %v, want now %v", got, clk.Now())
	}
}

// A node whose record expired is remembered (its addresses) for
// LostMemory, so gossip can try it again, and forgotten when it comes
// back or the memory runs out; at most MaxLost are kept.
func TestTableLost(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	a, b := newIdent(t), newIdent(t)
	upsert(t, tb, signedAt(t, a, 1, 10*time.Second, addrA))
	upsert(t, tb, signedAt(t, b, 1, 5*time.Minute, addrA))
	if got := tb.Lost(8); len(got) != 0 {
		t.Fatalf("Lost before any expiry = %v", got)
	}
	clk.Advance(10 * time.Second)
	tb.Sweep()
	got := tb.Lost(8)
	if len(got) != 1 || got[0].ID != a.id || len(got[0].Addrs) != 1 || got[0].Addrs[0].String() != addrA {
		t.Fatalf("Lost = %v, want a at %s", got, addrA)
	}
	if got := tb.Lost(0); len(got) != 0 {
		t.Fatalf("Lost(0) = %v", got)
	}
	// a comes back: no longer lost.
	upsert(t, tb, signedAt(t, a, 2, time.Minute, addrA))
	if got := tb.Lost(8); len(got) != 0 {
		t.Fatalf("Lost after a came back = %v", got)
	}
	// Lost again, then forgotten after LostMemory.
	clk.Advance(2 * time.Minute)
	tb.Sweep()
	if got := tb.Lost(8); len(got) != 1 {
		t.Fatalf("Lost = %v, want a", got)
	}
	clk.Advance(member.LostMemory + time.Second)
	tb.Sweep() // b expires now: it becomes lost, a is forgotten
	if got := tb.Lost(8); len(got) != 1 || got[0].ID != b.id {
		t.Fatalf("Lost after LostMemory = %v, want b only", got)
	}
}

func TestTableLostBounded(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	for i := 0; i < member.MaxLost+10; i++ {
		id := newIdent(t)
		// Distinct subnets so that the per-subnet limit does not refuse them.
		upsert(t, tb, signedAt(t, id, 1, time.Second, fmt.Sprintf("/ip4/10.%d.%d.1/tcp/4001", i/256, i%256)))
	}
	clk.Advance(2 * time.Second)
	tb.Sweep()
	if got := tb.Lost(2 * member.MaxLost); len(got) != member.MaxLost {
		t.Fatalf("Lost holds %d, want MaxLost %d", len(got), member.MaxLost)
	}
}

// TestTableAllDropsLongDown: a node marked down stays in placements (All)
// for DownScopeGrace, then leaves them although its record lives on, and
// is back once marked up.
func TestTableAllDropsLongDown(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	a, b := newIdent(t), newIdent(t)
	upsert(t, tb, signedAt(t, a, 1, time.Hour, spreadAddr(1)))
	upsert(t, tb, signedAt(t, b, 1, time.Hour, spreadAddr(2)))
	count := func() int { return len(tb.All()) }
	tb.SetDown(b.id, true)
	clk.Advance(member.DownScopeGrace)
	if got := count(); got != 2 {
		t.Fatalf("after %v down: %d in All, want 2", member.DownScopeGrace, got)
	}
	clk.Advance(time.Second)
	if got := count(); got != 1 {
		t.Fatalf("down longer than the grace: %d in All, want 1", got)
	}
	tb.SetDown(b.id, false)
	if got := count(); got != 2 {
		t.Fatalf("up again: %d in All, want 2", got)
	}
}

// TestTableProbeFailureBackoff: the same record is probed again after
// FailedFirst, then after twice that once it fails again.
func TestTableProbeFailureBackoff(t *testing.T) {
	clk := newClock()
	tb := member.NewTable(testParams, clk.Now)
	src := newIdent(t).id
	a := newIdent(t)
	raw := signedAt(t, a, 1, time.Hour, spreadAddr(1))
	fail := func() {
		t.Helper()
		if res, _ := tb.Offer(raw, src); res != member.OfferPending {
			t.Fatalf("offer: %v, want pending", res)
		}
		for _, n := range tb.ToProbe(1) {
			tb.Probed(n.ID, false)
		}
	}
	fail()
	clk.Advance(member.FailedFirst - time.Second)
	if res, _ := tb.Offer(raw, src); res != member.OfferIgnored {
		t.Fatalf("before FailedFirst: %v, want ignored", res)
	}
	clk.Advance(2 * time.Second)
	tb.Sweep()
	fail() // the second failure in a row
	clk.Advance(2*member.FailedFirst - time.Second)
	if res, _ := tb.Offer(raw, src); res != member.OfferIgnored {
		t.Fatalf("second failure, before 2×FailedFirst: %v, want ignored", res)
	}
	clk.Advance(2 * time.Second)
	if res, _ := tb.Offer(raw, src); res != member.OfferPending {
		t.Fatalf("second failure, after 2×FailedFirst: %v, want pending", res)
	}
}
