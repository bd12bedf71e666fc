package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// Client talks to a daemon's API, sending the token as
// Authorization: Bearer on every request.
type Client struct {
	Base  string
	Token string
	hc    *http.Client
}

// NewClient makes a client for base URL with token.
func NewClient(base, token string) *Client {
	return &Client{Base: base, Token: token, hc: &http.Client{Timeout: 90 * time.Second}}
}

// FindDaemon returns a client for the daemon serving home, and its account
// status, if one answers. A daemon whose account is locked (waiting for its
// passphrase in the web UI) answers too: the caller says so rather than
// opening the home itself.
func FindDaemon(ctx context.Context, home string) (*Client, AccountStatus, bool) {
	b, err := os.ReadFile(filepath.Join(home, client.DaemonFile))
	if err != nil {
		return nil, AccountStatus{}, false
	}
	var info DaemonInfo
	if json.Unmarshal(b, &info) != nil || !loopbackURL(info.URL) {
		return nil, AccountStatus{}, false
	}
	c := NewClient(info.URL, info.Token)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var st AccountStatus
	if err := c.Do(cctx, http.MethodGet, "/api/v1/account", nil, &st); err != nil || !st.Exists {
		return nil, AccountStatus{}, false
	}
	return c, st, true
}

// loopbackURL reports whether u is http://LOOPBACK-IP:PORT, the only kind
// of address a daemon listens on: the token is never sent anywhere else.
func loopbackURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "http" || pu.Port() == "" || (pu.Path != "" && pu.Path != "/") {
		return false
	}
	ip := net.ParseIP(pu.Hostname())
	return ip != nil && ip.IsLoopback()
}

// Do sends a request with a JSON body (if any) and decodes the JSON answer
// into out (if not nil). An error answer becomes an error with its text.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	typ := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd, typ = bytes.NewReader(b), "application/json"
	}
	return c.DoRaw(ctx, method, path, typ, rd, out)
}

// DoRaw sends a request with body of type typ (none if nil) and decodes
// the JSON answer into out (if not nil).
func (c *Client) DoRaw(ctx context.Context, method, path, typ string, body io.Reader, out any) error {
	resp, err := c.send(ctx, method, path, typ, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Open sends a GET and returns the answer's body, to be closed, with its
// headers.
func (c *Client) Open(ctx context.Context, path string) (io.ReadCloser, http.Header, error) {
	resp, err := c.send(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return nil, nil, err
	}
	return resp.Body, resp.Header, nil
}

// send makes a request; an answer other than 200 becomes an error with
// its text.
func (c *Client) send(ctx context.Context, method, path, typ string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if typ != "" {
		req.Header.Set("Content-Type", typ)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("daemon unreachable: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("daemon answered %s", resp.Status)
	}
	return resp, nil
}
