package trafficstat

import (
	"math"
	"slices"
)

// KSTwoSample returns the two-sample Kolmogorov–Smirnov statistic
// D = sup_x |F_a(x) - F_b(x)| of the empirical distribution functions of a
// and b, and its asymptotic p-value.
//
// The p-value is Q_KS(λ) with λ = (√nₑ + 0.12 + 0.11/√nₑ)·D and the effective
// size nₑ = n·m/(n+m): Stephens' (1970) small-sample correction, as in
// Press et al., Numerical Recipes, 3rd ed., §14.3 (Kolmogorov–Smirnov test). It is
// accurate to a few percent for nₑ ≥ 4 and assumes continuous data: with
// many ties (e.g. times rounded to a coarse clock) the test is conservative.
//
// An empty sample has no distribution: D and p are then NaN, so that a test
// asserting p > α fails rather than passes.
func KSTwoSample(a, b []float64) (D, p float64) {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return math.NaN(), math.NaN()
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	i, j := 0, 0
	for i < n && j < m {
		v := min(x[i], y[j])
		// Step past every copy of v in both samples, so that ties between
		// the samples are compared after both CDFs have jumped.
		for i < n && x[i] <= v {
			i++
		}
		for j < m && y[j] <= v {
			j++
		}
		D = max(D, math.Abs(float64(i)/float64(n)-float64(j)/float64(m)))
	}
	// Once one sample is exhausted its CDF is 1 and the other's only rises
	// towards it, so the supremum has been seen.
	ne := float64(n) * float64(m) / float64(n+m)
	sq := math.Sqrt(ne)
	return D, KolmogorovQ((sq + 0.12 + 0.11/sq) * D)
}

// KolmogorovQ is the survival function of the Kolmogorov distribution,
// Q_KS(λ) = P(K > λ) = 2 Σ_{j≥1} (-1)^{j-1} exp(-2 j² λ²)
// (Kolmogorov 1933; Numerical Recipes §14.3). For small λ that
// alternating series converges slowly, so there the equivalent theta-function
// form 1 - (√(2π)/λ) Σ_{j≥1} exp(-(2j-1)² π² / (8λ²)) is used
// (Numerical Recipes §6.14). Both converge to double precision in a
// handful of terms on their side of λ = 1.18.
func KolmogorovQ(lambda float64) float64 {
	switch {
	case math.IsNaN(lambda):
		return math.NaN()
	case lambda <= 0:
		return 1
	case lambda < 1.18:
		y := math.Exp(-math.Pi * math.Pi / (8 * lambda * lambda))
		// Σ exp(-(2j-1)² c) = y + y⁹ + y²⁵ + y⁴⁹ + …, four terms suffice
		// below 1.18 (y ≤ 0.42, y⁸¹ < 1e-30).
		s := y + math.Pow(y, 9) + math.Pow(y, 25) + math.Pow(y, 49) + math.Pow(y, 81)
		return clamp01(1 - math.Sqrt(2*math.Pi)/lambda*s)
	default:
		x := math.Exp(-2 * lambda * lambda)
		// 2(x - x⁴ + x⁹ - x¹⁶ + …); x ≤ 0.062, x²⁵ < 1e-30.
		s := x - math.Pow(x, 4) + math.Pow(x, 9) - math.Pow(x, 16) + math.Pow(x, 25)
		return clamp01(2 * s)
	}
}

func clamp01(v float64) float64 { return min(1, max(0, v)) }
