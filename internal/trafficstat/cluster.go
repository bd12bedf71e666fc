package trafficstat

// Linkage is how agglomerative clustering scores two clusters from the
// similarities of their members.
type Linkage int

const (
	// AverageLinkage (UPGMA; Sokal & Michener 1958) scores two clusters by
	// the mean similarity over all cross pairs: robust to a few chance
	// coincidences.
	AverageLinkage Linkage = iota
	// SingleLinkage scores two clusters by their most similar cross pair:
	// it follows chains (a rotating mailbox handed on epoch after epoch) but
	// one chance coincidence can merge two clients.
	SingleLinkage
)

// Agglomerate clusters m items, given their symmetric m×m similarity matrix
// sim (larger is more alike), into k clusters by greedy agglomerative
// clustering: start from singletons and merge the most similar pair of
// clusters until k remain (Lance & Williams 1967 update rules). It returns a
// label in [0, k) per item. Ties go to the lowest indices, so the result is
// deterministic. O(m³) time, O(m²) memory.
func Agglomerate(sim [][]float64, k int, linkage Linkage) []int {
	m := len(sim)
	k = max(1, min(k, m))
	// score[a][b] holds, for live clusters a and b: the sum of cross
	// similarities (average linkage) or their maximum (single linkage).
	score := make([][]float64, m)
	for i := range score {
		score[i] = append([]float64(nil), sim[i]...)
	}
	size := make([]int, m)
	parent := make([]int, m) // the cluster each item was last merged into
	alive := make([]bool, m)
	for i := range m {
		size[i], parent[i], alive[i] = 1, i, true
	}
	value := func(a, b int) float64 {
		if linkage == SingleLinkage {
			return score[a][b]
		}
		return score[a][b] / float64(size[a]*size[b])
	}
	for clusters := m; clusters > k; clusters-- {
		ba, bb, best := -1, -1, 0.0
		for a := range m {
			if !alive[a] {
				continue
			}
			for b := a + 1; b < m; b++ {
				if !alive[b] {
					continue
				}
				if v := value(a, b); ba < 0 || v > best {
					ba, bb, best = a, b, v
				}
			}
		}
		// Merge bb into ba.
		for c := range m {
			if !alive[c] || c == ba || c == bb {
				continue
			}
			if linkage == SingleLinkage {
				score[ba][c] = max(score[ba][c], score[bb][c])
			} else {
				score[ba][c] += score[bb][c]
			}
			score[c][ba] = score[ba][c]
		}
		size[ba] += size[bb]
		alive[bb] = false
		parent[bb] = ba
	}
	root := func(i int) int {
		for parent[i] != i {
			i = parent[i]
		}
		return i
	}
	labels := make([]int, m)
	ids := map[int]int{}
	for i := range m {
		r := root(i)
		if _, ok := ids[r]; !ok {
			ids[r] = len(ids)
		}
		labels[i] = ids[r]
	}
	return labels
}
