package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// Backups, passphrase changes and the recovery phrase shown again.

// Headers of POST /api/v1/account/restore, whose body is the backup file.
const (
	HeaderBackupPassphrase = "X-Umbra-Backup-Passphrase"
	HeaderHomePassphrase   = "X-Umbra-Passphrase"
)

// maxRestoreBody bounds an uploaded backup.
const maxRestoreBody = 8 << 30

// RestoreFunc restores the backup read from r (opened with backupPass)
// into the server's home, protected by homePass, and returns its started
// engine.
type RestoreFunc func(ctx context.Context, r io.Reader, backupPass, homePass string) (*client.Engine, error)

// passphraseError maps the engine's passphrase errors to API errors with
// distinct codes: the web UI and the CLI tell the cases apart.
func passphraseError(err error) error {
	switch {
	case errors.Is(err, client.ErrWrongPassphrase):
		return &apiError{http.StatusForbidden, "Wrong passphrase", "wrong_passphrase"}
	case errors.Is(err, client.ErrNoPassphrase):
		return &apiError{http.StatusConflict, "This account has no passphrase set", "no_passphrase"}
	case errors.Is(err, client.ErrPassphraseRequired):
		return &apiError{http.StatusBadRequest, "Type this account's passphrase", "passphrase_required"}
	}
	return err
}

// recoveryPhrase shows the recovery phrase again after the passphrase.
func (s *Server) recoveryPhrase(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		Passphrase string `json:"passphrase"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	p, err := e.RecoveryPhrase(r.Context(), req.Passphrase)
	if err != nil {
		return nil, passphraseError(err)
	}
	s.log.Info("recovery phrase shown again", "account", e.AccountID())
	return map[string]string{"recovery_phrase": p}, nil
}

// changePassphrase changes the passphrase after the current one ("" for
// a home without one); remove: true takes it away.
func (s *Server) changePassphrase(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		Old    string `json:"old_passphrase"`
		New    string `json:"new_passphrase"`
		Remove bool   `json:"remove"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	if !req.Remove {
		if err := checkPassphrase(req.New); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), onboardTimeout)
	defer cancel()
	if err := e.ChangePassphrase(ctx, req.Old, req.New, req.Remove); err != nil {
		if pe := passphraseError(err); pe != err {
			return nil, pe
		}
		return nil, badRequest("%v", err)
	}
	s.log.Info("passphrase changed", "account", e.AccountID(), "removed", req.Remove)
	return s.status(), nil
}

// backup answers an encrypted backup file for the backup passphrase in
// the body, after the account's current passphrase.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	e := s.Engine()
	if e == nil {
		writeErr(w, s.noEngine())
		return
	}
	var req struct {
		Passphrase string `json:"passphrase"`         // the backup's
		Current    string `json:"current_passphrase"` // the account's ("" if it has none)
	}
	if err := readJSON(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if req.Passphrase == "" || len(req.Passphrase) > 1024 {
		writeErr(w, &apiError{http.StatusBadRequest, "choose a passphrase for the backup (it may not be empty)", "backup_passphrase_required"})
		return
	}
	// A backup is the whole account, like the recovery phrase: an open
	// screen is not enough to take it away.
	if err := e.CheckPassphrase(r.Context(), req.Current); err != nil {
		writeErr(w, passphraseError(err))
		return
	}
	var buf bytes.Buffer
	if _, err := e.WriteBackup(r.Context(), &buf, req.Passphrase); err != nil {
		writeErr(w, &apiError{http.StatusInternalServerError, "backup: " + err.Error(), ""})
		return
	}
	name := fmt.Sprintf("umbra-backup-%s.umbrabak", time.Now().UTC().Format("2006-01-02"))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	s.log.Info("backup created", "account", e.AccountID(), "bytes", buf.Len())
}

// restore creates the account of a server without one from an uploaded
// backup (the body), opened with the backup passphrase header. The home
// gets the daemon's passphrase, else the one in HeaderHomePassphrase, else
// the backup's.
func (s *Server) restore(w http.ResponseWriter, r *http.Request) (any, error) {
	backupPass := r.Header.Get(HeaderBackupPassphrase)
	homePass := r.Header.Get(HeaderHomePassphrase)
	if backupPass == "" {
		return nil, &apiError{http.StatusBadRequest, "type the backup's passphrase", "passphrase_required"}
	}
	switch {
	case s.DaemonPassphrase && homePass != "":
		return nil, badRequest("this daemon was started with a passphrase (UMBRA_PASSPHRASE): the account gets that one")
	case s.DaemonPassphrase:
	case homePass != "":
		if err := checkPassphrase(homePass); err != nil {
			return nil, err
		}
	default:
		homePass = backupPass
	}
	s.onboardMu.Lock()
	defer s.onboardMu.Unlock()
	if s.Engine() != nil || s.Locked() {
		return nil, errHasAccount
	}
	if s.Restore == nil {
		return nil, &apiError{http.StatusNotImplemented, "this server cannot restore accounts: run 'umbra backup restore FILE'", ""}
	}
	ctx, cancel := context.WithTimeout(s.ctx, onboardTimeout)
	defer cancel()
	e, err := s.Restore(ctx, http.MaxBytesReader(w, r.Body, maxRestoreBody), backupPass, homePass)
	switch {
	case errors.Is(err, client.ErrBackupWrongPassphrase):
		return nil, &apiError{http.StatusForbidden, "Wrong backup passphrase", "wrong_backup_passphrase"}
	case errors.Is(err, client.ErrBackupDamaged):
		return nil, &apiError{http.StatusBadRequest, "This backup file is damaged or was tampered with", "backup_damaged"}
	case err != nil:
		s.log.Warn("restore from the web UI", "err", err)
		return nil, &apiError{http.StatusBadRequest, "could not restore: " + err.Error(), ""}
	}
	s.SetEngine(e)
	s.log.Info("account restored from a backup in the web UI", "account", e.AccountID())
	return s.status(), nil
}

// Download posts body (JSON) to path and copies the answer's body to w;
// an error answer becomes an error with its text.
func (c *Client) Download(ctx context.Context, path string, body any, w io.Writer) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("daemon unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("daemon answered %s", resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
