package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/umbra-im/umbra/internal/cover"
	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/fsutil"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/privnet"
	"github.com/umbra-im/umbra/internal/ratchet"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

const (
	keyAccountSeed = "account/seed"
	keyPrekeys     = "prekeys"
	oneTimePrekeys = 20
	oneTimeKEM     = 5
	bundleTTL      = 14 * 24 * time.Hour
	// rotateEvery is how often the signed prekey and the last-resort
	// ML-KEM prekey are replaced (the ratchet keeps the last few, so first
	// messages sent against a just-replaced bundle still open).
	rotateEvery      = 7 * 24 * time.Hour
	keyRotated       = "prekeys-rotated"
	republishOnUseIn = 2 * time.Second
)

// Init creates a home with a new account (or, with phrase, the account that
// phrase restores), its prekeys and the network file. It refuses to
// overwrite an existing account.
func Init(home, passphrase string, network []string, phrase string) (*identity.Account, error) {
	var nf *privnet.File
	if len(network) > 0 {
		nf = &privnet.File{Addrs: network}
	}
	return InitNetwork(home, passphrase, nf, phrase)
}

// InitNetwork is Init with a whole network file (nil: none yet), kept in
// the home as given: a private network's operator key with it.
func InitNetwork(home, passphrase string, network *privnet.File, phrase string) (*identity.Account, error) {
	if Exists(home) {
		return nil, fmt.Errorf("%s already holds an account; use another --home", home)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("create home: %w", err)
	}
	lock, err := lockHome(home)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	var acct *identity.Account
	if phrase != "" {
		acct, err = identity.Restore(phrase)
	} else {
		acct, err = identity.New(nil)
	}
	if err != nil {
		return nil, err
	}
	kv, closeKV, err := openKV(home, passphrase)
	if err != nil {
		return nil, err
	}
	defer closeKV()
	pk, err := ratchet.GeneratePrekeys(nil, acct, oneTimePrekeys, oneTimeKEM)
	if err != nil {
		return nil, err
	}
	b, err := pk.Marshal()
	if err != nil {
		return nil, err
	}
	if err := kv.Put(keyPrekeys, b); err != nil {
		return nil, err
	}
	if network != nil {
		if err := WriteNetwork(home, network); err != nil {
			return nil, err
		}
	}
	// The seed last: an account exists only once everything else is saved.
	if err := kv.Put(keyAccountSeed, acct.Seed()); err != nil {
		return nil, err
	}
	// SQLite flushes the database's content (synchronous=FULL) but not the
	// folder entries of the files just created: flush the home, and the
	// folder holding it, so the new account survives a crash.
	if err := fsutil.SyncDir(home); err != nil {
		return nil, fmt.Errorf("create account: %w", err)
	}
	if err := fsutil.SyncDir(filepath.Dir(filepath.Clean(home))); err != nil {
		return nil, fmt.Errorf("create account: %w", err)
	}
	return acct, nil
}

// ReadAccountID opens the home just long enough to read the account ID.
func ReadAccountID(home, passphrase string) (identity.AccountID, error) {
	if !Exists(home) {
		return identity.AccountID{}, ErrNoAccount
	}
	kv, closeKV, err := openKV(home, passphrase)
	if err != nil {
		return identity.AccountID{}, err
	}
	defer closeKV()
	a, err := loadAccount(kv)
	if err != nil {
		return identity.AccountID{}, err
	}
	return a.ID(), nil
}

func loadAccount(kv KV) (*identity.Account, error) {
	seed, ok, err := kv.Get(keyAccountSeed)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNoAccount
	}
	return identity.FromSeed(seed)
}

func loadPrekeys(kv KV, acct *identity.Account) (*ratchet.Prekeys, error) {
	b, ok, err := kv.Get(keyPrekeys)
	if err != nil {
		return nil, err
	}
	if !ok {
		return ratchet.GeneratePrekeys(nil, acct, oneTimePrekeys, oneTimeKEM)
	}
	return ratchet.UnmarshalPrekeys(b)
}

// maintainPrekeysLocked tops the one-time pools up and, once a week,
// rotates the signed and last-resort prekeys, persisting any change with
// the time of the last rotation.
func (e *Engine) maintainPrekeysLocked() error {
	changed := false
	x, k := e.prekeys.OneTimeCount()
	if x < oneTimePrekeys/2 {
		if err := e.prekeys.AddOneTime(nil, oneTimePrekeys-x); err != nil {
			return err
		}
		changed = true
	}
	if k < oneTimeKEM/2+1 {
		if err := e.prekeys.AddOneTimeKEM(nil, e.acct, oneTimeKEM-k); err != nil {
			return err
		}
		changed = true
	}
	var rotated time.Time
	if ok, err := e.d.getJSON(keyRotated, &rotated); err != nil {
		return err
	} else if !ok {
		rotated, changed = e.now(), true // made at init
	}
	if e.now().Sub(rotated) >= rotateEvery {
		if err := e.prekeys.RotateSignedPrekey(nil, e.acct); err != nil {
			return err
		}
		if err := e.prekeys.RotateLastResortKEM(nil, e.acct); err != nil {
			return err
		}
		rotated, changed = e.now(), true
	}
	if !changed {
		return nil
	}
	var b batch
	if err := e.savePrekeysTo(&b); err != nil {
		return err
	}
	if err := putJSON(&b, keyRotated, rotated); err != nil {
		return err
	}
	return e.kv.PutMany(b.entries)
}

// savePrekeysLocked persists the prekeys (after a one-time key was used).
func (e *Engine) savePrekeysLocked() error { return e.savePrekeysTo(e.kv) }

func (e *Engine) savePrekeysTo(w kvWriter) error {
	b, err := e.prekeys.Marshal()
	if err != nil {
		return err
	}
	return w.Put(keyPrekeys, b)
}

// republishSoon asks the prekey loop to publish a fresh card (a one-time
// prekey was consumed).
func (e *Engine) republishSoon() {
	select {
	case e.republish <- struct{}{}:
	default:
	}
}

// keyCardPublished records the last card published: its hash and when.
const keyCardPublished = "card/published"

type cardPublished struct {
	Hash []byte    `json:"hash"`
	At   time.Time `json:"at"`
}

// prekeyLoop keeps the account's card (prekey bundle and bucket count)
// published in its swarm: when it changed (a rotation,
// one-time prekeys used) or when the published copy is half-way to
// expiring. An unchanged card is never published again just because the
// client started, so what a public reader sees tells nothing of when the
// client runs.
func (e *Engine) prekeyLoop(ctx context.Context) {
	for {
		if err := e.publishPrekeys(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Warn("publish the card; will retry", "err", err)
			sleep(ctx, 5*time.Second)
			if ctx.Err() != nil {
				return
			}
			continue
		}
		// Check again in about an hour (the weekly rotation, the half-way
		// republication).
		t := time.NewTimer(time.Hour + e.cfg.Schedule.catchUpGap())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-e.republish:
			sleep(ctx, republishOnUseIn)
		}
		t.Stop()
	}
}

// PublishPrekeys publishes the account's card now if it changed or is due
// (see prekeyLoop), so others can start sessions with this account even
// before it runs a daemon.
func (e *Engine) PublishPrekeys(ctx context.Context) error { return e.publishPrekeys(ctx) }

func (e *Engine) publishPrekeys(ctx context.Context) error {
	e.mu.Lock()
	if err := e.maintainPrekeysLocked(); err != nil {
		e.mu.Unlock()
		return err
	}
	card, err := e.cardLocked()
	e.mu.Unlock()
	if err != nil {
		return err
	}
	data, err := card.Encode(e.acct)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	var last cardPublished
	if _, err := e.d.getJSON(keyCardPublished, &last); err != nil {
		return err
	}
	if bytes.Equal(last.Hash, sum[:]) && e.now().Sub(last.At) < bundleTTL/2 {
		return nil
	}
	err = e.do(ctx, cover.Send, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := e.net.Publish(cctx, e.cardKey(), bundleTTL, data)
		return err
	})
	if err != nil {
		return err
	}
	return e.d.putJSON(keyCardPublished, cardPublished{Hash: sum[:], At: e.now()})
}

// fetchCard reads a contact's newest valid card from their swarm, and
// keeps it.
func (e *Engine) fetchCard(ctx context.Context, aid identity.AccountID) (*envelope.Card, error) {
	var msgs []swarmclient.Message
	err := e.do(ctx, cover.Fetch, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var err error
		msgs, err = e.net.ReadPublic(cctx, cardMailbox(aid))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fetch %s's prekeys: %w", short(aid.String()), err)
	}
	for i := len(msgs) - 1; i >= 0; i-- { // newest first
		c, err := envelope.ParseCard(msgs[i].Data, aid)
		if err != nil {
			continue
		}
		b, err := ratchet.ParseBundle(c.Bundle)
		if err != nil || b.Verify(aid) != nil {
			continue
		}
		if err := e.kv.Put(peerCardPrefix+aid.String(), msgs[i].Data); err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, errors.New("this account has published no valid prekeys yet: it has never been online (or uses another network)")
}

// peerCard is aid's kept card, else a freshly fetched one. The kept card
// serves to find aid's request bucket; a new session takes prekeys from a
// fresh card (see enqueue).
func (e *Engine) peerCard(ctx context.Context, aid identity.AccountID) (*envelope.Card, error) {
	if v, ok, err := e.kv.Get(peerCardPrefix + aid.String()); err == nil && ok {
		if c, err := envelope.ParseCard(v, aid); err == nil {
			return c, nil
		}
	}
	if e.net == nil {
		return nil, errors.New("the engine is offline")
	}
	return e.fetchCard(ctx, aid)
}
