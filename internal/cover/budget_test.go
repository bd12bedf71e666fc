package cover

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// everydayPacket is the one packet size strict traffic uses (8 KiB).
const everydayPacket = 8 << 10

// BenchmarkStrictBudget prints the bandwidth per hour and the latency of
// the default strict schedule (DefaultConfig, 8 KiB packets, 300 ms mix
// delays at the middle and the exit), and checks the expected figure and
// a simulated median against the 5 s goal.
func BenchmarkStrictBudget(b *testing.B) {
	cfg := DefaultConfig
	const mixMean = 300 * time.Millisecond // onion.DefaultMixDelays
	var e Budget
	var p50 time.Duration
	for i := 0; i < b.N; i++ {
		e = Estimate(cfg, everydayPacket, mixMean, 2)
		p50 = simulatedP50(cfg, mixMean, 2, 20000)
	}
	b.ReportMetric(e.PacketsPerHour, "packets/h")
	b.ReportMetric(e.BytesPerHour/(1<<20), "MiB/h-up")
	b.ReportMetric(p50.Seconds(), "p50-s")
	b.Logf("strict default: λ_P=%.2f/s λ_L=%.2f/s λ_F=%.2f/s, %d-byte packets", cfg.SendRate, cfg.LoopRate, cfg.FetchRate, everydayPacket)
	b.Logf("bandwidth: %.0f packets/h = %.1f MiB/h up, as much down (%.1f MiB/h both ways)",
		e.PacketsPerHour, e.BytesPerHour/(1<<20), 2*e.BytesPerHour/(1<<20))
	b.Logf("latency: send wait %v + mix %v + fetch wait %v + mix %v = %v expected; simulated p50 %v",
		e.SendWait, e.MixDelays, e.FetchWait, e.MixDelays, e.Latency, p50.Round(time.Millisecond))
	if p50 > 5*time.Second {
		b.Fatalf("p50 latency %v above the 5 s goal", p50)
	}
}

// simulatedP50 draws n message latencies: Exp(λ_P) send wait, hops
// capped-Exp mix delays, Exp(λ_F) fetch wait, hops mix delays again.
func simulatedP50(cfg Config, mixMean time.Duration, hops, n int) time.Duration {
	r := rand.New(rand.NewPCG(1, 1))
	mix := func() float64 { return min(r.ExpFloat64()*mixMean.Seconds(), 5) }
	xs := make([]float64, n)
	for i := range xs {
		x := r.ExpFloat64()/cfg.SendRate + r.ExpFloat64()/cfg.FetchRate
		for h := 0; h < 2*hops; h++ {
			x += mix()
		}
		xs[i] = x
	}
	slices.Sort(xs)
	return time.Duration(xs[n/2] * float64(time.Second))
}

// TestEstimate: the figures follow from the rates.
func TestEstimate(t *testing.T) {
	e := Estimate(Config{SendRate: 1, LoopRate: 0.5, FetchRate: 0.5}, 8192, 500*time.Millisecond, 2)
	if e.PacketsPerHour != 7200 || e.BytesPerHour != 7200*8192 {
		t.Fatalf("%+v", e)
	}
	if e.Latency != time.Second+time.Second+2*time.Second+time.Second {
		t.Fatalf("latency %v", e.Latency)
	}
	if p := simulatedP50(DefaultConfig, 500*time.Millisecond, 2, 20000); p > 5*time.Second || math.IsNaN(p.Seconds()) {
		t.Fatalf("default strict p50 %v", p)
	}
}
