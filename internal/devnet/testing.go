package devnet

import (
	"context"
	"testing"
	"time"
)

// StartForTest starts a devnet for a test, stops it when the test ends, and
// waits (up to a minute) until every node sees all the others; any failure
// fails the test.
func StartForTest(tb testing.TB, cfg Config) *Devnet {
	tb.Helper()
	d, err := Start(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.WaitReady(ctx, len(d.Procs)); err != nil {
		tb.Fatal(err)
	}
	return d
}
