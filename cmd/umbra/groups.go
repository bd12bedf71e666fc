package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
)

// Groups: 'umbra groups ...' over /api/v1/groups, and the --group flag of
// send, messages, read, react, edit and delete.

const groupRefHelp = `GROUP is the group's ID, its first characters (8 or more, as 'umbra
groups list' shows them) or its name (when no other group has it).`

const memberHelp = `MEMBER is an account ID or a contact's name.`

// groupPath is the API path of group ref (ID, prefix or name), plus rest.
func groupPath(ref, rest string) string {
	return "/api/v1/groups/" + url.PathEscape(strings.TrimSpace(ref)) + rest
}

// findGroup fetches group ref; an unknown one gets an error that says
// where the names are.
func findGroup(ctx context.Context, c *api.Client, ref string) (*client.Group, error) {
	if strings.TrimSpace(ref) == "" {
		return nil, fmt.Errorf("no group given: want a group's ID, ID prefix or name")
	}
	var g client.Group
	if err := c.Do(ctx, http.MethodGet, groupPath(ref, ""), nil, &g); err != nil {
		return nil, groupErr(err)
	}
	return &g, nil
}

// groupErr adds the way to list groups to "no such group".
func groupErr(err error) error {
	if err != nil && strings.HasPrefix(err.Error(), client.ErrNoGroup.Error()) {
		return fmt.Errorf("%w (see 'umbra groups list')", err)
	}
	return err
}

// resolveMembers turns MEMBER arguments into account IDs.
func resolveMembers(ctx context.Context, c *api.Client, args []string) ([]string, error) {
	ids := make([]string, 0, len(args))
	for _, a := range args {
		id, err := resolveAccount(ctx, c, a)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// groupsSent sends, for a command without a daemon, the group controls
// (invitations, new secrets) a change queued: the engine hands them to
// its outbox in its sync, and withAPI flushes the outbox before exit.
func groupsSent(ctx context.Context, cmd *cobra.Command) {
	e := localEngine(ctx)
	if e == nil || !e.Online() {
		return
	}
	if err := e.SyncOnce(ctx); err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "umbra: warning:", err)
	}
}

// shortGroupID is the part of a group ID 'groups list' shows: enough to
// name it.
func shortGroupID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// memberName is how a member is shown: "you", the contact's name, or a
// shortened account ID.
func memberName(m client.GroupMember) string {
	switch {
	case m.You:
		return "you"
	case m.Name != "":
		return m.Name
	}
	return short(m.ID)
}

func printGroup(w io.Writer, g *client.Group) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", g.Name)
	if g.Description != "" {
		fmt.Fprintf(tw, "Description:\t%s\n", g.Description)
	}
	fmt.Fprintf(tw, "ID:\t%s\n", g.ID)
	status := g.Status
	if g.Role != "" && g.Status == client.GroupJoined {
		status += " (" + g.Role + ")"
	}
	fmt.Fprintf(tw, "Status:\t%s\n", status)
	if g.InvitedBy != "" {
		fmt.Fprintf(tw, "Invited by:\t%s\n", inviterName(g))
	}
	fmt.Fprintf(tw, "Epoch:\t%d\n", g.Epoch)
	if g.Unread > 0 {
		fmt.Fprintf(tw, "Unread:\t%d\n", g.Unread)
	}
	tw.Flush()
	fmt.Fprintf(w, "Members (%d):\n", len(g.Members))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, m := range g.Members {
		mark := " "
		if m.Role == "admin" {
			mark = "*"
		}
		fmt.Fprintf(tw, "  %s %s\t%s\t%s\n", mark, memberName(m), m.ID, m.Role)
	}
	tw.Flush()
	if g.Status == client.GroupInvited {
		fmt.Fprintf(w, "You are invited: umbra groups accept %s (or decline %s)\n", shortGroupID(g.ID), shortGroupID(g.ID))
	}
}

// inviterName names who invited us: a member's name if known.
func inviterName(g *client.Group) string {
	for _, m := range g.Members {
		if m.ID == g.InvitedBy && m.Name != "" {
			return m.Name + " (" + short(m.ID) + ")"
		}
	}
	return g.InvitedBy
}

// mustAdmin refuses, before asking the engine, what only an admin of g
// may do, saying why.
func mustAdmin(g *client.Group, what string) error {
	if g.Status == client.GroupJoined && g.Role != "admin" {
		return fmt.Errorf("only an admin of %q can %s: you are a plain member (see 'umbra groups info %s')", g.Name, what, shortGroupID(g.ID))
	}
	return nil
}

// groupResult prints a group after a change: as JSON, or done and its
// name, ID and member count.
func groupResult(cmd *cobra.Command, g *client.Group, asJSON bool, done string) error {
	if asJSON {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(g)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %q (%s): %s, %d members\n", done, g.Name, shortGroupID(g.ID), g.Status, len(g.Members))
	return nil
}

func groupsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "Create, list and manage groups",
		Long: `Create, list and manage group conversations. A group's members are
accounts; admins add, remove, promote and demote members and rename the
group. Someone who has you as a contact adds you at once; otherwise you
get an invitation that 'groups list' shows, to accept or decline.

Send to a group with 'umbra send --group GROUP TEXT', read it with
'umbra messages --group GROUP'; 'read', 'react', 'edit' and 'delete' take
--group too.

` + groupRefHelp + "\n" + memberHelp,
		Example: `  umbra groups create club --description "Friday dinners" bob carol
  umbra groups list
  umbra send --group club "who's in for Friday?"
  umbra messages --group club`,
	}
	chatFlags(cmd)
	cmd.AddCommand(groupsListCmd(), groupsCreateCmd(), groupsInfoCmd(), groupsRenameCmd(), groupsAvatarCmd(), groupsTimerCmd())
	for _, op := range []struct{ name, short, done string }{
		{"add", "Add members (admins only)", "Added to"},
		{"remove", "Remove members (admins only)", "Removed from"},
		{"promote", "Make members admins (admins only)", "Promoted in"},
		{"demote", "Make admins plain members (admins only)", "Demoted in"},
	} {
		cmd.AddCommand(groupMembersCmd(op.name, op.short, op.done))
	}
	for _, op := range []struct{ name, short, long, done string }{
		{"leave", "Leave a group", `Leave a group: the others are told, an admin gives them a fresh key, and
you no longer read it. Its messages stay on this device.`, "Left"},
		{"accept", "Accept an invitation to a group", `Accept an invitation ('groups list' shows them): you take part in the
group and can send to it once its key is in.`, "Joined"},
		{"decline", "Decline an invitation to a group", `Decline an invitation: you leave the group at once.`, "Declined"},
	} {
		cmd.AddCommand(groupActionCmd(op.name, op.short, op.long, op.done))
	}
	return cmd
}

func groupsListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List your groups and invitations (first fetching news)",
		Long: `List the groups you are in, were invited to, left or were removed from,
newest first: name, the first 8 characters of the ID (enough to name the
group), your status and role, the member count and unread messages.
Invitations are listed with the command that accepts them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAPI(cmd, synced, func(ctx context.Context, c *api.Client) error {
				var gs []client.Group
				if err := c.Do(ctx, http.MethodGet, "/api/v1/groups", nil, &gs); err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return printJSONLines(out, gs)
				}
				if len(gs) == 0 {
					fmt.Fprintln(out, "No groups. Create one: umbra groups create NAME MEMBER...")
					return nil
				}
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tID\tSTATUS\tROLE\tMEMBERS\tUNREAD")
				var invited []client.Group
				for _, g := range gs {
					role := g.Role
					if role == "" || g.Status != client.GroupJoined && g.Status != client.GroupInvited {
						role = "-"
					}
					status := g.Status
					if g.Status == client.GroupInvited {
						status = "INVITED"
						invited = append(invited, g)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", g.Name, shortGroupID(g.ID), status, role, len(g.Members), g.Unread)
				}
				tw.Flush()
				for _, g := range invited {
					fmt.Fprintf(out, "\nInvitation to %q from %s:\n  umbra groups accept %s    (or: umbra groups decline %s)\n",
						g.Name, inviterName(&g), shortGroupID(g.ID), shortGroupID(g.ID))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per group (id, name, description, status, role, members, invited_by, epoch, unread)")
	return cmd
}

func groupsCreateCmd() *cobra.Command {
	var (
		desc   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME [--description TEXT] MEMBER...",
		Short: "Create a group, with you as its admin",
		Long: `Create a group named NAME with you as its admin, and add the MEMBERs.
Members who have you as a contact join at once; the others get an
invitation to accept or decline. Without a daemon, the command sends the
invitations before it exits.

` + memberHelp,
		Example: `  umbra groups create club bob carol
  umbra groups create "book club" --description "one book a month" bob umbra1...`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(args[0]) == "" {
				return fmt.Errorf("a group needs a name")
			}
			return withAPI(cmd, online, func(ctx context.Context, c *api.Client) error {
				ids, err := resolveMembers(ctx, c, args[1:])
				if err != nil {
					return err
				}
				var g client.Group
				body := map[string]any{"name": args[0], "description": desc, "members": ids}
				if err := c.Do(ctx, http.MethodPost, "/api/v1/groups", body, &g); err != nil {
					return err
				}
				groupsSent(ctx, cmd)
				return groupResult(cmd, &g, asJSON, "Created")
			})
		},
	}
	cmd.Flags().StringVar(&desc, "description", "", "the group's description")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the group as one JSON object")
	return cmd
}

func groupMembersCmd(op, shortHelp, done string) *cobra.Command {
	var asJSON bool
	long := shortHelp + ". Every member learns of the change; the group moves to a new key."
	switch op {
	case "add":
		long = `Add members to a group (admins only). Those who have you as a contact
join at once, the others get an invitation. New members read nothing
sent before they joined.`
	case "remove":
		long = `Remove members from a group (admins only). The others get a fresh key:
removed members read nothing sent after.`
	case "demote":
		long = `Make admins plain members (admins only). A group keeps at least one admin.`
	}
	cmd := &cobra.Command{
		Use:     op + " GROUP MEMBER...",
		Short:   shortHelp,
		Long:    long + "\n\n" + groupRefHelp + "\n" + memberHelp,
		Example: "  umbra groups " + op + " club carol",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, online, func(ctx context.Context, c *api.Client) error {
				g, err := findGroup(ctx, c, args[0])
				if err != nil {
					return err
				}
				if err := mustAdmin(g, op+" members"); err != nil {
					return err
				}
				ids, err := resolveMembers(ctx, c, args[1:])
				if err != nil {
					return err
				}
				if err := c.Do(ctx, http.MethodPost, groupPath(g.ID, "/"+op), map[string]any{"members": ids}, g); err != nil {
					return fmt.Errorf("%s: %w", op, err)
				}
				groupsSent(ctx, cmd)
				return groupResult(cmd, g, asJSON, done)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the group as one JSON object")
	return cmd
}

func groupActionCmd(op, shortHelp, long, done string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     op + " GROUP",
		Short:   shortHelp,
		Long:    long + "\n\n" + groupRefHelp,
		Example: "  umbra groups " + op + " club",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, synced, func(ctx context.Context, c *api.Client) error {
				g, err := findGroup(ctx, c, args[0])
				if err != nil {
					return err
				}
				if err := c.Do(ctx, http.MethodPost, groupPath(g.ID, "/"+op), nil, g); err != nil {
					return fmt.Errorf("%s: %w", op, err)
				}
				groupsSent(ctx, cmd)
				return groupResult(cmd, g, asJSON, done)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the group as one JSON object")
	return cmd
}

func groupsRenameCmd() *cobra.Command {
	var (
		desc   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "rename GROUP NAME [--description TEXT]",
		Short: "Rename a group, or change its description (admins only)",
		Long: `Give a group a new name (admins only); with --description, a new
description too (--description "" clears it). Every member sees a line
saying so.

` + groupRefHelp,
		Example: `  umbra groups rename club "dinner club"
  umbra groups rename club club --description "Fridays at 8"`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(args[1]) == "" {
				return fmt.Errorf("a group needs a name")
			}
			return withAPI(cmd, online, func(ctx context.Context, c *api.Client) error {
				g, err := findGroup(ctx, c, args[0])
				if err != nil {
					return err
				}
				if err := mustAdmin(g, "rename it"); err != nil {
					return err
				}
				body := map[string]any{"name": args[1]}
				if cmd.Flags().Changed("description") {
					body["description"] = desc
				}
				if err := c.Do(ctx, http.MethodPatch, groupPath(g.ID, ""), body, g); err != nil {
					return fmt.Errorf("rename: %w", err)
				}
				groupsSent(ctx, cmd)
				return groupResult(cmd, g, asJSON, "Renamed")
			})
		},
	}
	cmd.Flags().StringVar(&desc, "description", "", "a new description")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the group as one JSON object")
	return cmd
}

func groupsInfoCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info GROUP [--json]",
		Short: "Show a group: name, description, ID, status, epoch and members",
		Long: `Show a group: its name, description, whole ID, your status and role, its
epoch (how many times its key changed) and its members, admins marked
with *, contacts by their names.

` + groupRefHelp,
		Example: `  umbra groups info club`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, synced, func(ctx context.Context, c *api.Client) error {
				g, err := findGroup(ctx, c, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(g)
				}
				printGroup(cmd.OutOrStdout(), g)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the group as one JSON object")
	return cmd
}

// sendToGroup sends text to group ref ('send --group') and prints its ID
// and state; without a daemon it waits for the send as 'send' does.
func sendToGroup(cmd *cobra.Command, ref, text, replyTo string, asJSON bool) error {
	return withAPI(cmd, online|acts, func(ctx context.Context, c *api.Client) error {
		g, err := findGroup(ctx, c, ref)
		if err != nil {
			return err
		}
		var m client.Message
		if err := c.Do(ctx, http.MethodPost, groupPath(g.ID, "/messages"), map[string]string{"text": text, "reply_to": replyTo}, &m); err != nil {
			return err
		}
		if m.State, err = sentState(ctx, m, func(e *client.Engine) ([]client.Message, error) { return e.GroupMessages(g.ID) }); err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]string{"id": m.ID, "state": m.State, "group": g.ID})
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", m.ID, m.State)
		return nil
	})
}

// groupMessages lists a group's conversation ('messages --group').
func groupMessages(ctx context.Context, cmd *cobra.Command, c *api.Client, ref string, asJSON bool) error {
	g, err := findGroup(ctx, c, ref)
	if err != nil {
		return err
	}
	var ms []client.Message
	if err := c.Do(ctx, http.MethodGet, groupPath(g.ID, "/messages"), nil, &ms); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if asJSON {
		return printJSONLines(out, ms)
	}
	fmt.Fprintf(out, "Group %q (%s), %d members\n", g.Name, shortGroupID(g.ID), len(g.Members))
	if len(ms) == 0 {
		fmt.Fprintln(out, "No messages.")
	}
	var contacts []client.Contact
	_ = c.Do(ctx, http.MethodGet, "/api/v1/contacts", nil, &contacts)
	var me map[string]string
	_ = c.Do(ctx, http.MethodGet, "/api/v1/me", nil, &me)
	who := func(id string) string {
		if id == me["account_id"] {
			return "you"
		}
		for _, k := range contacts {
			if k.ID == id && k.Name != "" {
				return k.Name
			}
		}
		for _, m := range g.Members {
			if m.ID == id && m.Name != "" {
				return m.Name
			}
		}
		return short(id)
	}
	for _, m := range ms {
		at := m.SentAt.Local().Format("2006-01-02 15:04:05")
		if m.Kind == client.KindGroupLine || m.Notice != "" {
			fmt.Fprintf(out, "%s  * %s\n", at, m.Text)
			continue
		}
		text := messageBody(m, who, me["account_id"])
		if m.Kind == client.KindTimerLine {
			text = "(disappearing messages: " + timerText(time.Duration(m.Expire)*time.Second) + ")"
		}
		dir := "from " + who(m.From)
		if m.Outgoing {
			dir = "you"
		}
		fmt.Fprintf(out, "%s  [%s]  %s  [%s]\n    %s\n", at, shortMsgID(m.ID), dir, groupState(m), strings.ReplaceAll(text, "\n", "\n    "))
	}
	return nil
}

// groupState is a group message's state; for our own, once members
// acknowledged it, how many got it and read it instead.
func groupState(m client.Message) string {
	if !m.Outgoing || m.DeliveredCount == 0 && m.ReadCount == 0 {
		return m.State
	}
	var s []string
	if m.DeliveredCount > 0 {
		s = append(s, fmt.Sprintf("delivered to %d", m.DeliveredCount))
	}
	if m.ReadCount > 0 {
		s = append(s, fmt.Sprintf("read by %d", m.ReadCount))
	}
	return strings.Join(s, ", ")
}

// groupNames returns how 'messages' names the groups of ms: "group
// NAME", or "group" and the short ID when the group is not listed.
func groupNames(ctx context.Context, c *api.Client, ms []client.Message) func(string) string {
	names := map[string]string{}
	for _, m := range ms {
		if m.Group != "" {
			var gs []client.Group
			_ = c.Do(ctx, http.MethodGet, "/api/v1/groups", nil, &gs)
			for _, g := range gs {
				names[g.ID] = g.Name
			}
			break
		}
	}
	return func(gid string) string {
		if n := names[gid]; n != "" {
			return fmt.Sprintf("group %q", n)
		}
		return "group " + shortGroupID(gid)
	}
}

// groupConversation is the "with" of a group message action.
func groupConversation(ctx context.Context, c *api.Client, ref string) (string, error) {
	g, err := findGroup(ctx, c, ref)
	if err != nil {
		return "", err
	}
	return "group:" + g.ID, nil
}

func groupsAvatarCmd() *cobra.Command {
	var (
		clear  bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "avatar GROUP FILE | avatar GROUP --clear",
		Short: "Set or remove a group's picture (admins only)",
		Long: `Set the group's picture from a PNG, JPEG or GIF file (admins only), or
remove it with --clear. The image is scaled to 96x96 and re-encoded to at
most 16 KiB here, so no metadata goes along; every member gets it inside
the group's end-to-end encryption.

` + groupRefHelp,
		Example: `  umbra groups avatar club club.png
  umbra groups avatar club --clear`,
		Args: func(cmd *cobra.Command, args []string) error {
			if clear {
				return cobra.ExactArgs(1)(cmd, args)
			}
			if len(args) != 2 {
				return fmt.Errorf("want GROUP FILE, or GROUP --clear")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"clear": true}
			if !clear {
				img, err := readAvatar(args[1])
				if err != nil {
					return err
				}
				body = map[string]any{"avatar": img}
			}
			return withAPI(cmd, online, func(ctx context.Context, c *api.Client) error {
				g, err := findGroup(ctx, c, args[0])
				if err != nil {
					return err
				}
				if err := mustAdmin(g, "change its picture"); err != nil {
					return err
				}
				if err := c.Do(ctx, http.MethodPut, groupPath(g.ID, "/avatar"), body, g); err != nil {
					return fmt.Errorf("avatar: %w", err)
				}
				groupsSent(ctx, cmd)
				return groupResult(cmd, g, asJSON, "Changed the picture of")
			})
		},
	}
	cmd.Flags().BoolVar(&clear, "clear", false, "remove the group's picture")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the group as one JSON object")
	return cmd
}

func groupsTimerCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "timer GROUP [DURATION|off]",
		Short: "Show or set a group's disappearing-message timer",
		Long: `Show, or with DURATION set, the group's disappearing-message timer (any
member may set it; everyone sees a line saying so). DURATION is "off" or
from 5s to 4w (units s, m, h, d, w). From then on every text in the group
is deleted on every member's device after that time.

` + groupRefHelp,
		Example: `  umbra groups timer club 1d
  umbra groups timer club off`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var d time.Duration
			set := len(args) == 2
			if set {
				var err error
				if d, err = parseTimer(args[1]); err != nil {
					return err
				}
			}
			mode := local
			if set {
				mode = online
			}
			return withAPI(cmd, mode, func(ctx context.Context, c *api.Client) error {
				g, err := findGroup(ctx, c, args[0])
				if err != nil {
					return err
				}
				if set {
					var m client.Message
					if err := c.Do(ctx, http.MethodPut, "/api/v1/conversations/"+url.PathEscape("group:"+g.ID)+"/timer", map[string]int64{"seconds": int64(d / time.Second)}, &m); err != nil {
						return err
					}
				} else {
					d = time.Duration(g.Timer) * time.Second
				}
				if asJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"group": g.ID, "seconds": int64(d / time.Second), "timer": timerText(d)})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "disappearing messages in %q: %s\n", g.Name, timerText(d))
				return nil
			})
		},
	}
	chatFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"group", "seconds" (0: off), "timer"}`)
	return cmd
}
