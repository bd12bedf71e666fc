package client_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/node"
)

// startStrict makes an account and runs its engine in the strict mode.
func startStrict(t testing.TB, net []string, name string) *user {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	acct, err := client.Init(home, "", net, "")
	if err != nil {
		t.Fatal(err)
	}
	u := &user{home: home, id: acct.ID().String()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := client.Open(ctx, client.Config{Home: home, Logger: quiet(), Privacy: client.PrivacyStrict})
	if err != nil {
		t.Fatal(err)
	}
	// The card goes out at once (as 'umbra init' does), not at a tick of
	// the schedule, so the test's first contacts find it.
	if err := e.PublishPrekeys(ctx); err != nil {
		t.Fatal(err)
	}
	e.Start()
	u.e = e
	t.Cleanup(u.stop)
	return u
}

// deliveries measures, for each text in texts sent from a to b, the time
// from the send to its arrival at b.
func deliveries(t testing.TB, a, b *user, texts []string, gap time.Duration) []time.Duration {
	t.Helper()
	watch, stop := b.e.Subscribe()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sent := map[string]time.Time{}
	var out []time.Duration
	arrived := func(d time.Duration) {
		for {
			select {
			case ev := <-watch:
				if ev.Message != nil && !ev.Message.Outgoing {
					if at, ok := sent[ev.Message.Text]; ok {
						out = append(out, time.Since(at))
						delete(sent, ev.Message.Text)
					}
				}
			case <-time.After(d):
				return
			}
			if d == 0 {
				return
			}
		}
	}
	for _, text := range texts {
		sent[text] = time.Now()
		if _, err := a.e.Queue(ctx, b.id, text); err != nil {
			t.Fatal(err)
		}
		arrived(gap)
	}
	for deadline := time.Now().Add(time.Minute); len(sent) > 0 && time.Now().Before(deadline); {
		arrived(time.Second)
	}
	if len(sent) > 0 {
		t.Fatalf("%d of %d messages did not arrive", len(sent), len(texts))
	}
	slices.Sort(out)
	return out
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// TestStrictGuardTraceIndependent: in the strict mode, what a client's
// guards see of it (how many packets, when, their sizes) is the same
// whether it is idle or chatting.
func TestStrictGuardTraceIndependent(t *testing.T) {
	if testing.Short() {
		t.Skip("a two-minute recording; run without -short")
	}
	tap := &wiretap{}
	net := startNodesCfg(t, 7, func(c *node.Config) { c.OnionObserver = tap.add })
	time.Sleep(time.Second)
	idle, chatty, friend := startStrict(t, net, "idle"), startStrict(t, net, "chatty"), startStrict(t, net, "friend")
	befriend(t, chatty, friend)
	// A first exchange, so the chat below is between established contacts.
	deliveries(t, chatty, friend, []string{"hello"}, 0)
	deliveries(t, friend, chatty, []string{"hello back"}, 0)

	const window = 2 * time.Minute
	start := time.Now()
	var texts []string
	for i := range 30 {
		texts = append(texts, fmt.Sprintf("chat %d", i))
	}
	lat := deliveries(t, chatty, friend, texts, window/time.Duration(len(texts)))
	time.Sleep(time.Until(start.Add(window)))
	evs := tap.between(start, start.Add(window))
	t.Logf("strict delivery while recording: p50 %s, p90 %s over %d messages", quantile(lat, .5), quantile(lat, .9), len(lat))

	// Strict ticks are a Poisson process of requests; each read goes to
	// several swarm members at once: compare requests (bursts).
	guardsAlike(t, evs, idle, chatty, "idle", "chatting", start, window, 30*time.Millisecond)
}

// BenchmarkE2ELatency measures end-to-end delivery (send to arrival, with
// onion paths, on 7 in-process nodes) in the standard and strict modes,
// between established contacts, one message at a time.
func BenchmarkE2ELatency(b *testing.B) {
	net := startNodesCfg(b, 7, nil)
	time.Sleep(time.Second)
	for _, mode := range []string{client.PrivacyStandard, client.PrivacyStrict} {
		b.Run(mode, func(b *testing.B) {
			mk := func(name string) *user {
				if mode == client.PrivacyStrict {
					return startStrict(b, net, name)
				}
				home := filepath.Join(b.TempDir(), name)
				acct, err := client.Init(home, "", net, "")
				if err != nil {
					b.Fatal(err)
				}
				u := &user{home: home, id: acct.ID().String()}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				e, err := client.Open(ctx, client.Config{Home: home, Logger: quiet()})
				if err != nil {
					b.Fatal(err)
				}
				if err := e.PublishPrekeys(ctx); err != nil {
					b.Fatal(err)
				}
				e.Start()
				u.e = e
				b.Cleanup(u.stop)
				return u
			}
			alice, bob := mk("alice-"+mode), mk("bob-"+mode)
			befriend(b, alice, bob)
			deliveries(b, alice, bob, []string{"hello"}, 0)
			deliveries(b, bob, alice, []string{"hello back"}, 0)
			var texts []string
			for i := range max(b.N, 20) {
				texts = append(texts, fmt.Sprintf("m%d", i))
			}
			b.ResetTimer()
			lat := deliveries(b, alice, bob, texts, 3*time.Second)
			b.StopTimer()
			b.ReportMetric(float64(quantile(lat, .5).Milliseconds()), "p50-ms")
			b.ReportMetric(float64(quantile(lat, .9).Milliseconds()), "p90-ms")
			b.ReportMetric(float64(quantile(lat, .99).Milliseconds()), "p99-ms")
		})
	}
}
