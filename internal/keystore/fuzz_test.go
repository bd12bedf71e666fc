package keystore

import (
	"testing"

	"github.com/umbra-im/umbra/internal/wire"
)

// FuzzParseKDFRecord: the stored record is the one thing Open decodes
// before the passphrase is checked. Whatever parses has bounded costs.
func FuzzParseKDFRecord(f *testing.F) {
	for _, p := range []Argon2Params{DefaultArgon2, LightArgon2} {
		r, _ := newKDFRecord(p)
		b, _ := wire.Marshal(r)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := parseKDFRecord(in)
		if err != nil {
			return
		}
		p := r.params()
		if p.Time > maxArgonTime || p.MemoryKiB > maxArgonMemory || p.Threads > maxArgonThreads || len(r.Salt) != saltSize {
			t.Fatalf("unbounded params accepted: %+v", p)
		}
	})
}
