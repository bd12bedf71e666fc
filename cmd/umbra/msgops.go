package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
)

// Conversation actions: react, edit and delete. MSGID is a message's ID
// as 'umbra messages' shows it (its first characters are enough).

const msgIDHelp = `MSGID is the message's ID, or its first characters (at least 6, enough to
tell it from the other messages of the conversation): 'umbra messages
--with ID|NAME' shows each message's first 8 in brackets, 'messages --json'
the whole ID.`

const groupOpHelp = `With --group GROUP (its ID, ID prefix or name), leave out ID|NAME: the
message is one of that group's.`

// msgOp posts an action on message msgID of the conversation with the
// contact arg (or of group, when set) and prints the message as it now is.
func msgOp(cmd *cobra.Command, group, arg, msgID, op string, body map[string]any, asJSON bool, done string) error {
	return withAPI(cmd, online, func(ctx context.Context, c *api.Client) error {
		var peer string
		var err error
		if group != "" {
			peer, err = groupConversation(ctx, c, group)
		} else {
			peer, err = resolveAccount(ctx, c, arg)
		}
		if err != nil {
			return err
		}
		body["with"] = peer
		var m client.Message
		if err := c.Do(ctx, http.MethodPost, "/api/v1/messages/"+url.PathEscape(msgID)+"/"+op, body, &m); err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(cmd.OutOrStdout()).Encode(m)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", done, shortMsgID(m.ID))
		return nil
	})
}

// withGroupArgs adapts a command's argument check and arguments to
// --group: with it, the leading ID|NAME is left out (and passed on as "").
func withGroupArgs(cmd *cobra.Command, group *string) {
	check, run := cmd.Args, cmd.RunE
	_, rest, _ := strings.Cut(cmd.Use, " ID|NAME ")
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if *group == "" {
			return check(cmd, args)
		}
		if err := check(cmd, append([]string{""}, args...)); err != nil {
			return fmt.Errorf("with --group, want %s (no ID|NAME), got %d arguments", rest, len(args))
		}
		return nil
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *group != "" {
			args = append([]string{""}, args...)
		}
		return run(cmd, args)
	}
	cmd.Use += " | " + cmd.Name() + " --group GROUP " + rest
	cmd.Long += "\n\n" + groupOpHelp
	if first, _, _ := strings.Cut(cmd.Example, "\n"); strings.Contains(first, " bob ") {
		cmd.Example += "\n" + strings.Replace(first, " bob ", " --group club ", 1)
	}
	cmd.Flags().StringVar(group, "group", "", "the message is one of this group's (its ID, ID prefix or name)")
}

func reactCmd() *cobra.Command {
	var remove, asJSON bool
	var group string
	cmd := &cobra.Command{
		Use:   "react ID|NAME MSGID EMOJI|--remove",
		Short: "React to a message with an emoji (or take your reaction back)",
		Long: `React to a message of the conversation with a contact. You have one
reaction per message: a new one replaces the old, --remove takes it back.
An emoji is at most ` + fmt.Sprint(client.MaxReactionBytes) + ` bytes, without spaces or control characters.

` + msgIDHelp,
		Example: `  umbra react bob 3f9a1c 👍
  umbra react bob 3f9a1c --remove`,
		Args: func(cmd *cobra.Command, args []string) error {
			if remove {
				return cobra.ExactArgs(2)(cmd, args)
			}
			if len(args) != 3 {
				return fmt.Errorf("want ID|NAME MSGID EMOJI (or --remove without EMOJI), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			emoji := ""
			if !remove {
				emoji = args[2]
				if err := client.ValidReaction(emoji); err != nil || emoji == "" {
					return fmt.Errorf("not a reaction: %q", emoji)
				}
			}
			done := "Reacted " + emoji + " to"
			if remove {
				done = "Took back your reaction to"
			}
			return msgOp(cmd, group, args[0], args[1], "react", map[string]any{"emoji": emoji}, asJSON, done)
		},
	}
	chatFlags(cmd)
	withGroupArgs(cmd, &group)
	cmd.Flags().BoolVar(&remove, "remove", false, "take your reaction back")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the message as one JSON object")
	return cmd
}

func editCmd() *cobra.Command {
	var asJSON bool
	var group string
	cmd := &cobra.Command{
		Use:   "edit ID|NAME MSGID TEXT|-",
		Short: "Change the text of a message you sent",
		Long: `Replace the text of one of your messages, on both sides; it is shown as
edited. Only your own messages, once sent (not while queued). With - for
TEXT, the text is read from standard input.

` + msgIDHelp,
		Example: `  umbra edit bob 3f9a1c "see you at 8, not 7"`,
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := messageText(args[2], cmd.InOrStdin())
			if err != nil {
				return err
			}
			return msgOp(cmd, group, args[0], args[1], "edit", map[string]any{"text": text}, asJSON, "Edited")
		},
	}
	chatFlags(cmd)
	withGroupArgs(cmd, &group)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the message as one JSON object")
	return cmd
}

func deleteCmd() *cobra.Command {
	var everyone, asJSON bool
	var group string
	cmd := &cobra.Command{
		Use:   "delete ID|NAME MSGID [--everyone]",
		Short: "Delete a message, here or (your own) for everyone",
		Long: `Delete a message of the conversation with a contact from this device.
With --everyone, delete one of your own messages on both sides: its text is
removed from both databases and "This message was deleted" is shown in its
place. A contact's copy is changed only when their client gets the request;
nothing can make a copy they made by other means disappear.

` + msgIDHelp,
		Example: `  umbra delete bob 3f9a1c
  umbra delete bob 3f9a1c --everyone`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			done := "Deleted (on this device)"
			if everyone {
				done = "Deleted for everyone"
			}
			return msgOp(cmd, group, args[0], args[1], "delete", map[string]any{"everyone": everyone}, asJSON, done)
		},
	}
	chatFlags(cmd)
	withGroupArgs(cmd, &group)
	cmd.Flags().BoolVar(&everyone, "everyone", false, "delete one of your own messages for both sides")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the message as one JSON object")
	return cmd
}

// shortMsgID is the part of a message ID 'messages' shows.
func shortMsgID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// messageBody is how 'messages' shows a message's text and marks: the
// quoted message, the text (or that it was deleted), the edited mark and
// the reactions.
func messageBody(m client.Message, who func(string) string, me string) string {
	var b strings.Builder
	if m.ReplyTo != "" {
		fmt.Fprintf(&b, "↪ reply to [%s]\n", shortMsgID(m.ReplyTo))
	}
	switch {
	case m.Deleted:
		b.WriteString("(This message was deleted)")
	default:
		if m.File != nil {
			b.WriteString(fileLine(m))
			if m.Text != "" {
				b.WriteString(" ")
			}
		}
		b.WriteString(m.Text)
		if m.Edited {
			b.WriteString(" (edited)")
		}
	}
	if len(m.Reactions) > 0 {
		var rs []string
		for id, e := range m.Reactions {
			name := who(id)
			if id == me {
				name = "you"
			}
			rs = append(rs, e+" "+name)
		}
		slices.Sort(rs)
		b.WriteString("\n" + strings.Join(rs, "  "))
	}
	return b.String()
}
