package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
)

// setting is one user setting the CLI can show and change.
type setting struct {
	name string // on the command line
	key  string // in the API's JSON
	help string
	get  func(client.Settings) bool
}

var settingsList = []setting{
	{name: "read-receipts", key: "read_receipts",
		help: "tell contacts when you have read their messages (delivered receipts are always sent)",
		get:  func(s client.Settings) bool { return s.ReadReceipts }},
	{name: "typing-indicators", key: "typing_indicators",
		help: "tell contacts while you type and see when they do (off while read receipts are off)",
		get:  func(s client.Settings) bool { return s.TypingIndicators }},
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func settingsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "settings [--json]",
		Short: "Show or change your settings (read receipts, typing indicators)",
		Long: `Show your settings, kept in your home's encrypted database; with 'set',
change one. Through the daemon when it runs for this home.

  read-receipts  on (the default) or off. On, contacts see when you have
                 read their messages ('umbra read', or opening a chat in
                 the web UI). Off, messages are marked read on this device
                 only and no read receipt is sent.

Receipts never leave the moment a message arrives or is read: the receipts
owed to a contact are batched and sent after a random delay (5 s plus an
exponential wait of mean 25 s, at most 2 minutes), so that the receipt does
not tie your mailboxes to the message it acknowledges. Without a daemon,
receipts owed when a command ends wait in the database and go out from the
next daemon or command that runs long enough.

  typing-indicators  on (the default) or off. On, contacts see "typing…"
                 while you write to them (in the web UI), and you see
                 theirs. Off whenever read-receipts is off: then none is
                 sent or shown, whatever this says. Unlike receipts, a
                 typing indicator leaves at once (it is worth nothing
                 late), so it tells the network's nodes when you type.`,
		Example: `  umbra settings
  umbra settings set read-receipts off
  umbra settings --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				var st client.Settings
				if err := c.Do(ctx, http.MethodGet, "/api/v1/settings", nil, &st); err != nil {
					return err
				}
				return printSettings(cmd, st, asJSON)
			})
		},
	}
	chatFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print the settings as one JSON object ({"read_receipts": true})`)
	var setJSON bool
	set := &cobra.Command{
		Use:   "set NAME on|off",
		Short: "Change a setting: umbra settings set read-receipts off",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			i := slices.IndexFunc(settingsList, func(s setting) bool { return s.name == args[0] })
			if i < 0 {
				var names []string
				for _, s := range settingsList {
					names = append(names, s.name)
				}
				return fmt.Errorf("no setting %q: the settings are %s", args[0], strings.Join(names, ", "))
			}
			var on bool
			switch strings.ToLower(args[1]) {
			case "on", "true", "yes":
				on = true
			case "off", "false", "no":
			default:
				return fmt.Errorf("%s: want on or off, not %q", args[0], args[1])
			}
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				var st client.Settings
				if err := c.Do(ctx, http.MethodPut, "/api/v1/settings", map[string]bool{settingsList[i].key: on}, &st); err != nil {
					return err
				}
				if setJSON {
					return printSettings(cmd, st, true)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], onOff(settingsList[i].get(st)))
				return nil
			})
		},
	}
	set.Flags().BoolVar(&setJSON, "json", false, "print all the settings as one JSON object")
	cmd.AddCommand(set)
	return cmd
}

func printSettings(cmd *cobra.Command, st client.Settings, asJSON bool) error {
	out := cmd.OutOrStdout()
	if asJSON {
		return json.NewEncoder(out).Encode(st)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, s := range settingsList {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.name, onOff(s.get(st)), s.help)
	}
	return tw.Flush()
}
