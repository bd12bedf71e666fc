package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
)

// Trust commands: 'contacts verify', 'contacts block/unblock',
// 'contacts mute/unmute' and 'chats delete'.

// resolveAny is resolveAccount that also knows blocked accounts' names
// (to unblock or look at one by name).
func resolveAny(ctx context.Context, c *api.Client, arg string) (string, error) {
	if id, ok := parseAccountText(arg); ok {
		return id, nil
	}
	var known []client.Contact
	for _, path := range []string{"/api/v1/contacts", "/api/v1/requests", "/api/v1/blocked"} {
		var cs []client.Contact
		if err := c.Do(ctx, http.MethodGet, path, nil, &cs); err != nil {
			return "", err
		}
		known = append(known, cs...)
	}
	return resolveAmong(arg, known)
}

// trustContactCmds are the 'contacts' subcommands of this file.
func trustContactCmds() []*cobra.Command {
	return []*cobra.Command{verifyCmd(), blockCmd(), unblockCmd(),
		muteCmd("mute", true, "Mute a conversation: no notifications in the web UI"),
		muteCmd("unmute", false, "Unmute a conversation: notifications in the web UI again")}
}

func verifyCmd() *cobra.Command {
	var mark, unmark, asJSON, noQR bool
	cmd := &cobra.Command{
		Use:   "verify ID|NAME [--mark | --unmark] [--json] [--no-qr]",
		Short: "Show the safety number with a contact; mark it verified",
		Long: `Show the safety number you share with a contact: 60 digits in 12 groups of
5, and the same digits as a QR code. Your contact sees the very same number
(in 'umbra contacts verify' or the web UI's "Verify safety number").

Compare it with them in person, or over a call where you recognise their
voice. If it matches, the account ID you added is really theirs, and no one
in the middle handed you another: mark the contact verified with --mark.
The web UI then shows a verified badge next to their name. --unmark takes
the mark away.

The number is computed from both accounts' identity keys (an account ID is
its identity key), so it never changes for a contact: if they reinstall or
restore their account, the conversation shows that their session was reset,
and the number stays the same.`,
		Example: `  umbra contacts verify Bob
  umbra contacts verify Bob --mark`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if mark && unmark {
				return errors.New("--mark and --unmark exclude each other")
			}
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				id, err := resolveAny(ctx, c, args[0])
				if err != nil {
					return err
				}
				if mark || unmark {
					if err := c.Do(ctx, http.MethodPut, "/api/v1/contacts/"+url.PathEscape(id)+"/verified", map[string]bool{"verified": mark}, nil); err != nil {
						return err
					}
				}
				var sn api.SafetyNumberAnswer
				if err := c.Do(ctx, http.MethodGet, "/api/v1/contacts/"+url.PathEscape(id)+"/safety-number", nil, &sn); err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return json.NewEncoder(out).Encode(sn.SafetyNumber)
				}
				return printSafetyNumber(out, sn.SafetyNumber, !noQR, mark, unmark)
			})
		},
	}
	chatFlags(cmd)
	cmd.Flags().BoolVar(&mark, "mark", false, "mark the contact verified (after comparing the number with them)")
	cmd.Flags().BoolVar(&unmark, "unmark", false, "take the verified mark away")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"peer", "name", "number", "groups", "verified"}`)
	cmd.Flags().BoolVar(&noQR, "no-qr", false, "do not draw the QR code")
	return cmd
}

func printSafetyNumber(w io.Writer, sn *client.SafetyNumber, qr, marked, unmarked bool) error {
	who := sn.Peer
	if sn.Name != "" {
		who = sn.Name + " (" + short(sn.Peer) + ")"
	}
	fmt.Fprintf(w, "Safety number with %s:\n\n", who)
	for i := 0; i < len(sn.Groups); i += 4 {
		fmt.Fprintf(w, "    %s\n", strings.Join(sn.Groups[i:min(i+4, len(sn.Groups))], "  "))
	}
	fmt.Fprintln(w)
	if qr {
		if err := printQR(w, sn.Number); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	switch {
	case marked:
		fmt.Fprintln(w, "Marked verified.")
	case unmarked:
		fmt.Fprintln(w, "Verified mark removed.")
	case sn.Verified:
		fmt.Fprintln(w, "Verified: you marked this number as compared.")
	default:
		fmt.Fprintln(w, "Not verified. Compare the number with them, then: umbra contacts verify "+sn.Peer+" --mark")
	}
	if !sn.ResetAt.IsZero() {
		fmt.Fprintf(w, "Their session was last reset %s (a reinstall or restore; the number did not change).\n", sn.ResetAt.Local().Format("2006-01-02 15:04"))
	}
	return nil
}

func blockCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "block ID|NAME",
		Short: "Block an account: their messages are dropped",
		Long: `Block any account: a contact, a message request, or an account ID you have
never talked to. Messages from it are dropped unread from then on, and you
cannot write to it. They are not told. The conversation so far stays
(delete it with 'umbra chats delete'). List blocked accounts with
'umbra contacts list --blocked'; undo with 'umbra contacts unblock'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				id, err := resolveAny(ctx, c, args[0])
				if err != nil {
					return err
				}
				if err := c.Do(ctx, http.MethodPost, "/api/v1/contacts/"+url.PathEscape(id)+"/block", nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Blocked %s\n", id)
				return nil
			})
		},
	}
}

func unblockCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unblock ID|NAME",
		Short: "Unblock an account",
		Long: `Unblock an account: it becomes again what it was (a contact, or a message
request). Messages it sent while blocked were dropped and do not come back.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				id, err := resolveAny(ctx, c, args[0])
				if err != nil {
					return err
				}
				var ct client.Contact
				if err := c.Do(ctx, http.MethodPost, "/api/v1/contacts/"+url.PathEscape(id)+"/unblock", nil, &ct); err != nil {
					return err
				}
				what := "a contact"
				if ct.State == client.ContactRequest {
					what = "a message request"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Unblocked %s%s: %s again\n", id, nameSuffix(ct.Name), what)
				return nil
			})
		},
	}
}

func muteCmd(verb string, muted bool, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ID|NAME",
		Short: short,
		Long: short + `. A muted conversation still receives messages, counts them as unread
and sends receipts; the web UI just shows no browser notification for it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				id, err := resolveAccount(ctx, c, args[0])
				if err != nil {
					return err
				}
				var ct client.Contact
				if err := c.Do(ctx, http.MethodPut, "/api/v1/contacts/"+url.PathEscape(id)+"/muted", map[string]bool{"muted": muted}, &ct); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%sd %s%s\n", strings.ToUpper(verb[:1])+verb[1:], id, nameSuffix(ct.Name))
				return nil
			})
		},
	}
}

func chatsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "chats", Short: "Manage conversations (delete a chat's history on this device)",
		Long: `Manage conversations. 'umbra chats delete ID|NAME' deletes a conversation's
messages on this device and keeps the contact; 'umbra contacts remove'
does the opposite (forgets the contact, keeps the messages).`}
	chatFlags(cmd)
	var asJSON bool
	del := &cobra.Command{
		Use:   "delete ID|NAME [--json]",
		Short: "Delete the messages of a conversation on this device (the contact stays)",
		Long: `Delete every message of the conversation with an account, in both
directions, from this device. Only your copy goes: nothing is sent, and
the other side keeps theirs. The contact stays in your contacts and new
messages arrive as before; to forget the contact too, also run
'umbra contacts remove'. A message still queued for sending is sent all
the same. This cannot be undone.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				id, err := resolveAny(ctx, c, args[0])
				if err != nil {
					return err
				}
				var r map[string]int
				if err := c.Do(ctx, http.MethodDelete, "/api/v1/conversations/"+url.PathEscape(id), nil, &r); err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"peer": id, "deleted": r["deleted"]})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted %d messages with %s on this device; the contact stays\n", r["deleted"], id)
				return nil
			})
		},
	}
	del.Flags().BoolVar(&asJSON, "json", false, `print {"peer": ..., "deleted": N}`)
	cmd.AddCommand(del)
	return cmd
}

// anyMarks is the header of the last column of 'contacts list' ("\tMARKS")
// when a contact is verified or muted, else "".
func anyMarks(cs []client.Contact) string {
	for _, c := range cs {
		if c.Verified || c.Muted {
			return "\tMARKS"
		}
	}
	return ""
}

// contactMarks is that column's cell (with its tab, when shown): verified,
// muted.
func contactMarks(c client.Contact, shown bool) string {
	if !shown {
		return ""
	}
	var m []string
	if c.Verified {
		m = append(m, "verified")
	}
	if c.Muted {
		m = append(m, "muted")
	}
	return "\t" + strings.Join(m, ", ")
}
