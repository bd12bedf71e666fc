package trafficstat

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestGammaQAndChiSquare(t *testing.T) {
	// For integer a, Q(a, x) = e^{-x} Σ_{k<a} x^k/k!: checks
	// both the series (x < a+1) and the continued fraction branch.
	for _, a := range []int{1, 2, 5, 12} {
		for _, x := range []float64{0.3, 2, 5, 10, 30} {
			want, term := 0.0, math.Exp(-x)
			for k := range a {
				want += term
				term *= x / float64(k+1)
			}
			if got := GammaQ(float64(a), x); math.Abs(got-want) > 1e-12 {
				t.Errorf("GammaQ(%d, %v) = %v, want %v", a, x, got, want)
			}
		}
	}
	for _, tc := range []struct {
		x    float64
		k    int
		want float64
	}{
		{3.841459, 1, 0.05},   // the familiar table values
		{6.634897, 1, 0.01},   //
		{18.307038, 10, 0.05}, //
		{4, 2, math.Exp(-2)},  // χ²(2) tail is e^{-x/2}
		{2, 1, math.Erfc(1)},  // χ²(1) tail is erfc(√(x/2))
		{0, 3, 1},
	} {
		if got := ChiSquareSF(tc.x, tc.k); math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("ChiSquareSF(%v, %d) = %v, want %v", tc.x, tc.k, got, tc.want)
		}
	}
	if !math.IsNaN(GammaQ(0, 1)) || !math.IsNaN(GammaQ(1, -1)) || !math.IsNaN(ChiSquareSF(1, 0)) {
		t.Error("out of domain must give NaN")
	}
}

func TestPoissonCDFAndQuantile(t *testing.T) {
	for _, tc := range []struct {
		k      int
		lambda float64
		want   float64
	}{
		{0, 2, math.Exp(-2)},
		{2, 1, 2.5 / math.E}, // e^{-1}(1 + 1 + 1/2)
		{-1, 3, 0},
		{5, 0, 1},
	} {
		if got := PoissonCDF(tc.k, tc.lambda); math.Abs(got-tc.want) > 1e-14 {
			t.Errorf("PoissonCDF(%d, %v) = %v, want %v", tc.k, tc.lambda, got, tc.want)
		}
	}
	// Against the plain sum of the PMF, also where λ is large.
	for _, lambda := range []float64{0.5, 7, 60, 1000} {
		s := 0.0
		for k := 0; k <= int(2*lambda)+10; k++ {
			s += PoissonPMF(k, lambda)
			if got := PoissonCDF(k, lambda); math.Abs(got-s) > 1e-10 {
				t.Fatalf("PoissonCDF(%d, %v) = %v, PMF sum %v", k, lambda, got, s)
			}
		}
	}
	// λ = 1: CDF 0.368, 0.736, 0.920, 0.981 at k = 0..3.
	for _, tc := range []struct {
		p    float64
		want int
	}{{0.3, 0}, {0.5, 1}, {0.9, 2}, {0.95, 3}, {0, 0}, {1, -1}} {
		if got := PoissonQuantile(tc.p, 1); got != tc.want {
			t.Errorf("PoissonQuantile(%v, 1) = %d, want %d", tc.p, got, tc.want)
		}
	}
	// The defining property, on a grid.
	for _, lambda := range []float64{0.2, 3, 45.5, 600} {
		for _, p := range []float64{0.001, 0.025, 0.5, 0.975, 0.999999} {
			q := PoissonQuantile(p, lambda)
			if PoissonCDF(q, lambda) < p || PoissonCDF(q-1, lambda) >= p {
				t.Errorf("PoissonQuantile(%v, %v) = %d is not the smallest k with CDF ≥ p", p, lambda, q)
			}
		}
	}
	// qpois(c(0.025, 0.975), 100) in R is 81, 120.
	if lo, hi := PoissonBounds(100, 0.05); lo != 81 || hi != 120 {
		t.Errorf("PoissonBounds(100, 0.05) = %d, %d, want 81, 120", lo, hi)
	}
}

func TestBinomialCDF(t *testing.T) {
	for _, tc := range []struct {
		k, n int
		p    float64
		want float64
	}{
		{0, 10, 0.5, 1.0 / 1024},
		{5, 10, 0.5, 638.0 / 1024}, // (1+10+45+120+210+252)/1024
		{1, 3, 0.25, 27.0/64 + 27.0/64},
		{-1, 3, 0.5, 0},
		{3, 3, 0.5, 1},
	} {
		if got := BinomialCDF(tc.k, tc.n, tc.p); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("BinomialCDF(%d, %d, %v) = %v, want %v", tc.k, tc.n, tc.p, got, tc.want)
		}
	}
}

func TestSameRateP(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []int
		want float64
	}{
		{"equal", []int{5, 5, 5}, []int{5, 5, 5}, 1},
		// ΣA = 0 of N = 10 with equal exposure: 2·2⁻¹⁰.
		{"all in b", []int{0}, []int{10}, 2.0 / 1024},
		// Exposures 1:3, ΣA = 0 of N = 4: 2·(3/4)⁴.
		{"exposure", []int{0}, []int{1, 2, 1}, 2 * math.Pow(0.75, 4)},
		{"no events", []int{0, 0}, []int{0}, 1},
	} {
		if got := SameRateP(tc.a, tc.b); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: SameRateP = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !math.IsNaN(SameRateP(nil, []int{1})) {
		t.Error("empty series must give NaN")
	}

	r := rand.New(rand.NewPCG(5, 6))
	counts := func(perMinute float64, minutes int) []int {
		start := time.Unix(0, 0)
		span := time.Duration(minutes) * time.Minute
		return BinCounts(PoissonArrivals(r, perMinute/60, start, span), start, time.Minute, minutes)
	}
	// Power: 60 against 70 per minute over half an hour each is 5 standard
	// deviations apart.
	if p := SameRateP(counts(60, 30), counts(70, 30)); p > 1e-3 {
		t.Errorf("60 vs 70 per minute: p = %v, want a rejection", p)
	}
	// Level: with one rate, about alpha of the tests reject, never much more.
	const reps = 1000
	rejects := 0
	for range reps {
		if SameRateP(counts(20, 10), counts(20, 15)) < 0.05 {
			rejects++
		}
	}
	if frac := float64(rejects) / reps; frac < 0.02 || frac > 0.07 {
		t.Errorf("%.3f of equal-rate tests rejected at 0.05", frac)
	}
}

func TestOverdispersionP(t *testing.T) {
	if p := OverdispersionP([]int{60, 60, 61, 59, 60}); p < 0.999 {
		t.Errorf("a steady cadence is not overdispersed: p = %v", p)
	}
	// Bursts: the same mean rate, all in alternate minutes.
	if p := OverdispersionP([]int{0, 120, 0, 120, 0, 120, 0, 120}); p > 1e-10 {
		t.Errorf("bursty counts: p = %v, want a rejection", p)
	}
	// Σ(x−x̄)²/x̄ = (4+0+4)/4 = 2 on 2 degrees of freedom: p = e⁻¹.
	if p := OverdispersionP([]int{2, 4, 6}); math.Abs(p-math.Exp(-1)) > 1e-12 {
		t.Errorf("OverdispersionP(2,4,6) = %v, want e^-1", p)
	}
	if OverdispersionP([]int{7}) != 1 || OverdispersionP([]int{0, 0}) != 1 {
		t.Error("degenerate inputs must give 1")
	}
	r := rand.New(rand.NewPCG(7, 8))
	const reps = 1000
	rejects := 0
	for range reps {
		start := time.Unix(0, 0)
		c := BinCounts(PoissonArrivals(r, 0.5, start, 20*time.Minute), start, time.Minute, 20)
		if OverdispersionP(c) < 0.05 {
			rejects++
		}
	}
	if frac := float64(rejects) / reps; frac < 0.025 || frac > 0.075 {
		t.Errorf("%.3f of Poisson count series rejected at 0.05", frac)
	}
}
