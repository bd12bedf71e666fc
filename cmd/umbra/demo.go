package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

func demoCmd() *cobra.Command {
	var (
		dir   string
		nodes int
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a local network and two users, alice and bob, ready to chat",
		Long: `Start a local network of node processes on 127.0.0.1, create two users,
alice and bob, who have each other as contacts, and run their daemons. It
prints their account IDs, their web UI addresses (open them in two browser
tabs to chat) and the commands to chat from a terminal. Ctrl-C stops
everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if dir == "" {
				var err error
				if dir, err = os.MkdirTemp("", "umbra-demo-"); err != nil {
					return err
				}
			}
			dir, _ = filepath.Abs(dir)
			d, err := startDevnet(ctx, out, filepath.Join(dir, "network"), nodes, 8)
			if err != nil {
				return err
			}
			defer func() {
				fmt.Fprintln(out, "stopping nodes...")
				d.Stop()
			}()
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			quiet := quietLogger(log, cmd.ErrOrStderr())
			type user struct {
				name, home, id string
				d              *daemon
				e              *client.Engine
			}
			users := []*user{{name: "alice"}, {name: "bob"}}
			nf, err := swarmclient.OpenNetworkFile(d.BootstrapFile())
			if err != nil {
				return err
			}
			fmt.Fprintln(out, "\nCreating alice and bob...")
			for _, u := range users {
				u.home = filepath.Join(dir, u.name)
				if !client.Exists(u.home) {
					if _, err := createAccount(u.home, nf, "", passphrase()); err != nil {
						return err
					}
				}
				ud, err := startDaemon(ctx, daemonConfig{Home: u.home, Listen: "127.0.0.1:0", Passphrase: passphrase(), Log: quiet})
				if err != nil {
					return fmt.Errorf("start %s's daemon: %w", u.name, err)
				}
				defer ud.Stop()
				u.d, u.e = ud, ud.srv.Engine()
				u.id = u.e.AccountID()
				if err := u.e.PublishPrekeys(ctx); err != nil {
					return fmt.Errorf("publish %s's prekeys: %w", u.name, err)
				}
			}
			if _, err := users[0].e.AddContact(users[1].id, "bob"); err != nil {
				return err
			}
			if _, err := users[1].e.AddContact(users[0].id, "alice"); err != nil {
				return err
			}
			for _, u := range users {
				fmt.Fprintf(out, "\n%s\n  account: %s\n  home:    %s\n  api:     %s\n  web UI:  %s\n", u.name, u.id, u.home, u.d.srv.URL(), u.d.UIURL())
			}
			if passphrase() == "" {
				fmt.Fprintln(out, "\nWithout UMBRA_PASSPHRASE the demo accounts have no passphrase; the web UI warns about it.")
			}
			fmt.Fprintf(out, `
Open the two web UI addresses in two browser tabs (or windows) and chat
between alice and bob: they already have each other as contacts. Each
address carries its daemon's token after the #, which the browser never
sends; the page keeps it for its tab.

Or from a terminal, send a message from alice to bob:

  go run ./cmd/umbra send --home %[1]s %[2]s "hello bob"

and read bob's messages (it waits up to 10 s for one to arrive):

  go run ./cmd/umbra messages --home %[3]s --wait 10s

Press Ctrl-C to stop the demo.
`, users[0].home, users[1].id, users[1].home)
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder for the demo's network and users (default: a new temporary folder)")
	cmd.Flags().IntVar(&nodes, "nodes", 12, "number of node processes")
	return cmd
}
