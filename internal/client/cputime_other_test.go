//go:build !unix

package client_test

import (
	"testing"
	"time"
)

// cpuTime is not measured here (no getrusage): the benchmarks' CPU figures
// read 0 on this platform.
func cpuTime(b *testing.B) time.Duration { return 0 }
