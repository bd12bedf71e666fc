package files

import (
	"crypto/rand"
	"fmt"
	"testing"
)

// BenchmarkCode: sealing (encrypt, code, address every share) and
// opening (check addresses, rebuild with the first N-K shares missing,
// the worst case, decrypt) of 8 MiB, on the 12-node
// devnet's coding (8 of 12) and on 1,000 nodes (625 of 1,000, leopard
// GF(2^16)). MB/s is of file bytes.
func BenchmarkCode(b *testing.B) {
	const size = 8 << 20
	data := make([]byte, size)
	rand.Read(data)
	for _, nodes := range []int{12, 1000} {
		p, err := ChooseParams(size, nodes)
		if err != nil {
			b.Fatal(err)
		}
		key := make([]byte, KeySize)
		rand.Read(key)
		c, err := NewCoder(key, p, size)
		if err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("%dof%d", p.K, p.N)
		b.Run("seal/"+name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				for i := range c.Stripes() {
					off, n := c.Span(i)
					sh, err := c.Seal(i, data[off:off+n])
					if err != nil {
						b.Fatal(err)
					}
					for _, s := range sh {
						AddressOf(s)
					}
				}
			}
		})
		var shares [][][]byte
		var addrs [][]Address
		for i := range c.Stripes() {
			off, n := c.Span(i)
			sh, _ := c.Seal(i, data[off:off+n])
			as := make([]Address, len(sh))
			for j := range sh {
				as[j] = AddressOf(sh[j])
			}
			shares, addrs = append(shares, sh), append(addrs, as)
		}
		b.Run("open/"+name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				for i := range c.Stripes() {
					sh := make([][]byte, p.N)
					copy(sh[p.Tolerates():], shares[i][p.Tolerates():]) // no data share: all rebuilt
					if _, _, err := c.Open(i, sh, addrs[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(c.Stripes()*p.N*p.ShareSize)/float64(size), "stored/B")
		})
	}
}
