package api

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
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// Client talks to a daemon's API.
type Client struct {
	Base  string
	Token string
	hc    *http.Client
}

// NewClient makes a client for base URL with token.
func NewClient(base, token string) *Client {
	return &Client{Base: base, Token: token, hc: &http.Client{Timeout: 90 * time.Second}}
}

// FindDaemon returns a client for the daemon serving home, if one answers.
func FindDaemon(ctx context.Context, home string) (*Client, bool) {
	b, err := os.ReadFile(filepath.Join(home, client.DaemonFile))
	if err != nil {
		return nil, false
	}
	var info DaemonInfo
	if json.Unmarshal(b, &info) != nil || info.URL == "" {
		return nil, false
	}
	c := NewClient(info.URL, info.Token)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var me map[string]string
	if err := c.Do(cctx, http.MethodGet, "/api/v1/me", nil, &me); err != nil {
		return nil, false
	}
	return c, true
}

// Do sends a request with a JSON body (if any) and decodes the JSON answer
// into out (if not nil). An error answer becomes an error with its text.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("daemon unreachable: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("daemon answered %s", resp.Status)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
