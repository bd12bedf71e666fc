// Package files is the storage code of attachments: a file is encrypted
// under a fresh key in stripes, each stripe is cut into K equal data
// shares and Reed-Solomon coded into N shares (any K rebuild it), and
// every share is addressed by its hash. The shares go to N distinct nodes
// (rendezvous placement, place.go); the message that carries the file
// holds the Manifest (key, hashes, coding parameters) inside the
// end-to-end encryption. No node can tell which shares belong together,
// and a share that does not match its address is treated as missing.
//
// docs/files.md has the design and the figures.
package files

import (
	"errors"
	"fmt"
	"math"
)

const (
	// MaxFileSize is the largest file: 100 MiB.
	MaxFileSize = 100 << 20
	// MaxN is the most shares in one stripe: past it, a stripe's shares
	// go to a random N of the network's nodes instead of one per node.
	MaxN = 1024
	// MaxShares bounds the shares of one file (and so the Manifest):
	// with MaxShareSize and MaxN, a MaxFileSize file needs at most
	// 1.6 × 854 + 1,024 ≈ 2,400.
	MaxShares = 4096
	// tagSize is the AEAD tag of each stripe.
	tagSize = 16
)

// MaxShareSize is the largest share: with its request it fits the
// onion's 128 KiB packet class. Shares are multiples of ShareAlign bytes.
const (
	MaxShareSize = 120 << 10
	ShareAlign   = 64
)

// Params are a file's coding parameters: each stripe is K data shares of
// ShareSize bytes, coded into N shares.
type Params struct {
	K         int `cbor:"1,keyasint"`
	N         int `cbor:"2,keyasint"`
	ShareSize int `cbor:"3,keyasint"`
}

// Overhead is the network storage per byte of stripe data, N/K.
func (p Params) Overhead() float64 { return float64(p.N) / float64(p.K) }

// StripeData is the plaintext one stripe carries.
func (p Params) StripeData() int { return p.K*p.ShareSize - tagSize }

// Stripes is the number of stripes a file of size bytes takes (one at
// least: an empty file is one padded stripe).
func (p Params) Stripes(size int64) int {
	d := int64(p.StripeData())
	return int(max(1, (size+d-1)/d))
}

// Validate checks p against the package's bounds.
func (p Params) Validate() error {
	switch {
	case p.N < 1 || p.N > MaxN:
		return fmt.Errorf("files: %d shares per stripe (1 to %d)", p.N, MaxN)
	case p.K < 1 || p.K > p.N:
		return fmt.Errorf("files: %d data shares of %d", p.K, p.N)
	}
	if p.ShareSize < ShareAlign || p.ShareSize > MaxShareSize || p.ShareSize%ShareAlign != 0 {
		return fmt.Errorf("files: share size %d (a multiple of %d up to %d)", p.ShareSize, ShareAlign, MaxShareSize)
	}
	return nil
}

// StorageFactor bounds what the network stores per byte of file: N/K is
// at most CodeFactor, which leaves room for the padding of a stripe and
// its tag in files of 2,000×K bytes or more.
const (
	StorageFactor = 1.6
	CodeFactor    = 1.55
)

// KFor is the data shares of a stripe of n shares: the fewest with
// n/K ≤ CodeFactor, so that as many shares as possible may be lost.
func KFor(n int) int { return (n*20 + 30) / 31 }

// Tolerates is how many of a stripe's N shares may be lost.
func (p Params) Tolerates() int { return p.N - p.K }

// ErrTooLarge is returned for files over MaxFileSize.
var ErrTooLarge = fmt.Errorf("files: a file is at most %d MiB", MaxFileSize>>20)

// ChooseParams picks the coding of a file of size bytes on a network of
// nodes nodes: one share per node in each stripe (N = nodes, up to MaxN),
// so that with N = nodes any Tolerates() nodes may be down at once, and
// K = KFor(N): 12 nodes give 8 of 12 (1.5×, any 4 down), 1,000 give 646
// of 1,000 (1.55×, any 354 down).
func ChooseParams(size int64, nodes int) (Params, error) {
	if size < 0 || size > MaxFileSize {
		return Params{}, ErrTooLarge
	}
	if nodes < 1 {
		return Params{}, errors.New("files: no nodes to store shares on")
	}
	n := min(nodes, MaxN)
	p := Params{N: n, K: KFor(n), ShareSize: MaxShareSize}
	// As few stripes as the largest shares allow, then shares as small
	// as those stripes allow: padding is under K×ShareAlign bytes a
	// stripe.
	stripes := int64(p.Stripes(size))
	per := (size + stripes - 1) / stripes // plaintext per stripe
	share := (per + tagSize + int64(p.K) - 1) / int64(p.K)
	p.ShareSize = int(max(ShareAlign, (share+ShareAlign-1)/ShareAlign*ShareAlign))
	if total := p.Stripes(size) * p.N; total > MaxShares {
		return Params{}, fmt.Errorf("files: %d shares (at most %d)", total, MaxShares)
	}
	return p, nil
}

// LossProbability is the chance that a stripe of p's N shares, each on a
// distinct node of a network of nodes nodes of which dead are down
// (chosen without regard to the shares, as nodes cannot link shares),
// has more than Tolerates() shares on dead nodes: the hypergeometric
// tail. With N = nodes it is 0 or 1.
func (p Params) LossProbability(nodes, dead int) float64 {
	if dead > nodes || p.N > nodes {
		return 1
	}
	// P(X = x) = C(dead, x) C(nodes-dead, N-x) / C(nodes, N).
	lc := func(n, k int) float64 {
		a, _ := math.Lgamma(float64(n + 1))
		b, _ := math.Lgamma(float64(k + 1))
		c, _ := math.Lgamma(float64(n - k + 1))
		return a - b - c
	}
	total := lc(nodes, p.N)
	var sum float64
	for x := p.Tolerates() + 1; x <= min(p.N, dead); x++ {
		if p.N-x > nodes-dead {
			continue
		}
		sum += math.Exp(lc(dead, x) + lc(nodes-dead, p.N-x) - total)
	}
	return min(sum, 1)
}
