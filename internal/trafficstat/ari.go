package trafficstat

import "math"

// AdjustedRandIndex is the adjusted Rand index of Hubert & Arabie (1985),
// "Comparing partitions", J. Classification 2:193–218:
//
//	ARI = (Σᵢⱼ C(nᵢⱼ,2) - E) / (½(Σᵢ C(aᵢ,2) + Σⱼ C(bⱼ,2)) - E),
//	E   = Σᵢ C(aᵢ,2) · Σⱼ C(bⱼ,2) / C(n,2),
//
// with nᵢⱼ the contingency table of the two labelings and aᵢ, bⱼ its row and
// column sums. It is 1 for identical partitions (up to renaming labels), has
// expectation 0 for a random partition with the same cluster sizes, and can
// be negative. When the denominator is 0 (both partitions all-singletons, or
// both a single cluster) the partitions are identical and it returns 1, as
// scikit-learn does. Slices of different lengths, or empty, give NaN.
func AdjustedRandIndex(truth, predicted []int) float64 {
	n := len(truth)
	if n == 0 || n != len(predicted) {
		return math.NaN()
	}
	cells := map[[2]int]int{}
	rows, cols := map[int]int{}, map[int]int{}
	for i := range n {
		cells[[2]int{truth[i], predicted[i]}]++
		rows[truth[i]]++
		cols[predicted[i]]++
	}
	var index, a, b float64
	for _, c := range cells {
		index += comb2(c)
	}
	for _, c := range rows {
		a += comb2(c)
	}
	for _, c := range cols {
		b += comb2(c)
	}
	expected := a * b / comb2(n)
	maxIndex := (a + b) / 2
	if maxIndex == expected {
		return 1
	}
	return (index - expected) / (maxIndex - expected)
}

func comb2(k int) float64 { return float64(k) * float64(k-1) / 2 }
