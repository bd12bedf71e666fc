package trafficstat

import (
	"math/rand/v2"
	"slices"
	"time"
)

// ExpInterarrivals draws n inter-arrival times of a Poisson process of the
// given rate (events per second), in seconds: Exp(rate) variates.
func ExpInterarrivals(r *rand.Rand, rate float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = r.ExpFloat64() / rate
	}
	return out
}

// PoissonArrivals is one realisation of a homogeneous Poisson process of the
// given rate (events per second) on [start, start+span): sorted event times.
func PoissonArrivals(r *rand.Rand, rate float64, start time.Time, span time.Duration) []time.Time {
	var out []time.Time
	if rate <= 0 {
		return out
	}
	t := 0.0
	for {
		t += r.ExpFloat64() / rate
		d := time.Duration(t * float64(time.Second))
		if d >= span {
			return out
		}
		out = append(out, start.Add(d))
	}
}

// JitteredArrivals is a fixed cadence with uniform jitter on [start,
// start+span): event k is at phase + k·period + U(-jitter, +jitter), with the
// phase uniform in [0, period). Events falling outside the span are dropped.
func JitteredArrivals(r *rand.Rand, period, jitter time.Duration, start time.Time, span time.Duration) []time.Time {
	var out []time.Time
	if period <= 0 {
		return out
	}
	phase := time.Duration(r.Int64N(int64(period)))
	for base := phase; base < span+jitter; base += period {
		d := base
		if jitter > 0 {
			d += time.Duration(r.Int64N(2*int64(jitter))) - jitter
		}
		if d >= 0 && d < span {
			out = append(out, start.Add(d))
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// Interarrivals is the gaps between consecutive times (sorted first), in
// seconds.
func Interarrivals(times []time.Time) []float64 {
	ts := slices.Clone(times)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	var out []float64
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]).Seconds())
	}
	return out
}

// BinCounts counts the times falling in each of n consecutive bins of the
// given width starting at start; times outside [start, start+n·width) are
// ignored.
func BinCounts(times []time.Time, start time.Time, width time.Duration, n int) []int {
	out := make([]int, n)
	for _, t := range times {
		d := t.Sub(start)
		if d < 0 || width <= 0 {
			continue
		}
		if i := int(d / width); i < n {
			out[i]++
		}
	}
	return out
}
