package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/umbra-im/umbra/internal/backup"
	"github.com/umbra-im/umbra/internal/fsutil"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/keystore"
	"github.com/umbra-im/umbra/internal/privnet"
	"github.com/umbra-im/umbra/internal/ratchet"
)

// Backups (docs/architecture.md, "Backups"): an encrypted file holding the
// whole database of the account — its seed, contacts, message history,
// settings, inbox keys, prekeys — except what belongs to one device's view
// of the network (the node list and guards), which a restored home learns
// afresh.
//
// Ratchet sessions are included, but a restored home only receives on
// them, never encrypts: a backup is a snapshot, and the device it came
// from may have gone on sending. Encrypting again from the snapshot would
// reuse message keys (AES-GCM keys and nonces) for new plaintexts. The
// first message to each contact after a restore starts a new session
// (PQXDH), as a reinstall does; what contacts still send on the old
// session opens as long as the snapshot can follow it. Prekeys are
// rotated and the card republished, so new contacts use keys that only
// the restored home holds.

// backupParams is the key derivation cost of new backups (tests lower it).
var backupParams = backup.DefaultParams

// Keys a backup leaves out: one device's view of the network.
var backupSkip = []string{keyNodes, keyNodesNetwork, keyGuards}

func inBackup(key string) bool { return !slices.Contains(backupSkip, key) }

// WriteBackup writes an encrypted backup of the account to w, protected by
// passphrase (required). It returns the number of entries written. The
// engine's state is held still while it runs.
func (e *Engine) WriteBackup(ctx context.Context, w io.Writer, passphrase string) (uint64, error) {
	if passphrase == "" {
		return 0, backup.ErrEmptyPassphrase
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	keys, err := e.kv.List("")
	if err != nil {
		return 0, err
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return !inBackup(k) })
	bw, err := backup.NewWriter(w, passphrase, backupParams)
	if err != nil {
		return 0, err
	}
	meta := backup.Meta{AccountID: e.AccountID(), CreatedAt: e.now().Unix(), Entries: uint64(len(keys))}
	if nf, err := ReadNetwork(e.cfg.Home); err == nil {
		meta.Network = string(nf.Format())
	}
	if err := bw.Meta(meta); err != nil {
		return 0, err
	}
	var n uint64
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		v, ok, err := e.kv.Get(k)
		if err != nil {
			return n, fmt.Errorf("backup: read %q: %w", k, err)
		}
		if !ok {
			continue // deleted meanwhile
		}
		if err := bw.Entry(k, v); err != nil {
			return n, err
		}
		n++
	}
	return n, bw.Close()
}

// RestoreOptions tune RestoreBackup.
type RestoreOptions struct {
	// Force replaces an account the home already holds.
	Force bool
	// Network, if set, replaces the network file the backup carries.
	Network *privnet.File
	// Progress, if set, is called every few thousand entries and at the
	// end with the entries restored and the number expected.
	Progress func(done, total uint64)
}

// ErrBackupWrongPassphrase and the other backup errors, for callers.
var (
	ErrBackupWrongPassphrase = backup.ErrWrongPassphrase
	ErrBackupDamaged         = backup.ErrDamaged
)

const restoreBatch = 1000

// RestoreBackup restores the account in the backup read from r (opened
// with backupPass) into home, protected by homePass ("" for none). The
// home must hold no account unless o.Force; the new database is built
// beside the old one and replaces it only once the whole backup has been
// read and authenticated. It returns the restored account ID.
func RestoreBackup(home string, r io.Reader, backupPass, homePass string, o RestoreOptions) (identity.AccountID, error) {
	var none identity.AccountID
	if Exists(home) && !o.Force {
		return none, fmt.Errorf("%s already holds an account: restore into a new home, or replace it with --force", home)
	}
	br, err := backup.NewReader(r, backupPass)
	if err != nil {
		return none, err
	}
	meta, err := br.Meta()
	if err != nil {
		return none, err
	}
	nf := o.Network
	if nf == nil && meta.Network != "" {
		if nf, err = privnet.ParseFile([]byte(meta.Network)); err != nil {
			return none, fmt.Errorf("the backup's network file: %w", err)
		}
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return none, fmt.Errorf("create home: %w", err)
	}
	lock, err := lockHome(home)
	if err != nil {
		return none, err
	}
	defer lock.Close()

	tmp := filepath.Join(home, dbFile+".restoring")
	removeDB := func(p string) {
		for _, s := range []string{"", "-wal", "-shm"} {
			os.Remove(p + s)
		}
	}
	removeDB(tmp)
	params := passphraseArgon2
	if homePass == "" {
		params = keystore.LightArgon2
	}
	ks, err := keystore.Open(tmp, homePass, keystore.WithArgon2(params))
	if err != nil {
		return none, fmt.Errorf("create the database: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			ks.Close()
			removeDB(tmp)
		}
	}()
	id, err := restoreEntries(br, ks, meta, o.Progress)
	if err != nil {
		return none, err
	}
	if err := ks.Close(); err != nil {
		return none, fmt.Errorf("restore: %w", err)
	}
	ok = true
	// Swap the database in: the old one's journal files go first, so none
	// is ever applied to the restored database.
	final := filepath.Join(home, dbFile)
	for _, s := range []string{"-wal", "-shm"} {
		os.Remove(final + s)
	}
	if _, err := os.Stat(tmp + "-wal"); err == nil {
		if err := os.Rename(tmp+"-wal", final+"-wal"); err != nil {
			removeDB(tmp)
			return none, fmt.Errorf("restore: %w", err)
		}
	}
	os.Remove(tmp + "-shm")
	if err := os.Rename(tmp, final); err != nil {
		removeDB(tmp)
		return none, fmt.Errorf("restore: %w", err)
	}
	if nf != nil {
		if err := WriteNetwork(home, nf); err != nil {
			return none, err
		}
	}
	if err := fsutil.SyncDir(home); err != nil {
		return none, fmt.Errorf("restore: %w", err)
	}
	return id, nil
}

// restoreEntries copies the backup's entries into ks, marking sessions
// receive-only, then checks the account and rotates its prekeys.
func restoreEntries(br *backup.Reader, ks *keystore.Store, meta *backup.Meta, progress func(done, total uint64)) (identity.AccountID, error) {
	var none identity.AccountID
	ctx := context.Background()
	var b []keystore.Entry
	var done uint64
	flush := func() error {
		if len(b) == 0 {
			return nil
		}
		if err := ks.PutMany(ctx, b); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		b = b[:0]
		if progress != nil {
			progress(done, meta.Entries)
		}
		return nil
	}
	for {
		k, v, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return none, err
		}
		if !inBackup(k) {
			continue
		}
		if strings.HasPrefix(k, "sessmeta/") {
			if v, err = receiveOnly(v); err != nil {
				return none, fmt.Errorf("%w: session record %q: %v", backup.ErrDamaged, k, err)
			}
		}
		b = append(b, keystore.Entry{Name: k, Value: v})
		done++
		if len(b) == restoreBatch {
			if err := flush(); err != nil {
				return none, err
			}
		}
	}
	if err := flush(); err != nil {
		return none, err
	}
	seed, err := ks.Get(ctx, keyAccountSeed)
	if err != nil {
		return none, fmt.Errorf("the backup holds no account: %w", err)
	}
	acct, err := identity.FromSeed(seed)
	if err != nil {
		return none, fmt.Errorf("the backup's account: %w", err)
	}
	if acct.ID().String() != meta.AccountID {
		return none, fmt.Errorf("%w: the account does not match the backup's description", backup.ErrDamaged)
	}
	if err := rotateRestoredPrekeys(ctx, ks, acct); err != nil {
		return none, err
	}
	return acct.ID(), nil
}

// receiveOnly rewrites a session record so that none of its sessions is
// used to send again.
func receiveOnly(v []byte) ([]byte, error) {
	var r sessionRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, err
	}
	ids := map[string]bool{r.Active: r.Active != ""}
	for k := range r.Created {
		ids[k] = true
	}
	for _, k := range r.ReceiveOnly {
		ids[k] = true
	}
	r.ReceiveOnly = r.ReceiveOnly[:0]
	for k, ok := range ids {
		if ok {
			r.ReceiveOnly = append(r.ReceiveOnly, k)
		}
	}
	slices.Sort(r.ReceiveOnly)
	r.Active = ""
	return json.Marshal(r)
}

// rotateRestoredPrekeys replaces the restored signed and last-resort
// prekeys (the old ones stay for opening first messages sent against
// them) and forgets the published card, so the restored home publishes a
// card of its own at its first start.
func rotateRestoredPrekeys(ctx context.Context, ks *keystore.Store, acct *identity.Account) error {
	b, err := ks.Get(ctx, keyPrekeys)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil // made at the first start
	}
	if err != nil {
		return err
	}
	pk, err := ratchet.UnmarshalPrekeys(b)
	if err != nil {
		return fmt.Errorf("the backup's prekeys: %w", err)
	}
	if err := pk.RotateSignedPrekey(nil, acct); err != nil {
		return err
	}
	if err := pk.RotateLastResortKEM(nil, acct); err != nil {
		return err
	}
	if b, err = pk.Marshal(); err != nil {
		return err
	}
	rotated, _ := json.Marshal(time.Now())
	if err := ks.PutMany(ctx, []keystore.Entry{{Name: keyPrekeys, Value: b}, {Name: keyRotated, Value: rotated}}); err != nil {
		return err
	}
	return ks.Delete(ctx, keyCardPublished)
}
