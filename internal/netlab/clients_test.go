//go:build linux

package netlab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/netlab"
)

// labClient is an `umbra daemon` running in a lab host, driven through its
// local API (on the host's own loopback) from the test.
type labClient struct {
	Index int
	Host  *netlab.Host
	Home  string
	ID    string // account ID
	base  string
	token string
	Pid   int
	done  chan struct{}
}

const daemonPassphrase = "nemesis lab"

// StartClient creates an account in a fresh home (`umbra init` in host h,
// so it reaches the nodes from there) and runs `umbra daemon` for it in h,
// stopped when the test ends. Receipts wait at most 5 s.
func StartClient(tb testing.TB, lab *netlab.Lab, h *netlab.Host, bin, network string, index int) *labClient {
	tb.Helper()
	home := filepath.Join(tb.TempDir(), fmt.Sprintf("client-%d", index))
	env := append(os.Environ(), "UMBRA_PASSPHRASE="+daemonPassphrase)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var err error
	for try := 0; try < 5; try++ {
		cmd := lab.Command(h, bin, "init", "--home", home, "--network", network)
		cmd.Env = env
		var out []byte
		out, err = cmd.CombinedOutput()
		if err == nil {
			break
		}
		tb.Logf("client %d: init try %d: %v: %s", index, try, err, out)
		_ = os.RemoveAll(home)
		select {
		case <-ctx.Done():
			tb.Fatal(ctx.Err())
		case <-time.After(3 * time.Second):
		}
	}
	if err != nil {
		tb.Fatalf("client %d: init: %v", index, err)
	}
	logf, err := os.Create(filepath.Join(filepath.Dir(home), fmt.Sprintf("daemon-%d.log", index)))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := lab.Command(h, bin, "daemon", "--home", home, "--ui", "127.0.0.1:7070", "--receipt-delay-max", "5s")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &labClient{Index: index, Host: h, Home: home, Pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(c.done) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	for {
		b, err := os.ReadFile(filepath.Join(home, client.DaemonFile))
		var info struct{ URL, Token string }
		if err == nil && json.Unmarshal(b, &info) == nil && info.Token != "" {
			c.base, c.token = info.URL, info.Token
			var me struct {
				AccountID string `json:"account_id"`
			}
			if err := c.Do(ctx, http.MethodGet, "/api/v1/me", nil, &me); err == nil {
				c.ID = me.AccountID
				return c
			}
		}
		select {
		case <-c.done:
			log, _ := os.ReadFile(logf.Name())
			tb.Fatalf("client %d: daemon exited:\n%s", index, log)
		case <-ctx.Done():
			tb.Fatalf("client %d: daemon not ready: %v", index, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Do calls the daemon's API (see internal/api).
func (c *labClient) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Host.HTTPClient().Do(req)
	if err != nil {
		return &transportError{err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &transportError{err}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// transportError is a call that got no answer: the daemon may or may not
// have acted on it.
type transportError struct{ err error }

func (e *transportError) Error() string { return "no answer: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func isTransport(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}

// Messages lists every message of the client (all conversations), in the
// engine's display order per conversation.
func (c *labClient) Messages(ctx context.Context) ([]client.Message, error) {
	var ms []client.Message
	err := c.Do(ctx, http.MethodGet, "/api/v1/messages", nil, &ms)
	return ms, err
}
