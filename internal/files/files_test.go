package files

import (
	"bytes"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"testing"
)

// sealAll codes a whole file and returns its coder, shares and addresses
// stripe by stripe.
func sealAll(t testing.TB, data []byte, nodes int) (*Coder, [][][]byte, [][]Address) {
	t.Helper()
	p, err := ChooseParams(int64(len(data)), nodes)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, KeySize)
	rand.Read(key)
	c, err := NewCoder(key, p, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var shares [][][]byte
	var addrs [][]Address
	for i := range c.Stripes() {
		off, n := c.Span(i)
		sh, err := c.Seal(i, data[off:off+n])
		if err != nil {
			t.Fatal(err)
		}
		as := make([]Address, len(sh))
		for j := range sh {
			if len(sh[j]) != p.ShareSize {
				t.Fatalf("share of %d bytes, want %d", len(sh[j]), p.ShareSize)
			}
			as[j] = AddressOf(sh[j])
		}
		shares, addrs = append(shares, sh), append(addrs, as)
	}
	return c, shares, addrs
}

// without copies stripe's shares, with the ones in drop left out.
func without(sh [][]byte, drop []int) [][]byte {
	out := make([][]byte, len(sh))
	for j := range sh {
		out[j] = bytes.Clone(sh[j])
	}
	for _, j := range drop {
		out[j] = nil
	}
	return out
}

// TestRoundTrip: files of many sizes, across stripe edges, come back
// whole from any K of each stripe's N shares.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	p12, _ := ChooseParams(1<<20, 12)
	d := p12.StripeData()
	for _, size := range []int{0, 1, 1000, 7*1024 - 16, 8*1024 - 16, 8*1024 - 15, 100 << 10, d, d + 1, 3*d - 7} {
		data := make([]byte, size)
		rand.Read(data)
		c, shares, addrs := sealAll(t, data, 12)
		p := c.Params()
		if p.N != 12 || p.K != 8 {
			t.Fatalf("12 nodes: %d of %d", p.K, p.N)
		}
		var got []byte
		for i := range c.Stripes() {
			drop := mrand.Perm(p.N)[:p.Tolerates()]
			pt, bad, err := c.Open(i, without(shares[i], drop), addrs[i])
			if err != nil || len(bad) > 0 {
				t.Fatalf("size %d stripe %d without %v: %v (bad %v)", size, i, drop, err, bad)
			}
			got = append(got, pt...)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: rebuilt %d bytes that differ", size, len(got))
		}
	}
}

// TestTooFewShares: one share fewer than K is an ErrNotEnough, never a
// wrong file.
func TestTooFewShares(t *testing.T) {
	t.Parallel()
	data := make([]byte, 50<<10)
	rand.Read(data)
	c, shares, addrs := sealAll(t, data, 12)
	p := c.Params()
	_, _, err := c.Open(0, without(shares[0], mrand.Perm(p.N)[:p.Tolerates()+1]), addrs[0])
	if !errors.Is(err, ErrNotEnough) {
		t.Fatalf("K-1 shares: %v, want ErrNotEnough", err)
	}
}

// TestBadSharesDropped: a share that does not match its address (a
// hostile node's answer) is dropped and reported, like a missing one; the
// stripe is still rebuilt from the others, and when too few good ones are
// left it fails instead of decoding garbage.
func TestBadSharesDropped(t *testing.T) {
	t.Parallel()
	data := make([]byte, 200<<10)
	rand.Read(data)
	c, shares, addrs := sealAll(t, data, 12)
	p := c.Params()
	sh := without(shares[0], nil)
	sh[2][100] ^= 1
	sh[5] = sh[5][:10]
	sh[7] = bytes.Clone(shares[0][8]) // a real share, in the wrong place
	pt, bad, err := c.Open(0, sh, addrs[0])
	if err != nil || len(bad) != 3 {
		t.Fatalf("3 bad shares: %v, bad %v", err, bad)
	}
	off, n := c.Span(0)
	if !bytes.Equal(pt, data[off:off+n]) {
		t.Fatal("rebuilt stripe differs")
	}
	sh = without(shares[0], []int{0, 1})
	for _, j := range []int{2, 3, 4} {
		sh[j][0] ^= 0xff
	}
	if _, bad, err := c.Open(0, sh, addrs[0]); !errors.Is(err, ErrNotEnough) || len(bad) != 3 {
		t.Fatalf("%d good shares: %v, bad %v", p.N-5, err, bad)
	}
}

// TestStripesBound: the shares of one stripe, with their own addresses,
// do not open as another stripe, nor as a file of another size.
func TestStripesBound(t *testing.T) {
	t.Parallel()
	p, _ := ChooseParams(1<<20, 12)
	data := make([]byte, 2*p.StripeData())
	rand.Read(data)
	c, shares, addrs := sealAll(t, data, 12)
	if c.Stripes() != 2 {
		t.Fatalf("%d stripes", c.Stripes())
	}
	if _, _, err := c.Open(1, without(shares[0], nil), addrs[0]); err == nil {
		t.Fatal("stripe 0 opened as stripe 1")
	}
	key := make([]byte, KeySize)
	other, err := NewCoder(key, c.Params(), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Open(0, without(shares[0], nil), addrs[0]); err == nil {
		t.Fatal("opened under another key")
	}
}

// TestChooseParams: for every network size the storage is at most 1.6×,
// and from 10 nodes on, any 30% of the nodes may be down at once.
func TestChooseParams(t *testing.T) {
	t.Parallel()
	for nodes := 1; nodes <= 3000; nodes++ {
		p, err := ChooseParams(MaxFileSize, nodes)
		if err != nil {
			t.Fatalf("%d nodes: %v", nodes, err)
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("%d nodes: %v", nodes, err)
		}
		if p.Overhead() > StorageFactor {
			t.Fatalf("%d nodes: %d of %d stores %.2f×", nodes, p.K, p.N, p.Overhead())
		}
		if nodes >= 10 && nodes <= MaxN && p.Tolerates() < nodes*3/10 {
			t.Fatalf("%d nodes: %d of %d survives %d down, want %d", nodes, p.K, p.N, p.Tolerates(), nodes*3/10)
		}
	}
	for _, nodes := range []int{3, 12, 100, 1000, 5000} {
		for size := int64(1000); size <= MaxFileSize; size = size*5/4 + 7 {
			p, _ := ChooseParams(size, nodes)
			stored := int64(p.Stripes(size) * p.N * p.ShareSize)
			if size >= int64(2000*p.K) && float64(stored) > StorageFactor*float64(size) {
				t.Fatalf("%d nodes, %d B: %d stripes of %d of %d shares of %d B store %.3f×", nodes, size, p.Stripes(size), p.K, p.N, p.ShareSize, float64(stored)/float64(size))
			}
		}
	}
	if _, err := ChooseParams(MaxFileSize+1, 12); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a file over the limit: %v", err)
	}
}

// TestPlaceDistinct: a stripe's shares go to distinct nodes while there
// are nodes enough, placement is the same for every caller, and a node
// skipped gets nothing.
func TestPlaceDistinct(t *testing.T) {
	t.Parallel()
	nodes := make([][]byte, 12)
	for i := range nodes {
		nodes[i] = []byte{byte(i), 'n'}
	}
	stripe := make([]Address, 12)
	for j := range stripe {
		rand.Read(stripe[j][:])
	}
	a, b := Place(stripe, nodes, nil), Place(stripe, nodes, nil)
	seen := map[int]bool{}
	for j := range a {
		if a[j] != b[j] || seen[a[j]] || a[j] < 0 {
			t.Fatalf("placement %v then %v", a, b)
		}
		seen[a[j]] = true
	}
	c := Place(stripe, nodes, func(i int) bool { return i == 3 })
	for _, i := range c {
		if i == 3 || i < 0 {
			t.Fatalf("placement with node 3 skipped: %v", c)
		}
	}
	if r := Rank(stripe[0], nodes); r[0] != a[0] {
		t.Errorf("the first share's first choice is node %d, but rank says %v", a[0], r)
	}
}

// TestManifestRoundTrip: a manifest survives its encoding, and broken
// ones are refused.
func TestManifestRoundTrip(t *testing.T) {
	t.Parallel()
	m := testManifest(t, 300<<10, 12)
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != m.Size || got.Params != m.Params || len(got.Shares) != len(m.Shares) || !bytes.Equal(got.Node(5), m.Node(5)) {
		t.Fatalf("round trip: %+v", got.Params)
	}
	for name, f := range map[string]func(*Manifest){
		"short key":    func(m *Manifest) { m.Key = m.Key[:16] },
		"share lost":   func(m *Manifest) { m.Shares = m.Shares[1:] },
		"far node":     func(m *Manifest) { m.Where[0] = uint16(len(m.Nodes)) },
		"K over N":     func(m *Manifest) { m.Params.K = m.Params.N + 1 },
		"odd share":    func(m *Manifest) { m.Params.ShareSize = 1000 },
		"huge file":    func(m *Manifest) { m.Size = MaxFileSize + 1 },
		"version 2":    func(m *Manifest) { m.Version = 2 },
		"short addr":   func(m *Manifest) { m.Shares[3] = m.Shares[3][:31] },
		"no nodes":     func(m *Manifest) { m.Nodes = nil },
		"long node ID": func(m *Manifest) { m.Nodes[0] = make([]byte, MaxNodeID+1) },
	} {
		bad := testManifest(t, 300<<10, 12)
		f(bad)
		enc, err := wireMarshal(bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(enc); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// TestSimulation1000Nodes: a file coded for 1,000 nodes is rebuilt after
// any 30% of them go down at once (several random draws; nodes cannot
// choose, as they cannot link shares), storing 1.6× its size, and not
// after 38% are down (the test can fail). Beyond MaxN nodes, shares go
// to a random N and the chance of a loss is the hypergeometric tail:
// checked against a Monte-Carlo draw.
func TestSimulation1000Nodes(t *testing.T) {
	t.Parallel()
	const nodes = 1000
	data := make([]byte, 600<<10)
	rand.Read(data)
	c, shares, addrs := sealAll(t, data, nodes)
	p := c.Params()
	if p.N != nodes || p.Overhead() > CodeFactor || c.Stripes() != 1 {
		t.Fatalf("1,000 nodes: %d of %d, %d stripes", p.K, p.N, c.Stripes())
	}
	ids := make([][]byte, nodes)
	for i := range ids {
		ids[i] = []byte{byte(i >> 8), byte(i), 'n'}
	}
	where := Place(addrs[0], ids, nil)
	held := make(map[int][]byte) // node → its one share of the stripe
	for j, i := range where {
		if _, dup := held[i]; dup {
			t.Fatalf("node %d holds two shares", i)
		}
		held[i] = shares[0][j]
	}
	stored := 0
	for _, sh := range held {
		stored += len(sh)
	}
	t.Logf("1,000 nodes: %d of %d shares of %d B; %d B stored for %d B (%.2f×)", p.K, p.N, p.ShareSize, stored, len(data), float64(stored)/float64(len(data)))
	fetch := func(dead map[int]bool) ([]byte, error) {
		sh := make([][]byte, p.N)
		for j, i := range where {
			if !dead[i] {
				sh[j] = bytes.Clone(held[i])
			}
		}
		pt, _, err := c.Open(0, sh, addrs[0])
		return pt, err
	}
	for round := range 8 {
		dead := map[int]bool{}
		for _, i := range mrand.Perm(nodes)[:nodes*3/10] {
			dead[i] = true
		}
		pt, err := fetch(dead)
		if err != nil || !bytes.Equal(pt, data) {
			t.Fatalf("round %d, 300 of 1,000 down: %v", round, err)
		}
	}
	dead := map[int]bool{}
	for _, i := range mrand.Perm(nodes)[:p.Tolerates()+1] {
		dead[i] = true
	}
	if _, err := fetch(dead); !errors.Is(err, ErrNotEnough) {
		t.Fatalf("%d of 1,000 down: %v, want ErrNotEnough", p.Tolerates()+1, err)
	}

	// 5,000 nodes, 1,500 down: each stripe's 1,024 shares on random nodes.
	big, _ := ChooseParams(MaxFileSize, 5000)
	want := big.LossProbability(5000, 1500)
	lost, trials := 0, 3000
	for range trials {
		down := 0
		for _, i := range mrand.Perm(5000)[:big.N] {
			if i < 1500 {
				down++
			}
		}
		if down > big.Tolerates() {
			lost++
		}
	}
	t.Logf("5,000 nodes, 30%% down: %d of %d per stripe; loss %.2g per stripe (computed), %d of %d drawn", big.K, big.N, want, lost, trials)
	if want > 1e-4 || lost > 0 {
		t.Errorf("5,000 nodes: loss %.2g per stripe computed, %d of %d drawn", want, lost, trials)
	}
	if p12, _ := ChooseParams(1<<20, 12); p12.LossProbability(12, 4) != 0 || p12.LossProbability(12, 5) != 1 {
		t.Errorf("12 nodes: loss %g with 4 down, %g with 5", p12.LossProbability(12, 4), p12.LossProbability(12, 5))
	}
}
