package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the network: latency percentiles and throughput",
	}
	cmd.AddCommand(benchStoreCmd(), benchE2ECmd(), benchFilesCmd())
	return cmd
}

func benchStoreCmd() *cobra.Command {
	var (
		network     string
		nodes       int
		messages    int
		concurrency int
		size        int
		mailboxes   int
		cpuprofile  string
	)
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Store-ack latency (p50/p95/p99) and acked stores per second",
		Long: `Measure direct stores against a network: first latency with one request at
a time, then throughput with --concurrency requests in flight. Without
--network it starts its own devnet of --nodes processes (and reports their
idle memory first).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if cpuprofile != "" {
				f, err := os.Create(cpuprofile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			if network == "" {
				dir, err := os.MkdirTemp("", "umbra-bench-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				d, err := startDevnet(ctx, io.Discard, dir, nodes, 8)
				if err != nil {
					return err
				}
				defer d.Stop()
				network = d.BootstrapFile()
				// Let start-up work settle before measuring idle memory, and
				// the nodes come of age (devnet.MinAge), so that placement
				// does not change under the measurement.
				time.Sleep(devnet.MinAge + time.Second)
				printRSS(out, d)
			}
			c, err := dialNetwork(cmd, network)
			if err != nil {
				return err
			}
			defer c.Close()
			keys := make([]mailbox.ID, mailboxes)
			for i := range keys {
				k, _ := mailbox.NewKey()
				keys[i] = k.ID()
			}
			data := make([]byte, size)
			rand.Read(data)
			fmt.Fprintf(out, "network: %d nodes, R=%d; message %d B\n", len(c.Nodes()), c.Params().Replication, size)
			mode := "3-hop onion"
			if direct, _ := cmd.Flags().GetBool("direct"); direct {
				mode = "direct"
			}
			lat, _, err := runStores(ctx, c, keys, data, max(messages/10, 200), 1)
			if err != nil {
				return err
			}
			printLatency(out, "store-ack latency, "+mode+" (1 in flight)", lat, 0)
			lat, err = runGets(ctx, c, max(messages/10, 200))
			if err != nil {
				return err
			}
			printLatency(out, "get round trip, "+mode+" (1 in flight)", lat, 0)
			lat, el, err := runStores(ctx, c, keys, data, messages, concurrency)
			if err != nil {
				return err
			}
			printLatency(out, fmt.Sprintf("store-ack under load, %s (%d in flight)", mode, concurrency), lat, el)
			return nil
		},
	}
	addNetworkFlag(cmd, &network)
	cmd.Flags().Lookup("network").Usage = "network file (default: start a devnet)"
	cmd.Flags().IntVar(&nodes, "nodes", 12, "devnet size when no --network is given")
	cmd.Flags().IntVar(&messages, "messages", 20000, "stores in the throughput phase")
	cmd.Flags().IntVar(&concurrency, "concurrency", 64, "requests in flight in the throughput phase")
	cmd.Flags().IntVar(&size, "size", 256, "message size in bytes")
	cmd.Flags().IntVar(&mailboxes, "mailboxes", 1000, "mailboxes the stores are spread over")
	cmd.Flags().StringVar(&cpuprofile, "cpuprofile", "", "write the client's CPU profile to this file")
	return cmd
}

func runStores(ctx context.Context, c *swarmclient.Client, keys []mailbox.ID, data []byte, n, conc int) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	start := time.Now()
	err := inParallel(ctx, n, conc, func(i int) error {
		t := time.Now()
		_, err := c.Put(ctx, keys[i%len(keys)], 0, time.Hour, data)
		lat[i] = time.Since(t)
		return err
	})
	el := time.Since(start)
	if err != nil {
		return nil, 0, fmt.Errorf("store failed during benchmark: %w", err)
	}
	return lat, el, nil
}

// runGets times single retrieve requests (one node, one round trip) of a
// mailbox holding one message.
func runGets(ctx context.Context, c *swarmclient.Client, n int) ([]time.Duration, error) {
	key, err := mailbox.NewKey()
	if err != nil {
		return nil, err
	}
	if _, err := c.Put(ctx, key.ID(), 0, time.Hour, []byte("bench")); err != nil {
		return nil, err
	}
	members := c.Swarm(key.ID())
	// The acknowledgement came with a write quorum; the fan-out to the
	// rest of the swarm goes on behind it. Time reads once all hold it.
	for _, m := range members {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			resp, err := c.Retrieve(ctx, m, key, nil, 0)
			if err == nil && len(resp.Messages) == 1 {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("swarm node %s does not hold the benchmark's message: %v", m.ID.ShortString(), err)
			}
		}
	}
	lat := make([]time.Duration, n)
	for i := range lat {
		t := time.Now()
		resp, err := c.Retrieve(ctx, members[i%len(members)], key, nil, 0)
		lat[i] = time.Since(t)
		if err != nil {
			return nil, fmt.Errorf("get failed during benchmark: %w", err)
		}
		if len(resp.Messages) != 1 {
			return nil, fmt.Errorf("get returned %d messages, want 1", len(resp.Messages))
		}
	}
	return lat, nil
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func printLatency(out io.Writer, what string, lat []time.Duration, elapsed time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(out, "%s: n=%d p50=%s p95=%s p99=%s max=%s", what, len(lat),
		ms(percentile(lat, 50)), ms(percentile(lat, 95)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]))
	if elapsed > 0 {
		fmt.Fprintf(out, " throughput=%.0f acked stores/s", float64(len(lat))/elapsed.Seconds())
	}
	fmt.Fprintln(out)
}

// printRSS prints the resident memory of each devnet node process.
func printRSS(out io.Writer, d *devnet.Devnet) {
	var rss []int
	for _, p := range d.Procs {
		if kb := procRSSKB(p.Pid()); kb > 0 {
			rss = append(rss, kb)
		}
	}
	if len(rss) == 0 {
		return
	}
	sort.Ints(rss)
	sum := 0
	for _, r := range rss {
		sum += r
	}
	fmt.Fprintf(out, "idle node RSS: min=%.1fMB median=%.1fMB max=%.1fMB (mean %.1fMB over %d nodes)\n",
		float64(rss[0])/1024, float64(rss[len(rss)/2])/1024, float64(rss[len(rss)-1])/1024, float64(sum)/1024/float64(len(rss)), len(rss))
}

func procRSSKB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.Atoi(f[1])
				return kb
			}
		}
	}
	return 0
}
