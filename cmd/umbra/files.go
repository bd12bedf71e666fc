package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/files"
)

// sendFileCmd is 'send --file': args are the contact (unless group) and
// the caption, if any.
func sendFileCmd(cmd *cobra.Command, args []string, group, path, replyTo string, asJSON bool) error {
	if replyTo != "" {
		return errors.New("--reply goes without --file")
	}
	caption := ""
	if n := len(args); (group == "" && n == 2) || (group != "" && n == 1) {
		var err error
		if caption, err = messageText(args[n-1], cmd.InOrStdin()); err != nil {
			return err
		}
	}
	return withAPI(cmd, online|acts, func(ctx context.Context, c *api.Client) error {
		var peer string
		if group != "" {
			g, err := findGroup(ctx, c, group)
			if err != nil {
				return err
			}
			peer = "group:" + g.ID
		} else {
			id, err := resolveAccount(ctx, c, args[0])
			if err != nil {
				return err
			}
			peer = id
		}
		return sendFile(ctx, cmd, c, peer, path, caption, asJSON)
	})
}

// sendFile sends the file at path to peer (an account ID, or "group:" and
// a group ID) with caption, then follows its upload to the nodes with a
// progress bar on a terminal, until its message is queued. Through a
// daemon it returns once the daemon has the file (the daemon uploads it)
// unless wait.
func sendFile(ctx context.Context, cmd *cobra.Command, c *api.Client, peer, path, caption string, asJSON bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a folder: send a file", path)
	}
	if st.Size() > files.MaxFileSize {
		return fmt.Errorf("%s is %s: files are at most %d MiB", path, humanBytes(st.Size()), files.MaxFileSize>>20)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			for k, v := range map[string]string{"to": peer, "caption": caption} {
				if err := mw.WriteField(k, v); err != nil {
					return err
				}
			}
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filepath.Base(path)))
			h.Set("Content-Type", "application/octet-stream")
			part, err := mw.CreatePart(h)
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, f); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	var m client.Message
	if err := c.DoRaw(ctx, http.MethodPost, "/api/v1/files", mw.FormDataContentType(), pr, &m); err != nil {
		pr.CloseWithError(err)
		return err
	}
	if localEngine(ctx) != nil { // no daemon: this command uploads it
		if m, err = followFile(ctx, cmd, c, m, "upload"); err != nil {
			return err
		}
		if m.File.State == client.FileDone {
			if m.State, err = sentState(ctx, m, func(e *client.Engine) ([]client.Message, error) { return e.Messages(m.Peer()) }); err != nil {
				return err
			}
		}
	}
	if asJSON {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]string{"id": m.ID, "state": m.State, "file": m.File.State})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s (file %s)\n", m.ID, m.State, m.File.State)
	return nil
}

// followFile polls message m until its file is no longer uploading or
// downloading (what), with a progress bar on stderr when it is a
// terminal. It returns the message as it last saw it.
func followFile(ctx context.Context, cmd *cobra.Command, c *api.Client, m client.Message, what string) (client.Message, error) {
	var bar *progressbar.ProgressBar
	if f, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions64(m.File.Size, progressbar.OptionSetWriter(f), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription(what+" "+m.File.Name), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	for {
		var got client.Message
		if err := c.Do(ctx, http.MethodGet, "/api/v1/messages/"+m.ID, nil, &got); err != nil {
			return m, err
		}
		m = got
		if m.File == nil {
			return m, errors.New("the message has no file")
		}
		if bar != nil {
			bar.Set64(m.File.Done)
		}
		switch m.File.State {
		case client.FileUploading, client.FileDownloading:
		case client.FileFailed:
			return m, fmt.Errorf("%s of %s failed: %s", what, m.File.Name, m.File.Error)
		default:
			if bar != nil {
				bar.Finish()
			}
			return m, nil
		}
		select {
		case <-ctx.Done():
			return m, fmt.Errorf("%s of %s stopped at %s of %s: the next command or daemon goes on with it", what, m.File.Name, humanBytes(m.File.Done), humanBytes(m.File.Size))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// fileLine describes a message's file for 'messages'.
func fileLine(m client.Message) string {
	f := m.File
	s := fmt.Sprintf("[file %s, %s, %s", f.Name, f.Type, humanBytes(f.Size))
	switch f.State {
	case client.FileReady:
		s += " — fetch it: umbra files get " + shortMsgID(m.ID)
	case client.FileUploading, client.FileDownloading:
		s += fmt.Sprintf(", %s %d%%", f.State, f.Done*100/max(f.Size, 1))
	case client.FileFailed:
		s += ", failed: " + f.Error
	case client.FileDone:
		s += " — save it: umbra files get " + shortMsgID(m.ID)
	}
	return s + "]"
}

func filesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "files", Short: "Fetch and save the files of messages",
		Long: `Files are sent with 'umbra send ID --file PATH' (or --group). They travel
encrypted and erasure-coded through the network's nodes: no file server.
Images, audio and video up to 16 MiB are fetched as soon as they arrive;
other files when asked ('umbra files get').`}
	cmd.AddCommand(filesGetCmd())
	return cmd
}

func filesGetCmd() *cobra.Command {
	var (
		out, with string
		force     bool
	)
	cmd := &cobra.Command{
		Use:   "get MSGID",
		Short: "Fetch a message's file (if not here yet) and save it",
		Long: `Fetch the file of message MSGID (its ID as 'umbra messages' shows it, or
its first 6 or more characters, with --with the conversation) from the
nodes, with a progress bar, and save it as -o PATH (default: its name in
the current folder; an existing file is kept unless --force). An
interrupted fetch goes on where it stopped, at the next command or in the
daemon. With -o -, the file goes to standard output.`,
		Example: `  umbra files get 3f9a1c --with bob
  umbra files get 3f9a1c --with bob -o ~/Downloads/report.pdf`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, online, func(ctx context.Context, c *api.Client) error {
				id := args[0]
				if with != "" {
					peer, err := conversationRef(ctx, c, with)
					if err != nil {
						return err
					}
					var m client.Message
					if err := c.Do(ctx, http.MethodGet, "/api/v1/messages/"+id+"?with="+peer, nil, &m); err != nil {
						return err
					}
					id = m.ID
				}
				var m client.Message
				if err := c.Do(ctx, http.MethodPost, "/api/v1/messages/"+id+"/download", nil, &m); err != nil {
					return err
				}
				if m.File == nil {
					return errors.New("that message has no file")
				}
				m, err := followFile(ctx, cmd, c, m, "download")
				if err != nil {
					return err
				}
				return saveFile(ctx, cmd, c, m, out, force)
			})
		},
	}
	addHomeFlag(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "where to save the file (- for standard output)")
	cmd.Flags().StringVar(&with, "with", "", "the conversation (contact, or group:NAME) of a short MSGID")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}

// saveFile copies message m's file from the home to out.
func saveFile(ctx context.Context, cmd *cobra.Command, c *api.Client, m client.Message, out string, force bool) error {
	body, _, err := c.Open(ctx, "/api/v1/messages/"+m.ID+"/file?download=1")
	if err != nil {
		return err
	}
	defer body.Close()
	if out == "-" {
		_, err := io.Copy(cmd.OutOrStdout(), body)
		return err
	}
	if out == "" {
		out = m.File.Name
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(out, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: choose another name with -o, or --force", out)
	}
	if err != nil {
		return err
	}
	n, err := io.Copy(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return err
	}
	if n != m.File.Size {
		os.Remove(out)
		return fmt.Errorf("saved %d bytes of %d", n, m.File.Size)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "saved %s (%s)\n", out, humanBytes(n))
	return nil
}

// conversationRef names a conversation for the API: a contact (name or
// ID) or "group:" and a group.
func conversationRef(ctx context.Context, c *api.Client, ref string) (string, error) {
	if g, ok := strings.CutPrefix(ref, "group:"); ok {
		gr, err := findGroup(ctx, c, g)
		if err != nil {
			return "", err
		}
		return "group:" + gr.ID, nil
	}
	return resolveAccount(ctx, c, ref)
}
