package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/client"
)

// TestPassphraseAndPhraseEndpoints: the recovery phrase is shown again
// and the passphrase changed only after the current passphrase, with
// distinct answers for a wrong one and for an account that has none.
func TestPassphraseAndPhraseEndpoints(t *testing.T) {
	s, e := engineServer(t)
	tok := s.Token()
	phrase := func(pass string) (int, string) {
		return call(t, s, tok, http.MethodPost, "/api/v1/account/recovery-phrase", map[string]string{"passphrase": pass}, nil)
	}
	change := func(old, nw string, remove bool) (int, string) {
		return call(t, s, tok, http.MethodPost, "/api/v1/account/passphrase/change",
			map[string]any{"old_passphrase": old, "new_passphrase": nw, "remove": remove}, nil)
	}
	if code, body := phrase(""); code != http.StatusOK || strings.Count(body, " ") != 23 {
		t.Fatalf("phrase of an unprotected account: %d %s", code, body)
	}
	if code, body := phrase("anything at all"); code != http.StatusConflict || !strings.Contains(body, `"no_passphrase"`) {
		t.Fatalf("a passphrase for an account without one: %d %s", code, body)
	}
	if code, body := change("anything at all", "the first passphrase", false); code != http.StatusConflict || !strings.Contains(body, `"no_passphrase"`) {
		t.Fatalf("change with an old passphrase it never had: %d %s", code, body)
	}
	if code, body := change("", "short", false); code != http.StatusBadRequest {
		t.Fatalf("a short new passphrase: %d %s", code, body)
	}
	if code, body := change("", "the first passphrase", false); code != http.StatusOK || e.Unprotected() {
		t.Fatalf("set: %d %s", code, body)
	}
	if code, body := change("not the one", "the second passphrase", false); code != http.StatusForbidden || !strings.Contains(body, `"wrong_passphrase"`) {
		t.Fatalf("change with a wrong passphrase: %d %s", code, body)
	}
	if code, body := phrase("not the one"); code != http.StatusForbidden || !strings.Contains(body, `"wrong_passphrase"`) {
		t.Fatalf("phrase with a wrong passphrase: %d %s", code, body)
	}
	if code, body := phrase(""); code != http.StatusBadRequest || !strings.Contains(body, `"passphrase_required"`) {
		t.Fatalf("phrase without the passphrase: %d %s", code, body)
	}
	if code, body := change("the first passphrase", "the second passphrase", false); code != http.StatusOK {
		t.Fatalf("change: %d %s", code, body)
	}
	if code, body := phrase("the second passphrase"); code != http.StatusOK || !strings.Contains(body, "recovery_phrase") {
		t.Fatalf("phrase after the change: %d %s", code, body)
	}
	if code, body := change("the second passphrase", "", true); code != http.StatusOK || !e.Unprotected() {
		t.Fatalf("remove: %d %s", code, body)
	}
}

// TestBackupRestoreEndpoints: a backup downloaded from one server restores
// into a server without an account; a wrong passphrase and a tampered
// file get their own codes.
func TestBackupRestoreEndpoints(t *testing.T) {
	s, e := engineServer(t)
	rec := serve(s, newRequest(t, s, s.Token(), http.MethodPost, "/api/v1/backup", map[string]string{}))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("backup without a passphrase: %d %s", rec.Code, rec.Body)
	}
	rec = serve(s, newRequest(t, s, s.Token(), http.MethodPost, "/api/v1/backup", map[string]string{"passphrase": "backup words", "current_passphrase": "one it never had"}))
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "no_passphrase") {
		t.Fatalf("backup with a passphrase the account never had: %d %s", rec.Code, rec.Body)
	}
	rec = serve(s, newRequest(t, s, s.Token(), http.MethodPost, "/api/v1/backup", map[string]string{"passphrase": "backup words"}))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Disposition"), ".umbrabak") {
		t.Fatalf("backup: %d %v", rec.Code, rec.Header())
	}
	file := rec.Body.Bytes()

	home := filepath.Join(t.TempDir(), "restored")
	r := newServer(t, nil)
	r.Restore = func(ctx context.Context, body io.Reader, bp, hp string) (*client.Engine, error) {
		if _, err := client.RestoreBackup(home, body, bp, hp, client.RestoreOptions{}); err != nil {
			return nil, err
		}
		e, err := client.Open(ctx, client.Config{Home: home, Passphrase: hp, Offline: true, Logger: quiet()})
		if err == nil {
			t.Cleanup(func() { e.Close() })
		}
		return e, err
	}
	upload := func(data []byte, pass string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/account/restore", bytes.NewReader(data))
		req.Host = r.host()
		req.Header.Set("Authorization", "Bearer "+r.Token())
		req.Header.Set(HeaderBackupPassphrase, pass)
		return serve(r, req)
	}
	var st AccountStatus
	if code, _ := call(t, r, r.Token(), http.MethodGet, "/api/v1/account", nil, &st); code != http.StatusOK || !st.CanRestore || st.Exists {
		t.Fatalf("status before restoring: %+v", st)
	}
	if rec := upload(file, "other words"); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "wrong_backup_passphrase") {
		t.Fatalf("wrong passphrase: %d %s", rec.Code, rec.Body)
	}
	bad := bytes.Clone(file)
	bad[len(bad)-1] ^= 1
	if rec := upload(bad, "backup words"); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "backup_damaged") {
		t.Fatalf("tampered: %d %s", rec.Code, rec.Body)
	}
	if rec := upload(file, "backup words"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), e.AccountID()) {
		t.Fatalf("restore: %d %s", rec.Code, rec.Body)
	}
	if rec := upload(file, "backup words"); rec.Code != http.StatusConflict {
		t.Fatalf("a second restore: %d %s", rec.Code, rec.Body)
	}
}
