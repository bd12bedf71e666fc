// Package api is the daemon's local API: HTTP + WebSocket on 127.0.0.1,
// authenticated by a bearer token kept in the home folder. The CLI and the
// web UI are its clients.
package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

// DaemonInfo is what the daemon writes to HOME/daemon.json.
type DaemonInfo struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	PID   int    `json:"pid"`
}

// Server serves one engine.
type Server struct {
	e     *client.Engine
	token string
	log   *slog.Logger
	srv   *http.Server
	l     net.Listener
	// UI, if set, serves the web app at / (the token arrives as ?token=).
	UI http.Handler
}

// NewServer makes a server for e with a fresh random token.
func NewServer(e *client.Engine, log *slog.Logger) *Server {
	var b [24]byte
	rand.Read(b[:])
	return &Server{e: e, token: hex.EncodeToString(b[:]), log: log}
}

// Token is the bearer token.
func (s *Server) Token() string { return s.token }

// Listen binds addr, which must be a loopback address.
func (s *Server) Listen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("API address %q: want host:port", addr)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("API address %q must be on 127.0.0.1 or ::1", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("API listen: %w", err)
	}
	s.l = l
	return nil
}

// URL is the base URL the server listens on.
func (s *Server) URL() string { return "http://" + s.l.Addr().String() }

// WriteInfo writes HOME/daemon.json (mode 0600) so CLI commands find the daemon.
func (s *Server) WriteInfo(home string) error {
	b, _ := json.Marshal(DaemonInfo{URL: s.URL(), Token: s.token, PID: os.Getpid()})
	tmp := filepath.Join(home, client.DaemonFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(home, client.DaemonFile))
}

// Serve serves until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	mux := http.NewServeMux()
	s.routes(mux)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s.srv.Shutdown(sctx)
	}()
	if err := s.srv.Serve(s.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) routes(mux *http.ServeMux) {
	api := func(pattern string, h func(w http.ResponseWriter, r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, s.auth(func(w http.ResponseWriter, r *http.Request) {
			v, err := h(w, r)
			if err != nil {
				writeErr(w, err)
				return
			}
			if v != nil {
				writeJSON(w, http.StatusOK, v)
			}
		}))
	}
	api("GET /api/v1/me", s.me)
	api("GET /api/v1/contacts", func(w http.ResponseWriter, r *http.Request) (any, error) { return nonNil(s.e.Contacts()) })
	api("POST /api/v1/contacts", s.addContact)
	api("PATCH /api/v1/contacts/{id}", s.renameContact)
	api("DELETE /api/v1/contacts/{id}", func(w http.ResponseWriter, r *http.Request) (any, error) {
		return map[string]bool{"ok": true}, s.e.RemoveContact(r.PathValue("id"))
	})
	api("GET /api/v1/requests", func(w http.ResponseWriter, r *http.Request) (any, error) { return nonNil(s.e.Requests()) })
	api("POST /api/v1/requests/{id}/accept", func(w http.ResponseWriter, r *http.Request) (any, error) { return s.e.Accept(r.PathValue("id")) })
	api("POST /api/v1/requests/{id}/block", func(w http.ResponseWriter, r *http.Request) (any, error) {
		return map[string]bool{"ok": true}, s.e.Block(r.PathValue("id"))
	})
	api("GET /api/v1/messages", s.messages)
	api("POST /api/v1/messages", s.send)
	api("POST /api/v1/read", s.read)
	api("GET /api/v1/conversations", s.conversations)
	api("GET /api/v1/network", s.network)
	api("POST /api/v1/parse-id", s.parseID)
	mux.HandleFunc("GET /api/v1/events", s.auth(s.events))
	if s.UI != nil {
		mux.Handle("/", s.UI)
	}
}

// auth checks the bearer token (header, or ?token= for the browser's
// WebSocket, which cannot set headers).
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if tok == "" {
			tok = r.URL.Query().Get("token")
		}
		if subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong token (see the daemon's daemon.json)"})
			return
		}
		h(w, r)
	}
}

type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		code = ae.code
	case errors.Is(err, identity.ErrInvalidAccountID), errors.Is(err, client.ErrUnknownContact):
		code = http.StatusBadRequest
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func readJSON(r *http.Request, v any) error {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		return badRequest("bad JSON body: %v", err)
	}
	return nil
}

func nonNil[T any](v []T, err error) (any, error) {
	if v == nil {
		v = []T{}
	}
	return v, err
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) (any, error) {
	return map[string]string{"account_id": s.e.AccountID()}, nil
}

func (s *Server) addContact(w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct{ ID, Name string }
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	return s.e.AddContact(req.ID, req.Name)
}

func (s *Server) renameContact(w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct{ Name string }
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	return s.e.RenameContact(r.PathValue("id"), req.Name)
}

func (s *Server) parseID(w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct{ ID string }
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	id, err := identity.ParseAccountID(req.ID)
	if err != nil {
		return nil, err
	}
	return map[string]string{"account_id": id.String()}, nil
}

// messages lists messages; with wait=DURATION it first waits for a new
// incoming message (up to 60 s).
func (s *Server) messages(w http.ResponseWriter, r *http.Request) (any, error) {
	with := r.URL.Query().Get("with")
	if ws := r.URL.Query().Get("wait"); ws != "" {
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 {
			return nil, badRequest("wait: want a duration like 10s")
		}
		waitIncoming(r.Context(), s.e, with, min(d, 60*time.Second))
	}
	return nonNil(s.e.Messages(with))
}

// waitIncoming waits until there is an unread incoming message (from
// with, if set): at once if one is already there, else until one arrives or
// d passes.
func waitIncoming(ctx context.Context, e *client.Engine, with string, d time.Duration) {
	ch, stop := e.Subscribe()
	defer stop()
	if ms, err := e.Messages(with); err == nil {
		for _, m := range ms {
			if !m.Outgoing && m.State == client.StateReceived {
				return
			}
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case ev := <-ch:
			if ev.Type == client.EventMessage && ev.Message != nil && !ev.Message.Outgoing && (with == "" || ev.Message.From == with) {
				return
			}
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct{ To, Text string }
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	return s.e.Send(ctx, req.To, req.Text)
}

func (s *Server) read(w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct{ With string }
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	n, err := s.e.MarkRead(r.Context(), req.With)
	return map[string]int{"marked": n}, err
}

func (s *Server) conversations(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.e.Conversations()
}

func (s *Server) network(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.e.NetworkStatus(r.Context()), nil
}

var upgrader = websocket.Upgrader{
	ReadBufferSize: 1024, WriteBufferSize: 4096,
	// Same origin only: the page the daemon serves itself.
	CheckOrigin: func(r *http.Request) bool {
		o := r.Header.Get("Origin")
		return o == "" || strings.TrimPrefix(strings.TrimPrefix(o, "http://"), "https://") == r.Host
	},
}

// events streams engine events over a WebSocket until the client leaves.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, stop := s.e.Subscribe()
	defer stop()
	gone := make(chan struct{})
	go func() { // reads only to notice the close
		defer close(gone)
		conn.SetReadLimit(1024)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
	for {
		select {
		case ev := <-ch:
			conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := conn.WriteJSON(ev); err != nil {
				return
			}
		case <-ping.C:
			conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		case <-gone:
			return
		case <-r.Context().Done():
			return
		}
	}
}
