package member_test

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
)

func TestDigestBuckets(t *testing.T) {
	for _, c := range []struct{ n, want int }{{0, 1}, {1, 1}, {8, 1}, {9, 1}, {16, 2}, {30, 4}, {100, 16}, {1000, 128}, {4096, 256}, {100000, 256}} {
		if got := member.DigestBuckets(c.n); got != c.want {
			t.Errorf("DigestBuckets(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// TestDigestSums: two tables that agree have equal sums; where one holds a
// newer record, or a record the other lacks, only that node's bucket
// differs, the versions sent are those of that bucket only, and the
// delta they give carries exactly the missing records.
func TestDigestSums(t *testing.T) {
	clk := newClock()
	a := member.NewTable(testParams, clk.Now)
	b := member.NewTable(testParams, clk.Now)
	ids := make([]ident, 40)
	for i := range ids {
		ids[i] = newIdent(t)
		raw := signedAt(t, ids[i], 5, time.Minute, spreadAddr(i))
		upsert(t, a, raw)
		upsert(t, b, raw)
	}
	const buckets = 8
	if string(a.Sums(buckets)) != string(b.Sums(buckets)) {
		t.Fatal("equal tables have different sums")
	}
	if bk, v, err := b.Differ(a.Sums(buckets)); err != nil || len(bk) != 0 || len(v) != 0 {
		t.Fatalf("Differ of equal tables = %v, %d versions, %v", bk, len(v), err)
	}

	// a holds a newer record of ids[3] and a record b lacks.
	newer := signedAt(t, ids[3], 6, time.Minute, spreadAddr(3))
	upsert(t, a, newer)
	extra := newIdent(t)
	extraRaw := signedAt(t, extra, 1, time.Minute, spreadAddr(99))
	upsert(t, a, extraRaw)

	bk, theirs, err := b.Differ(a.Sums(buckets))
	if err != nil {
		t.Fatal(err)
	}
	if len(bk) == 0 || len(bk) > 2 {
		t.Fatalf("%d buckets differ, want 1 or 2", len(bk))
	}
	in := member.InBuckets(buckets, bk)
	if !in(ids[3].id) || !in(extra.id) {
		t.Fatal("the changed nodes' buckets are not among those that differ")
	}
	for _, v := range theirs {
		if !in(peer.ID(v.Node)) {
			t.Fatalf("a version outside the differing buckets was sent")
		}
	}
	if len(theirs) >= 40 {
		t.Fatalf("%d versions sent for %d differing buckets of 40 nodes", len(theirs), len(bk))
	}
	give, want := a.Delta(theirs, ids[0].id, in)
	if len(want) != 0 {
		t.Errorf("a wants %d records, want none", len(want))
	}
	got := map[string]bool{}
	for _, g := range give {
		got[string(g)] = true
	}
	if len(give) != 2 || !got[string(newer)] || !got[string(extraRaw)] {
		t.Errorf("a gives %d records, want the newer record and the extra one", len(give))
	}
	for _, g := range give {
		upsert(t, b, g)
	}
	if string(a.Sums(buckets)) != string(b.Sums(buckets)) {
		t.Error("the tables still differ after the delta")
	}
}

func TestDigestBadSums(t *testing.T) {
	tb := member.NewTable(testParams, newClock().Now)
	for _, sums := range [][]byte{nil, make([]byte, 7), make([]byte, 24), make([]byte, 8*512)} {
		if _, _, err := tb.Differ(sums); !errors.Is(err, member.ErrBadSums) {
			t.Errorf("Differ(%d bytes) = %v, want ErrBadSums", len(sums), err)
		}
	}
}

// TestRawOncePerNode: a peer naming one node many times gets its record
// once (what it can make us send is bounded by the table).
func TestRawOncePerNode(t *testing.T) {
	tb := member.NewTable(testParams, newClock().Now)
	id := newIdent(t)
	upsert(t, tb, signedAt(t, id, 1, time.Minute, addrA))
	ask := make([][]byte, 1000)
	for i := range ask {
		ask[i] = []byte(id.id)
	}
	if got := tb.Raw(ask); len(got) != 1 {
		t.Errorf("Raw of one node named 1000 times = %d records, want 1", len(got))
	}
}
