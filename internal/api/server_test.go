package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"rsc.io/qr"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// offlineOnboard creates accounts in home the way the daemon does, with an
// engine that stays off the network. The passphrase the server passes on is
// recorded in *gotPass (if not nil); the account itself is created without
// one, to keep the tests fast (the client's tests cover protected homes).
func offlineOnboard(t *testing.T, home string, gotPass *string) func(ctx context.Context, phrase, passphrase string) (*client.Engine, error) {
	return func(ctx context.Context, phrase, passphrase string) (*client.Engine, error) {
		if gotPass != nil {
			*gotPass = passphrase
		}
		if _, err := client.Init(home, "", nil, phrase); err != nil {
			return nil, err
		}
		e, err := client.Open(ctx, client.Config{Home: home, Offline: true, Logger: quiet()})
		if err == nil {
			t.Cleanup(func() { e.Close() })
		}
		return e, err
	}
}

// newServer makes a server for e listening on a loopback port (the Host
// check needs one); the listener is closed at the end of the test.
func newServer(t *testing.T, e *client.Engine) *Server {
	t.Helper()
	s := NewServer(e, quiet())
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.l.Close() })
	return s
}

// host is the Host a client of s sends.
func (s *Server) host() string { return s.l.Addr().String() }

// newRequest is a request to s as a well-behaved client sends it: to the
// listener's address, with the token (if any) as a bearer header.
func newRequest(t *testing.T, s *Server, token, method, path string, body any) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Host = s.host()
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// serve runs req through s's handler.
func serve(s *Server, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// call sends a request through the server's handler and decodes the JSON
// answer into out (if not nil); it returns the status and the raw body.
func call(t *testing.T, s *Server, token, method, path string, body, out any) (int, string) {
	t.Helper()
	rec := serve(s, newRequest(t, s, token, method, path, body))
	if out != nil && rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, rec.Body.String(), err)
		}
	}
	return rec.Code, rec.Body.String()
}

func TestTokenRequired(t *testing.T) {
	s := newServer(t, nil)
	if code, _ := call(t, s, "", http.MethodGet, "/api/v1/account", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := call(t, s, "wrong", http.MethodPost, "/api/v1/account/phrase", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if code, _ := call(t, s, s.Token(), http.MethodGet, "/api/v1/account", nil, nil); code != http.StatusOK {
		t.Errorf("bearer token: %d, want 200", code)
	}
	if code, _ := call(t, s, "", http.MethodGet, "/api/v1/nothing", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("unknown endpoint without token: %d, want 401", code)
	}
}

func TestOnboarding(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	s := newServer(t, nil)
	var gotPass string
	s.Onboard = offlineOnboard(t, home, &gotPass)
	tok := s.Token()

	var st AccountStatus
	if code, body := call(t, s, tok, http.MethodGet, "/api/v1/account", nil, &st); code != http.StatusOK || st.Exists || !st.CanCreate {
		t.Fatalf("before: %d %s, want no account that can be created", code, body)
	}
	// Engine endpoints wait for the account.
	for _, path := range []string{"/api/v1/me", "/api/v1/me/qr", "/api/v1/conversations", "/api/v1/events"} {
		code, body := call(t, s, tok, http.MethodGet, path, nil, nil)
		if code != http.StatusConflict || !strings.Contains(body, `"code":"no_account"`) {
			t.Errorf("GET %s without an account: %d %s, want 409 no_account", path, code, body)
		}
	}
	// The ID check needs no account.
	if code, body := call(t, s, tok, http.MethodPost, "/api/v1/parse-id", map[string]string{"id": "umbra1xyz"}, nil); code != http.StatusBadRequest || !strings.Contains(body, "characters long") {
		t.Errorf("parse-id: %d %s", code, body)
	}

	var ph map[string]string
	if code, body := call(t, s, tok, http.MethodPost, "/api/v1/account/phrase", nil, &ph); code != http.StatusOK {
		t.Fatalf("phrase: %d %s", code, body)
	}
	phrase := ph["recovery_phrase"]
	want, err := identity.Restore(phrase)
	if err != nil || len(strings.Fields(phrase)) != 24 {
		t.Fatalf("generated phrase %q: %v", phrase, err)
	}
	if client.Exists(home) {
		t.Fatal("a phrase alone created the account: it must wait for the confirmation")
	}

	words := strings.Fields(phrase)
	typo := append(append([]string{}, words[:2]...), append([]string{"qwertyx"}, words[3:]...)...)
	for _, tc := range []struct{ phrase, want string }{
		{"", "24 words"},
		{strings.Join(words[:12], " "), "24 words"},
		{strings.Join(typo, " "), `Word 3, "qwertyx"`},
		{swapped(t, words), "not a valid recovery phrase"},
	} {
		code, body := call(t, s, tok, http.MethodPost, "/api/v1/account", map[string]string{"recovery_phrase": tc.phrase}, nil)
		var e struct{ Error string }
		_ = json.Unmarshal([]byte(body), &e)
		if code != http.StatusBadRequest || !strings.Contains(e.Error, tc.want) {
			t.Errorf("phrase %.30q...: %d %s, want 400 with %q", tc.phrase, code, body, tc.want)
		}
	}
	if client.Exists(home) {
		t.Fatal("a refused phrase created an account")
	}

	// A passphrase is chosen, or its absence confirmed.
	for _, tc := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"recovery_phrase": phrase}, `"code":"passphrase_required"`},
		{map[string]any{"recovery_phrase": phrase, "passphrase": "short"}, "at least 8 characters"},
		{map[string]any{"recovery_phrase": phrase, "passphrase": "long enough", "no_passphrase": true}, "one or the other"},
	} {
		code, body := call(t, s, tok, http.MethodPost, "/api/v1/account", tc.body, nil)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("create with %v: %d %s, want 400 with %q", tc.body, code, body, tc.want)
		}
	}
	if client.Exists(home) {
		t.Fatal("a refused passphrase created an account")
	}

	// Upper case and extra spaces are fine.
	messy := "  " + strings.ToUpper(strings.Join(words, "   ")) + "\n"
	if code, body := call(t, s, tok, http.MethodPost, "/api/v1/account", map[string]any{"recovery_phrase": messy, "no_passphrase": true}, &st); code != http.StatusOK {
		t.Fatalf("create: %d %s", code, body)
	}
	if !st.Exists || st.AccountID != want.ID().String() {
		t.Fatalf("created %+v, want account %s", st, want.ID())
	}
	if gotPass != "" || !st.Unprotected {
		t.Errorf("created without a passphrase: onboard got %q, status unprotected %v; want \"\" and true", gotPass, st.Unprotected)
	}
	var me map[string]string
	if code, body := call(t, s, tok, http.MethodGet, "/api/v1/me", nil, &me); code != http.StatusOK || me["account_id"] != st.AccountID {
		t.Fatalf("me after onboarding: %d %s", code, body)
	}
	if code, _ := call(t, s, tok, http.MethodGet, "/api/v1/account", nil, &st); code != http.StatusOK || !st.Exists || st.CanCreate {
		t.Errorf("after: %+v", st)
	}
	// Once there is an account, onboarding is closed.
	if code, _ := call(t, s, tok, http.MethodPost, "/api/v1/account", map[string]any{"recovery_phrase": phrase, "no_passphrase": true}, nil); code != http.StatusConflict {
		t.Errorf("second create: %d, want 409", code)
	}
	if code, _ := call(t, s, tok, http.MethodPost, "/api/v1/account/phrase", nil, nil); code != http.StatusConflict {
		t.Errorf("phrase with an account: %d, want 409", code)
	}
}

func TestOnboardingUnavailableOrFailing(t *testing.T) {
	acct, err := identity.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"recovery_phrase": acct.Phrase(), "passphrase": "a fine passphrase"}

	s := newServer(t, nil)
	var st AccountStatus
	if code, _ := call(t, s, s.Token(), http.MethodGet, "/api/v1/account", nil, &st); code != http.StatusOK || st.CanCreate {
		t.Errorf("a server without Onboard: status %d, can create %v; want 200 and false", code, st.CanCreate)
	}
	if code, _ := call(t, s, s.Token(), http.MethodPost, "/api/v1/account", body, nil); code != http.StatusNotImplemented {
		t.Errorf("create without Onboard: %d, want 501", code)
	}

	fails := true
	home := filepath.Join(t.TempDir(), "home")
	var gotPass string
	ok := offlineOnboard(t, home, &gotPass)
	s.Onboard = func(ctx context.Context, phrase, passphrase string) (*client.Engine, error) {
		if fails {
			return nil, errors.New("cannot reach the Umbra network")
		}
		return ok(ctx, phrase, passphrase)
	}
	code, msg := call(t, s, s.Token(), http.MethodPost, "/api/v1/account", body, nil)
	if code != http.StatusInternalServerError || !strings.Contains(msg, "cannot reach the Umbra network") || s.Engine() != nil {
		t.Fatalf("failing onboard: %d %s", code, msg)
	}
	fails = false // a retry works
	if code, msg := call(t, s, s.Token(), http.MethodPost, "/api/v1/account", body, &st); code != http.StatusOK || st.AccountID != acct.ID().String() {
		t.Fatalf("retry: %d %s", code, msg)
	}
	if gotPass != "a fine passphrase" {
		t.Errorf("onboard got passphrase %q, want the one chosen", gotPass)
	}
}

// TestOnboardingDaemonPassphrase: a daemon with a passphrase of its own
// gives it to the new account; the page may not send another.
func TestOnboardingDaemonPassphrase(t *testing.T) {
	acct, err := identity.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, nil)
	s.DaemonPassphrase = true
	var gotPass string
	s.Onboard = offlineOnboard(t, filepath.Join(t.TempDir(), "home"), &gotPass)
	var st AccountStatus
	if code, _ := call(t, s, s.Token(), http.MethodGet, "/api/v1/account", nil, &st); code != http.StatusOK || !st.DaemonPassphrase {
		t.Errorf("status %+v, want daemon_passphrase", st)
	}
	code, body := call(t, s, s.Token(), http.MethodPost, "/api/v1/account", map[string]any{"recovery_phrase": acct.Phrase(), "passphrase": "another one"}, nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "UMBRA_PASSPHRASE") {
		t.Errorf("a second passphrase: %d %s, want 400", code, body)
	}
	if code, body := call(t, s, s.Token(), http.MethodPost, "/api/v1/account", map[string]any{"recovery_phrase": acct.Phrase()}, &st); code != http.StatusOK {
		t.Fatalf("create: %d %s", code, body)
	}
	if gotPass != "" {
		t.Errorf("onboard got %q, want \"\" (the daemon uses its own)", gotPass)
	}
}

// swapped is the phrase with two neighbouring words swapped such that its
// checksum fails (a swap keeps it valid in 1 of 256 cases: try the next).
func swapped(t *testing.T, words []string) string {
	t.Helper()
	for i := 0; i+1 < len(words); i++ {
		w := append([]string{}, words...)
		w[i], w[i+1] = w[i+1], w[i]
		if _, err := identity.Restore(strings.Join(w, " ")); errors.Is(err, identity.ErrPhraseChecksum) {
			return strings.Join(w, " ")
		}
	}
	t.Fatal("no swap breaks the checksum")
	return ""
}

// engineServer serves a fresh offline account.
func engineServer(t *testing.T) (*Server, *client.Engine) {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	e, err := offlineOnboard(t, home, nil)(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	return newServer(t, e), e
}

func TestQR(t *testing.T) {
	s, e := engineServer(t)
	var q QRCode
	if code, body := call(t, s, s.Token(), http.MethodGet, "/api/v1/me/qr", nil, &q); code != http.StatusOK {
		t.Fatalf("qr: %d %s", code, body)
	}
	if q.Text != strings.ToUpper(e.AccountID()) {
		t.Errorf("QR text %q, want the upper-cased ID", q.Text)
	}
	if _, err := identity.ParseAccountID(q.Text); err != nil {
		t.Errorf("the QR text does not parse back: %v", err)
	}
	code, err := qr.Encode(q.Text, qr.M)
	if err != nil {
		t.Fatal(err)
	}
	if q.Size != code.Size || len(q.Rows) != code.Size {
		t.Fatalf("size %d with %d rows, want %d", q.Size, len(q.Rows), code.Size)
	}
	for y, row := range q.Rows {
		if len(row) != code.Size {
			t.Fatalf("row %d has %d modules", y, len(row))
		}
		for x := range row {
			if (row[x] == '1') != code.Black(x, y) {
				t.Fatalf("module (%d,%d) differs from the encoder's", x, y)
			}
		}
	}
}

func TestUIMountedWithoutToken(t *testing.T) {
	s, _ := engineServer(t)
	s.UI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the app") })
	if code, body := call(t, s, "", http.MethodGet, "/", nil, nil); code != http.StatusOK || body != "the app" {
		t.Errorf("GET / without token: %d %q, want the UI", code, body)
	}
	code, body := call(t, s, s.Token(), http.MethodGet, "/api/v1/nothing", nil, nil)
	if code != http.StatusNotFound || !strings.Contains(body, "no such API endpoint") {
		t.Errorf("unknown endpoint: %d %s, want a JSON 404 (not the UI)", code, body)
	}
}

func TestCloseEngine(t *testing.T) {
	s, _ := engineServer(t)
	if err := s.CloseEngine(); err != nil {
		t.Fatal(err)
	}
	if s.Engine() != nil {
		t.Error("Engine() after CloseEngine is not nil")
	}
	// An onboarding finishing after shutdown does not leak its engine.
	home := filepath.Join(t.TempDir(), "late")
	late, err := offlineOnboard(t, home, nil)(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	s.SetEngine(late)
	if s.Engine() != nil {
		t.Error("an engine set after CloseEngine is served")
	}
	// Its home is unlocked again.
	again, err := client.Open(context.Background(), client.Config{Home: home, Offline: true, Logger: quiet()})
	if err != nil {
		t.Fatalf("the late engine still holds its home: %v", err)
	}
	again.Close()
}
