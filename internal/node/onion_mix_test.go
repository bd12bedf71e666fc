package node_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/onion"
)

// TestOnionMixDelay: the middle and the exit hold a request for the delay
// their own layers ask (the guard, asked none, holds none), the round
// trip takes at least their sum, the reply comes back intact, and a relay
// whose cap is lower holds a larger ask only for its cap.
func TestOnionMixDelay(t *testing.T) {
	rec := &recorder{}
	tn := startNetCfg(t, 3, func(i int, c *node.Config) {
		c.OnionObserver = rec.add
		if i == 2 {
			c.Onion.MixMaxDelay = 300 * time.Millisecond
		}
	})
	guard, middle, exit := tn.nodes[0], tn.nodes[1], tn.nodes[2]
	oc := newOnionClient(t)
	path := []onion.Hop{oc.hop(t, guard), oc.hop(t, middle), oc.hop(t, exit)}
	path[1].Delay, path[1].Mix = 400*time.Millisecond, true
	path[2].Delay, path[2].Mix = 3*time.Second, true // the exit caps it at 300 ms
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	reply, err := oc.roundTrip(ctx, t, path, junkRequest())
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(reply) == 0 {
		t.Fatal("empty answer")
	}
	if took < 700*time.Millisecond || took > 2500*time.Millisecond {
		t.Fatalf("round trip took %v; want 400 ms + 300 ms (capped) of delays, and not the 3 s asked", took)
	}
	want := map[string]time.Duration{guard.ID().String(): 0, middle.ID().String(): 400 * time.Millisecond, exit.ID().String(): 300 * time.Millisecond}
	seen := 0
	for _, ev := range rec.all() {
		if d, ok := want[ev.Node.String()]; ok && ev.From != "" {
			seen++
			if ev.Delay != d {
				t.Fatalf("node %s held the packet %v, want %v", ev.Node, ev.Delay, d)
			}
		}
	}
	if seen != 3 {
		t.Fatalf("%d hops observed, want 3", seen)
	}
}

// TestOnionMixFloodBounded: a flood of delayed packets through one guard
// fills the middle's mix pool only up to its bound for that previous hop;
// the rest are dropped (429, counted) at once, and an undelayed request
// on the same path is served at once while the pool is full. The held
// packets are answered after their delay.
func TestOnionMixFloodBounded(t *testing.T) {
	const (
		peerBound = 8
		flood     = 30
		delay     = 3 * time.Second
	)
	tn := startNetCfg(t, 3, func(i int, c *node.Config) {
		c.Onion.MixPeerPackets = peerBound
		c.Onion.MixHeldPackets = 2 * peerBound
	})
	guard, middle, exit := tn.nodes[0], tn.nodes[1], tn.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ocs []*onionClient
	for i := 0; i < 3; i++ {
		oc := newOnionClient(t)
		path := []onion.Hop{oc.hop(t, guard), oc.hop(t, middle), oc.hop(t, exit)}
		if _, err := oc.roundTrip(ctx, t, path, junkRequest()); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
		ocs = append(ocs, oc)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, busy int
	var other []error
	start := time.Now()
	for i := 0; i < flood; i++ {
		oc := ocs[i%len(ocs)]
		path := []onion.Hop{oc.hop(t, guard), oc.hop(t, middle), oc.hop(t, exit)}
		path[1].Delay, path[1].Mix = delay, true
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := oc.roundTrip(ctx, t, path, junkRequest())
			var he *onion.HopError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.As(err, &he) && he.Hop == 0:
				busy++ // the guard's box: "next hop … refused: 429"
			default:
				other = append(other, err)
			}
		}()
	}
	eventually(t, 10*time.Second, func() bool {
		_, _, dropped := middle.OnionMixStats()
		return dropped == flood-peerBound
	}, "the middle to drop the packets beyond its bound")
	held, bytes, _ := middle.OnionMixStats()
	if held != peerBound {
		t.Fatalf("middle holds %d packets, want its bound %d", held, peerBound)
	}
	if lim := node.DefaultOnionLimits.MixPeerBytes; bytes > lim {
		t.Fatalf("middle holds %d bytes, over its bound %d", bytes, lim)
	}
	// Undelayed traffic on the same path still goes through, at once.
	oc := ocs[0]
	qstart := time.Now()
	if _, err := oc.roundTrip(ctx, t, []onion.Hop{oc.hop(t, guard), oc.hop(t, middle), oc.hop(t, exit)}, junkRequest()); err != nil {
		t.Fatalf("undelayed request while the pool is full: %v", err)
	}
	if q := time.Since(qstart); q > delay/2 {
		t.Fatalf("undelayed request took %v while the pool was full", q)
	}
	wg.Wait()
	if len(other) > 0 || ok != peerBound || busy != flood-peerBound {
		t.Fatalf("%d answered, %d busy, other errors %v; want %d and %d", ok, busy, other, peerBound, flood-peerBound)
	}
	if took := time.Since(start); took < delay {
		t.Fatalf("held packets answered after %v, before their %v delay", took, delay)
	}
	if held, bytes, _ := middle.OnionMixStats(); held != 0 || bytes != 0 {
		t.Fatalf("after the flood the middle still holds %d packets (%d bytes)", held, bytes)
	}
}

// TestOnionMixEverydaySizes: with mix delays on and the client's packet
// policy (onion.ClientOptions), the middle and the exit hold each request
// for the delay in their own layer (0 ms included), the exit pads its
// answer to the reply size it was asked, and every packet on every link,
// requests and replies, is exactly onion.Everyday bytes: the delay field
// (key 0) and the reply size (key 3) coexist without pushing an everyday
// request into the next class.
func TestOnionMixEverydaySizes(t *testing.T) {
	rec := &recorder{}
	tn := startNetCfg(t, 3, func(_ int, c *node.Config) { c.OnionObserver = rec.add })
	guard, middle, exit := tn.nodes[0], tn.nodes[1], tn.nodes[2]
	oc := newOnionClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mix := onion.MixDelays{Mean: 30 * time.Millisecond, Max: 200 * time.Millisecond}
	big := junkRequest()
	big = append(big, make([]byte, 6000)...) // a request of several KiB, still everyday
	for i, req := range [][]byte{junkRequest(), longPoll(t, 50*time.Millisecond), big} {
		path := []onion.Hop{oc.hop(t, guard), oc.hop(t, middle), oc.hop(t, exit)}
		mix.Apply(path, nil)
		if i == 0 {
			path[2].Delay = 0 // a 0 ms draw still carries the field
		}
		pkt, circ, err := onion.BuildWith(path, req, onion.ClientOptions)
		if err != nil {
			t.Fatal(err)
		}
		if len(pkt) != onion.Everyday {
			t.Fatalf("request %d: a %d-byte packet, want %d", i, len(pkt), onion.Everyday)
		}
		from := len(rec.all())
		reply, err := oc.send(ctx, guard.ID(), pkt)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if len(reply) != onion.Everyday {
			t.Fatalf("request %d: a %d-byte reply, want %d", i, len(reply), onion.Everyday)
		}
		if answer, err := circ.Open(reply); err != nil || len(answer) == 0 {
			t.Fatalf("request %d: open the reply: %v", i, err)
		}
		want := map[string]time.Duration{
			guard.ID().String():  0,
			middle.ID().String(): path[1].Delay.Round(time.Millisecond),
			exit.ID().String():   path[2].Delay.Round(time.Millisecond),
		}
		evs := rec.all()[from:]
		if len(evs) != 3 {
			t.Fatalf("request %d: %d hops observed, want 3", i, len(evs))
		}
		for _, ev := range evs {
			d, ok := want[ev.Node.String()]
			if !ok || ev.Delay != d {
				t.Fatalf("request %d: node %s held the packet %v, want %v", i, ev.Node, ev.Delay, d)
			}
			for name, b := range map[string][]byte{"request in": ev.In, "request out": ev.Out, "reply in": ev.ReplyIn, "reply out": ev.ReplyOut} {
				if b != nil && len(b) != onion.Everyday {
					t.Fatalf("request %d: %s at %s: %d bytes, want %d", i, name, ev.Node, len(b), onion.Everyday)
				}
			}
		}
	}
}
