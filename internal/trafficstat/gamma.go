package trafficstat

import "math"

// GammaQ is the regularized upper incomplete gamma function
// Q(a, x) = Γ(a, x)/Γ(a), for a > 0 and x ≥ 0, computed by its power series
// when x < a+1 and by its Lentz continued fraction otherwise
// (Numerical Recipes, 3rd ed., §6.2, gser/gcf). It returns NaN outside its
// domain.
func GammaQ(a, x float64) float64 {
	switch {
	case math.IsNaN(a) || math.IsNaN(x) || a <= 0 || x < 0:
		return math.NaN()
	case x == 0:
		return 1
	case math.IsInf(x, 1):
		return 0
	case x < a+1:
		return clamp01(1 - gammaPSeries(a, x))
	default:
		return clamp01(gammaQFraction(a, x))
	}
}

// gammaLogPrefix is log(x^a e^{-x} / Γ(a)).
func gammaLogPrefix(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	return a*math.Log(x) - x - lg
}

// gammaPSeries is P(a,x) = e^{-x} x^a Σ_n x^n / Γ(a+n+1).
func gammaPSeries(a, x float64) float64 {
	ap, del := a, 1/a
	sum := del
	for range 10000 {
		ap++
		del *= x / ap
		sum += del
		if math.Abs(del) < math.Abs(sum)*1e-16 {
			break
		}
	}
	return sum * math.Exp(gammaLogPrefix(a, x))
}

// gammaQFraction is Q(a,x) by its continued fraction (NR §6.2),
// evaluated with the modified Lentz method.
func gammaQFraction(a, x float64) float64 {
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i <= 10000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-16 {
			break
		}
	}
	return math.Exp(gammaLogPrefix(a, x)) * h
}

// ChiSquareSF is the upper tail P(X > x) of a chi-square distribution with
// k degrees of freedom: Q(k/2, x/2).
func ChiSquareSF(x float64, k int) float64 {
	if k <= 0 {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	return GammaQ(float64(k)/2, x/2)
}
