package node_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
)

// BenchmarkStoreQuorum measures acknowledged stores through a 12-node
// in-process network on loopback: every op is a client request answered
// after 3 of 5 replicas hold the message on disk. It reports the ack
// latency percentiles and stores per second.
func BenchmarkStoreQuorum(b *testing.B) {
	for _, conc := range []int{1, 64} {
		b.Run(fmt.Sprintf("inflight=%d", conc), func(b *testing.B) {
			tn := startNet(b, 12)
			ctx := context.Background()
			c := tn.client(ctx)
			keys := make([]mailbox.ID, 256)
			for i := range keys {
				k, _ := mailbox.NewKey()
				keys[i] = k.ID()
			}
			data := make([]byte, 256)
			lat := make([]time.Duration, b.N)
			var mu sync.Mutex
			next := 0
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < conc; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						mu.Lock()
						i := next
						next++
						mu.Unlock()
						if i >= b.N {
							return
						}
						t0 := time.Now()
						if _, err := c.Put(ctx, keys[i%len(keys)], 0, time.Hour, data); err != nil {
							b.Error(err)
							return
						}
						lat[i] = time.Since(t0)
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(b.N)/el.Seconds(), "stores/s")
		})
	}
}
