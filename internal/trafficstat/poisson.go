package trafficstat

import "math"

// PoissonPMF is P(X = k) for X ~ Poisson(lambda).
func PoissonPMF(k int, lambda float64) float64 {
	if k < 0 || lambda < 0 {
		return 0
	}
	if lambda == 0 {
		if k == 0 {
			return 1
		}
		return 0
	}
	lg, _ := math.Lgamma(float64(k) + 1)
	return math.Exp(float64(k)*math.Log(lambda) - lambda - lg)
}

// PoissonCDF is P(X ≤ k) for X ~ Poisson(lambda), through the identity
// P(X ≤ k) = Q(k+1, λ) with Q the regularized upper incomplete gamma
// function (Abramowitz & Stegun §6.5, §26.4), accurate for large λ too.
func PoissonCDF(k int, lambda float64) float64 {
	switch {
	case k < 0:
		return 0
	case lambda <= 0:
		return 1
	}
	return GammaQ(float64(k)+1, lambda)
}

// PoissonQuantile is the smallest k with P(X ≤ k) ≥ p for X ~ Poisson(lambda),
// for 0 ≤ p < 1 (p ≥ 1 has no finite quantile: it returns -1).
func PoissonQuantile(p, lambda float64) int {
	if p >= 1 || math.IsNaN(p) || math.IsNaN(lambda) {
		return -1
	}
	if p <= 0 || lambda <= 0 {
		return 0
	}
	// P(X > λ + t) ≤ exp(−t²/(2(λ + t/3))) (Bernstein's inequality), which
	// for t = 40√λ + 40 is below e⁻⁶⁰ — far below 2⁻⁵³, the smallest gap
	// between a float64 p < 1 and 1 — so the quantile is at most λ + t.
	// Bisect on the monotone CDF.
	lo, hi := 0, int(lambda+40*math.Sqrt(lambda)+40)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if PoissonCDF(mid, lambda) >= p {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// PoissonBounds is the central 1-alpha interval [lo, hi] of Poisson(lambda):
// lo is the alpha/2 quantile and hi the 1-alpha/2 quantile, so that
// P(lo ≤ X ≤ hi) ≥ 1 - alpha.
func PoissonBounds(lambda, alpha float64) (lo, hi int) {
	return PoissonQuantile(alpha/2, lambda), PoissonQuantile(1-alpha/2, lambda)
}

// BinomialCDF is P(X ≤ k) for X ~ Binomial(n, p), summed term by term in
// log space (exact up to rounding; O(k) work).
func BinomialCDF(k, n int, p float64) float64 {
	switch {
	case k < 0:
		return 0
	case k >= n:
		return 1
	case p <= 0:
		return 1
	case p >= 1:
		return 0
	}
	lgn, _ := math.Lgamma(float64(n) + 1)
	lp, lq := math.Log(p), math.Log1p(-p)
	s := 0.0
	for i := 0; i <= k; i++ {
		lgi, _ := math.Lgamma(float64(i) + 1)
		lgr, _ := math.Lgamma(float64(n-i) + 1)
		s += math.Exp(lgn - lgi - lgr + float64(i)*lp + float64(n-i)*lq)
	}
	return clamp01(s)
}

// SameRateP tests whether two series of counts per equal-length bin (e.g.
// requests per minute) come from Poisson processes with one common rate.
//
// It is the conditional binomial test (Przyborowski & Wileński 1940; Lehmann
// & Romano, Testing Statistical Hypotheses, ch. 4): given the total
// N = ΣA + ΣB, under equal rates ΣA ~ Binomial(N, len(a)/(len(a)+len(b))).
// The two-sided p-value is min(1, 2·min(P(X ≤ ΣA), P(X ≥ ΣA))).
//
// It compares the rates only. Traffic more regular than Poisson (a jittered
// fixed cadence) makes the test conservative: a real difference of rates is
// still found, an equal rate is rejected less often than alpha. Empty series
// return NaN.
func SameRateP(a, b []int) float64 {
	if len(a) == 0 || len(b) == 0 {
		return math.NaN()
	}
	sa, sb := sum(a), sum(b)
	n := sa + sb
	if n == 0 {
		return 1
	}
	frac := float64(len(a)) / float64(len(a)+len(b))
	lower := BinomialCDF(sa, n, frac)
	upper := 1 - BinomialCDF(sa-1, n, frac)
	return clamp01(2 * min(lower, upper))
}

// OverdispersionP is the upper-tail p-value of Fisher's index-of-dispersion
// test that counts per equal-length bin are Poisson: the statistic
// Σ (xᵢ - x̄)²/x̄ is approximately χ² with len(counts)-1 degrees of freedom
// (Fisher 1950; Cochran 1954, "Some methods for strengthening the common χ²
// tests"; adequate for x̄ ≳ 3). Only the upper tail is used: a small p means the
// counts vary more than one Poisson rate allows (bursts, e.g. when chatting).
// Traffic more regular than Poisson is not flagged: that is the point of a
// fixed cadence. Applied to the concatenation of two series it tests that
// both are consistent with one Poisson rate minute by minute. Fewer than two
// bins, or all-zero counts, give p = 1.
func OverdispersionP(counts []int) float64 {
	if len(counts) < 2 {
		return 1
	}
	mean := float64(sum(counts)) / float64(len(counts))
	if mean == 0 {
		return 1
	}
	var d float64
	for _, c := range counts {
		d += (float64(c) - mean) * (float64(c) - mean)
	}
	return ChiSquareSF(d/mean, len(counts)-1)
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}
