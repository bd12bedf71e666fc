package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/umbra-im/umbra/internal/keystore"
)

// Passphrase changes and the recovery phrase shown again. Each needs the
// current passphrase: someone at an unlocked screen must not be able to
// take the account (the phrase) or lock its owner out (a new passphrase).

// ErrPassphraseEmpty: a new passphrase was empty where one is required
// (removing a passphrase is its own, explicit request).
var ErrPassphraseEmpty = errors.New("the new passphrase is empty (to remove the passphrase, say so explicitly)")

// CheckPassphrase tells whether passphrase is the home's current one: nil
// if so; ErrNoPassphrase if the home has none and passphrase is not
// empty; ErrPassphraseRequired if the home has one and passphrase is
// empty; ErrWrongPassphrase otherwise.
func (e *Engine) CheckPassphrase(ctx context.Context, passphrase string) error {
	if e.Unprotected() {
		if passphrase != "" {
			return ErrNoPassphrase
		}
		return nil
	}
	if passphrase == "" {
		return ErrPassphraseRequired
	}
	c, ok := e.kv.(interface {
		CheckPassphrase(ctx context.Context, passphrase string) error
	})
	if !ok {
		return errors.New("this database cannot check a passphrase")
	}
	switch err := c.CheckPassphrase(ctx, passphrase); {
	case errors.Is(err, keystore.ErrWrongPassphrase):
		return ErrWrongPassphrase
	case errors.Is(err, keystore.ErrNoPassphrase):
		return ErrNoPassphrase
	default:
		return err
	}
}

// CheckPassphrase checks passphrase against the store.
func (k *ksKV) CheckPassphrase(ctx context.Context, passphrase string) error {
	return k.s.CheckPassphrase(ctx, passphrase)
}

// ChangePassphrase re-encrypts the database under newPass after checking
// oldPass (see CheckPassphrase; "" for a home without one). An empty
// newPass removes the passphrase only with remove set, and remove with a
// non-empty newPass is refused.
func (e *Engine) ChangePassphrase(ctx context.Context, oldPass, newPass string, remove bool) error {
	switch {
	case remove && newPass != "":
		return errors.New("give a new passphrase or remove the passphrase, not both")
	case !remove && newPass == "":
		return ErrPassphraseEmpty
	}
	if err := e.CheckPassphrase(ctx, oldPass); err != nil {
		return err
	}
	if remove {
		if e.Unprotected() {
			return errors.New("this home has no passphrase: there is none to remove")
		}
		c, ok := e.kv.(interface {
			removePassphrase(ctx context.Context) error
		})
		if !ok {
			return errors.New("this database cannot change its passphrase")
		}
		if err := c.removePassphrase(ctx); err != nil {
			return fmt.Errorf("remove the passphrase: %w", err)
		}
		return nil
	}
	return e.SetPassphrase(ctx, newPass)
}

// removePassphrase re-encrypts the store with the empty passphrase (and
// the light key derivation an unprotected home uses).
func (k *ksKV) removePassphrase(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.s.ChangePassphrase(ctx, "", keystore.WithArgon2(keystore.LightArgon2))
}

// RecoveryPhrase returns the account's 24-word recovery phrase after
// checking passphrase (see CheckPassphrase). The database keeps the
// account's master seed (encrypted like everything else): the phrase is
// that seed in words.
func (e *Engine) RecoveryPhrase(ctx context.Context, passphrase string) (string, error) {
	if err := e.CheckPassphrase(ctx, passphrase); err != nil {
		return "", err
	}
	return e.acct.Phrase(), nil
}
