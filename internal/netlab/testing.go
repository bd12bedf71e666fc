//go:build linux

package netlab

import (
	"os"
	"testing"
)

// NewForTest builds a lab for a test and closes it when the test ends,
// failed or not. Without root it skips the test: the lab needs network
// namespaces (CI runs as root).
func NewForTest(tb testing.TB, cfg Config) *Lab {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("netlab: needs root for network namespaces; CI (.ci/run) runs as root")
	}
	l, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Error(err)
		}
	})
	return l
}
