package pow

import (
	"crypto/sha256"
	"testing"
)

func TestZeros(t *testing.T) {
	for _, c := range []struct {
		h    [32]byte
		want int
	}{
		{[32]byte{0x80}, 0},
		{[32]byte{0x01}, 7},
		{[32]byte{0, 0x40}, 9},
		{[32]byte{}, 256},
	} {
		if got := Zeros(c.h); got != c.want {
			t.Errorf("Zeros(%x...) = %d, want %d", c.h[:2], got, c.want)
		}
	}
}

func TestSolveCheck(t *testing.T) {
	prefix := []byte("umbra/test\x00subject")
	for _, bits := range []int{0, 1, 8, 12} {
		n, err := Solve(prefix, bits, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !Check(prefix, n, bits) {
			t.Fatalf("%d bits: solved nonce %d does not check", bits, n)
		}
		if d := Digest(prefix, n); Zeros(d) < bits {
			t.Fatalf("%d bits: digest %x", bits, d)
		}
		// Solve returns the smallest nonce: every smaller one fails.
		for m := uint64(0); m < n; m++ {
			if Check(prefix, m, bits) {
				t.Fatalf("%d bits: nonce %d < %d also checks", bits, m, n)
			}
		}
	}
	// Bound to the prefix: another subject needs its own work.
	n, _ := Solve(prefix, 16, nil)
	if Check([]byte("umbra/test\x00other"), n, 16) && Check([]byte("umbra/test\x00other2"), n, 16) {
		t.Fatal("a nonce proves work for unrelated prefixes")
	}
}

func TestDigestLayout(t *testing.T) {
	got := Digest([]byte("ab"), 0x0102030405060708)
	want := sha256.Sum256([]byte{'a', 'b', 1, 2, 3, 4, 5, 6, 7, 8})
	if got != want {
		t.Fatalf("Digest layout changed: %x, want %x", got, want)
	}
}

func TestSolveInterrupted(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	if _, err := Solve([]byte("x"), 200, stop); err != ErrInterrupted {
		t.Fatalf("Solve with a closed stop: %v", err)
	}
}
