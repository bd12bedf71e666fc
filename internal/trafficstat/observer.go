package trafficstat

import (
	"fmt"
	"slices"
	"time"
)

// Trace is the times of the requests one observer saw during a recording
// window [Start, Start+Span).
type Trace struct {
	Times []time.Time
	Start time.Time
	Span  time.Duration
}

// TraceComparison is what an observer of one link can tell apart between two
// recorded request traces (e.g. a client with 0 and with 50 contacts).
type TraceComparison struct {
	CountsA, CountsB []int   // requests per bin, over each trace's own span
	RateP            float64 // SameRateP(CountsA, CountsB)
	DispersionP      float64 // OverdispersionP of both series concatenated
	KSD, KSP         float64 // KSTwoSample of the inter-arrival times
}

// CompareTraces bins each trace's window into whole bins of the given width
// (a partial last bin is dropped so that every bin has the same exposure) and
// compares the two: per-bin rates, Poisson dispersion, and the inter-arrival
// distributions of the events inside the windows.
func CompareTraces(a, b Trace, bin time.Duration) TraceComparison {
	c := TraceComparison{CountsA: a.wholeBins(bin), CountsB: b.wholeBins(bin)}
	c.RateP = SameRateP(c.CountsA, c.CountsB)
	c.DispersionP = OverdispersionP(append(slices.Clone(c.CountsA), c.CountsB...))
	c.KSD, c.KSP = KSTwoSample(Interarrivals(a.inside()), Interarrivals(b.inside()))
	return c
}

// Indistinguishable returns nil when no test rejects at level alpha, and
// otherwise an error naming every test that does. NaN p-values (too little
// data) count as rejections.
func (c TraceComparison) Indistinguishable(alpha float64) error {
	var bad []string
	if !(c.RateP > alpha) {
		bad = append(bad, fmt.Sprintf("rates differ (p=%.3g, totals %d over %d bins vs %d over %d)",
			c.RateP, sum(c.CountsA), len(c.CountsA), sum(c.CountsB), len(c.CountsB)))
	}
	if !(c.DispersionP > alpha) {
		bad = append(bad, fmt.Sprintf("per-bin counts overdispersed for one Poisson rate (p=%.3g)", c.DispersionP))
	}
	if !(c.KSP > alpha) {
		bad = append(bad, fmt.Sprintf("inter-arrival distributions differ (KS D=%.3f, p=%.3g)", c.KSD, c.KSP))
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("traces distinguishable at level %g: %v", alpha, bad)
}

func (t Trace) wholeBins(bin time.Duration) []int {
	if bin <= 0 {
		return nil
	}
	return BinCounts(t.Times, t.Start, bin, int(t.Span/bin))
}

func (t Trace) inside() []time.Time {
	var out []time.Time
	for _, x := range t.Times {
		if d := x.Sub(t.Start); d >= 0 && d < t.Span {
			out = append(out, x)
		}
	}
	return out
}
