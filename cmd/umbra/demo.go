package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func demoCmd() *cobra.Command {
	var (
		dir   string
		nodes int
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a local network and show how to use it",
		Long: `Start a local network of node processes on 127.0.0.1 and print commands to
try. (The chat client and its two demo users arrive with the client work;
until then the demo runs the node network and the mailbox tool.)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			d, err := startDevnet(cmd.Context(), out, dir, nodes, 8)
			if err != nil {
				return err
			}
			net := d.BootstrapFile()
			fmt.Fprintf(out, `
The chat client is not built yet: this demo runs the node network only.
Try it from another terminal:

  go run ./cmd/umbra mailbox new            # prints {"mailbox": M, "secret": S}
  go run ./cmd/umbra mailbox put --network %[1]s --mailbox M "hello"
  go run ./cmd/umbra mailbox get --network %[1]s --secret S

Kill any 4 nodes with kill -9 (their pids are in the table above) and get
again: every acknowledged message is still there.

Press Ctrl-C to stop.
`, net)
			<-cmd.Context().Done()
			fmt.Fprintln(out, "stopping nodes...")
			return d.Stop()
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder for the network's data (default: a new temporary folder)")
	cmd.Flags().IntVar(&nodes, "nodes", 12, "number of node processes")
	return cmd
}
