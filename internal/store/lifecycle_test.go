package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

func mustRawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, "busy_timeout(5000)"))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func mustDelete(t testing.TB, s *Store, mb Hash, hs ...Hash) int {
	t.Helper()
	n, err := s.Delete(context.Background(), mb, hs)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	return n
}

// recomputeDigest derives a mailbox's digest from Entries, independently of
// the in-memory bookkeeping.
func recomputeDigest(t testing.TB, s *Store, mb Hash) Digest {
	t.Helper()
	es, err := s.Entries(mb)
	if err != nil {
		t.Fatal(err)
	}
	var d Digest
	for _, e := range es {
		d.Count++
		xorInto(&d.XOR, entryHash(e.Hash, e.Deleted))
	}
	return d
}

func checkDigest(t testing.TB, s *Store, mb Hash) {
	t.Helper()
	if got, want := s.Digest(mb), recomputeDigest(t, s, mb); got != want {
		t.Fatalf("in-memory digest %d/%x != recomputed %d/%x", got.Count, got.XOR[:4], want.Count, want.XOR[:4])
	}
}

func TestTombstones(t *testing.T) {
	clk := newClock()
	s, _ := openTest(t, clk)
	mb, other := mbox(1), mbox(2)
	exp := clk.Ms() + int64(time.Hour/time.Millisecond)
	a, b := mkMsg(mb, "a", exp), mkMsg(mb, "b", exp)
	foreign := mkMsg(other, "foreign", exp)
	mustPut(t, s, a, b, foreign)
	unknown := mkMsg(mb, "never seen", exp+1)

	if n := mustDelete(t, s, mb, a.Hash, a.Hash, unknown.Hash, foreign.Hash); n != 1 {
		t.Fatalf("Delete removed %d, want 1", n)
	}
	checkDigest(t, s, mb)
	checkDigest(t, s, other)
	got, _, _ := s.Get(mb, nil, 0, 0)
	sameHashes(t, "after delete", got, []Message{b})
	if got, _ := s.GetByHash([]Hash{foreign.Hash}); len(got) != 1 {
		t.Fatal("Delete through the wrong mailbox removed a foreign message")
	}
	if res := mustPut(t, s, a, unknown, foreign); res[0].Status != Deleted || res[1].Status != Deleted || res[2].Status != Duplicate {
		t.Fatalf("re-put statuses %v, want [deleted deleted duplicate]", statuses(res))
	}

	es, err := s.Entries(mb)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Hash]bool{a.Hash: true, b.Hash: false, unknown.Hash: true}
	if len(es) != len(want) {
		t.Fatalf("Entries = %v", es)
	}
	for i, e := range es {
		if del, ok := want[e.Hash]; !ok || del != e.Deleted {
			t.Fatalf("unexpected entry %x deleted=%v", e.Hash[:4], e.Deleted)
		}
		if i > 0 && string(es[i-1].Hash[:]) >= string(e.Hash[:]) {
			t.Fatal("Entries not sorted by hash")
		}
	}
	if st := s.Stats(); st.Tombstones != 2 || st.Messages != 2 || st.Mailboxes != 2 {
		t.Fatalf("Stats = %+v", st)
	}

	// The known message's tombstone lives until that message's expiry, the
	// unknown one's for UnknownTombstoneTTL.
	clk.Advance(time.Hour + time.Second)
	if n, err := s.ExpireNow(); err != nil || n != 2 { // b and foreign
		t.Fatalf("ExpireNow = %d, %v", n, err)
	}
	if es, _ := s.Entries(mb); len(es) != 1 || es[0].Hash != unknown.Hash || !es[0].Deleted {
		t.Fatalf("after first expiry: %v", es)
	}
	checkDigest(t, s, mb)
	clk.Advance(UnknownTombstoneTTL)
	if _, err := s.ExpireNow(); err != nil {
		t.Fatal(err)
	}
	if es, _ := s.Entries(mb); len(es) != 0 {
		t.Fatalf("tombstones left: %v", es)
	}
	if d := s.Digests(); len(d) != 0 {
		t.Fatalf("Digests after everything expired: %v", d)
	}
	if st := s.Stats(); st != (Stats{}) {
		t.Fatalf("Stats = %+v", st)
	}
	// With the tombstone gone the hash may be stored again (if still live).
	revived := mkMsg(mb, "never seen", clk.Ms()+1000)
	if res := mustPut(t, s, revived); res[0].Status != Stored {
		t.Fatalf("put after tombstone expiry: %v", res[0].Status)
	}
}

func TestExpiry(t *testing.T) {
	clk := newClock()
	s, cfg := openTest(t, clk)
	mb := mbox(1)
	now := clk.Ms()
	short, long := mkMsg(mb, "short", now+1000), mkMsg(mb, "long", now+5000)
	mustPut(t, s, short, long)
	before := s.Digest(mb)

	clk.Advance(2 * time.Second)
	got, _, _ := s.Get(mb, nil, 0, 0)
	sameHashes(t, "Get after expiry", got, []Message{long})
	if got, _ := s.GetByHash([]Hash{short.Hash, long.Hash}); len(got) != 1 || got[0].Hash != long.Hash {
		t.Fatalf("GetByHash returned an expired message: %v", hashesOf(got))
	}
	// Not yet removed: still an entry, digest unchanged until ExpireNow.
	if s.Digest(mb) != before {
		t.Fatal("digest changed before ExpireNow")
	}
	// A cursor on an expired (but not removed) message still works.
	got, _, _ = s.Get(mb, &short.Hash, 0, 0)
	sameHashes(t, "cursor on expired", got, []Message{long})

	n, err := s.ExpireNow()
	if err != nil || n != 1 {
		t.Fatalf("ExpireNow = %d, %v; want 1", n, err)
	}
	if n, _ := s.ExpireNow(); n != 0 {
		t.Fatalf("second ExpireNow removed %d", n)
	}
	if d := s.Digest(mb); d == before || d.Count != 1 {
		t.Fatalf("digest not updated by ExpireNow: %+v", d)
	}
	checkDigest(t, s, mb)
	if st := s.Stats(); st.Messages != 1 || st.Bytes != 4 {
		t.Fatalf("Stats = %+v", st)
	}
	// Reloading from disk agrees.
	d := s.Digest(mb)
	s.Close()
	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Digest(mb) != d {
		t.Fatal("digest differs after reopen")
	}
}

func TestExpireManyChunks(t *testing.T) {
	clk := newClock()
	s, _ := openTest(t, clk, func(c *Config) { c.BatchMax = 100 })
	s.expireChunk = 100
	const chunk = 100
	const n = chunk*2 + 17
	msgs := make([]Message, n)
	var del []Hash
	for i := range msgs {
		msgs[i] = mkMsg(mbox(i%7), string(rune(i)), clk.Ms()+1)
	}
	for i := range chunk + 5 {
		del = append(del, mkMsg(mbox(0), "tomb"+string(rune(i)), 0).Hash)
	}
	mustPut(t, s, msgs...)
	mustDelete(t, s, mbox(0), del...)
	clk.Advance(UnknownTombstoneTTL + time.Second)
	if got, err := s.ExpireNow(); err != nil || got != n {
		t.Fatalf("ExpireNow = %d, %v; want %d", got, err, n)
	}
	if st := s.Stats(); st != (Stats{}) {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestQuotas(t *testing.T) {
	const size = 100
	data := string(make([]byte, size))
	tests := []struct {
		name   string
		cfg    func(*Config)
		boxes  []int // mailbox of each message, put in one call
		want   []PutStatus
		errIs  error
		before []int // mailboxes of messages put (and committed) beforehand
	}{
		{
			name:  "mailbox count within one batch",
			cfg:   func(c *Config) { c.MaxMailboxMessages = 3 },
			boxes: []int{1, 1, 1, 1, 2},
			want:  []PutStatus{Stored, Stored, Stored, Rejected, Stored},
			errIs: ErrMailboxFull,
		},
		{
			name:   "mailbox count across batches",
			cfg:    func(c *Config) { c.MaxMailboxMessages = 3 },
			before: []int{1, 1},
			boxes:  []int{1, 1},
			want:   []PutStatus{Stored, Rejected},
			errIs:  ErrMailboxFull,
		},
		{
			name:   "mailbox bytes",
			cfg:    func(c *Config) { c.MaxMailboxBytes = 2*size + size/2 },
			before: []int{1},
			boxes:  []int{1, 1, 2, 2},
			want:   []PutStatus{Stored, Rejected, Stored, Stored},
			errIs:  ErrMailboxFull,
		},
		{
			name:   "total bytes",
			cfg:    func(c *Config) { c.MaxTotalBytes = 3 * (size + 1) },
			before: []int{1},
			boxes:  []int{2, 3, 4, 1},
			want:   []PutStatus{Stored, Stored, Rejected, Rejected},
			errIs:  ErrStoreFull,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			s, _ := openTest(t, clk, tc.cfg)
			exp := clk.Ms() + 60_000
			var prior []Message
			for i, b := range tc.before {
				prior = append(prior, mkMsg(mbox(b), data+string(rune('A'+i)), exp))
			}
			if len(prior) > 0 {
				mustPut(t, s, prior...)
			}
			var msgs []Message
			for i, b := range tc.boxes {
				msgs = append(msgs, mkMsg(mbox(b), data+string(rune('a'+i)), exp))
			}
			// Quota rejections must not hide that a message is already
			// held: re-put the prior messages alongside.
			res := mustPut(t, s, append(msgs, prior...)...)
			for i, r := range res[:len(msgs)] {
				if r.Status != tc.want[i] {
					t.Fatalf("message %d: %v (%v), want %v", i, r.Status, r.Err, tc.want[i])
				}
				if r.Status == Rejected && !errors.Is(r.Err, tc.errIs) {
					t.Fatalf("message %d: err %v, want %v", i, r.Err, tc.errIs)
				}
			}
			for i, r := range res[len(msgs):] {
				if r.Status != Duplicate {
					t.Fatalf("prior message %d re-put: %v (%v), want duplicate", i, r.Status, r.Err)
				}
			}
			// Deleting frees room: at once in a mailbox; on the node once
			// the tombstone, which counts too, has expired with the
			// message.
			mustDelete(t, s, prior0(msgs, prior).Mailbox, prior0(msgs, prior).Hash)
			if tc.errIs == ErrStoreFull {
				clk.Advance(61 * time.Second)
				if _, err := s.ExpireNow(); err != nil {
					t.Fatal(err)
				}
				if st := s.Stats(); st.Tombstones != 0 {
					t.Fatalf("%d tombstones left after expiry", st.Tombstones)
				}
				again := mustPut(t, s, mkMsg(mbox(9), data+"z", clk.Ms()+60_000))
				if again[0].Status != Stored {
					t.Fatalf("after delete and expiry: %v (%v)", again[0].Status, again[0].Err)
				}
				return
			}
			for i, r := range res[:len(msgs)] {
				if r.Status == Rejected {
					again := mustPut(t, s, msgs[i])
					if again[0].Status != Stored {
						t.Fatalf("after delete, message %d: %v (%v)", i, again[0].Status, again[0].Err)
					}
					break
				}
			}
		})
	}
	// Error text is user-readable.
	s, _ := openTest(t, nil, func(c *Config) { c.MaxMailboxMessages = 1 })
	exp := time.Now().Add(time.Hour).UnixMilli()
	res := mustPut(t, s, mkMsg(mbox(1), "a", exp), mkMsg(mbox(1), "b", exp))
	if got := res[1].Err.Error(); got != "store: mailbox quota exceeded: mailbox holds 1 messages (limit 1)" {
		t.Fatalf("error text %q", got)
	}
}

// prior0 picks a stored message whose deletion frees room for the first
// rejected one: the first prior message, else the first new one.
func prior0(msgs, prior []Message) Message {
	if len(prior) > 0 {
		return prior[0]
	}
	return msgs[0]
}
