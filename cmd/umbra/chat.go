package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
)

// How a command without a daemon runs its in-process engine.
const (
	local  = iota // local data only: no network
	online        // send and receive while the command runs
	synced        // online, and read the mailboxes once first
)

// acts, or-ed to a mode, marks a command acting for the user (send, read):
// before it exits, the receipts it owes leave too (see offline.go).
const acts = 8

// withAPI runs f against the daemon of the home, or, if none runs, against
// an engine started in this process for the command's duration (served on
// a loopback port of its own, with a fresh token sent as a header). Either
// way a home without a passphrase gets a one-line warning on stderr.
func withAPI(cmd *cobra.Command, mode int, f func(ctx context.Context, c *api.Client) error) error {
	ctx := cmd.Context()
	home := homeOf(cmd)
	if c, st, ok := api.FindDaemon(ctx, home); ok {
		if st.Locked {
			return errors.New("the daemon for this home waits for its passphrase: unlock it in its web UI, or restart it with UMBRA_PASSPHRASE set")
		}
		if st.Unprotected {
			warnUnprotected(cmd)
		}
		return f(ctx, c)
	}
	log, err := newLogger(cmd)
	if err != nil {
		return err
	}
	direct, _ := cmd.Flags().GetBool("direct")
	pass, err := homePassphrase(cmd, home)
	if err != nil {
		return err
	}
	e, err := openEngine(cmd, client.Config{Home: home, Passphrase: pass, Logger: quietLogger(log, cmd.ErrOrStderr()), Direct: direct, Offline: mode&^acts == local})
	if err != nil {
		return err
	}
	defer e.Close()
	if e.Unprotected() {
		warnUnprotected(cmd)
	}
	e.Start()
	if mode&^acts == synced && e.Online() {
		if err := e.SyncOnce(ctx); err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "umbra: warning:", err)
		}
	}
	srv := api.NewServer(e, log)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go srv.Serve(sctx)
	err = f(withLocalEngine(ctx, e), api.NewClient(srv.URL(), srv.Token()))
	flushLocal(ctx, cmd, e, mode&acts != 0)
	return err
}

// quietLogger keeps in-process engines from chattering on a CLI command
// unless --log-level asks for it.
func quietLogger(l *slog.Logger, w io.Writer) *slog.Logger {
	if l.Enabled(context.Background(), slog.LevelInfo) && !l.Enabled(context.Background(), slog.LevelDebug) {
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return l
}

func printJSONLines[T any](w io.Writer, items []T) error {
	enc := json.NewEncoder(w)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return nil
}

func chatFlags(cmd *cobra.Command) {
	addHomeFlag(cmd)
	cmd.PersistentFlags().Bool("direct", false, "without a daemon: talk to swarm nodes directly instead of through onion paths (debugging)")
}

func contactsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "contacts", Short: "Add, list, rename, remove, verify, block and mute contacts",
		Long: `Add, list, rename and remove contacts; compare safety numbers (verify),
block and unblock any account, mute conversations. Wherever a command takes an account
ID, it also takes the ID in the web UI's groups of 4 characters, or a
contact's name (any case; a name two contacts share is refused).`}
	chatFlags(cmd)
	var name string
	add := &cobra.Command{
		Use:   "add ID [--name NAME]",
		Short: "Add a contact by account ID",
		Long: `Add a contact by account ID: as printed by 'umbra id', or as the web UI
shows it, in groups of 4 characters (quote it, or leave out the spaces).
An existing contact's or request's name works too (with --name: a rename).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				id, err := resolveAccount(ctx, c, args[0])
				if err != nil {
					return err
				}
				var ct client.Contact
				if err := c.Do(ctx, http.MethodPost, "/api/v1/contacts", map[string]string{"id": id, "name": name}, &ct); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Added %s%s\n", ct.ID, nameSuffix(ct.Name))
				return nil
			})
		},
	}
	add.Flags().StringVar(&name, "name", "", "a name to show for this contact")
	var asJSON, blocked bool
	list := &cobra.Command{
		Use:   "list [--blocked] [--json]",
		Short: "List your contacts (or, with --blocked, the accounts you blocked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				path, empty := "/api/v1/contacts", "No contacts yet: umbra contacts add ID"
				if blocked {
					path, empty = "/api/v1/blocked", "No blocked accounts."
				}
				var cs []client.Contact
				if err := c.Do(ctx, http.MethodGet, path, nil, &cs); err != nil {
					return err
				}
				return printContacts(cmd.OutOrStdout(), cs, asJSON, empty)
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	list.Flags().BoolVar(&blocked, "blocked", false, "list the accounts you blocked instead")
	rename := &cobra.Command{
		Use:   "rename ID|NAME NEW-NAME",
		Short: "Change a contact's name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				id, err := resolveAccount(ctx, c, args[0])
				if err != nil {
					return err
				}
				return c.Do(ctx, http.MethodPatch, "/api/v1/contacts/"+url.PathEscape(id), map[string]string{"name": args[1]}, nil)
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove ID|NAME",
		Short: "Remove a contact (the conversation stays; see 'umbra chats delete')",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				id, err := resolveAccount(ctx, c, args[0])
				if err != nil {
					return err
				}
				return c.Do(ctx, http.MethodDelete, "/api/v1/contacts/"+url.PathEscape(id), nil, nil)
			})
		},
	}
	cmd.AddCommand(add, list, rename, remove)
	cmd.AddCommand(trustContactCmds()...)
	return cmd
}

func nameSuffix(n string) string {
	if n == "" {
		return ""
	}
	return " (" + n + ")"
}

func printContacts(w io.Writer, cs []client.Contact, asJSON bool, empty string) error {
	if asJSON {
		return printJSONLines(w, cs)
	}
	if len(cs) == 0 {
		fmt.Fprintln(w, empty)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	marks := anyMarks(cs)
	fmt.Fprintln(tw, "NAME\tACCOUNT ID\tSINCE"+marks)
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s%s\n", c.Name, c.ID, c.AddedAt.Local().Format("2006-01-02"), contactMarks(c, marks != ""))
	}
	return tw.Flush()
}

func requestsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "requests", Short: "Message requests: first messages from people not in your contacts"}
	chatFlags(cmd)
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List message requests",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAPI(cmd, synced, func(ctx context.Context, c *api.Client) error {
				var cs []client.Contact
				if err := c.Do(ctx, http.MethodGet, "/api/v1/requests", nil, &cs); err != nil {
					return err
				}
				return printContacts(cmd.OutOrStdout(), cs, asJSON, "No message requests.")
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	act := func(verb, short string, name *string) *cobra.Command {
		return &cobra.Command{
			Use:   verb + " ID",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
					id, err := resolveAccount(ctx, c, args[0])
					if err != nil {
						return err
					}
					var body any
					if name != nil && *name != "" {
						body = map[string]string{"name": *name}
					}
					if err := c.Do(ctx, http.MethodPost, "/api/v1/requests/"+url.PathEscape(id)+"/"+verb, body, nil); err != nil {
						return err
					}
					suffix := ""
					if name != nil {
						suffix = nameSuffix(strings.TrimSpace(*name))
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%sed %s%s\n", map[string]string{"accept": "Accept", "block": "Block"}[verb], id, suffix)
					return nil
				})
			},
		}
	}
	var acceptName string
	accept := act("accept", "Accept a request: the sender becomes a contact", &acceptName)
	accept.Use = "accept ID [--name NAME]"
	accept.Flags().StringVar(&acceptName, "name", "", "a name to show for the new contact")
	cmd.AddCommand(list, accept, act("block", "Block the sender: their messages are dropped", nil))
	return cmd
}

func sendCmd() *cobra.Command {
	var (
		asJSON  bool
		replyTo string
		group   string
		file    string
	)
	cmd := &cobra.Command{
		Use:   "send ID|NAME TEXT|- | send --group GROUP TEXT|- | send ID|NAME --file PATH [CAPTION]",
		Short: "Send a message to a contact or a group",
		Long: `Encrypt TEXT for a contact and send it; print its ID and state.

Through a running daemon, the command returns at once ("queued"): the
daemon sends it. Without one, it waits (up to 20 s) until a write quorum of
the recipient's swarm holds the message ("sent"). If no node answers, the
message is encrypted and queued in the local database ("queued") and the
next command or daemon that reaches the network sends it; a first message
to a contact needs their prekeys from the network and is refused offline.

With - for TEXT, the message is read from standard input (one final newline
is dropped). A message holds at most ` + maxTextText + `; a longer one is refused.
With --reply MSGID, the message quotes that message of the conversation
(its ID as 'umbra messages' shows it, or its first 6 or more characters).
With --group GROUP (its ID, ID prefix or name), the message goes to the
group (see 'umbra groups').

With --file PATH, the message carries that file (up to 100 MiB; TEXT, if
given, is its caption). The file is encrypted, erasure-coded and stored on
the network's nodes, with a progress bar; the message goes once it is
stored. Without a daemon the command waits for that (Ctrl-C stops it; the
next command or daemon goes on where it stopped); through a daemon it
returns once the daemon has the file.`,
		Example: `  umbra send --home /tmp/alice "$BOB" "hello bob"
  umbra send bob "yes, 8 it is" --reply 3f9a1c
  umbra send --home /tmp/alice "$BOB" - < letter.txt
  umbra send --group club "who's in for Friday?"
  umbra send bob --file holiday.jpg "the beach"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if file != "" {
				if group != "" {
					return cobra.RangeArgs(0, 1)(cmd, args)
				}
				return cobra.RangeArgs(1, 2)(cmd, args)
			}
			if group != "" {
				if len(args) != 1 {
					return fmt.Errorf("with --group, want TEXT|- only, got %d arguments", len(args))
				}
				return nil
			}
			return cobra.ExactArgs(2)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" {
				return sendFileCmd(cmd, args, group, file, replyTo, asJSON)
			}
			text, err := messageText(args[len(args)-1], cmd.InOrStdin())
			if err != nil {
				return err
			}
			if group != "" {
				return sendToGroup(cmd, group, text, replyTo, asJSON)
			}
			return withAPI(cmd, online|acts, func(ctx context.Context, c *api.Client) error {
				to, err := resolveAccount(ctx, c, args[0])
				if err != nil {
					return err
				}
				var m client.Message
				if err := c.Do(ctx, http.MethodPost, "/api/v1/messages", map[string]string{"to": to, "text": text, "reply_to": replyTo}, &m); err != nil {
					return err
				}
				if m.State, err = sentState(ctx, m, nil); err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]string{"id": m.ID, "state": m.State})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", m.ID, m.State)
				return nil
			})
		},
	}
	chatFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"id": ..., "state": ...}`)
	cmd.Flags().StringVar(&replyTo, "reply", "", "quote this message (its ID or first 6+ characters)")
	cmd.Flags().StringVar(&group, "group", "", "send to this group (its ID, ID prefix or name)")
	cmd.Flags().StringVar(&file, "file", "", "send this file (up to 100 MiB); TEXT is then its caption")
	return cmd
}

// maxTextText states the message size limit, client.MaxTextBytes.
var maxTextText = fmt.Sprintf("%d KiB (%d bytes)", client.MaxTextBytes>>10, client.MaxTextBytes)

// messageText is the text 'send' sends: arg, or with arg "-" what in holds
// less one final newline. Either is refused past client.MaxTextBytes.
func messageText(arg string, in io.Reader) (string, error) {
	text := arg
	if arg == "-" {
		// Read past the limit (and a newline) to tell a text at the limit
		// from a longer one, but never the whole of a huge input.
		b, err := io.ReadAll(io.LimitReader(in, client.MaxTextBytes+3))
		if err != nil {
			return "", fmt.Errorf("read the message from standard input: %w", err)
		}
		text = string(b)
		if t, ok := strings.CutSuffix(text, "\r\n"); ok {
			text = t
		} else {
			text = strings.TrimSuffix(text, "\n")
		}
		if len(b) > client.MaxTextBytes+2 {
			return "", fmt.Errorf("the message on standard input is longer than the limit of %s", maxTextText)
		}
	}
	if len(text) > client.MaxTextBytes {
		return "", fmt.Errorf("the message is %d bytes, longer than the limit of %s", len(text), maxTextText)
	}
	if strings.TrimSpace(text) == "" {
		return "", errors.New("empty message (with -, the text is read from standard input)")
	}
	return text, nil
}

func messagesCmd() *cobra.Command {
	var (
		with   string
		group  string
		asJSON bool
		wait   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "messages [--with ID | --group GROUP] [--json] [--wait DURATION]",
		Short: "List messages (first fetching new ones)",
		Long: `List your messages, oldest first. With --with, only the conversation with that
account. With --wait, first wait up to DURATION for a new message to arrive.
Each message shows the first 8 characters of its ID in brackets: enough for
'umbra send --reply', 'react', 'edit' and 'delete'. When no node of the
network answers, it lists the messages kept on this device after a one-line
warning.

With --group GROUP (its ID, ID prefix or name), the group's conversation:
system lines (members added, removed, the group renamed) start with *, and
your own messages show how many members got them ("delivered to 2") and
read them ("read by 1").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if group != "" && (with != "" || wait > 0) {
				return errors.New("--group goes without --with and --wait")
			}
			return withAPI(cmd, synced, func(ctx context.Context, c *api.Client) error {
				if group != "" {
					return groupMessages(ctx, cmd, c, group, asJSON)
				}
				q := url.Values{}
				if with != "" {
					id, err := resolveAccount(ctx, c, with)
					if err != nil {
						return fmt.Errorf("--with: %w", err)
					}
					q.Set("with", id)
				}
				if wait > 0 {
					q.Set("wait", wait.String())
				}
				var ms []client.Message
				if err := c.Do(ctx, http.MethodGet, "/api/v1/messages?"+q.Encode(), nil, &ms); err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return printJSONLines(out, ms)
				}
				if len(ms) == 0 {
					fmt.Fprintln(out, "No messages.")
				}
				// Show contacts by the names given them; strangers by ID,
				// marked as a message request.
				var contacts, requests []client.Contact
				_ = c.Do(ctx, http.MethodGet, "/api/v1/contacts", nil, &contacts)
				_ = c.Do(ctx, http.MethodGet, "/api/v1/requests", nil, &requests)
				who := func(id string) string {
					for _, k := range contacts {
						if k.ID == id && k.Name != "" {
							return k.Name + " (" + short(id) + ")"
						}
					}
					for _, k := range requests {
						if k.ID == id {
							return id + " (message request)"
						}
					}
					return id
				}
				var me map[string]string
				_ = c.Do(ctx, http.MethodGet, "/api/v1/me", nil, &me)
				groupName := groupNames(ctx, c, ms)
				for _, m := range ms {
					if m.Group != "" && m.Kind == client.KindGroupLine { // groups.go
						fmt.Fprintf(out, "%s  * %s: %s\n", m.SentAt.Local().Format("2006-01-02 15:04:05"), groupName(m.Group), m.Text)
						continue
					}
					if m.Notice != "" { // a line the engine wrote (trust.go)
						fmt.Fprintf(out, "%s  * %s: %s\n", m.SentAt.Local().Format("2006-01-02 15:04:05"), who(m.Peer()), m.Text)
						continue
					}
					dir := "from " + who(m.From)
					if m.Outgoing {
						dir = "to   " + who(m.To)
					}
					state := m.State
					if m.Group != "" {
						dir, state = "from "+who(m.From)+" in "+groupName(m.Group), groupState(m)
						if m.Outgoing {
							dir = "to   " + groupName(m.Group)
						}
					}
					text := messageBody(m, who, me["account_id"])
					if m.Kind == client.KindTimerLine { // see profile.go
						text = "(disappearing messages: " + timerText(time.Duration(m.Expire)*time.Second) + ")"
					}
					fmt.Fprintf(out, "%s  [%s]  %s  [%s]\n    %s\n", m.SentAt.Local().Format("2006-01-02 15:04:05"), shortMsgID(m.ID), dir, state, strings.ReplaceAll(text, "\n", "\n    "))
				}
				return nil
			})
		},
	}
	chatFlags(cmd)
	cmd.Flags().StringVar(&with, "with", "", "only the conversation with this account (ID or contact name)")
	cmd.Flags().StringVar(&group, "group", "", "only this group's conversation (its ID, ID prefix or name)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line (id, from, to, text, sent_at, state, reply_to, reactions, edited, deleted)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "first wait up to this long for a new message (e.g. 30s)")
	return cmd
}

func readCmd() *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use:   "read ID|NAME | read --group GROUP",
		Short: "Mark the conversation with ID as read (read receipts: see umbra settings)",
		Long: `Mark every message from ID as read. Read receipts for them leave later,
batched and after a random delay (see 'umbra settings'); with read receipts
turned off ('umbra settings set read-receipts off') none is sent. Without a
daemon, the command sends the receipts it owes before it exits (waiting up
to 20 s), and says so if some are left queued. With --group GROUP, mark
a group's messages read; the group's members see how many read theirs.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if group != "" && len(args) > 0 {
				return fmt.Errorf("with --group, leave out ID|NAME")
			}
			if group != "" {
				return nil
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, synced|acts, func(ctx context.Context, c *api.Client) error {
				if group != "" {
					g, err := findGroup(ctx, c, group)
					if err != nil {
						return err
					}
					var r map[string]int
					if err := c.Do(ctx, http.MethodPost, groupPath(g.ID, "/read"), nil, &r); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%d messages marked read\n", r["marked"])
					return nil
				}
				id, err := resolveAccount(ctx, c, args[0])
				if err != nil {
					return err
				}
				var r map[string]int
				if err := c.Do(ctx, http.MethodPost, "/api/v1/read", map[string]string{"with": id}, &r); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d messages marked read\n", r["marked"])
				return nil
			})
		},
	}
	chatFlags(cmd)
	cmd.Flags().StringVar(&group, "group", "", "mark this group's messages read (its ID, ID prefix or name)")
	return cmd
}

// short abbreviates an account ID for display next to a name.
func short(id string) string {
	if len(id) > 16 {
		return id[:10] + "…" + id[len(id)-4:]
	}
	return id
}
