package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testClock is an injectable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *testClock) Ms() int64 { return c.Now().UnixMilli() }

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// openTest opens a store in a fresh temp dir; it is closed at test end.
func openTest(t testing.TB, clk *testClock, mod ...func(*Config)) (*Store, Config) {
	t.Helper()
	cfg := Config{Path: filepath.Join(t.TempDir(), "store.db"), Logger: quietLogger}
	if clk != nil {
		cfg.Now = clk.Now
	}
	for _, f := range mod {
		f(&cfg)
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, cfg
}

func mbox(n int) Hash { return sha256.Sum256([]byte{'m', byte(n >> 8), byte(n)}) }

// mkMsg builds a message whose hash covers mailbox, data and expiry.
func mkMsg(mb Hash, data string, expiry int64) Message {
	hh := sha256.New()
	hh.Write(mb[:])
	_ = binary.Write(hh, binary.BigEndian, expiry)
	hh.Write([]byte(data))
	var h Hash
	copy(h[:], hh.Sum(nil))
	return Message{Hash: h, Mailbox: mb, Namespace: 3, Timestamp: expiry - 3_600_000, Expiry: expiry, Data: []byte(data)}
}

func mustPut(t testing.TB, s *Store, msgs ...Message) []PutResult {
	t.Helper()
	res, err := s.Put(context.Background(), msgs...)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if len(res) != len(msgs) {
		t.Fatalf("Put: %d results for %d messages", len(res), len(msgs))
	}
	return res
}

func statuses(res []PutResult) []PutStatus {
	out := make([]PutStatus, len(res))
	for i, r := range res {
		out[i] = r.Status
	}
	return out
}

func hashesOf(msgs []Message) []Hash {
	out := make([]Hash, len(msgs))
	for i, m := range msgs {
		out[i] = m.Hash
	}
	return out
}

func sameHashes(t *testing.T, what string, got []Message, want []Message) {
	t.Helper()
	g, w := hashesOf(got), hashesOf(want)
	if len(g) != len(w) {
		t.Fatalf("%s: got %d messages, want %d", what, len(g), len(w))
	}
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("%s: message %d is %x, want %x", what, i, g[i][:4], w[i][:4])
		}
	}
}

func TestPutGetOrderAndCursor(t *testing.T) {
	clk := newClock()
	s, _ := openTest(t, clk)
	mb, other := mbox(1), mbox(2)
	exp := clk.Ms() + 3_600_000
	// Hashes deliberately not in arrival order: order must follow arrival.
	var msgs []Message
	for i := range 6 {
		msgs = append(msgs, mkMsg(mb, string(rune('f'-i))+"-payload", exp))
	}
	mustPut(t, s, msgs[0])
	mustPut(t, s, msgs[1:4]...)
	mustPut(t, s, mkMsg(other, "other mailbox", exp))
	mustPut(t, s, msgs[4], msgs[5])

	got, more, err := s.Get(mb, nil, 0, 0)
	if err != nil || more {
		t.Fatalf("Get: more=%v err=%v", more, err)
	}
	sameHashes(t, "Get all", got, msgs)
	for i := range got {
		if i > 0 && got[i].Seq <= got[i-1].Seq {
			t.Fatalf("Seq not increasing: %d then %d", got[i-1].Seq, got[i].Seq)
		}
		m := msgs[i]
		if got[i].Mailbox != mb || got[i].Namespace != m.Namespace || got[i].Timestamp != m.Timestamp ||
			got[i].Expiry != m.Expiry || !bytes.Equal(got[i].Data, m.Data) {
			t.Fatalf("message %d round-trip mismatch: %+v vs %+v", i, got[i], m)
		}
	}
	unknown := sha256.Sum256([]byte("nope"))
	otherMsg := mkMsg(other, "other mailbox", exp).Hash
	per := len(msgs[0].Data)

	tests := []struct {
		name     string
		after    *Hash
		limit    int
		maxBytes int
		want     []Message
		more     bool
	}{
		{"cursor mid", &msgs[1].Hash, 0, 0, msgs[2:], false},
		{"cursor last", &msgs[5].Hash, 0, 0, nil, false},
		{"unknown cursor returns all", &unknown, 0, 0, msgs, false},
		{"cursor from other mailbox returns all", &otherMsg, 0, 0, msgs, false},
		{"limit", nil, 2, 0, msgs[:2], true},
		{"limit with cursor", &msgs[2].Hash, 2, 0, msgs[3:5], true},
		{"limit exact", &msgs[3].Hash, 2, 0, msgs[4:], false},
		{"maxBytes", nil, 0, 3*per + 1, msgs[:3], true},
		{"maxBytes exact", nil, 0, 6 * per, msgs, false},
		{"maxBytes below one message still returns one", nil, 0, 1, msgs[:1], true},
		{"limit above cap is capped", nil, 1 << 30, 0, msgs, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, more, err := s.Get(mb, tc.after, tc.limit, tc.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			sameHashes(t, tc.name, got, tc.want)
			if more != tc.more {
				t.Fatalf("more=%v, want %v", more, tc.more)
			}
		})
	}

	// Paging with the cursor visits everything exactly once.
	var all []Message
	var cur *Hash
	for {
		page, more, err := s.Get(mb, cur, 4, 0)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if !more {
			break
		}
		cur = &page[len(page)-1].Hash
	}
	sameHashes(t, "paged", all, msgs)

	if got, _, _ := s.Get(mbox(99), nil, 10, 0); len(got) != 0 {
		t.Fatalf("empty mailbox returned %d messages", len(got))
	}
}

func TestPutStatuses(t *testing.T) {
	clk := newClock()
	s, _ := openTest(t, clk)
	mb := mbox(1)
	exp := clk.Ms() + 60_000
	a, b := mkMsg(mb, "a", exp), mkMsg(mb, "b", exp)
	mustPut(t, s, a)
	empty := mkMsg(mb, "", exp)
	empty.Data = nil
	big := mkMsg(mb, string(make([]byte, MaxDataSize+1)), exp)
	maxed := mkMsg(mb, string(make([]byte, MaxDataSize)), exp)

	tests := []struct {
		name string
		msgs []Message
		want []PutStatus
	}{
		{"duplicate of stored", []Message{a}, []PutStatus{Duplicate}},
		{"duplicate within one call", []Message{b, b}, []PutStatus{Stored, Duplicate}},
		{"expired", []Message{mkMsg(mb, "old", clk.Ms()-1)}, []PutStatus{Expired}},
		{"expiring exactly now is live", []Message{mkMsg(mb, "now", clk.Ms())}, []PutStatus{Stored}},
		{"empty data", []Message{empty}, []PutStatus{Stored}},
		{"too large", []Message{big, maxed}, []PutStatus{Rejected, Stored}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := mustPut(t, s, tc.msgs...)
			for i, r := range res {
				if r.Status != tc.want[i] {
					t.Fatalf("result %d: %v (%v), want %v", i, r.Status, r.Err, tc.want[i])
				}
				if (r.Status == Rejected) != (r.Err != nil) {
					t.Fatalf("result %d: status %v with err %v", i, r.Status, r.Err)
				}
			}
		})
	}
	if res := mustPut(t, s, big); !errors.Is(res[0].Err, ErrTooLarge) {
		t.Fatalf("too large: err %v", res[0].Err)
	}
	got, err := s.GetByHash([]Hash{empty.Hash})
	if err != nil || len(got) != 1 || got[0].Data == nil || len(got[0].Data) != 0 {
		t.Fatalf("empty message round trip: %+v, %v", got, err)
	}
	if st := s.Stats(); st.Messages != 5 || st.Mailboxes != 1 || st.Bytes != int64(2+3+MaxDataSize) {
		t.Fatalf("Stats = %+v", st)
	}
	if res, err := s.Put(context.Background()); err != nil || res != nil {
		t.Fatalf("empty Put: %v %v", res, err)
	}
}

func TestPutDoesNotRetainCallerData(t *testing.T) {
	s, _ := openTest(t, nil)
	m := mkMsg(mbox(1), "original", time.Now().Add(time.Hour).UnixMilli())
	mustPut(t, s, m)
	copy(m.Data, "XXXXXXXX")
	got, err := s.GetByHash([]Hash{m.Hash})
	if err != nil || len(got) != 1 || string(got[0].Data) != "original" {
		t.Fatalf("GetByHash: %v %v", got, err)
	}
}

func TestGetByHash(t *testing.T) {
	clk := newClock()
	s, _ := openTest(t, clk)
	exp := clk.Ms() + 60_000
	a, b, c := mkMsg(mbox(1), "a", exp), mkMsg(mbox(2), "b", exp), mkMsg(mbox(1), "c", clk.Ms()+10)
	mustPut(t, s, a, b, c)
	clk.Advance(time.Second) // c expires
	unknown := sha256.Sum256(nil)
	got, err := s.GetByHash([]Hash{b.Hash, unknown, c.Hash, a.Hash, b.Hash})
	if err != nil {
		t.Fatal(err)
	}
	sameHashes(t, "GetByHash", got, []Message{b, a})

	many := make([]Hash, 600) // crosses the query chunk size
	for i := range many {
		many[i] = sha256.Sum256([]byte{byte(i), byte(i >> 8)})
	}
	many[550] = a.Hash
	if got, err := s.GetByHash(many); err != nil || len(got) != 1 || got[0].Hash != a.Hash {
		t.Fatalf("chunked GetByHash: %d msgs, %v", len(got), err)
	}
	if _, err := s.GetByHash(make([]Hash, MaxGetLimit+1)); err == nil {
		t.Fatal("GetByHash above the limit succeeded")
	}
}

func TestKV(t *testing.T) {
	s, cfg := openTest(t, nil)
	if _, ok, err := s.GetKV("peer"); ok || err != nil {
		t.Fatalf("missing key: ok=%v err=%v", ok, err)
	}
	for _, v := range [][]byte{[]byte("v1"), []byte("v2"), nil} {
		if err := s.SetKV("peer", v); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.GetKV("peer")
		if err != nil || !ok || !bytes.Equal(got, v) {
			t.Fatalf("GetKV = %q %v %v, want %q", got, ok, err, v)
		}
	}
	if err := s.SetKV("k", []byte("persist")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKV("peer"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, ok, err := s2.GetKV("k"); !ok || err != nil || string(got) != "persist" {
		t.Fatalf("after reopen: %q %v %v", got, ok, err)
	}
	if _, ok, _ := s2.GetKV("peer"); ok {
		t.Fatal("deleted key survived")
	}
}

func TestClose(t *testing.T) {
	s, cfg := openTest(t, nil)
	m := mkMsg(mbox(1), "x", time.Now().Add(time.Hour).UnixMilli())
	mustPut(t, s, m)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Put(context.Background(), m); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if _, err := s.Delete(context.Background(), m.Mailbox, []Hash{m.Hash}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Delete after Close: %v", err)
	}
	if _, _, err := s.Get(m.Mailbox, nil, 1, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := s.ExpireNow(); !errors.Is(err, ErrClosed) {
		t.Fatalf("ExpireNow after Close: %v", err)
	}
	if err := s.SetKV("a", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetKV after Close: %v", err)
	}
	if _, err := Open(Config{}); err == nil {
		t.Fatal("Open without Path succeeded")
	}
	// Reopen finds the data and does not re-run migrations.
	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, _ := s2.GetByHash([]Hash{m.Hash}); len(got) != 1 {
		t.Fatal("message lost across Close/Open")
	}
	if st := s2.Stats(); st.Messages != 1 || st.Bytes != 1 || st.Mailboxes != 1 {
		t.Fatalf("Stats after reopen = %+v", st)
	}
}

func TestPutContextCancelled(t *testing.T) {
	s, _ := openTest(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, mkMsg(mbox(1), "x", time.Now().Add(time.Hour).UnixMilli())); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with cancelled ctx: %v", err)
	}
}

func TestSchemaVersion(t *testing.T) {
	s, cfg := openTest(t, nil)
	var v int
	if err := s.rdb.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version = %d (%v), want %d", v, err, len(migrations))
	}
	var objects int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name IN ('messages', 'tombstones', 'kv',
		'messages_mailbox_seq', 'messages_expiry', 'tombstones_mailbox', 'tombstones_expiry')`).Scan(&objects); err != nil || objects != 7 {
		t.Fatalf("schema has %d of 7 expected objects (%v)", objects, err)
	}
	var mode string
	if err := s.rdb.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q (%v)", mode, err)
	}
	s.Close()
	// A database from a newer binary is refused.
	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.SetKV("x", nil); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	db := mustRawDB(t, cfg.Path)
	if _, err := db.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s3, err := Open(cfg); err == nil {
		s3.Close()
		t.Fatal("Open accepted a newer schema version")
	}
}
