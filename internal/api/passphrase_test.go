package api

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/client"
)

// TestLockedAccount: a server whose account waits for its passphrase says
// so, answers engine endpoints with 409 "locked", refuses onboarding, and
// serves the engine once the right passphrase unlocks it.
func TestLockedAccount(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	open := offlineOnboard(t, home, nil)
	s := newServer(t, nil)
	var tries []string
	s.Unlock = func(ctx context.Context, pass string) (*client.Engine, error) {
		tries = append(tries, pass)
		if pass != "the right passphrase" {
			return nil, client.ErrWrongPassphrase
		}
		return open(ctx, "", "")
	}
	tok := s.Token()
	var st AccountStatus
	if code, body := call(t, s, tok, http.MethodGet, "/api/v1/account", nil, &st); code != http.StatusOK || !st.Exists || !st.Locked || st.CanCreate {
		t.Fatalf("locked status: %d %s", code, body)
	}
	for _, path := range []string{"/api/v1/me", "/api/v1/contacts", "/api/v1/events"} {
		if code, body := call(t, s, tok, http.MethodGet, path, nil, nil); code != http.StatusConflict || !strings.Contains(body, `"code":"locked"`) {
			t.Errorf("GET %s while locked: %d %s, want 409 locked", path, code, body)
		}
	}
	if code, _ := call(t, s, tok, http.MethodPost, "/api/v1/account/phrase", nil, nil); code != http.StatusConflict {
		t.Errorf("a new phrase while locked: %d, want 409", code)
	}
	if code, _ := call(t, s, tok, http.MethodPost, "/api/v1/unlock", map[string]string{"passphrase": ""}, nil); code != http.StatusBadRequest {
		t.Errorf("empty passphrase: %d, want 400", code)
	}
	if code, body := call(t, s, tok, http.MethodPost, "/api/v1/unlock", map[string]string{"passphrase": "a wrong one"}, nil); code != http.StatusForbidden || !strings.Contains(body, "wrong_passphrase") {
		t.Errorf("wrong passphrase: %d %s, want 403 wrong_passphrase", code, body)
	}
	if code, _ := call(t, s, "", http.MethodPost, "/api/v1/unlock", map[string]string{"passphrase": "the right passphrase"}, nil); code != http.StatusUnauthorized {
		t.Errorf("unlock without the token: %d, want 401", code)
	}
	if code, body := call(t, s, tok, http.MethodPost, "/api/v1/unlock", map[string]string{"passphrase": "the right passphrase"}, &st); code != http.StatusOK || !st.Exists || st.Locked || st.AccountID == "" {
		t.Fatalf("unlock: %d %s", code, body)
	}
	if len(tries) != 2 {
		t.Errorf("Unlock called %d times, want 2 (the token-less and empty attempts never reach it)", len(tries))
	}
	if code, _ := call(t, s, tok, http.MethodGet, "/api/v1/me", nil, nil); code != http.StatusOK {
		t.Errorf("me after unlocking: %d", code)
	}
	if code, _ := call(t, s, tok, http.MethodPost, "/api/v1/unlock", map[string]string{"passphrase": "the right passphrase"}, nil); code != http.StatusConflict {
		t.Errorf("a second unlock: %d, want 409", code)
	}
}

// TestSetPassphraseEndpoint protects an unprotected account from the web
// UI: the status then says protected, and the endpoint refuses a second
// passphrase and one too short.
func TestSetPassphraseEndpoint(t *testing.T) {
	s, e := engineServer(t)
	tok := s.Token()
	var st AccountStatus
	if code, _ := call(t, s, tok, http.MethodGet, "/api/v1/account", nil, &st); code != http.StatusOK || !st.Unprotected {
		t.Fatalf("a new account without a passphrase: status %+v, want unprotected", st)
	}
	if code, body := call(t, s, tok, http.MethodPost, "/api/v1/account/passphrase", map[string]string{"passphrase": "short"}, nil); code != http.StatusBadRequest || !strings.Contains(body, "at least") {
		t.Errorf("short passphrase: %d %s", code, body)
	}
	if code, body := call(t, s, tok, http.MethodPost, "/api/v1/account/passphrase", map[string]string{"passphrase": "now it is protected"}, &st); code != http.StatusOK || st.Unprotected {
		t.Fatalf("set passphrase: %d %s", code, body)
	}
	if e.Unprotected() {
		t.Error("the engine's database is still unprotected")
	}
	if code, _ := call(t, s, tok, http.MethodPost, "/api/v1/account/passphrase", map[string]string{"passphrase": "another passphrase"}, nil); code != http.StatusConflict {
		t.Errorf("a second passphrase: %d, want 409", code)
	}
}
