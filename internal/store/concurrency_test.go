package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestWatch(t *testing.T) {
	s, _ := openTest(t, nil)
	mb := mbox(1)
	exp := time.Now().Add(time.Hour).UnixMilli()
	fired := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}

	ch1, cancel1 := s.Watch(mb)
	ch2, cancel2 := s.Watch(mb)
	chOther, cancelOther := s.Watch(mbox(2))
	mustPut(t, s, mkMsg(mbox(3), "unwatched", exp))
	if fired(ch1) || fired(ch2) || fired(chOther) {
		t.Fatal("watch fired for another mailbox")
	}
	m := mkMsg(mb, "hello", exp)
	mustPut(t, s, m) // Put returns after commit, and watchers fire before Put returns
	if !fired(ch1) || !fired(ch2) {
		t.Fatal("watch did not fire on put")
	}
	if fired(chOther) {
		t.Fatal("watch of mailbox 2 fired")
	}
	cancel1()
	cancel1() // idempotent
	cancel2()

	// A fresh watch is not fired by a duplicate or a refused message.
	ch3, cancel3 := s.Watch(mb)
	mustPut(t, s, m, mkMsg(mb, "old", 1))
	if fired(ch3) {
		t.Fatal("watch fired without a new message")
	}
	cancel3()
	cancelOther()
	if n := s.watcherCount(); n != 0 {
		t.Fatalf("%d watchers leaked after cancel", n)
	}

	// Long-poll shape: a waiter blocked on the channel wakes on a later put.
	ch4, cancel4 := s.Watch(mb)
	defer cancel4()
	go func() {
		time.Sleep(10 * time.Millisecond)
		mustPut(t, s, mkMsg(mb, "later", exp))
	}()
	select {
	case <-ch4:
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll watch never fired")
	}
	cancel4()
	if n := s.watcherCount(); n != 0 {
		t.Fatalf("%d watchers leaked", n)
	}
}

func TestWatchManyCancelled(t *testing.T) {
	s, _ := openTest(t, nil)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, cancel := s.Watch(mbox(i % 10))
			cancel()
		}()
	}
	wg.Wait()
	if n := s.watcherCount(); n != 0 {
		t.Fatalf("%d watchers leaked", n)
	}
}

func TestConcurrentPut(t *testing.T) {
	clk := newClock()
	s, _ := openTest(t, clk, func(c *Config) { c.BatchMax = 64 })
	exp := clk.Ms() + 3_600_000
	const workers, per, mailboxes = 32, 20, 8
	// Every message is put by two workers: exactly one must see Stored.
	var mu sync.Mutex
	stored := map[Hash]int{}
	dup := map[Hash]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				id := (w/2)*per + i
				m := mkMsg(mbox(id%mailboxes), fmt.Sprintf("msg-%d", id), exp)
				var extra []Message
				if i%5 == 0 { // some multi-message puts too
					extra = append(extra, mkMsg(mbox(id%mailboxes), fmt.Sprintf("extra-%d", id), exp))
				}
				res, err := s.Put(context.Background(), append([]Message{m}, extra...)...)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for j, r := range res {
					h := m.Hash
					if j > 0 {
						h = extra[j-1].Hash
					}
					switch r.Status {
					case Stored:
						stored[h]++
					case Duplicate:
						dup[h]++
					default:
						t.Errorf("status %v (%v)", r.Status, r.Err)
					}
				}
				mu.Unlock()
				// Reads run concurrently with the writer.
				if _, _, err := s.Get(m.Mailbox, nil, 10, 0); err != nil {
					t.Error(err)
				}
				_ = s.Digests()
				_ = s.Stats()
			}
		}()
	}
	wg.Wait()
	unique := workers / 2 * per * 6 / 5
	if len(stored) != unique {
		t.Fatalf("%d distinct stored, want %d", len(stored), unique)
	}
	for h, n := range stored {
		if n != 1 || dup[h] != 1 {
			t.Fatalf("hash %x stored %d times, duplicate %d times", h[:4], n, dup[h])
		}
	}
	if st := s.Stats(); st.Messages != int64(unique) || st.Mailboxes != mailboxes {
		t.Fatalf("Stats = %+v", st)
	}
	total := 0
	for mb := range mailboxes {
		checkDigest(t, s, mbox(mb))
		var cur *Hash
		var last int64
		for {
			page, more, err := s.Get(mbox(mb), cur, 50, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				if m.Seq <= last {
					t.Fatal("Seq not increasing across pages")
				}
				last = m.Seq
			}
			total += len(page)
			if !more {
				break
			}
			cur = &page[len(page)-1].Hash
		}
	}
	if total != unique {
		t.Fatalf("paged through %d messages, want %d", total, unique)
	}
}

// TestCloseWhilePutting: Close during heavy Put traffic neither deadlocks nor
// loses an acknowledged write; late Puts fail with ErrClosed.
func TestCloseWhilePutting(t *testing.T) {
	s, cfg := openTest(t, nil)
	exp := time.Now().Add(time.Hour).UnixMilli()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []Hash
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				m := mkMsg(mbox(w), fmt.Sprint(i), exp)
				res, err := s.Put(context.Background(), m)
				if err != nil {
					if !errorsIsClosed(err) {
						t.Errorf("Put: %v", err)
					}
					return
				}
				if res[0].Status == Stored {
					mu.Lock()
					acked = append(acked, m.Hash)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if st := s2.Stats(); st.Messages != int64(len(acked)) {
		t.Fatalf("reopened store has %d messages, %d were acked", st.Messages, len(acked))
	}
}

func errorsIsClosed(err error) bool { return errors.Is(err, ErrClosed) }
