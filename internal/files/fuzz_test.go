package files

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/umbra-im/umbra/internal/wire"
)

// wireMarshal encodes m without checking it (for broken manifests).
func wireMarshal(m *Manifest) ([]byte, error) { return wire.Marshal(m) }

// testManifest is a valid manifest of a file of size bytes on nodes
// nodes, with random addresses.
func testManifest(t testing.TB, size int64, nodes int) *Manifest {
	t.Helper()
	p, err := ChooseParams(size, nodes)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Version: 1, Size: size, Key: make([]byte, KeySize), Params: p, Expiry: 1 << 40}
	rand.Read(m.Key)
	for i := range nodes {
		m.Nodes = append(m.Nodes, []byte{byte(i), 'n', 'o', 'd', 'e'})
	}
	for j := range p.Stripes(size) * p.N {
		a := make([]byte, 32)
		rand.Read(a)
		m.Shares = append(m.Shares, a)
		m.Where = append(m.Where, uint16(j%nodes))
	}
	return m
}

// FuzzParseManifest: a manifest from a peer either parses into one that
// encodes back to a manifest that parses the same, or is an error; never
// a panic, nor an allocation beyond the input's bounds.
func FuzzParseManifest(f *testing.F) {
	for _, size := range []int64{0, 5000, 300 << 10} {
		b, err := testManifest(f, size, 12).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatalf("a parsed manifest does not encode: %v", err)
		}
		m2, err := ParseManifest(again)
		if err != nil || m2.Size != m.Size || m2.Params != m.Params || len(m2.Shares) != len(m.Shares) {
			t.Fatalf("re-parse: %v", err)
		}
		for j := range m.Shares {
			_ = m.Node(j) // in range
		}
		for i := range m.Params.Stripes(m.Size) {
			_ = m.Stripe(i)
		}
	})
}

// FuzzOpen: shares from hostile nodes (any bytes, any length, in any
// place) never make Open panic or return a stripe other than the one
// sealed.
func FuzzOpen(f *testing.F) {
	data := make([]byte, 20<<10)
	rand.Read(data)
	c, shares, addrs := sealAll(f, data, 12)
	f.Add([]byte{}, uint8(0), uint8(0))
	f.Add(shares[0][3][:100], uint8(3), uint8(4))
	f.Add(bytes.Repeat([]byte{1}, c.Params().ShareSize), uint8(7), uint8(2))
	f.Fuzz(func(t *testing.T, bad []byte, at, lose uint8) {
		sh := without(shares[0], nil)
		n := c.Params().N
		sh[int(at)%n] = bad
		for k := range int(lose) % n {
			sh[(int(at)+1+k)%n] = nil
		}
		pt, _, err := c.Open(0, sh, addrs[0])
		if err == nil && !bytes.Equal(pt, data) {
			t.Fatal("Open returned a stripe that was not sealed")
		}
	})
}
