package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/devnet"
)

func devnetCmd() *cobra.Command {
	var (
		nodes   int
		dir     string
		powBits int
	)
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a local network of N node processes on 127.0.0.1",
		Long: `Start N 'umbra node' processes on 127.0.0.1, each with its own data folder
DIR/node-<i>/ (holding addr, pid, admin and node.log), and write
DIR/bootstrap.txt with one node address per line: pass it to other commands
as --network DIR/bootstrap.txt. Ctrl-C or SIGTERM stops every node.
Running it again on the same DIR restarts the same nodes with their data.`,
		Example: `  umbra devnet --nodes 12 --dir /tmp/umbra-devnet`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := startDevnet(cmd.Context(), cmd.OutOrStdout(), dir, nodes, powBits)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "\nPress Ctrl-C to stop the devnet.")
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.OutOrStdout(), "stopping nodes...")
			return d.Stop()
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 12, "number of node processes")
	cmd.Flags().StringVar(&dir, "dir", "", "folder for the nodes' data (default: a new temporary folder)")
	cmd.Flags().IntVar(&powBits, "pow-bits", 8, "admission proof-of-work difficulty (low for a devnet)")
	return cmd
}

// startDevnet starts the processes, waits for them to see each other and
// prints the node table.
func startDevnet(ctx context.Context, out io.Writer, dir string, nodes, powBits int) (*devnet.Devnet, error) {
	if nodes < 1 || nodes > 200 {
		return nil, fmt.Errorf("--nodes must be between 1 and 200")
	}
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "umbra-devnet-"); err != nil {
			return nil, err
		}
	}
	dir, _ = filepath.Abs(dir)
	fmt.Fprintf(out, "Starting %d nodes in %s ...\n", nodes, dir)
	d, err := devnet.Start(devnet.Config{Dir: dir, Nodes: nodes, PoWBits: powBits})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	start := time.Now()
	if err := d.WaitReady(wctx, nodes); err != nil {
		d.Stop()
		return nil, fmt.Errorf("%w (node logs: %s/node-*/node.log)", err, dir)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPID\tADMIN\tADDRESS")
	for _, p := range d.Procs {
		fmt.Fprintf(tw, "%d\t%d\t%s/status\t%s\n", p.Index, p.Pid(), p.AdminURL(), p.Addr)
	}
	tw.Flush()
	fmt.Fprintf(out, "\nAll %d nodes see each other (%.1fs).\nNetwork file: %s\n", nodes, time.Since(start).Seconds(), d.BootstrapFile())
	return d, nil
}
