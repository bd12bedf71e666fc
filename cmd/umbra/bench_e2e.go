package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

func benchE2ECmd() *cobra.Command {
	var (
		network  string
		nodes    int
		messages int
	)
	cmd := &cobra.Command{
		Use:   "e2e",
		Short: "Delivery latency (send call to plaintext at the recipient) and messages/s",
		Long: `Create two users on a network and measure end-to-end delivery: the time from
the sender's send call to the recipient's engine holding the decrypted
message, through onion paths, PQXDH/Double Ratchet and the swarms. First one
message at a time (latency percentiles), then --messages queued at once
(throughput). Without --network it starts its own devnet of --nodes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			dir, err := os.MkdirTemp("", "umbra-bench-e2e-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if network == "" {
				d, err := startDevnet(ctx, io.Discard, filepath.Join(dir, "net"), nodes, 8)
				if err != nil {
					return err
				}
				defer d.Stop()
				network = d.BootstrapFile()
				time.Sleep(devnet.MinAge + time.Second) // the nodes come of age: placement settles
			}
			addrs, err := swarmclient.ReadNetworkFile(network)
			if err != nil {
				return err
			}
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			var es [2]*client.Engine
			for i, name := range []string{"alice", "bob"} {
				home := filepath.Join(dir, name)
				if _, err := client.Init(home, "", addrs, ""); err != nil {
					return err
				}
				e, err := client.Open(ctx, client.Config{Home: home, Logger: quiet})
				if err != nil {
					return err
				}
				defer e.Close()
				e.Start()
				if err := e.PublishPrekeys(ctx); err != nil {
					return err
				}
				es[i] = e
			}
			alice, bob := es[0], es[1]
			if _, err := alice.AddContact(bob.AccountID(), "bob"); err != nil {
				return err
			}
			if _, err := bob.AddContact(alice.AccountID(), "alice"); err != nil {
				return err
			}
			arrived := map[string]time.Time{}
			var mu sync.Mutex
			got := make(chan struct{}, messages+1000)
			ch, stop := bob.Subscribe()
			defer stop()
			go func() {
				for ev := range ch {
					if ev.Type == client.EventMessage && ev.Message != nil && !ev.Message.Outgoing {
						mu.Lock()
						arrived[ev.Message.ID] = time.Now()
						mu.Unlock()
						got <- struct{}{}
					}
				}
			}()
			wait := func(n int, d time.Duration) error {
				t := time.NewTimer(d)
				defer t.Stop()
				for i := 0; i < n; i++ {
					select {
					case <-got:
					case <-t.C:
						return fmt.Errorf("only %d of %d messages arrived within %s", i, n, d)
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return nil
			}
			// Warm up: the first message sets up the session (PQXDH).
			if _, err := alice.Send(ctx, bob.AccountID(), "warm-up"); err != nil {
				return err
			}
			if err := wait(1, 30*time.Second); err != nil {
				return err
			}
			n := max(messages/10, 50)
			lat := make([]time.Duration, 0, n)
			for i := 0; i < n; i++ {
				start := time.Now()
				m, err := alice.Send(ctx, bob.AccountID(), fmt.Sprintf("latency %d", i))
				if err != nil {
					return err
				}
				if err := wait(1, 30*time.Second); err != nil {
					return err
				}
				mu.Lock()
				lat = append(lat, arrived[m.ID].Sub(start))
				mu.Unlock()
			}
			printLatency(out, "e2e delivery latency, 3-hop onion (1 in flight)", lat, 0)
			start := time.Now()
			ids := make([]string, 0, messages)
			starts := make(map[string]time.Time, messages)
			for i := 0; i < messages; i++ {
				t0 := time.Now()
				m, err := alice.Queue(ctx, bob.AccountID(), fmt.Sprintf("load %d", i))
				if err != nil {
					return err
				}
				ids = append(ids, m.ID)
				starts[m.ID] = t0
			}
			if err := wait(messages, 5*time.Minute); err != nil {
				return err
			}
			el := time.Since(start)
			lat = lat[:0]
			mu.Lock()
			for _, id := range ids {
				lat = append(lat, arrived[id].Sub(starts[id]))
			}
			mu.Unlock()
			printLatency(out, fmt.Sprintf("e2e delivery under load (%d queued at once)", messages), lat, 0)
			fmt.Fprintf(out, "e2e throughput: %d messages in %.1fs = %.0f messages/s\n", messages, el.Seconds(), float64(messages)/el.Seconds())
			return nil
		},
	}
	addNetworkFlag(cmd, &network)
	cmd.Flags().Lookup("network").Usage = "network file (default: start a devnet)"
	cmd.Flags().IntVar(&nodes, "nodes", 12, "devnet size when no --network is given")
	cmd.Flags().IntVar(&messages, "messages", 500, "messages in the throughput phase")
	return cmd
}
