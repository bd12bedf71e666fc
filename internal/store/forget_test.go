package store

import (
	"context"
	"testing"
)

// TestForget: a mailbox's copy is dropped whole (messages, tombstones, no
// new tombstones) only while its digest is what the caller saw; other
// mailboxes and the node's counters stay right, also after a reopen.
func TestForget(t *testing.T) {
	clk := newClock()
	s, cfg := openTest(t, clk)
	ctx := context.Background()
	a, b := mbox(1), mbox(2)
	exp := clk.Ms() + 3_600_000
	ma := []Message{mkMsg(a, "one", exp), mkMsg(a, "two", exp), mkMsg(a, "three", exp)}
	mustPut(t, s, ma...)
	mustPut(t, s, mkMsg(b, "other", exp))
	if _, err := s.Delete(ctx, a, []Hash{ma[0].Hash}); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	seen := s.Digest(a)
	mustPut(t, s, mkMsg(a, "late", exp)) // arrives after the caller looked
	if ok, err := s.Forget(ctx, a, seen); err != nil || ok {
		t.Fatalf("Forget with a stale digest = %v, %v; want false", ok, err)
	}
	if ok, err := s.Forget(ctx, a, s.Digest(a)); err != nil || !ok {
		t.Fatalf("Forget = %v, %v; want true", ok, err)
	}
	if d := s.Digest(a); d.Count != 0 {
		t.Fatalf("digest after Forget: %+v", d)
	}
	if msgs, _, err := s.Get(a, nil, 100, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("Get after Forget: %d messages, %v", len(msgs), err)
	}
	if msgs, _, err := s.Get(b, nil, 100, 0); err != nil || len(msgs) != 1 {
		t.Fatalf("the other mailbox: %d messages, %v", len(msgs), err)
	}
	st := s.Stats()
	if st.Messages != 1 || st.Tombstones != 0 || st.Mailboxes != 1 || st.Bytes != int64(len("other")) {
		t.Fatalf("stats after Forget %+v (before %+v)", st, before)
	}
	// A forgotten message may come back (it was not deleted by its owner).
	if res := mustPut(t, s, ma[1]); res[0].Status != Stored {
		t.Fatalf("a forgotten message put again: %v", res[0].Status)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if st2 := s2.Stats(); st2.Messages != 2 || st2.Tombstones != 0 || st2.Mailboxes != 2 {
		t.Fatalf("stats after reopen %+v", st2)
	}
}
