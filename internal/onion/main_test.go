package onion

import (
	"flag"
	"os"
	"testing"
)

// TestMain lowers the default of -test.fuzzminimizetime (60s) to 1s unless
// it is given on the command line. The fuzz inputs here are whole packets
// (2 KiB and up) that stop being valid as soon as a byte is removed, so the
// fuzzer's O(n²) minimisation of every new-coverage input cannot shrink
// them and would otherwise stall all workers for a minute each time
// ("execs: N (0/sec)").
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.fuzzminimizetime" {
			set = true
		}
	})
	if !set {
		if err := flag.Set("test.fuzzminimizetime", "1s"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
