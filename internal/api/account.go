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
// account yet, and whether this server can create one (onboarding).
type AccountStatus struct {
	Exists    bool   `json:"exists"`
	AccountID string `json:"account_id,omitempty"`
	CanCreate bool   `json:"can_create"`
}

// onboardTimeout bounds creating an account and joining the network.
const onboardTimeout = 90 * time.Second

func (s *Server) account(w http.ResponseWriter, r *http.Request) (any, error) {
	if e := s.Engine(); e != nil {
		return AccountStatus{Exists: true, AccountID: e.AccountID()}, nil
	}
	return AccountStatus{CanCreate: s.Onboard != nil}, nil
}

var errHasAccount = &apiError{http.StatusConflict, "this home already has an account"}

// newPhrase generates the recovery phrase of a new account without
// creating it: the account is created (POST /api/v1/account) only once the
// user has confirmed they wrote the phrase down.
func (s *Server) newPhrase(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.Engine() != nil {
		return nil, errHasAccount
	}
	acct, err := identity.New(nil)
	if err != nil {
		return nil, fmt.Errorf("new account: %w", err)
	}
	return map[string]string{"recovery_phrase": acct.Phrase()}, nil
}

// createAccount creates the account from a recovery phrase (new or
// restored) through Onboard, then serves its engine.
func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		RecoveryPhrase string `json:"recovery_phrase"`
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
	s.onboardMu.Lock()
	defer s.onboardMu.Unlock()
	if s.Engine() != nil {
		return nil, errHasAccount
	}
	if s.Onboard == nil {
		return nil, &apiError{http.StatusNotImplemented, "this server cannot create accounts: run 'umbra init'"}
	}
	// The work outlives an impatient browser, not the server.
	ctx, cancel := context.WithTimeout(s.ctx, onboardTimeout)
	defer cancel()
	e, err := s.Onboard(ctx, phrase)
	if err != nil {
		s.log.Warn("create account from the web UI", "err", err)
		return nil, &apiError{http.StatusInternalServerError, "could not create the account: " + err.Error()}
	}
	if e.AccountID() != acct.ID().String() {
		e.Close()
		return nil, &apiError{http.StatusInternalServerError, "the new account does not match its recovery phrase"}
	}
	s.SetEngine(e)
	s.log.Info("account created from the web UI", "account", e.AccountID())
	return AccountStatus{Exists: true, AccountID: e.AccountID()}, nil
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
