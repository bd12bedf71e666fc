package trafficstat

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestExpAndPoissonArrivals(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	gaps := ExpInterarrivals(r, 4, 20000)
	mean := 0.0
	for _, g := range gaps {
		mean += g / float64(len(gaps))
	}
	if math.Abs(mean-0.25) > 0.01 {
		t.Errorf("mean of Exp(4) = %v, want 0.25", mean)
	}
	start := time.Unix(1000, 0)
	times := PoissonArrivals(r, 4, start, 10*time.Minute)
	if n := len(times); n < 2200 || n > 2600 { // 2400 ± 4σ
		t.Errorf("%d events in 10 min at 4/s", n)
	}
	if !slices.IsSortedFunc(times, time.Time.Compare) || times[0].Before(start) || !times[len(times)-1].Before(start.Add(10*time.Minute)) {
		t.Error("arrivals unsorted or outside the span")
	}
	if _, p := KSTwoSample(Interarrivals(times), ExpInterarrivals(r, 4, 2000)); p < 0.001 {
		t.Errorf("Poisson process gaps are not Exp(rate): p = %v", p)
	}
	// Seeded: the same seed gives the same trace.
	a := PoissonArrivals(rand.New(rand.NewPCG(1, 1)), 1, start, time.Minute)
	b := PoissonArrivals(rand.New(rand.NewPCG(1, 1)), 1, start, time.Minute)
	if !slices.Equal(a, b) {
		t.Error("same seed, different arrivals")
	}
}

func TestJitteredArrivals(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	start := time.Unix(0, 0)
	period, jitter := 10*time.Second, 2*time.Second
	times := JitteredArrivals(r, period, jitter, start, time.Hour)
	if n := len(times); n < 359 || n > 361 {
		t.Errorf("%d events, want 360 ± 1", n)
	}
	for _, g := range Interarrivals(times) {
		if g < (period-2*jitter).Seconds() || g > (period+2*jitter).Seconds() {
			t.Fatalf("gap %v s outside period ± 2·jitter", g)
		}
	}
}

func TestBinCounts(t *testing.T) {
	start := time.Unix(0, 0)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	times := []time.Time{at(-1), at(0), at(59.9), at(60), at(125), at(180), at(500)}
	if got := BinCounts(times, start, time.Minute, 3); !slices.Equal(got, []int{2, 1, 1}) {
		t.Errorf("BinCounts = %v, want [2 1 1]", got)
	}
	if got := Interarrivals([]time.Time{at(3), at(1), at(2.5)}); !slices.Equal(got, []float64{1.5, 0.5}) {
		t.Errorf("Interarrivals = %v", got)
	}
}
