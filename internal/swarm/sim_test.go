package swarm

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// simNodes makes n node IDs (32-byte hashes, as peer IDs are).
func simNodes(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("sim-node"), uint64(i)))
		out[i] = h[:]
	}
	return out
}

// simOutage kills a fraction of nodes at once and counts, over mailboxes,
// how many keep fewer than a write quorum of their R replicas alive (new
// writes go to the next live nodes: sloppy quorum) and how many lose all R
// (their messages are gone until a node comes back from disk).
func simOutage(nodes [][]byte, mailboxes, r int, dead float64, rng *rand.Rand) (belowQuorum, allLost int) {
	down := map[string]bool{}
	for _, i := range rng.Perm(len(nodes))[:int(dead*float64(len(nodes)))] {
		down[string(nodes[i])] = true
	}
	for m := 0; m < mailboxes; m++ {
		var mb [32]byte
		binary.BigEndian.PutUint64(mb[:], rng.Uint64())
		live := 0
		for _, n := range Members(mb, nodes, r) {
			if !down[string(n)] {
				live++
			}
		}
		if live < Quorum(r) {
			belowQuorum++
		}
		if live == 0 {
			allLost++
		}
	}
	return belowQuorum, allLost
}

// TestSimulatedOutage: on a 1000-node network, 30% of nodes die at once.
// Rendezvous placement must spread every mailbox's swarm independently of
// which nodes die, so the share of mailboxes that lose all R replicas is
// the binomial 0.3^R (0.24% for R = 5), not more; the test checks the
// simulation against the formula and logs the figures
// (BenchmarkSimulatedOutage reports R = 5, 7 and 9).
func TestSimulatedOutage(t *testing.T) {
	const (
		n         = 1000
		mailboxes = 3000
		dead      = 0.3
	)
	nodes := simNodes(n)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, r := range []int{5} {
		below, lost := simOutage(nodes, mailboxes, r, dead, rng)
		wantLost := math.Pow(dead, float64(r))
		// P(live < quorum) = P(at least R - W + 1 of R dead).
		wantBelow := 0.0
		for k := r - Quorum(r) + 1; k <= r; k++ {
			wantBelow += binom(r, k) * math.Pow(dead, float64(k)) * math.Pow(1-dead, float64(r-k))
		}
		gotLost, gotBelow := float64(lost)/mailboxes, float64(below)/mailboxes
		t.Logf("R=%d, %d nodes, %.0f%% dead at once: %.3f%% of mailboxes below write quorum (formula %.3f%%), %.4f%% with every replica down (formula %.4f%%)",
			r, n, dead*100, gotBelow*100, wantBelow*100, gotLost*100, wantLost*100)
		// Five standard deviations of a binomial count.
		tol := func(p float64) float64 { return 5*math.Sqrt(p*(1-p)/mailboxes) + 1.0/mailboxes }
		if math.Abs(gotBelow-wantBelow) > tol(wantBelow) || math.Abs(gotLost-wantLost) > tol(wantLost) {
			t.Errorf("R=%d: placement is not independent of failures: below quorum %.4f vs %.4f, all down %.5f vs %.5f", r, gotBelow, wantBelow, gotLost, wantLost)
		}
	}
}

func binom(n, k int) float64 {
	c := 1.0
	for i := 1; i <= k; i++ {
		c = c * float64(n-k+i) / float64(i)
	}
	return c
}

// BenchmarkSimulatedOutage reports the simulated figures on 1000 nodes
// with 30% dead at once, for R = 5 (the default), 7 and 9.
func BenchmarkSimulatedOutage(b *testing.B) {
	nodes := simNodes(1000)
	for _, r := range []int{5, 7, 9} {
		b.Run(fmt.Sprintf("R=%d", r), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, uint64(r)))
			var below, lost, total int
			for b.Loop() {
				bq, l := simOutage(nodes, 2000, r, 0.3, rng)
				below, lost, total = below+bq, lost+l, total+2000
			}
			b.ReportMetric(100*float64(below)/float64(total), "%below-quorum")
			b.ReportMetric(100*float64(lost)/float64(total), "%all-down")
		})
	}
}
