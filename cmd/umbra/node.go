package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/privnet"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

func nodeCmd() *cobra.Command {
	var (
		cfg       = node.DefaultConfig()
		bootstrap []string
		minAge    time.Duration
		netFile   string
		clockSkew time.Duration
	)
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a service node",
		Long: `Run an Umbra service node. It stores the mailboxes of the swarms it belongs
to, replicates every write to a quorum of its swarm before acknowledging it,
repairs replicas by anti-entropy, and gossips the signed list of live nodes.

On start it writes its full dialable address to DIR/addr (and, with --admin,
its admin URL to DIR/admin; --pprof adds Go's profiler under /debug/pprof/
there, which is off by default). SIGTERM or Ctrl-C stops it gracefully; an
acknowledged message is on disk, so even kill -9 loses none.`,
		Example: `  umbra node --data ./n1 --admin 127.0.0.1:7001
  umbra node --data ./n2 --bootstrap ./n1/addr --admin 127.0.0.1:7002`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			cfg.Logger = log
			cfg.Version = version
			cfg.Params.MinAgeMs = minAge.Milliseconds()
			if netFile != "" {
				f, err := privnet.ReadFile(netFile)
				if err != nil {
					return err
				}
				if f.Network != "" {
					if cmd.Flags().Changed("network") && cfg.Params.Network != f.Network {
						return fmt.Errorf("--network %q, but %s names network %q", cfg.Params.Network, netFile, f.Network)
					}
					cfg.Params.Network = f.Network
				}
				cfg.Operator = f.Operator
				cfg.Bootstrap = append(cfg.Bootstrap, f.Addrs...)
			}
			if clockSkew != 0 {
				// Tests only (the netlab nemesis): the node's whole clock,
				// records, expiries and replies, runs this far off.
				log.Warn("test clock offset in effect", "offset", clockSkew)
				cfg.Now = func() time.Time { return time.Now().Add(clockSkew) }
			}
			for _, b := range bootstrap {
				addrs, err := expandBootstrap(b)
				if err != nil {
					return err
				}
				cfg.Bootstrap = append(cfg.Bootstrap, addrs...)
			}
			if cfg.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(cfg.MemoryLimit)
			}
			n, err := node.New(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "umbra node %s running\n  peer:  %s\n", version, n.ID())
			for _, a := range n.Addrs() {
				fmt.Fprintf(cmd.OutOrStdout(), "  addr:  %s\n", a)
			}
			if a := n.AdminAddr(); a != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "  admin: http://%s/status\n", a)
			}
			<-cmd.Context().Done()
			log.Info("stopping")
			return n.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", "", "data directory for keys and the database (created if missing; required)")
	f.StringSliceVar(&cfg.Listen, "listen", cfg.Listen, "multiaddr to listen on (repeatable)")
	f.StringSliceVar(&cfg.Announce, "announce", cfg.Announce, "multiaddr others dial this node at, announced instead of the listen addresses, e.g. /ip4/203.0.113.7/tcp/4001 behind a port forward (repeatable)")
	f.StringSliceVar(&bootstrap, "bootstrap", nil, "node multiaddr with /p2p/<id>, or a file of them one per line, e.g. a devnet's bootstrap.txt (repeatable)")
	f.StringVar(&cfg.Admin, "admin", "", "serve /healthz, /status and /metrics on this loopback host:port")
	f.BoolVar(&cfg.Pprof, "pprof", false, "also serve Go's profiler at /debug/pprof/ on the admin address (unauthenticated: for debugging only)")
	f.StringVar(&cfg.Params.Network, "network", cfg.Params.Network, "network name; nodes of other networks are refused")
	f.StringVar(&netFile, "network-file", "", "network file: its name, its signed bootstrap list and, for a private network, the operator's key (see umbra network)")
	f.StringVar(&cfg.AllowFile, "allow-list", "", "private network: the operator's signed allow-list file, reread for newer versions")
	f.IntVar(&cfg.Params.Replication, "replication", cfg.Params.Replication, "swarm size R (a network parameter: every node must agree)")
	f.IntVar(&cfg.Params.PoWBits, "pow-bits", cfg.Params.PoWBits, "admission proof-of-work difficulty in bits (a network parameter)")
	f.DurationVar(&minAge, "min-age", time.Duration(cfg.Params.MinAgeMs)*time.Millisecond,
		"how long a node must have been reachable before it takes swarm seats (a network parameter: every node must agree)")
	f.DurationVar(&cfg.RecordTTL, "record-ttl", cfg.RecordTTL, "lifetime of this node's record unless refreshed")
	f.DurationVar(&cfg.GossipInterval, "gossip-interval", cfg.GossipInterval, "node-record gossip period while records change (an idle network gossips up to 8 times less often)")
	f.DurationVar(&cfg.SyncInterval, "sync-interval", cfg.SyncInterval, "anti-entropy period")
	f.DurationVar(&cfg.SyncSettle, "sync-settle", cfg.SyncSettle, "mailboxes written this recently wait for the next anti-entropy round")
	f.DurationVar(&cfg.ProbeInterval, "probe-interval", cfg.ProbeInterval, "how often unreachable nodes are probed (after 30s down, the wait doubles up to 5 times this)")
	f.Int64Var(&cfg.MaxStoreBytes, "max-store-bytes", cfg.MaxStoreBytes, "refuse new messages once this many bytes (messages, tombstones and signed deletions) are stored")
	f.Int64Var(&cfg.ShareQuota, "share-quota", cfg.ShareQuota, "bytes of file shares (attachments) this node keeps, in shares.db in the data directory; new shares are refused past it, and past half of it each share asks for more proof-of-work")
	f.DurationVar(&clockSkew, "test-clock-offset", 0, "tests only: run the node's clock this far off the system clock (UMBRA_TEST_CLOCK_OFFSET)")
	_ = f.MarkHidden("test-clock-offset")
	f.BoolVar(&cfg.DialFromListenAddr, "test-dial-from-listen-addr", false, "tests only: dial from the listen address and port (a loopback devnet's nodes are told apart by their 127.x addresses)")
	_ = f.MarkHidden("test-dial-from-listen-addr")
	f.Int64Var(&cfg.MemoryLimit, "memory-limit", cfg.MemoryLimit, "soft limit in bytes for the Go heap (the garbage collector works harder near it; 0 for none; GOMEMLIMIT wins)")
	return cmd
}

// expandBootstrap turns a --bootstrap value into multiaddrs: a value that
// starts with "/" is a multiaddr; anything else is a file of them.
func expandBootstrap(v string) ([]string, error) {
	if strings.HasPrefix(v, "/ip4/") || strings.HasPrefix(v, "/ip6/") {
		if !strings.Contains(v, "/p2p/") {
			return nil, fmt.Errorf("--bootstrap %q: a multiaddr must end in /p2p/<peer id>", v)
		}
		return []string{v}, nil
	}
	return swarmclient.ReadNetworkFile(v)
}
