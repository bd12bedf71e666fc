// Package api is the daemon's local API: HTTP + WebSocket on 127.0.0.1,
// authenticated by a bearer token kept in the home folder (see auth.go for
// the Host, Origin and token rules). The CLI and the web UI are its
// clients.
package api

import (
	"context"
	"crypto/rand"
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
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/fsutil"
	"github.com/umbra-im/umbra/internal/identity"
)

// DaemonInfo is what the daemon writes to HOME/daemon.json.
type DaemonInfo struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	PID   int    `json:"pid"`
	// UI is the web app's address with the token in the fragment.
	UI string `json:"ui"`
}

// Server serves one engine. A server made without an engine (a home with
// no account yet, or one locked by a passphrase) answers the onboarding or
// unlock endpoints until Onboard or Unlock gives it one; every other
// endpoint answers 409 until then.
type Server struct {
	token string
	log   *slog.Logger
	srv   *http.Server
	l     net.Listener
	hosts map[string]bool // Host values naming the listener (set by Listen)
	ctx   context.Context // Serve's; bounds onboarding work

	mu     sync.Mutex // guards e, closed and Unlock once serving
	e      *client.Engine
	closed bool

	onboardMu sync.Mutex // one account creation at a time

	// UI, if set, serves the web app at / without the token (static files
	// only); the page sends the token on every /api call.
	UI http.Handler
	// Onboard, if set, creates the account of a server without an engine
	// from a 24-word recovery phrase (a new account's freshly generated
	// phrase, or one being restored), protected by passphrase ("" for none,
	// or the daemon's own when DaemonPassphrase), and returns its started
	// engine.
	Onboard func(ctx context.Context, phrase, passphrase string) (*client.Engine, error)
	// DaemonPassphrase tells that the daemon has a passphrase of its own
	// (UMBRA_PASSPHRASE): a new account gets it, and the web UI asks none.
	DaemonPassphrase bool
	// Unlock, if set, opens the engine of a home protected by a passphrase
	// that the daemon was not given; the web UI asks the user for it.
	// It returns client.ErrWrongPassphrase for a wrong one.
	Unlock func(ctx context.Context, passphrase string) (*client.Engine, error)
	// Restore, if set, restores a backup into a home without an account
	// (vault.go).
	Restore RestoreFunc
}

// NewServer makes a server for e with a fresh random token. e may be nil:
// the server then waits for an account (see Onboard and SetEngine).
func NewServer(e *client.Engine, log *slog.Logger) *Server {
	var b [24]byte
	rand.Read(b[:])
	if log == nil {
		log = slog.Default()
	}
	return &Server{e: e, token: hex.EncodeToString(b[:]), log: log, ctx: context.Background()}
}

// Engine is the engine served, or nil while the home has no account.
func (s *Server) Engine() *client.Engine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.e
}

// SetEngine starts serving e. After CloseEngine, e is closed instead.
func (s *Server) SetEngine(e *client.Engine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		e.Close()
		return
	}
	s.e = e
}

// CloseEngine closes the engine served, if any; an engine set later (an
// onboarding finishing during shutdown) is closed at once.
func (s *Server) CloseEngine() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	e := s.e
	s.e = nil
	if e == nil {
		return nil
	}
	return e.Close()
}

// Token is the bearer token.
func (s *Server) Token() string { return s.token }

// SetToken replaces the fresh token NewServer made with tok, one that an
// earlier server made (48 lowercase hex digits), so that pages holding it
// keep working across a restart. Call it before Serve.
func (s *Server) SetToken(tok string) error {
	if !ValidToken(tok) {
		return errors.New("a token is 48 lowercase hex digits")
	}
	s.token = tok
	return nil
}

// ValidToken reports whether tok has the form of the tokens NewServer makes.
func ValidToken(tok string) bool {
	if len(tok) != 48 {
		return false
	}
	for _, c := range tok {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Port is the port the server listens on (after Listen).
func (s *Server) Port() int { return s.port() }

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
	s.hosts = hostsFor(s.port())
	return nil
}

// UIURL is the web app's address with the token in the fragment, which
// browsers never send to a server; the page moves it out of the address bar.
func (s *Server) UIURL() string { return s.URL() + "/#token=" + s.token }

// URL is the base URL the server listens on.
func (s *Server) URL() string { return "http://" + s.l.Addr().String() }

// WriteInfo writes HOME/daemon.json (mode 0600, atomically and flushed to
// disk) so CLI commands find the daemon.
func (s *Server) WriteInfo(home string) error {
	b, _ := json.Marshal(DaemonInfo{URL: s.URL(), Token: s.token, PID: os.Getpid(), UI: s.UIURL()})
	return fsutil.WriteFileAtomic(filepath.Join(home, client.DaemonFile), b, 0o600)
}

// Serve serves until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	s.ctx = ctx
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
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

// Handler is the server's HTTP handler (Serve uses it; tests may too). It
// answers only requests addressed to the listener (see auth.go): call
// Listen first.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.routes(mux)
	return s.guard(mux)
}

// handlerFunc is an API handler for the engine served; what it returns is
// written as JSON.
type handlerFunc func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error)

func (s *Server) routes(mux *http.ServeMux) {
	plain := func(pattern string, h func(w http.ResponseWriter, r *http.Request) (any, error)) {
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
	api := func(pattern string, h handlerFunc) {
		plain(pattern, func(w http.ResponseWriter, r *http.Request) (any, error) {
			e := s.Engine()
			if e == nil {
				return nil, s.noEngine()
			}
			return h(e, w, r)
		})
	}
	plain("POST /api/v1/session", s.session)
	plain("DELETE /api/v1/session", s.session)
	plain("GET /api/v1/account", s.account)
	plain("POST /api/v1/account/phrase", s.newPhrase)
	plain("POST /api/v1/account", s.createAccount)
	plain("POST /api/v1/unlock", s.unlock)
	api("POST /api/v1/account/passphrase", s.setPassphrase)
	api("POST /api/v1/account/passphrase/change", s.changePassphrase)
	api("POST /api/v1/account/recovery-phrase", s.recoveryPhrase)
	plain("POST /api/v1/account/restore", s.restore)
	mux.HandleFunc("POST /api/v1/backup", s.auth(s.backup))
	plain("POST /api/v1/parse-id", s.parseID)
	api("GET /api/v1/me", s.me)
	api("GET /api/v1/me/qr", s.qr)
	api("GET /api/v1/contacts", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		return nonNil(e.Contacts())
	})
	api("POST /api/v1/contacts", s.addContact)
	api("PATCH /api/v1/contacts/{id}", s.renameContact)
	api("DELETE /api/v1/contacts/{id}", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		return map[string]bool{"ok": true}, e.RemoveContact(r.PathValue("id"))
	})
	api("GET /api/v1/requests", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		return nonNil(e.Requests())
	})
	api("POST /api/v1/requests/{id}/accept", s.accept)
	api("POST /api/v1/requests/{id}/block", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		return map[string]bool{"ok": true}, e.Block(r.PathValue("id"))
	})
	api("GET /api/v1/messages", s.messages)
	api("POST /api/v1/messages", s.send)
	api("POST /api/v1/read", s.read)
	api("GET /api/v1/conversations", s.conversations)
	api("GET /api/v1/search", s.search)
	api("GET /api/v1/network", s.network)
	api("GET /api/v1/settings", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		return e.Settings()
	})
	api("PUT /api/v1/settings", s.putSettings)
	s.msgopsRoutes(api)
	s.trustRoutes(api)
	s.profileRoutes(api)
	s.groupRoutes(api)
	s.fileRoutes(api)
	mux.HandleFunc("GET /api/v1/events", s.auth(s.events))
	// Unknown API paths answer JSON, not the UI's page.
	mux.HandleFunc("/api/", s.auth(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such API endpoint: " + r.Method + " " + r.URL.Path})
	}))
	if s.UI != nil {
		mux.Handle("/", s.UI)
	}
}

type apiError struct {
	code int
	msg  string
	key  string // the "code" field of the JSON answer, if any
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, a...), ""}
}

// errNoAccount answers engine endpoints while the home has no account.
var errNoAccount = &apiError{http.StatusConflict, "no account here yet: create one in the web UI or with 'umbra init'", "no_account"}

// errLocked answers engine endpoints while the account waits for its
// passphrase.
var errLocked = &apiError{http.StatusConflict, "this account is locked by a passphrase: unlock it in the web UI, or restart the daemon with UMBRA_PASSPHRASE set", "locked"}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	body := map[string]string{"error": err.Error()}
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		code = ae.code
		if ae.key != "" {
			body["code"] = ae.key
		}
	case errors.Is(err, identity.ErrInvalidAccountID), errors.Is(err, client.ErrUnknownContact):
		code = http.StatusBadRequest
	}
	writeJSON(w, code, body)
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

func (s *Server) me(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	return map[string]string{"account_id": e.AccountID()}, nil
}

func (s *Server) addContact(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct{ ID, Name string }
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	return e.AddContact(req.ID, req.Name)
}

// accept accepts a message request; an optional body {"name": ...} names
// the new contact at once.
func (s *Server) accept(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct{ Name string }
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return nil, badRequest("bad JSON body: %v", err)
	}
	if req.Name != "" {
		return e.AddContact(r.PathValue("id"), req.Name)
	}
	return e.Accept(r.PathValue("id"))
}

func (s *Server) renameContact(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct{ Name string }
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	return e.RenameContact(r.PathValue("id"), req.Name)
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
func (s *Server) messages(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	with := r.URL.Query().Get("with")
	if ws := r.URL.Query().Get("wait"); ws != "" {
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 {
			return nil, badRequest("wait: want a duration like 10s")
		}
		waitIncoming(r.Context(), e, with, min(d, 60*time.Second))
	}
	return nonNil(e.Messages(with))
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

func (s *Server) send(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		To, Text string
		ReplyTo  string `json:"reply_to"` // the ID (or a unique prefix) of the message quoted
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	// Queued, not sent: the answer comes at once and the outbox sends it
	// (the web UI follows the state live; a CLI command without a daemon
	// waits for it itself). A first message still reads the contact's
	// prekeys from the network first.
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if req.ReplyTo != "" {
		return opError(e.Reply(ctx, req.To, req.ReplyTo, req.Text, false))
	}
	return e.Queue(ctx, req.To, req.Text)
}

func (s *Server) read(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct{ With string }
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	n, err := e.MarkRead(r.Context(), req.With)
	return map[string]int{"marked": n}, err
}

// putSettings changes the settings the body names ({"read_receipts":
// false}); the others keep their values. It answers the settings.
func (s *Server) putSettings(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	st, err := e.Settings()
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, badRequest("bad settings: %v (known: read_receipts, typing_indicators)", err)
	}
	return e.SetSettings(st)
}

func (s *Server) conversations(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	return e.Conversations()
}

func (s *Server) network(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	return e.NetworkStatus(r.Context()), nil
}

// Locked reports whether the account waits for its passphrase.
func (s *Server) Locked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.e == nil && s.Unlock != nil
}

// noEngine is the error of an engine endpoint while there is no engine.
func (s *Server) noEngine() error {
	if s.Locked() {
		return errLocked
	}
	return errNoAccount
}

// events streams engine events over a WebSocket until the client leaves.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	e := s.Engine()
	if e == nil {
		writeErr(w, s.noEngine())
		return
	}
	upgrader := websocket.Upgrader{
		ReadBufferSize: 1024, WriteBufferSize: 4096,
		// Selected when offered, so that the token entry offered beside
		// it is never echoed back.
		Subprotocols: []string{wsProtocol},
		// The guard checked Origin already; check again here.
		CheckOrigin: s.originOK,
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, stop := e.Subscribe()
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
