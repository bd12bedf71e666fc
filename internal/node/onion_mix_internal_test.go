package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// fakeNow is a settable clock.
type fakeNow struct{ t time.Time }

func (f *fakeNow) now() time.Time { return f.t }

func testMixPool(clock func() time.Time) *mixPool {
	return newMixPool(mixLimits{maxDelay: 5 * time.Second, packets: 6, peerPackets: 3, bytes: 600, peerBytes: 250}, clock, nil)
}

// TestMixPoolReleasesWhenDue: with an injected clock, a held packet is
// released exactly when its delay is over, never before, in due order,
// and a delay above the cap is held for the cap.
func TestMixPoolReleasesWhenDue(t *testing.T) {
	clk := &fakeNow{t: time.Unix(1000, 0)}
	m := testMixPool(clk.now)
	delays := []time.Duration{300 * time.Millisecond, 100 * time.Millisecond, time.Hour}
	var held []*heldPacket
	for i, d := range delays {
		h, err := m.add(peer.ID(rune('a'+i)), 10, m.capDelay(d))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, h)
	}
	released := func(h *heldPacket) bool {
		select {
		case <-h.done:
			return true
		default:
			return false
		}
	}
	start := clk.t
	clk.t = start.Add(99 * time.Millisecond)
	if next := m.releaseDue(clk.t); released(held[1]) || !next.Equal(start.Add(100*time.Millisecond)) {
		t.Fatalf("released before its delay (next due %v)", next.Sub(start))
	}
	clk.t = start.Add(100 * time.Millisecond)
	m.releaseDue(clk.t)
	if !released(held[1]) || released(held[0]) {
		t.Fatal("at 100 ms: want only the 100 ms packet released")
	}
	clk.t = start.Add(4999 * time.Millisecond)
	m.releaseDue(clk.t)
	if !released(held[0]) || released(held[2]) {
		t.Fatal("at 4.999 s: want the 300 ms packet released and the capped one held")
	}
	clk.t = start.Add(5 * time.Second)
	if next := m.releaseDue(clk.t); !released(held[2]) || !next.IsZero() {
		t.Fatal("a 1 h delay was not capped at 5 s")
	}
	if n, b, _ := m.stats(); n != 0 || b != 0 || len(m.byPeer) != 0 {
		t.Fatalf("after release: %d held, %d bytes, %d peers", n, b, len(m.byPeer))
	}
}

// TestMixPoolBounds: count and bytes are bounded per previous hop and in
// all; beyond, packets are dropped and counted; released or abandoned
// packets free their place.
func TestMixPoolBounds(t *testing.T) {
	clk := &fakeNow{t: time.Unix(1000, 0)}
	m := testMixPool(clk.now)
	add := func(p string, n int64) error { _, err := m.add(peer.ID(p), n, time.Second); return err }
	for i := 0; i < 3; i++ {
		if err := add("a", 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := add("a", 10); !errors.Is(err, errMixFull) {
		t.Fatalf("4th packet of one peer: %v, want errMixFull", err)
	}
	if err := add("b", 251); !errors.Is(err, errMixFull) {
		t.Fatalf("packet over the peer byte bound: %v", err)
	}
	if err := add("b", 250); err != nil {
		t.Fatal(err)
	}
	if err := add("c", 250); err != nil {
		t.Fatal(err)
	}
	// 530 bytes held: 71 more would pass the peer bound but not the total.
	if err := add("d", 71); !errors.Is(err, errMixFull) {
		t.Fatalf("packet over the total byte bound: %v", err)
	}
	if err := add("d", 1); err != nil {
		t.Fatal(err)
	}
	if err := add("f", 1); !errors.Is(err, errMixFull) {
		t.Fatalf("7th packet: %v, want errMixFull (6 in all)", err)
	}
	if n, b, dropped := m.stats(); n != 6 || b != 531 || dropped != 4 {
		t.Fatalf("held %d (%d bytes), dropped %d; want 6, 531, 4", n, b, dropped)
	}
	// An abandoned request frees its place at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m2 := testMixPool(clk.now)
	if err := m2.hold(ctx, "a", 10, time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned hold: %v", err)
	}
	if n, b, _ := m2.stats(); n != 0 || b != 0 || len(m2.byPeer) != 0 {
		t.Fatalf("abandoned packet still held: %d, %d bytes", n, b)
	}
	clk.t = clk.t.Add(time.Second)
	m.releaseDue(clk.t)
	if err := add("a", 10); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// TestMixPoolRun: the scheduler releases a held packet after its delay (a
// real clock, with a tolerance), lets undelayed packets through at once,
// and on close releases what it holds with errMixClosed and refuses more.
func TestMixPoolRun(t *testing.T) {
	m := testMixPool(time.Now)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.run(ctx); close(done) }()
	for _, d := range []time.Duration{150 * time.Millisecond, 50 * time.Millisecond} {
		start := time.Now()
		if err := m.hold(context.Background(), "a", 10, d); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got < d || got > d+2*time.Second {
			t.Fatalf("held %v for a %v delay", got, d)
		}
	}
	start := time.Now()
	if err := m.hold(context.Background(), "a", 10, 0); err != nil || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("undelayed packet: %v after %v", err, time.Since(start))
	}
	errc := make(chan error, 1)
	go func() { errc <- m.hold(context.Background(), "a", 10, 4*time.Second) }()
	for {
		if n, _, _ := m.stats(); n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	<-done
	select {
	case err := <-errc:
		if !errors.Is(err, errMixClosed) {
			t.Fatalf("held packet at close: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("close did not release the held packet")
	}
	if err := m.hold(context.Background(), "a", 10, time.Second); !errors.Is(err, errMixClosed) {
		t.Fatalf("hold after close: %v", err)
	}
}
