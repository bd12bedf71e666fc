package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

func mailboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mailbox",
		Short: "Low-level mailbox tool for operators and tests",
		Long: `Store and read raw messages in mailboxes of a node network, without
accounts or encryption. A mailbox is named by the public half of a key pair;
the secret half is needed to read it. Output is JSON for scripts.`,
	}
	cmd.AddCommand(mailboxNewCmd(), mailboxPutCmd(), mailboxGetCmd())
	return cmd
}

func mailboxNewCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "new",
		Short: "Create a mailbox key pair and print it as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := mailbox.NewKey()
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]string{"mailbox": k.ID().String(), "secret": k.Secret()})
		},
	}
}

func addNetworkFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVar(dst, "network", "", "network file: node multiaddrs one per line (a devnet's bootstrap.txt); required")
	cmd.Flags().Bool("direct", false, "talk to swarm nodes directly instead of through 3-hop onion paths (debugging: nodes then see your address)")
}

func dialNetwork(cmd *cobra.Command, file string) (*swarmclient.Client, error) {
	direct, _ := cmd.Flags().GetBool("direct")
	if file == "" {
		return nil, errors.New("--network FILE is required (for a devnet: DIR/bootstrap.txt)")
	}
	nf, err := swarmclient.OpenNetworkFile(file)
	if err != nil {
		return nil, err
	}
	c, err := swarmclient.Dial(cmd.Context(), nf.Addrs, swarmclient.Options{Direct: direct, Operator: nf.Operator})
	var na *swarmclient.NoAnswerError
	switch {
	case errors.As(err, &na):
		// One line; the dial errors (several lines each) at debug level.
		if log, lerr := newLogger(cmd); lerr == nil {
			log.Debug("no node answered", "err", err)
		}
		return nil, &client.UnreachableError{File: file, Nodes: len(nf.Addrs), Asked: min(na.Asked, len(nf.Addrs)), Err: err}
	case err != nil:
		return nil, fmt.Errorf("cannot reach the network in %s: %w", file, err)
	}
	return c, nil
}

func mailboxPutCmd() *cobra.Command {
	var (
		network, mbox string
		ttl           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "put --network FILE --mailbox HEX [--ttl DURATION] TEXT",
		Short: "Store TEXT (or standard input, with -) in a mailbox",
		Long: `Store a message in a mailbox's swarm. It returns once a write quorum of the
swarm holds the message on disk, and prints JSON with the message hash and
the number of verified node receipts.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := mailbox.ParseID(mbox)
			if err != nil {
				return fmt.Errorf("--mailbox: %w", err)
			}
			data := []byte(args[0])
			if args[0] == "-" {
				if data, err = io.ReadAll(io.LimitReader(os.Stdin, node.MaxMessageSize+1)); err != nil {
					return err
				}
			}
			if len(data) > node.MaxMessageSize {
				return fmt.Errorf("message is larger than %d KiB", node.MaxMessageSize>>10)
			}
			if ttl > node.MaxTTL {
				return fmt.Errorf("--ttl may be at most %s", node.MaxTTL)
			}
			c, err := dialNetwork(cmd, network)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.Put(cmd.Context(), id, 0, ttl, data)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{
				"hash": hex.EncodeToString(res.Hash[:]), "receipts": res.Receipts,
				"mailbox": id.String(), "expires": res.Expiry.UTC().Format(time.RFC3339),
			})
		},
	}
	addNetworkFlag(cmd, &network)
	cmd.Flags().StringVar(&mbox, "mailbox", "", "mailbox ID (hex, from 'umbra mailbox new'); required")
	cmd.Flags().DurationVar(&ttl, "ttl", node.DefaultTTL, "how long the network keeps the message (max 720h)")
	return cmd
}

func mailboxGetCmd() *cobra.Command {
	var (
		network, secret string
		wait            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "get --network FILE --secret HEX [--wait DURATION]",
		Short: "Print every message of a mailbox, one JSON object per line",
		Long: `Read a mailbox from its swarm, merging the answers of all reachable swarm
nodes. With --wait, if the mailbox is empty, wait up to DURATION for a
message to arrive (the nodes hold the request open and answer at once).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := mailbox.ParseSecret(secret)
			if err != nil {
				return fmt.Errorf("--secret: %w", err)
			}
			c, err := dialNetwork(cmd, network)
			if err != nil {
				return err
			}
			defer c.Close()
			msgs, err := c.Get(cmd.Context(), key, wait)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			for _, m := range msgs {
				o := map[string]any{
					"hash": hex.EncodeToString(m.Hash[:]), "namespace": m.Namespace,
					"timestamp": m.Timestamp.UTC().Format(time.RFC3339Nano), "expires": m.Expiry.UTC().Format(time.RFC3339),
				}
				if utf8.Valid(m.Data) {
					o["data"] = string(m.Data)
				} else {
					o["data"], o["encoding"] = base64.StdEncoding.EncodeToString(m.Data), "base64"
				}
				if err := enc.Encode(o); err != nil {
					return err
				}
			}
			return nil
		},
	}
	addNetworkFlag(cmd, &network)
	cmd.Flags().StringVar(&secret, "secret", "", "mailbox secret (hex, from 'umbra mailbox new'); required")
	cmd.Flags().DurationVar(&wait, "wait", 0, "if empty, wait up to this long for a message (e.g. 30s)")
	return cmd
}
