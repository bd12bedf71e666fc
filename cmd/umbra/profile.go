package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
)

func profileCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Show or set your display name and avatar, as contacts see them",
		Long: `Your profile is a display name and a small picture. It goes, end-to-end
encrypted like a message, to each contact with the first message you send
them, and again to everyone already told whenever you change it. A contact's
own name for you (their nickname) wins on their side.`,
	}
	cmd.AddCommand(profileShowCmd(), profileSetCmd())
	return cmd
}

func profileShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show your profile",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				var p api.ProfileJSON
				if err := c.Do(ctx, http.MethodGet, "/api/v1/profile", nil, &p); err != nil {
					return err
				}
				return printProfile(cmd.OutOrStdout(), p, asJSON)
			})
		},
	}
	chatFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"account_id", "name", "avatar" (a data: URL), "version"}`)
	return cmd
}

func printProfile(w io.Writer, p api.ProfileJSON, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(p)
	}
	name := p.Name
	if name == "" {
		name = "(no name set)"
	}
	avatar := "none"
	if p.Avatar != "" {
		mime, _, _ := strings.Cut(strings.TrimPrefix(p.Avatar, "data:"), ";")
		avatar = fmt.Sprintf("%s, %d bytes base64", mime, len(p.Avatar))
	}
	fmt.Fprintf(w, "name:    %s\navatar:  %s\naccount: %s\n", name, avatar, p.AccountID)
	return nil
}

func profileSetCmd() *cobra.Command {
	var (
		name        string
		avatarFile  string
		clearAvatar bool
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "set [--name NAME] [--avatar FILE | --clear-avatar]",
		Short: "Set your display name and avatar",
		Long: fmt.Sprintf(`Set your display name (at most %d bytes, no control characters) and
avatar. The avatar FILE is a PNG, JPEG or GIF; it is scaled down to fit
%dx%d pixels and re-encoded (which drops any metadata, such as where a photo
was taken) to at most %d KiB. Contacts you have written to get the new
profile at once (queued if they cannot be reached now).`, client.MaxProfileName, client.MaxAvatarSide, client.MaxAvatarSide, client.MaxAvatarBytes>>10),
		Example: `  umbra profile set --name Alice --avatar ~/me.jpg
  umbra profile set --clear-avatar`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			req := map[string]any{}
			if cmd.Flags().Changed("name") {
				req["name"] = name
			}
			if avatarFile != "" {
				if clearAvatar {
					return errors.New("give --avatar or --clear-avatar, not both")
				}
				img, err := readAvatar(avatarFile)
				if err != nil {
					return err
				}
				req["avatar"] = img
			}
			if clearAvatar {
				req["clear_avatar"] = true
			}
			if len(req) == 0 {
				return errors.New("nothing to set: give --name, --avatar or --clear-avatar")
			}
			// Without a daemon, contacts' copies wait in the outbox for the
			// next time the account is online.
			return withAPI(cmd, local, func(ctx context.Context, c *api.Client) error {
				var p api.ProfileJSON
				if err := c.Do(ctx, http.MethodPut, "/api/v1/profile", req, &p); err != nil {
					return err
				}
				return printProfile(cmd.OutOrStdout(), p, asJSON)
			})
		},
	}
	chatFlags(cmd)
	cmd.Flags().StringVar(&name, "name", "", "your display name (empty to remove it)")
	cmd.Flags().StringVar(&avatarFile, "avatar", "", "an image file (PNG, JPEG or GIF) for your avatar")
	cmd.Flags().BoolVar(&clearAvatar, "clear-avatar", false, "remove your avatar")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the new profile as JSON")
	return cmd
}

func readAvatar(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, client.MaxAvatarUpload+1))
	if err != nil {
		return nil, err
	}
	if len(b) > client.MaxAvatarUpload {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, client.MaxAvatarUpload>>20)
	}
	return b, nil
}

func timerCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "timer ID|NAME [DURATION|off]",
		Short: "Show or set the disappearing-message timer of a conversation",
		Long: `Show, or with DURATION set, the conversation's disappearing-message timer.
DURATION is "off" or from 5s to 4w (units s, m, h, d, w; e.g. 30s, 5m, 1h,
1d, 1w). Both sides are told and see the change; from then on every message
is deleted on both devices after that time: your own messages counted from
sending, received ones from their arrival. The network keeps its copy of a
message no longer than the timer (rounded up to a minute, the finest time
nodes see).`,
		Example: `  umbra timer bob 1h
  umbra timer bob off
  umbra timer bob --json`,
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
				peer, err := resolveAccount(ctx, c, args[0])
				if err != nil {
					return err
				}
				if set {
					var m client.Message
					if err := c.Do(ctx, http.MethodPut, "/api/v1/conversations/"+url.PathEscape(peer)+"/timer", map[string]int64{"seconds": int64(d / time.Second)}, &m); err != nil {
						return err
					}
				} else {
					var convs []client.Conversation
					if err := c.Do(ctx, http.MethodGet, "/api/v1/conversations", nil, &convs); err != nil {
						return err
					}
					for _, cv := range convs {
						if cv.Peer == peer {
							d = time.Duration(cv.Timer) * time.Second
						}
					}
				}
				if asJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"peer": peer, "seconds": int64(d / time.Second), "timer": timerText(d)})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "disappearing messages: %s\n", timerText(d))
				return nil
			})
		},
	}
	chatFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"peer", "seconds" (0: off), "timer"}`)
	return cmd
}

// parseTimer reads "off" or a duration with units s, m, h, d, w.
func parseTimer(s string) (time.Duration, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "off" || s == "0" {
		return 0, nil
	}
	var d time.Duration
	var err error
	if n, unit := strings.TrimRight(s, "dw"), strings.TrimLeft(s, "0123456789"); unit == "d" || unit == "w" {
		var v int64
		if v, err = strconv.ParseInt(n, 10, 32); err == nil {
			d = time.Duration(v) * 24 * time.Hour
			if unit == "w" {
				d *= 7
			}
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil {
		return 0, fmt.Errorf("timer %q: want off or a duration like 30s, 5m, 1h, 1d, 1w", s)
	}
	if err := client.CheckTimer(d); err != nil {
		return 0, err
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("timer %q: whole seconds only", s)
	}
	return d, nil
}

// timerText names a timer: "off", "1 hour", "90 seconds" ...
func timerText(d time.Duration) string {
	if d <= 0 {
		return "off"
	}
	units := []struct {
		d    time.Duration
		name string
	}{{7 * 24 * time.Hour, "week"}, {24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}}
	for _, u := range units {
		if d%u.d == 0 {
			n := int64(d / u.d)
			if n == 1 {
				return "1 " + u.name
			}
			return fmt.Sprintf("%d %ss", n, u.name)
		}
	}
	return d.String()
}
