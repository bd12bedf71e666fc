package store

import (
	"context"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestDigestsAcrossReplicas(t *testing.T) {
	clk := newClock()
	exp := clk.Ms() + 3_600_000
	var msgs []Message
	for i := range 60 {
		msgs = append(msgs, mkMsg(mbox(i%4), "payload-"+string(rune('a'+i)), exp))
	}
	// Messages 0..9 get deleted (both replicas), plus a tombstone for a
	// message neither replica ever held.
	deleted := hashesOf(msgs[:10])
	ghost := mkMsg(mbox(0), "ghost", exp).Hash

	// Replica A: everything in order, then deletes.
	a, cfgA := openTest(t, clk)
	mustPut(t, a, msgs...)
	for _, h := range deleted {
		mustDelete(t, a, msgs[0].Mailbox, h) // only mailbox-0 ones match; others ignored
	}
	for mb := range 4 {
		var hs []Hash
		for _, m := range msgs[:10] {
			if m.Mailbox == mbox(mb) {
				hs = append(hs, m.Hash)
			}
		}
		mustDelete(t, a, mbox(mb), hs...)
	}
	mustDelete(t, a, mbox(0), ghost)

	// Replica B: tombstones first (so the deleted messages are refused),
	// then the messages one by one in a shuffled order, concurrently.
	b, cfgB := openTest(t, clk)
	mustDelete(t, b, mbox(0), ghost)
	for _, m := range msgs[:10] {
		mustDelete(t, b, m.Mailbox, m.Hash)
	}
	shuffled := append([]Message(nil), msgs...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	errc := make(chan error, len(shuffled))
	for _, m := range shuffled {
		go func() {
			_, err := b.Put(context.Background(), m)
			errc <- err
		}()
	}
	for range shuffled {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}

	da, db := a.Digests(), b.Digests()
	if len(da) != 4 {
		t.Fatalf("replica A has %d mailbox digests, want 4", len(da))
	}
	if !reflect.DeepEqual(da, db) {
		t.Fatalf("digests differ:\nA=%v\nB=%v", da, db)
	}
	for mb := range 4 {
		checkDigest(t, a, mbox(mb))
		checkDigest(t, b, mbox(mb))
		ea, _ := a.Entries(mbox(mb))
		eb, _ := b.Entries(mbox(mb))
		if !reflect.DeepEqual(ea, eb) {
			t.Fatalf("mailbox %d entries differ", mb)
		}
	}
	if d := da[mbox(0)]; d.Count != 15+1 { // 15 messages/tombstones + ghost
		t.Fatalf("mailbox 0 count = %d", d.Count)
	}
	if st := a.Stats(); st != b.Stats() || st.Messages != 50 || st.Tombstones != 11 {
		t.Fatalf("Stats A=%+v B=%+v", st, b.Stats())
	}
	if a.Digest(mbox(42)) != (Digest{}) {
		t.Fatal("digest of an empty mailbox is not zero")
	}

	// Reload from disk: digests recomputed at Open equal the in-memory ones.
	for _, c := range []struct {
		s   *Store
		cfg Config
	}{{a, cfgA}, {b, cfgB}} {
		if err := c.s.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := Open(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Digests(); !reflect.DeepEqual(got, da) {
			t.Fatalf("digests after reopen differ")
		}
		if r.Stats() != a.Stats() {
			t.Fatalf("Stats after reopen %+v", r.Stats())
		}
		r.Close()
	}
}

func TestDigestsMapIsACopy(t *testing.T) {
	s, _ := openTest(t, nil)
	m := mkMsg(mbox(1), "x", time.Now().Add(time.Hour).UnixMilli())
	mustPut(t, s, m)
	d := s.Digests()
	delete(d, m.Mailbox)
	if len(s.Digests()) != 1 {
		t.Fatal("mutating the returned map changed the store")
	}
}
