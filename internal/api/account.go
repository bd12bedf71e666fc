package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"rsc.io/qr"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

// AccountStatus answers GET /api/v1/account: whether the home has an
// account yet, whether this server can create one (onboarding), whether
// the account waits for its passphrase, and whether its database has none.
type AccountStatus struct {
	Exists    bool   `json:"exists"`
	AccountID string `json:"account_id,omitempty"`
	CanCreate bool   `json:"can_create"`
	// Locked: the account exists but its database is protected by a
	// passphrase the daemon was not given; POST /api/v1/unlock opens it.
	Locked bool `json:"locked"`
	// Unprotected: the open account's database has no passphrase: anyone
	// who can read the home folder can read the messages and the keys.
	Unprotected bool `json:"unprotected"`
	// CanRestore: this server can restore an account from a backup file
	// (POST /api/v1/account/restore).
	CanRestore bool `json:"can_restore"`
	// DaemonPassphrase: the daemon has a passphrase of its own
	// (UMBRA_PASSPHRASE) for an account created in the web UI.
	DaemonPassphrase bool `json:"daemon_passphrase"`
}

// MinPassphrase is the shortest passphrase the web UI accepts.
const MinPassphrase = 8

// onboardTimeout bounds creating an account and joining the network.
const onboardTimeout = 90 * time.Second

func (s *Server) account(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.status(), nil
}

func (s *Server) status() AccountStatus {
	if e := s.Engine(); e != nil {
		return AccountStatus{Exists: true, AccountID: e.AccountID(), Unprotected: e.Unprotected()}
	}
	if s.Locked() {
		return AccountStatus{Exists: true, Locked: true}
	}
	return AccountStatus{CanCreate: s.Onboard != nil, CanRestore: s.Restore != nil, DaemonPassphrase: s.DaemonPassphrase}
}

var errHasAccount = &apiError{http.StatusConflict, "this home already has an account", ""}

// newPhrase generates the recovery phrase of a new account without
// creating it: the account is created (POST /api/v1/account) only once the
// user has confirmed they wrote the phrase down.
func (s *Server) newPhrase(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.Engine() != nil || s.Locked() {
		return nil, errHasAccount
	}
	acct, err := identity.New(nil)
	if err != nil {
		return nil, fmt.Errorf("new account: %w", err)
	}
	return map[string]string{"recovery_phrase": acct.Phrase()}, nil
}

// createAccount creates the account from a recovery phrase (new or
// restored) through Onboard, then serves its engine. The account gets the
// passphrase given, or the daemon's own; without either the request must
// say no_passphrase: true, which the web UI sends only after the user
// confirmed a warning.
func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		RecoveryPhrase string `json:"recovery_phrase"`
		Passphrase     string `json:"passphrase"`
		NoPassphrase   bool   `json:"no_passphrase"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	phrase := strings.Join(strings.Fields(strings.ToLower(req.RecoveryPhrase)), " ")
	if phrase == "" {
		return nil, badRequest("recovery_phrase: give the 24 words of your recovery phrase")
	}
	// Check the phrase first: its errors name the wrong word for the user.
	acct, err := identity.Restore(phrase)
	if err != nil {
		return nil, badRequest("%s", phraseError(err))
	}
	// Then the passphrase.
	switch {
	case s.DaemonPassphrase && req.Passphrase != "":
		return nil, badRequest("this daemon was started with a passphrase (UMBRA_PASSPHRASE): the account gets that one")
	case s.DaemonPassphrase:
	case req.Passphrase != "" && req.NoPassphrase:
		return nil, badRequest("passphrase and no_passphrase: give one or the other")
	case req.Passphrase == "" && !req.NoPassphrase:
		return nil, &apiError{http.StatusBadRequest, "choose a passphrase, or confirm that this account will have none (no_passphrase)", "passphrase_required"}
	case req.Passphrase != "":
		if err := checkPassphrase(req.Passphrase); err != nil {
			return nil, err
		}
	}
	s.onboardMu.Lock()
	defer s.onboardMu.Unlock()
	if s.Engine() != nil || s.Locked() {
		return nil, errHasAccount
	}
	if s.Onboard == nil {
		return nil, &apiError{http.StatusNotImplemented, "this server cannot create accounts: run 'umbra init'", ""}
	}
	// The work outlives an impatient browser, not the server.
	ctx, cancel := context.WithTimeout(s.ctx, onboardTimeout)
	defer cancel()
	e, err := s.Onboard(ctx, phrase, req.Passphrase)
	if err != nil {
		s.log.Warn("create account from the web UI", "err", err)
		return nil, &apiError{http.StatusInternalServerError, "could not create the account: " + err.Error(), ""}
	}
	if e.AccountID() != acct.ID().String() {
		e.Close()
		return nil, &apiError{http.StatusInternalServerError, "the new account does not match its recovery phrase", ""}
	}
	s.SetEngine(e)
	s.log.Info("account created from the web UI", "account", e.AccountID(), "unprotected", e.Unprotected())
	return s.status(), nil
}

// checkPassphrase refuses passphrases too short to protect anything.
func checkPassphrase(p string) error {
	if len([]rune(p)) < MinPassphrase {
		return badRequest("a passphrase needs at least %d characters", MinPassphrase)
	}
	if len(p) > 1024 {
		return badRequest("a passphrase has at most 1024 bytes")
	}
	return nil
}

// unlock opens a locked account with the passphrase the user typed.
func (s *Server) unlock(w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		Passphrase string `json:"passphrase"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	if req.Passphrase == "" || len(req.Passphrase) > 1024 {
		return nil, badRequest("type this account's passphrase")
	}
	// One attempt at a time: each costs an argon2id derivation.
	s.onboardMu.Lock()
	defer s.onboardMu.Unlock()
	if s.Engine() != nil {
		return nil, &apiError{http.StatusConflict, "this account is already unlocked", ""}
	}
	s.mu.Lock()
	open := s.Unlock
	s.mu.Unlock()
	if open == nil {
		return nil, &apiError{http.StatusConflict, "this account is not locked", ""}
	}
	ctx, cancel := context.WithTimeout(s.ctx, onboardTimeout)
	defer cancel()
	e, err := open(ctx, req.Passphrase)
	if errors.Is(err, client.ErrWrongPassphrase) || errors.Is(err, client.ErrNoPassphrase) {
		return nil, passphraseError(err)
	}
	if err != nil {
		s.log.Warn("unlock from the web UI", "err", err)
		return nil, &apiError{http.StatusInternalServerError, "could not open the account: " + err.Error(), ""}
	}
	s.mu.Lock()
	s.Unlock = nil
	s.mu.Unlock()
	s.SetEngine(e)
	s.log.Info("account unlocked from the web UI", "account", e.AccountID())
	return s.status(), nil
}

// setPassphrase protects an unprotected account's database with a
// passphrase (re-encrypting it while the engine runs). Changing an existing
// passphrase is not offered here.
func (s *Server) setPassphrase(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		Passphrase string `json:"passphrase"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	if err := checkPassphrase(req.Passphrase); err != nil {
		return nil, err
	}
	if !e.Unprotected() {
		return nil, &apiError{http.StatusConflict, "this account already has a passphrase", ""}
	}
	ctx, cancel := context.WithTimeout(r.Context(), onboardTimeout)
	defer cancel()
	if err := e.SetPassphrase(ctx, req.Passphrase); err != nil {
		return nil, &apiError{http.StatusInternalServerError, err.Error(), ""}
	}
	s.log.Info("passphrase set from the web UI", "account", e.AccountID())
	return s.status(), nil
}

// phraseError words a recovery phrase problem for the user.
func phraseError(err error) string {
	var we *identity.PhraseWordError
	switch {
	case errors.As(err, &we):
		msg := fmt.Sprintf("Word %d, %q, is not a recovery phrase word", we.Position, we.Word)
		if we.Suggestion != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", we.Suggestion)
		}
		return msg
	case errors.Is(err, identity.ErrPhraseLength):
		return "A recovery phrase has 24 words"
	case errors.Is(err, identity.ErrPhraseChecksum):
		return "These words are not a valid recovery phrase: a word is wrong or two are swapped"
	}
	return err.Error()
}

// QRCode is a QR code as a matrix of modules, row by row: '1' is dark.
type QRCode struct {
	Text string   `json:"text"`
	Size int      `json:"size"`
	Rows []string `json:"rows"`
}

// qrOf encodes text (an account ID is upper-cased: QR alphanumeric mode
// makes a smaller code, and account IDs accept upper case).
func qrOf(text string) (*QRCode, error) {
	text = strings.ToUpper(text)
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return nil, fmt.Errorf("QR code: %w", err)
	}
	q := &QRCode{Text: text, Size: code.Size, Rows: make([]string, code.Size)}
	row := make([]byte, code.Size)
	for y := range code.Size {
		for x := range code.Size {
			row[x] = '0'
			if code.Black(x, y) {
				row[x] = '1'
			}
		}
		q.Rows[y] = string(row)
	}
	return q, nil
}

// qr returns the account ID as a QR code: a matrix the page draws.
func (s *Server) qr(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	return qrOf(e.AccountID())
}
