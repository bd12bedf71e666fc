// Package client is Umbra's client engine: an account in a local encrypted
// database, contacts and message requests, sessions (PQXDH + Double
// Ratchet), a durable outbox, an inbox that long-polls the user's mailboxes
// through onion paths, receipts, and events. It is usable as a Go library;
// the daemon serves it over a local API and the CLI drives it.
package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/umbra-im/umbra/internal/fsutil"
	"github.com/umbra-im/umbra/internal/privnet"
)

// Home layout:
//
//	HOME/umbra.db     encrypted local database (keys, sessions, messages)
//	HOME/network.txt  the network file (privnet.File): node addresses to
//	                  bootstrap from and, for a private network, its name,
//	                  operator key and bootstrap signature
//	HOME/lock         held by whoever runs the engine (daemon or CLI)
//	HOME/daemon.json  the running daemon's API URL and bearer token
//	HOME/ui.json      the daemon's web UI port and token, kept across
//	                  restarts so that an open tab reconnects
const (
	dbFile      = "umbra.db"
	networkFile = "network.txt"
	lockFile    = "lock"
	// DaemonFile names the daemon's address file in the home folder.
	DaemonFile = "daemon.json"
	// UIFile names the file (mode 0600) where the daemon keeps its web
	// UI's port and token from one start to the next.
	UIFile = "ui.json"
)

// ErrNoAccount means the home folder holds no account yet.
var ErrNoAccount = errors.New("no account here yet: run 'umbra init --network FILE' first")

// ErrLocked means another process runs the engine for this home.
var ErrLocked = errors.New("this home is in use by another umbra process (a daemon or another command)")

// DefaultHome is ~/.umbra, or $UMBRA_HOME.
func DefaultHome() string {
	if h := os.Getenv("UMBRA_HOME"); h != "" {
		return h
	}
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".umbra")
	}
	return ".umbra"
}

// Exists reports whether home holds an account database.
func Exists(home string) bool {
	_, err := os.Stat(filepath.Join(home, dbFile))
	return err == nil
}

// lockHome takes the home's exclusive lock without waiting.
func lockHome(home string) (*os.File, error) {
	f, err := fsutil.TryLock(filepath.Join(home, lockFile))
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, fmt.Errorf("lock home: %w", err)
	}
	return f, nil
}

// WriteNetwork saves the network file in the home, durably (a torn
// network file would leave the account unable to reach the network). The
// whole file is kept: for a private network its name, the operator's key
// and the signed bootstrap list, so the account trusts only the nodes on
// the operator's allow-list.
func WriteNetwork(home string, f *privnet.File) error {
	if err := fsutil.WriteFileAtomic(filepath.Join(home, networkFile), f.Format(), 0o600); err != nil {
		return fmt.Errorf("save the network file: %w", err)
	}
	return nil
}

// ReadNetwork loads the network file saved in the home (older homes hold
// bare addresses: a public network).
func ReadNetwork(home string) (*privnet.File, error) {
	f, err := privnet.ReadFile(filepath.Join(home, networkFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("this home has no network file: run 'umbra network set FILE' (FILE lists node addresses, e.g. a devnet's bootstrap.txt)")
	}
	return f, err
}

// SetNetwork installs f as the network file of the existing account in
// home, replacing the one it has. It takes the home's lock, so it fails
// with ErrLocked while a daemon or another command runs for the home. The
// node list and guards the account kept from its old network are dropped
// the next time the engine opens (see Open).
func SetNetwork(home string, f *privnet.File) error {
	if !Exists(home) {
		return ErrNoAccount
	}
	lock, err := lockHome(home)
	if err != nil {
		return err
	}
	defer lock.Close()
	return WriteNetwork(home, f)
}

// NetworkPath is where the home keeps its network file.
func NetworkPath(home string) string { return filepath.Join(home, networkFile) }
