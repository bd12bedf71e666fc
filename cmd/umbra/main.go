// Command umbra is Umbra's single binary: service node, local devnet,
// demo, and the low-level mailbox tool.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	if err := root.ExecuteContext(ctx); err != nil {
		lvl, _ := root.PersistentFlags().GetString("log-level")
		fmt.Fprintln(os.Stderr, "umbra:", errorText(err, lvl == "debug"))
		os.Exit(1)
	}
}

// errorText is how a failed command's error is shown: whole at debug log
// level, else its first line only, saying where the rest is (errors that
// join libp2p dial errors run to a dozen lines).
func errorText(err error, debug bool) string {
	s := err.Error()
	first, rest, multi := strings.Cut(s, "\n")
	if debug || !multi || strings.TrimSpace(rest) == "" {
		return s
	}
	return strings.TrimRight(first, " :") + " (more with --log-level debug)"
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "umbra",
		Short: "Umbra: a decentralized, metadata-private messenger",
		Long: `Umbra is a decentralized, metadata-private messenger. Messages are stored by
a network of service nodes that anyone can run; each mailbox is replicated on
a swarm of nodes and survives the loss of a third of the network.

Every flag can also be set from an environment variable: UMBRA_ followed by
the flag name in capitals with dashes as underscores (--pow-bits is
UMBRA_POW_BITS). Repeatable flags take a comma-separated list.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return bindEnv(cmd)
		},
	}
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(initCmd(), idCmd(), contactsCmd(), requestsCmd(), sendCmd(), messagesCmd(), searchCmd(), reactCmd(), editCmd(), deleteCmd(), readCmd(), chatsCmd(), settingsCmd(), daemonCmd(),
		profileCmd(), timerCmd(), backupCmd(), passphraseCmd(), phraseCmd(), groupsCmd(), filesCmd(),
		nodeCmd(), devnetCmd(), mailboxCmd(), demoCmd(), benchCmd(), networkCmd())
	return root
}

// bindEnv fills every flag not given on the command line from UMBRA_<NAME>.
func bindEnv(cmd *cobra.Command) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		env := "UMBRA_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		if sv, isSlice := f.Value.(pflag.SliceValue); isSlice {
			if err := sv.Replace(strings.Split(v, ",")); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", env, err))
		}
	})
	return errors.Join(errs...)
}

func newLogger(cmd *cobra.Command) (*slog.Logger, error) {
	s, _ := cmd.Flags().GetString("log-level")
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(s)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl})), nil
}
