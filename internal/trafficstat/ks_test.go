package trafficstat

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The Kolmogorov distribution's upper critical values, from published
// tables of the asymptotic distribution (Smirnov 1948):
// P(K > c) = alpha.
func TestKolmogorovQCriticalValues(t *testing.T) {
	for _, tc := range []struct{ lambda, want float64 }{
		{1.22385, 0.10},
		{1.35810, 0.05},
		{1.62762, 0.01},
		{1.73082, 0.005},
		{1.94947, 0.001},
	} {
		if got := KolmogorovQ(tc.lambda); math.Abs(got-tc.want) > 2e-5 {
			t.Errorf("KolmogorovQ(%v) = %.6f, want %.6f", tc.lambda, got, tc.want)
		}
	}
}

// Below 1.18 KolmogorovQ uses the theta-function form; check it against the
// defining alternating series, summed to convergence, and check edges.
func TestKolmogorovQBranches(t *testing.T) {
	series := func(l float64) float64 {
		s := 0.0
		for j := 1; j < 200; j++ {
			s += 2 * math.Pow(-1, float64(j-1)) * math.Exp(-2*float64(j*j)*l*l)
		}
		return s
	}
	for _, l := range []float64{0.6, 0.8, 1.0, 1.1, 1.17, 1.19, 1.5} {
		if got, want := KolmogorovQ(l), series(l); math.Abs(got-want) > 1e-12 {
			t.Errorf("KolmogorovQ(%v) = %.15f, series %.15f", l, got, want)
		}
	}
	// Q(1) = 2(e⁻² − e⁻⁸ + e⁻¹⁸ − …) = 0.2699996…
	if got := KolmogorovQ(1); math.Abs(got-0.26999967) > 1e-8 {
		t.Errorf("KolmogorovQ(1) = %v", got)
	}
	if KolmogorovQ(0) != 1 || KolmogorovQ(0.05) != 1 || KolmogorovQ(10) > 1e-80 || !math.IsNaN(KolmogorovQ(math.NaN())) {
		t.Error("KolmogorovQ edges")
	}
}

func TestKSTwoSampleStatistic(t *testing.T) {
	for _, tc := range []struct {
		name  string
		a, b  []float64
		wantD float64
	}{
		{"identical", []float64{3, 1, 2}, []float64{1, 2, 3}, 0},
		// F_a(3) = 3/5 while F_b(3) = 0.
		{"shifted", []float64{1, 2, 3, 4, 5}, []float64{3.5, 4.5, 5.5, 6.5, 7.5}, 0.6},
		// Ties across samples: at 1, F_a = 2/3 and F_b = 1/3; at 2 both are 1.
		{"ties", []float64{1, 1, 2}, []float64{1, 2, 2}, 1.0 / 3},
		{"disjoint", []float64{1, 2}, []float64{3, 4, 5}, 1},
		// Unequal values: at 3, F_a = 3/4 and F_b = 0; at 4, 1 and 1/4.
		{"unequal", []float64{1, 2, 3, 4}, []float64{4, 5, 6, 7}, 0.75},
	} {
		D, p := KSTwoSample(tc.a, tc.b)
		if math.Abs(D-tc.wantD) > 1e-12 {
			t.Errorf("%s: D = %v, want %v", tc.name, D, tc.wantD)
		}
		n, m := float64(len(tc.a)), float64(len(tc.b))
		sq := math.Sqrt(n * m / (n + m))
		if want := KolmogorovQ((sq + 0.12 + 0.11/sq) * tc.wantD); math.Abs(p-want) > 1e-12 {
			t.Errorf("%s: p = %v, want %v", tc.name, p, want)
		}
	}
	if D, p := KSTwoSample(nil, []float64{1}); !math.IsNaN(D) || !math.IsNaN(p) {
		t.Error("empty sample must give NaN")
	}
}

func TestKSTwoSamplePValues(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	same := ExpInterarrivals(r, 1, 300)
	if _, p := KSTwoSample(same, same); p != 1 {
		t.Errorf("identical samples: p = %v, want 1", p)
	}
	// Two samples of 100 with no overlap: D = 1, λ ≈ 7.2, p ≈ 2e-45.
	lo, hi := make([]float64, 100), make([]float64, 100)
	for i := range lo {
		lo[i], hi[i] = float64(i), float64(1000+i)
	}
	if D, p := KSTwoSample(lo, hi); D != 1 || p > 1e-30 {
		t.Errorf("disjoint samples: D = %v, p = %v", D, p)
	}
	// Exp(1) against Exp(1.5): sup|e^{-x} − e^{-1.5x}| ≈ 0.148, so with
	// 500 each λ ≈ 2.3 and p ≈ 1e-4.
	a, b := ExpInterarrivals(r, 1, 500), ExpInterarrivals(r, 1.5, 500)
	if D, p := KSTwoSample(a, b); p > 1e-2 || D < 0.08 {
		t.Errorf("Exp(1) vs Exp(1.5): D = %v, p = %v, want a rejection", D, p)
	}
}

// Under the null hypothesis the p-value is (close to) uniform: about 5% of
// pairs from one distribution fall below 0.05. The discreteness of D makes
// the test slightly conservative, never liberal.
func TestKSTwoSampleCalibration(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const reps = 2000
	below := 0
	for range reps {
		_, p := KSTwoSample(ExpInterarrivals(r, 2, 50), ExpInterarrivals(r, 2, 80))
		if p < 0.05 {
			below++
		}
	}
	if frac := float64(below) / reps; frac < 0.025 || frac > 0.07 {
		t.Errorf("%.3f of null p-values below 0.05, want about 0.05", frac)
	}
}
