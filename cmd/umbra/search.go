package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
)

func searchCmd() *cobra.Command {
	var (
		with   string
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "search TEXT [--with ID|NAME] [--limit N] [--json]",
		Short: "Search your message history",
		Long: `Search the messages kept on this device, newest first. A message matches
when each word of TEXT starts a word of it, in any case ("hel wor" finds
"Hello, World"). With --with, only the conversation with that account.

Works with or without a running daemon and without the network: the search
runs on local data only. The index is kept in memory, never on disk.`,
		Example: `  umbra search "dinner friday"
  umbra search invoice --with bob --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > client.MaxSearchLimit {
				return fmt.Errorf("--limit: want 1 to %d", client.MaxSearchLimit)
			}
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				q := url.Values{"q": {args[0]}, "limit": {strconv.Itoa(limit)}}
				if with != "" {
					id, err := resolveAccount(ctx, c, with)
					if err != nil {
						return fmt.Errorf("--with: %w", err)
					}
					q.Set("peer", id)
				}
				var rs []client.SearchResult
				if err := c.Do(ctx, http.MethodGet, "/api/v1/search?"+q.Encode(), nil, &rs); err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return printJSONLines(out, rs)
				}
				if len(rs) == 0 {
					fmt.Fprintln(out, "No messages match.")
					return nil
				}
				printResults(out, rs, isTerminal(out))
				return nil
			})
		},
	}
	chatFlags(cmd)
	cmd.Flags().StringVar(&with, "with", "", "only the conversation with this account (ID or contact name)")
	cmd.Flags().IntVar(&limit, "limit", client.DefaultSearchLimit, fmt.Sprintf("at most this many messages (up to %d)", client.MaxSearchLimit))
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line: message, peer, name, snippet (segments, the matching ones with \"match\": true)")
	return cmd
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printResults prints one result on two lines: time, direction and
// contact, then the snippet (its matches in bold on a terminal).
func printResults(w io.Writer, rs []client.SearchResult, bold bool) {
	for _, r := range rs {
		who := r.Peer
		if r.Name != "" {
			who = r.Name + " (" + short(r.Peer) + ")"
		}
		dir := "from"
		if r.Message.Outgoing {
			dir = "to  "
		}
		var b strings.Builder
		for _, s := range r.Snippet {
			if s.Match && bold {
				b.WriteString("\x1b[1m" + s.Text + "\x1b[0m")
			} else {
				b.WriteString(s.Text)
			}
		}
		fmt.Fprintf(w, "%s  %s %s  %s\n    %s\n", r.Message.SentAt.Local().Format("2006-01-02 15:04"), dir, who, r.Message.ID, b.String())
	}
}
