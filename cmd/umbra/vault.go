package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/fsutil"
	"github.com/umbra-im/umbra/internal/privnet"
)

// Backups, passphrase changes and the recovery phrase shown again.

// askSecret returns the environment variable env if set, else a secret
// typed on the terminal (twice when confirm), else an error naming env.
func askSecret(cmd *cobra.Command, env, prompt string, confirm bool) (string, error) {
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	fd, ok := terminalIn(cmd)
	if !ok {
		return "", fmt.Errorf("set %s (standard input is not a terminal to ask on)", env)
	}
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "%s: ", prompt)
	b, err := readPassword(fd)
	fmt.Fprintln(w)
	if err != nil {
		return "", fmt.Errorf("read the passphrase: %w", err)
	}
	if len(b) == 0 {
		return "", errors.New("no passphrase typed")
	}
	if confirm {
		fmt.Fprintf(w, "Again, to confirm: ")
		b2, err := readPassword(fd)
		fmt.Fprintln(w)
		if err != nil {
			return "", fmt.Errorf("read the passphrase: %w", err)
		}
		if !bytes.Equal(b, b2) {
			return "", errors.New("the two passphrases differ")
		}
	}
	return string(b), nil
}

// daemonPass is the current passphrase to give a running daemon for a
// check: UMBRA_PASSPHRASE, else typed on the terminal when the home has
// one, else "".
func daemonPass(cmd *cobra.Command, st api.AccountStatus) (string, error) {
	if p := passphrase(); p != "" || st.Unprotected {
		return p, nil
	}
	return askSecret(cmd, "UMBRA_PASSPHRASE", "Current passphrase", false)
}

func backupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Create or restore an encrypted backup of your account",
		Long: `An encrypted backup holds your account (so it restores without the recovery
phrase), contacts, message history and settings, encrypted under a backup
passphrase (argon2id, then ChaCha20-Poly1305). The passphrase comes from
UMBRA_BACKUP_PASSPHRASE, or is asked on the terminal; it may not be empty.

Ratchet sessions are in the backup, but a restored home only receives on
them: its first message to each contact starts a new session, so no
message key is ever used twice (see docs/architecture.md, "Backups").`}
	addHomeFlag(cmd)
	var asJSON, force bool
	var network string
	create := &cobra.Command{
		Use:   "create FILE",
		Short: "Write an encrypted backup of the account to FILE (mode 0600)",
		Long: `Write an encrypted backup of the account to FILE, atomically and with mode
0600 (an existing FILE is replaced). It works with or without a running
daemon. A protected home needs its passphrase first (UMBRA_PASSPHRASE, or
typed when asked), even while a daemon runs: the backup is the account.`,
		Example: `  UMBRA_BACKUP_PASSPHRASE='long backup words' umbra backup create ~/umbra.umbrabak`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			home := homeOf(cmd)
			var write func(w io.Writer) error
			if c, st, ok := api.FindDaemon(cmd.Context(), home); ok {
				if st.Locked {
					return errors.New("the daemon for this home waits for its passphrase: unlock it in its web UI first")
				}
				cur, err := daemonPass(cmd, st)
				if err != nil {
					return err
				}
				pass, err := askSecret(cmd, "UMBRA_BACKUP_PASSPHRASE", "Backup passphrase", true)
				if err != nil {
					return fmt.Errorf("backup: %w", err)
				}
				write = func(w io.Writer) error {
					return c.Download(cmd.Context(), "/api/v1/backup", map[string]string{"passphrase": pass, "current_passphrase": cur}, w)
				}
			} else {
				cur, err := homePassphrase(cmd, home)
				if err != nil {
					return err
				}
				e, err := client.Open(cmd.Context(), client.Config{Home: home, Passphrase: cur, Offline: true, Logger: discardLogger()})
				if err != nil {
					return err
				}
				defer e.Close()
				if e.Unprotected() {
					warnUnprotected(cmd)
				}
				pass, err := askSecret(cmd, "UMBRA_BACKUP_PASSPHRASE", "Backup passphrase", true)
				if err != nil {
					return fmt.Errorf("backup: %w", err)
				}
				write = func(w io.Writer) error {
					_, err := e.WriteBackup(cmd.Context(), w, pass)
					return err
				}
			}
			size, err := writeFileAtomic(args[0], write)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"file": args[0], "bytes": size})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Backup written to %s (%d bytes). Keep it and its passphrase apart: together they are your account.\n", args[0], size)
			return nil
		},
	}
	create.Flags().BoolVar(&asJSON, "json", false, `print {"file": ..., "bytes": ...}`)
	restore := &cobra.Command{
		Use:   "restore FILE [--force] [--network FILE]",
		Short: "Restore the account in a backup FILE into the home",
		Long: `Restore the account in a backup into the home (--home): the same account ID,
contacts, message history and settings. The home must hold no account;
--force replaces the one it has (stop its daemon first). The new database
is built beside the old one and replaces it only once the whole file has
been read and authenticated: a wrong passphrase or a damaged file changes
nothing.

The restored home is protected by UMBRA_PASSPHRASE, or, when that is
unset, by the backup passphrase. It joins the network the backup names,
or the one --network gives.`,
		Example: `  UMBRA_BACKUP_PASSPHRASE='long backup words' umbra backup restore ~/umbra.umbrabak --home ./restored`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			home := homeOf(cmd)
			if _, _, ok := api.FindDaemon(cmd.Context(), home); ok {
				return errors.New("restore: a daemon runs for this home: stop it first")
			}
			var nf *privnet.File
			if network != "" {
				var err error
				if nf, err = readClientNetwork(network); err != nil {
					return fmt.Errorf("restore: --network: %w", err)
				}
			}
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			defer f.Close()
			if client.Exists(home) && !force {
				return fmt.Errorf("restore: %s already holds an account: restore into a new --home, or replace it with --force", home)
			}
			bpass, err := askSecret(cmd, "UMBRA_BACKUP_PASSPHRASE", "Backup passphrase", false)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			hpass := passphrase()
			if hpass == "" {
				hpass = bpass
			}
			errw := cmd.ErrOrStderr()
			last := uint64(0)
			id, err := client.RestoreBackup(home, f, bpass, hpass, client.RestoreOptions{Force: force, Network: nf,
				Progress: func(done, total uint64) {
					if total >= 5000 && (done-last >= total/10 || done == total) {
						fmt.Fprintf(errw, "umbra: restored %d of %d entries\n", done, total)
						last = done
					}
				}})
			switch {
			case errors.Is(err, client.ErrBackupWrongPassphrase):
				return errors.New("restore: wrong backup passphrase (UMBRA_BACKUP_PASSPHRASE)")
			case err != nil:
				return fmt.Errorf("restore: %w", err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(map[string]string{"account_id": id.String(), "home": home})
			}
			which := "UMBRA_PASSPHRASE"
			if passphrase() == "" {
				which = "the backup passphrase"
			}
			fmt.Fprintf(out, "Account restored in %s\n\nYour account ID:\n  %s\n\nThe home is protected by %s. Your first message to each contact starts a new session.\n", home, id, which)
			return nil
		},
	}
	restore.Flags().BoolVar(&force, "force", false, "replace the account the home already holds")
	restore.Flags().StringVar(&network, "network", "", "network file to join instead of the one in the backup")
	restore.Flags().BoolVar(&asJSON, "json", false, `print {"account_id": ..., "home": ...}`)
	cmd.AddCommand(create, restore)
	return cmd
}

func passphraseCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "passphrase", Short: "Change, set or remove the passphrase of your home"}
	addHomeFlag(cmd)
	var remove bool
	change := &cobra.Command{
		Use:   "change [--remove]",
		Short: "Change the home's passphrase (or set one, or remove it)",
		Long: `Re-encrypt the home's database under a new passphrase. The current one comes
from UMBRA_PASSPHRASE, or is asked on the terminal (a home without one
asks none); the new one from UMBRA_NEW_PASSPHRASE, or asked twice on the
terminal. It works with or without a running daemon.

--remove takes the passphrase away: anyone who can read the home folder
can then read your messages and take over your account.

A wrong current passphrase and one given for a home that has none get
different errors.`,
		Example: `  umbra passphrase change
  UMBRA_PASSPHRASE=old UMBRA_NEW_PASSPHRASE=new umbra passphrase change`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home := homeOf(cmd)
			newPass := func() (string, error) {
				if remove {
					fmt.Fprintln(cmd.ErrOrStderr(), "umbra: warning: removing the passphrase: anyone who can read this home's folder can then read your messages and take over your account")
					return "", nil
				}
				return askSecret(cmd, "UMBRA_NEW_PASSPHRASE", "New passphrase", true)
			}
			out := cmd.OutOrStdout()
			done := func() error {
				if remove {
					fmt.Fprintln(out, "Passphrase removed: this home is not protected.")
				} else {
					fmt.Fprintln(out, "Passphrase changed.")
				}
				return nil
			}
			if c, st, ok := api.FindDaemon(cmd.Context(), home); ok {
				if st.Locked {
					return errors.New("the daemon for this home waits for its passphrase: unlock it in its web UI first")
				}
				old, err := daemonPass(cmd, st)
				if err != nil {
					return err
				}
				np, err := newPass()
				if err != nil {
					return err
				}
				if err := c.Do(cmd.Context(), "POST", "/api/v1/account/passphrase/change",
					map[string]any{"old_passphrase": old, "new_passphrase": np, "remove": remove}, nil); err != nil {
					return err
				}
				return done()
			}
			old, err := homePassphrase(cmd, home)
			if err != nil {
				return err
			}
			e, err := client.Open(cmd.Context(), client.Config{Home: home, Passphrase: old, Offline: true, Logger: discardLogger()})
			if err != nil {
				return err
			}
			defer e.Close()
			np, err := newPass()
			if err != nil {
				return err
			}
			if err := e.ChangePassphrase(cmd.Context(), old, np, remove); err != nil {
				return err
			}
			return done()
		},
	}
	change.Flags().BoolVar(&remove, "remove", false, "remove the passphrase (the home is then unprotected)")
	cmd.AddCommand(change)
	return cmd
}

func phraseCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "phrase",
		Short: "Show your 24-word recovery phrase again (after the passphrase)",
		Long: `Show the account's 24-word recovery phrase again. A protected home needs its
passphrase first (UMBRA_PASSPHRASE, or typed when asked), even while a
daemon runs. Anyone who sees the phrase can take over the account.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home := homeOf(cmd)
			var phrase string
			if c, st, ok := api.FindDaemon(cmd.Context(), home); ok {
				if st.Locked {
					return errors.New("the daemon for this home waits for its passphrase: unlock it in its web UI first")
				}
				pass, err := daemonPass(cmd, st)
				if err != nil {
					return err
				}
				var r struct {
					RecoveryPhrase string `json:"recovery_phrase"`
				}
				if err := c.Do(cmd.Context(), "POST", "/api/v1/account/recovery-phrase", map[string]string{"passphrase": pass}, &r); err != nil {
					return err
				}
				phrase = r.RecoveryPhrase
			} else {
				pass, err := homePassphrase(cmd, home)
				if err != nil {
					return err
				}
				e, err := client.Open(cmd.Context(), client.Config{Home: home, Passphrase: pass, Offline: true, Logger: discardLogger()})
				if err != nil {
					return err
				}
				defer e.Close()
				if e.Unprotected() {
					warnUnprotected(cmd)
				}
				if phrase, err = e.RecoveryPhrase(cmd.Context(), pass); err != nil {
					return err
				}
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]string{"recovery_phrase": phrase})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Your recovery phrase (keep it secret: anyone who has it can act as you):\n\n  %s\n", phrase)
			return nil
		},
	}
	addHomeFlag(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"recovery_phrase": ...}`)
	return cmd
}

// restoreInDaemon is the daemon's api.RestoreFunc for a home without an
// account: restore into it (joining the daemon's onboarding network), then
// open and start the engine.
func restoreInDaemon(cfg daemonConfig, nf *privnet.File, open func(context.Context, string) (*client.Engine, error)) api.RestoreFunc {
	return func(ctx context.Context, r io.Reader, backupPass, homePass string) (*client.Engine, error) {
		if homePass == "" {
			homePass = cfg.Passphrase
		}
		if _, err := client.RestoreBackup(cfg.Home, r, backupPass, homePass, client.RestoreOptions{Network: nf}); err != nil {
			return nil, err
		}
		e, err := open(ctx, homePass)
		if err != nil {
			return nil, fmt.Errorf("open the restored account: %w", err)
		}
		if err := e.PublishPrekeys(ctx); err != nil {
			cfg.Log.Warn("publish prekeys of the restored account; will retry", "err", err)
		}
		return e, nil
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// writeFileAtomic streams what write produces into a new file (mode 0600)
// beside path, flushes it and renames it over path, so path holds either
// its old content or the whole new one. It returns the size written.
func writeFileAtomic(path string, write func(io.Writer) error) (int64, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return 0, err
	}
	if err := write(f); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return 0, err
	}
	ok = true
	return size, fsutil.SyncDir(dir)
}
