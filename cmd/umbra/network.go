package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/fsutil"
	"github.com/umbra-im/umbra/internal/privnet"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

// The files of a private network's operator directory.
const (
	opKeyFile   = "operator.key" // the operator's Ed25519 key (0600; keep it secret)
	opNetFile   = "network.txt"  // the network file for nodes and clients
	opAllowFile = "allow.list"   // the signed allow-list for nodes
)

func networkCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Set your account's network file; create and run a private network",
		Long: `A private network admits only the nodes its operator allows. The operator's
Ed25519 key signs the network file's bootstrap list and each version of the
allow-list of node peer IDs; nodes and clients check both against the
operator's public key, which the network file carries.

The operator directory (--dir) holds operator.key (secret, mode 0600),
network.txt (give it to nodes as --network-file and to clients as --network)
and allow.list (give it to a node as --allow-list; nodes pass newer lists on
to each other).

'umbra network set FILE' gives your own account (its home folder) a network
file, public or private.`,
		Example: `  umbra network set /tmp/umbra-devnet/bootstrap.txt --home ./alice
  umbra network create --name acme --out ./acme
  umbra network allow --dir ./acme 12D3KooW...
  umbra network sign-bootstrap --dir ./acme /ip4/192.0.2.1/tcp/4001/p2p/12D3KooW...
  umbra node --data ./n1 --network-file ./acme/network.txt --allow-list ./acme/allow.list`,
	}
	cmd.AddCommand(networkCreateCmd(), networkEditCmd("allow", true), networkEditCmd("deny", false), networkSignBootstrapCmd(), networkSetCmd())
	return cmd
}

func networkCreateCmd() *cobra.Command {
	var name, out string
	cmd := &cobra.Command{
		Use:   "create --name NAME [--out DIR]",
		Short: "Make an operator key, a network file and an empty allow-list",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return errors.New("--name is required")
			}
			if out == "" {
				out = name + "-network"
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			keyPath := filepath.Join(out, opKeyFile)
			key, err := privnet.NewOperatorKey(keyPath)
			if err != nil {
				return err
			}
			f := &privnet.File{Network: name, Operator: key.Public().(ed25519.PublicKey)}
			if _, err := privnet.ParseFile(f.Format()); err != nil {
				return err
			}
			if err := fsutil.WriteFileAtomic(filepath.Join(out, opNetFile), f.Format(), 0o644); err != nil {
				return err
			}
			if err := writeAllow(out, key, privnet.NewAllowList(name, 1, nil)); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "private network %q created in %s\n", name, out)
			fmt.Fprintf(w, "  operator key: %s (mode 0600: keep it secret and backed up; it alone changes the allow-list)\n", keyPath)
			fmt.Fprintf(w, "  network file: %s\n  allow-list:   %s (version 1, empty)\n", filepath.Join(out, opNetFile), filepath.Join(out, opAllowFile))
			fmt.Fprintln(w, "Next: start each node with --network-file and --allow-list, then 'umbra network allow --dir", out, "PEER_ID'.")
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "network name (required)")
	cmd.Flags().StringVar(&out, "out", "", "operator directory (default ./NAME-network)")
	return cmd
}

func networkEditCmd(verb string, add bool) *cobra.Command {
	var dir string
	short := "Sign a new allow-list version with these nodes added"
	if !add {
		short = "Sign a new allow-list version with these nodes removed"
	}
	cmd := &cobra.Command{
		Use:   verb + " --dir DIR PEER_ID...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, f, cur, err := loadOperator(dir)
			if err != nil {
				return err
			}
			ids := map[peer.ID]bool{}
			for _, id := range cur.IDs() {
				ids[id] = true
			}
			for _, a := range args {
				id, err := peer.Decode(a)
				if err != nil {
					return fmt.Errorf("%q is not a peer ID: %w", a, err)
				}
				ids[id] = add
			}
			var list []peer.ID
			for id, in := range ids {
				if in {
					list = append(list, id)
				}
			}
			next := privnet.NewAllowList(f.Network, cur.Version+1, list)
			if err := writeAllow(dir, key, next); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "allow-list version %d: %d nodes, written to %s\n", next.Version, len(next.Nodes), filepath.Join(dir, opAllowFile))
			return nil
		},
	}
	if !add {
		cmd.Aliases = []string{"remove"}
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "operator directory (made by network create)")
	return cmd
}

func networkSignBootstrapCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "sign-bootstrap --dir DIR ADDR_OR_FILE...",
		Short: "Put these bootstrap addresses in the network file, signed",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, f, _, err := loadOperator(dir)
			if err != nil {
				return err
			}
			f.Addrs = nil
			for _, a := range args {
				addrs, err := expandBootstrap(a)
				if err != nil {
					return err
				}
				f.Addrs = append(f.Addrs, addrs...)
			}
			if err := f.SignBootstrap(key); err != nil {
				return err
			}
			if _, err := privnet.ParseFile(f.Format()); err != nil {
				return err
			}
			path := filepath.Join(dir, opNetFile)
			if err := fsutil.WriteFileAtomic(path, f.Format(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d bootstrap addresses, signed\n", path, len(f.Addrs))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "operator directory (made by network create)")
	return cmd
}

func loadOperator(dir string) (ed25519.PrivateKey, *privnet.File, *privnet.AllowList, error) {
	key, err := privnet.LoadOperatorKey(filepath.Join(dir, opKeyFile))
	if err != nil {
		return nil, nil, nil, err
	}
	f, err := privnet.ReadFile(filepath.Join(dir, opNetFile))
	if err != nil {
		return nil, nil, nil, err
	}
	if !f.Private() || !key.Public().(ed25519.PublicKey).Equal(f.Operator) {
		return nil, nil, nil, errors.New("the network file does not carry this operator's key")
	}
	b, err := os.ReadFile(filepath.Join(dir, opAllowFile))
	if err != nil {
		return nil, nil, nil, err
	}
	cur, err := privnet.OpenAllowList(b, f.Operator, f.Network)
	if err != nil {
		return nil, nil, nil, err
	}
	return key, f, cur, nil
}

func writeAllow(dir string, key ed25519.PrivateKey, l *privnet.AllowList) error {
	raw, err := l.Sign(key)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, opAllowFile), raw, 0o644)
}

// networkHelp says what a client's network file is and where to get one.
const networkHelp = "a network file lists node addresses, one per line " +
	"(/ip4/.../tcp/.../p2p/PEER_ID); 'umbra devnet' writes one as DIR/bootstrap.txt, " +
	"and a private network's operator hands out its network.txt"

// readClientNetwork reads and checks the network file a client joins
// through: it must parse and list at least one node address, each ending
// in /p2p/PEER_ID. Its errors say what is wrong and what a network file is.
func readClientNetwork(path string) (*privnet.File, error) {
	if path == "" {
		return nil, fmt.Errorf("no network file given: pass --network FILE (%s)", networkHelp)
	}
	nf, err := swarmclient.OpenNetworkFile(path)
	if err == nil {
		_, err = swarmclient.ParseBootstrap(nf.Addrs)
	}
	if err != nil {
		return nil, fmt.Errorf("%s is not a usable network file: %w (%s)", path, err, networkHelp)
	}
	return nf, nil
}

func networkSetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set FILE [--home DIR]",
		Short: "Give your account a network file (or replace the one it has)",
		Long: `Check FILE and install it as the network file of the account in your home
folder (HOME/network.txt), replacing the one it has: the account then joins
the network through the nodes FILE lists. A network file lists node
addresses, one per line (/ip4/.../tcp/.../p2p/PEER_ID); 'umbra devnet'
writes one as DIR/bootstrap.txt, and a private network's operator hands out
its network.txt. The node list and guards kept from the old network are
dropped the next time the account runs.

It refuses while an engine runs for the home (a daemon with its account
open, or another command): stop the daemon first, or restart it with
--network FILE, which does the same.`,
		Example: `  umbra network set /tmp/umbra-devnet/bootstrap.txt --home /tmp/alice`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			home := homeOf(cmd)
			nf, err := readClientNetwork(args[0])
			if err != nil {
				return err
			}
			if err := client.SetNetwork(home, nf); err != nil {
				return fmt.Errorf("set the network of %s: %w", home, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: network file set (%d node addresses, from %s)\n", client.NetworkPath(home), len(nf.Addrs), args[0])
			return nil
		},
	}
	addHomeFlag(cmd)
	return cmd
}
