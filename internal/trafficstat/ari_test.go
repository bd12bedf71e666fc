package trafficstat

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestAdjustedRandIndex(t *testing.T) {
	for _, tc := range []struct {
		name        string
		truth, pred []int
		want        float64
	}{
		{"identical", []int{0, 0, 1, 1, 2}, []int{0, 0, 1, 1, 2}, 1},
		{"relabelled", []int{0, 0, 1, 1}, []int{7, 7, 3, 3}, 1},
		// scikit-learn's documented example: adjusted_rand_score([0,0,1,1],
		// [0,0,1,2]) ≈ 0.57. Index 1, E = 2·1/6, max 1.5: (2/3)/(7/6) = 4/7.
		{"split one", []int{0, 0, 1, 1}, []int{0, 0, 1, 2}, 4.0 / 7},
		{"split one, swapped", []int{0, 0, 1, 2}, []int{0, 0, 1, 1}, 4.0 / 7},
		// One cluster against singletons: no agreement beyond chance.
		{"one vs singletons", []int{0, 0, 0, 0}, []int{0, 1, 2, 3}, 0},
		// Index 0, E = 2·2/6, max 2: (−2/3)/(4/3) = −1/2.
		{"crossed", []int{0, 0, 1, 1}, []int{0, 1, 0, 1}, -0.5},
		// Index 2, a = 6, b = 3, E = 6·3/15 = 1.2, max 4.5: 0.8/3.3 = 8/33.
		{"by hand", []int{0, 0, 0, 1, 1, 1}, []int{0, 0, 1, 1, 2, 2}, 8.0 / 33},
		{"both singletons", []int{0, 1, 2}, []int{5, 4, 3}, 1},
		{"both one cluster", []int{1, 1, 1}, []int{2, 2, 2}, 1},
	} {
		if got := AdjustedRandIndex(tc.truth, tc.pred); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: ARI = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !math.IsNaN(AdjustedRandIndex([]int{1}, []int{1, 2})) || !math.IsNaN(AdjustedRandIndex(nil, nil)) {
		t.Error("mismatched or empty labelings must give NaN")
	}
}

// A random labeling scores about 0: the "chance" an attacker must beat.
func TestAdjustedRandIndexRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const n, k, reps = 200, 20, 200
	truth := make([]int, n)
	for i := range truth {
		truth[i] = i % k
	}
	total := 0.0
	for range reps {
		pred := make([]int, n)
		for i := range pred {
			pred[i] = r.IntN(k)
		}
		ari := AdjustedRandIndex(truth, pred)
		if math.Abs(ari) > 0.05 {
			t.Errorf("random labeling scored %v", ari)
		}
		total += ari
	}
	if mean := total / reps; math.Abs(mean) > 0.005 {
		t.Errorf("mean ARI of random labelings = %v, want about 0", mean)
	}
}
