package replay_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/replay"
)

var t0 = time.Unix(1_700_000_000, 0)

func tag(i int) [32]byte {
	var t [32]byte
	t[0], t[1], t[2] = byte(i), byte(i>>8), byte(i>>16)
	return t
}

func TestAdd(t *testing.T) {
	type step struct {
		tag     int
		expires time.Duration // after t0
		now     time.Duration // after t0
		want    bool
		wantLen int
	}
	tests := []struct {
		name  string
		max   int
		steps []step
	}{
		{"new then duplicate", 10, []step{
			{1, time.Minute, 0, true, 1},
			{1, time.Minute, 0, false, 1},
			{1, time.Hour, time.Second, false, 1}, // a later expiry does not help
			{2, time.Minute, 0, true, 2},
		}},
		{"expiry frees a tag", 10, []step{
			{1, time.Minute, 0, true, 1},
			{1, 2 * time.Minute, time.Minute - time.Millisecond, false, 1},
			{1, 2 * time.Minute, time.Minute, true, 1}, // expired exactly now
			{1, 3 * time.Minute, 90 * time.Second, false, 1},
		}},
		{"full of live tags evicts one to admit a new tag", 3, []step{
			{1, time.Minute, 0, true, 1},
			{2, time.Minute, 0, true, 2},
			{3, time.Minute, 0, true, 3},
			{4, time.Minute, 0, true, 3},                 // an arbitrary live tag made room: no lock-out
			{4, time.Minute, 30 * time.Second, false, 3}, // the new tag is held
		}},
		{"expired entries swept first when full", 3, []step{
			{1, 10 * time.Second, 0, true, 1},
			{2, 20 * time.Second, 0, true, 2},
			{3, time.Minute, 0, true, 3},
			{4, time.Minute, 15 * time.Second, true, 3},  // 1 swept, nothing live evicted
			{2, time.Minute, 15 * time.Second, false, 3}, // 2 still held
			{3, time.Minute, 15 * time.Second, false, 3}, // 3 still held
			{6, 2 * time.Minute, time.Minute, true, 1},   // 2, 3, 4 all expired now: swept; 6 added
		}},
		{"already-expired tag", 10, []step{
			{1, -time.Second, 0, true, 1}, // stored, but not live
			{1, time.Minute, 0, true, 1},
			{1, time.Minute, 0, false, 1},
		}},
		{"zero capacity refuses everything", 0, []step{
			{1, time.Minute, 0, false, 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := replay.New(tc.max)
			for i, s := range tc.steps {
				got := c.Add(tag(s.tag), t0.Add(s.expires), t0.Add(s.now))
				if got != s.want {
					t.Fatalf("step %d: Add(tag %d) = %v, want %v", i, s.tag, got, s.want)
				}
				if l := c.Len(); l != s.wantLen {
					t.Fatalf("step %d: Len = %d, want %d", i, l, s.wantLen)
				}
			}
		})
	}
}

// Under concurrent use each tag is admitted exactly once; meaningful under
// -race.
func TestAddConcurrent(t *testing.T) {
	c := replay.New(1 << 12)
	const tags, workers = 500, 8
	var admitted [tags]atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < tags; i++ {
				if c.Add(tag(i), t0.Add(time.Minute), t0) {
					admitted[i].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for i := range admitted {
		if n := admitted[i].Load(); n != 1 {
			t.Fatalf("tag %d admitted %d times", i, n)
		}
	}
	if c.Len() != tags {
		t.Fatalf("Len = %d", c.Len())
	}
}

// A flood of distinct tags cannot grow the cache past its bound.
func TestBounded(t *testing.T) {
	c := replay.New(100)
	for i := 0; i < 10000; i++ {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		c.Add(tag(i), now.Add(50*time.Millisecond), now)
		if c.Len() > 100 {
			t.Fatalf("Len %d above the bound", c.Len())
		}
	}
}
