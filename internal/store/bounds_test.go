package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"
)

func nsMsg(mb Hash, ns int32, data string, expiry int64) Message {
	m := mkMsg(mb, fmt.Sprintf("%d/%s", ns, data), expiry)
	m.Namespace = ns
	return m
}

// TestNamespaceQuotas: a namespace with a quota of its own fills up on its
// own; junk elsewhere in the mailbox does not crowd it out, and it does
// not count against the rest.
func TestNamespaceQuotas(t *testing.T) {
	clk := newClock()
	s, _ := openTest(t, clk, func(c *Config) {
		c.MaxMailboxMessages = 3
		c.NamespaceQuotas = map[int32]Quota{1: {Messages: 2, Bytes: 1 << 20}, 2: {Messages: 4, Bytes: 30}}
	})
	mb, exp := mbox(1), clk.Ms()+60_000
	var junk []Message
	for i := 0; i < 5; i++ {
		junk = append(junk, nsMsg(mb, 0, fmt.Sprint("junk", i), exp))
	}
	got := statuses(mustPut(t, s, junk...))
	if want := []PutStatus{Stored, Stored, Stored, Rejected, Rejected}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("general namespace: %v, want %v", got, want)
	}
	pub := statuses(mustPut(t, s, nsMsg(mb, 1, "b1", exp), nsMsg(mb, 1, "b2", exp), nsMsg(mb, 1, "b3", exp)))
	if want := []PutStatus{Stored, Stored, Rejected}; fmt.Sprint(pub) != fmt.Sprint(want) {
		t.Fatalf("public namespace beside a full mailbox: %v, want %v", pub, want)
	}
	// Namespace 2: 4 messages, 30 bytes ("2/xxxxxxxx" is 10 bytes).
	req := statuses(mustPut(t, s, nsMsg(mb, 2, "aaaaaaaa", exp), nsMsg(mb, 2, "bbbbbbbb", exp), nsMsg(mb, 2, "cccccccc", exp), nsMsg(mb, 2, "dddddddd", exp)))
	if want := []PutStatus{Stored, Stored, Stored, Rejected}; fmt.Sprint(req) != fmt.Sprint(want) {
		t.Fatalf("byte quota of namespace 2: %v, want %v", req, want)
	}
	if n := s.Count(mb, 2); n != 3 {
		t.Fatalf("Count(ns 2) = %d, want 3", n)
	}
	if n := s.Count(mb, 0); n != -1 {
		t.Fatalf("Count of a namespace without its own quota = %d, want -1", n)
	}
	// Deleting frees the namespace's room, and the counts survive a reopen.
	first := nsMsg(mb, 2, "aaaaaaaa", exp)
	mustDelete(t, s, mb, first.Hash)
	if n := s.Count(mb, 2); n != 2 {
		t.Fatalf("Count(ns 2) after a delete = %d, want 2", n)
	}
	checkDigest(t, s, mb)
}

// TestSignedDeletions: a signed deletion is kept with the tombstones it
// made, given back by Deletions, not kept when it made none, and dropped
// when its tombstones expire.
func TestSignedDeletions(t *testing.T) {
	clk := newClock()
	s, cfg := openTest(t, clk)
	mb, exp := mbox(1), clk.Ms()+60_000
	a, b := mkMsg(mb, "a", exp), mkMsg(mb, "b", exp)
	other := mkMsg(mbox(2), "other", exp)
	mustPut(t, s, a, b, other)
	d := Deletion{Mailbox: mb, Hashes: []Hash{a.Hash, other.Hash}, Timestamp: 42, Sig: bytes.Repeat([]byte{7}, 64)}
	if n, err := s.DeleteSigned(context.Background(), d); err != nil || n != 1 {
		t.Fatalf("DeleteSigned = %d, %v; want 1 removed", n, err)
	}
	got, err := s.Deletions(mb, []Hash{a.Hash, b.Hash}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Timestamp != 42 || !bytes.Equal(got[0].Sig, d.Sig) || len(got[0].Hashes) != 2 || got[0].Hashes[1] != other.Hash {
		t.Fatalf("Deletions = %+v; want the signed deletion as given", got)
	}
	// A signed deletion that tombstones nothing new is not kept.
	d2 := Deletion{Mailbox: mb, Hashes: []Hash{a.Hash}, Timestamp: 43, Sig: bytes.Repeat([]byte{8}, 64)}
	if _, err := s.DeleteSigned(context.Background(), d2); err != nil {
		t.Fatal(err)
	}
	before := s.Stats().DeletionBytes
	if before == 0 {
		t.Fatal("DeletionBytes is 0 with a deletion kept")
	}
	// Reopen: the counters are rebuilt from disk.
	s.Close()
	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if st := s2.Stats(); st.DeletionBytes != before || st.Tombstones != 1 {
		t.Fatalf("after reopen: %+v, want DeletionBytes %d and 1 tombstone", st, before)
	}
	// The tombstone expires with the message, and its deletion with it.
	clk.Advance(61 * time.Second)
	if _, err := s2.ExpireNow(); err != nil {
		t.Fatal(err)
	}
	if st := s2.Stats(); st.Tombstones != 0 || st.DeletionBytes != 0 {
		t.Fatalf("after expiry: %+v; want no tombstone and no deletion kept", st)
	}
	if got, _ := s2.Deletions(mb, []Hash{a.Hash}, 10); len(got) != 0 {
		t.Fatalf("Deletions after expiry = %+v", got)
	}
}

// TestUnknownTombstoneCap: deletes of hashes a node never held keep at most
// MaxUnknownTombstones tombstones per mailbox; deletes of held messages
// are never refused.
func TestUnknownTombstoneCap(t *testing.T) {
	clk := newClock()
	s, _ := openTest(t, clk, func(c *Config) { c.MaxUnknownTombstones = 10 })
	mb, exp := mbox(1), clk.Ms()+60_000
	var random []Hash
	for i := 0; i < 25; i++ {
		var h Hash
		rand.Read(h[:])
		random = append(random, h)
	}
	mustDelete(t, s, mb, random...)
	if st := s.Stats(); st.Tombstones != 10 {
		t.Fatalf("%d tombstones after 25 unknown hashes; want the cap, 10", st.Tombstones)
	}
	held := mkMsg(mb, "held", exp)
	mustPut(t, s, held)
	if n := mustDelete(t, s, mb, held.Hash); n != 1 {
		t.Fatalf("deleting a held message at the cap removed %d", n)
	}
	if res := mustPut(t, s, held); res[0].Status != Deleted {
		t.Fatalf("re-put of a deleted message: %v; want deleted", res[0].Status)
	}
	if st := s.Stats(); st.Tombstones != 11 {
		t.Fatalf("%d tombstones; want 11", st.Tombstones)
	}
	checkDigest(t, s, mb)
}

// TestEntriesPage: paging through a mailbox's set gives the whole set, in
// order, once.
func TestEntriesPage(t *testing.T) {
	clk := newClock()
	s, _ := openTest(t, clk)
	mb, exp := mbox(1), clk.Ms()+60_000
	var msgs []Message
	for i := 0; i < 57; i++ {
		msgs = append(msgs, mkMsg(mb, fmt.Sprint(i), exp))
	}
	mustPut(t, s, msgs...)
	mustDelete(t, s, mb, msgs[3].Hash, msgs[9].Hash)
	all, err := s.Entries(mb)
	if err != nil {
		t.Fatal(err)
	}
	var paged []Entry
	var after *Hash
	for pages := 0; ; pages++ {
		page, more, err := s.EntriesPage(mb, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 10 || pages > 6 {
			t.Fatalf("page %d has %d entries", pages, len(page))
		}
		paged = append(paged, page...)
		if !more {
			break
		}
		h := page[len(page)-1].Hash
		after = &h
	}
	if fmt.Sprint(paged) != fmt.Sprint(all) {
		t.Fatalf("paged set differs from the whole set (%d vs %d entries)", len(paged), len(all))
	}
	// Ranges (after, through] cut at page ends cover the set once.
	mid := all[20].Hash
	lo, err := s.EntriesBetween(mb, nil, &mid)
	if err != nil {
		t.Fatal(err)
	}
	hi, err := s.EntriesBetween(mb, &mid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lo) != 21 || fmt.Sprint(append(lo, hi...)) != fmt.Sprint(all) {
		t.Fatalf("ranges split at entry 20: %d + %d entries, want 21 + %d in order", len(lo), len(hi), len(all)-21)
	}
}

// TestNewest: Newest reads one namespace's newest messages, newest last,
// skipping the others and expired ones.
func TestNewest(t *testing.T) {
	clk := newClock()
	s, _ := openTest(t, clk)
	mb, exp := mbox(1), clk.Ms()+60_000
	var pub []Message
	for i := 0; i < 20; i++ {
		mustPut(t, s, nsMsg(mb, 0, fmt.Sprint("junk", i), exp))
		m := nsMsg(mb, 1, fmt.Sprint("bundle", i), exp)
		pub = append(pub, m)
		mustPut(t, s, m)
	}
	got, err := s.Newest(mb, 1, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("Newest = %d messages, want 5", len(got))
	}
	for i, m := range got {
		if m.Hash != pub[15+i].Hash {
			t.Fatalf("Newest[%d] = %q, want %q", i, m.Data, pub[15+i].Data)
		}
	}
	clk.Advance(time.Minute + time.Second)
	if got, _ := s.Newest(mb, 1, 5); len(got) != 0 {
		t.Fatalf("Newest returned %d expired messages", len(got))
	}
	if _, err := s.Newest(mb, 1, 0); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}
