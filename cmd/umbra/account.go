package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"rsc.io/qr"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/privnet"
)

// legacyIDFile is where older versions kept a clear copy of the account
// ID. A home names its account nowhere in the clear any more ('umbra id'
// reads the encrypted database); the file is removed where found.
const legacyIDFile = "account_id"

func addHomeFlag(cmd *cobra.Command) {
	cmd.PersistentFlags().String("home", "", "your Umbra folder (default $UMBRA_HOME or ~/.umbra)")
}

func homeOf(cmd *cobra.Command) string {
	h, _ := cmd.Flags().GetString("home")
	if h == "" {
		h = client.DefaultHome()
	}
	return h
}

// passphrase comes from UMBRA_PASSPHRASE; empty means an unprotected database.
func passphrase() string { return os.Getenv("UMBRA_PASSPHRASE") }

// terminalIn reports whether the command's standard input is a terminal,
// and its file descriptor (tests replace it).
var terminalIn = func(cmd *cobra.Command) (int, bool) {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// readPassword reads a line from the terminal fd without echoing it
// (tests replace it).
var readPassword = term.ReadPassword

// homePassphrase is the passphrase that opens home: UMBRA_PASSPHRASE, or,
// when that is unset, the home is protected and standard input is a
// terminal, one typed there without echo. Otherwise it is "" (and opening
// a protected home then fails with client.ErrPassphraseRequired).
func homePassphrase(cmd *cobra.Command, home string) (string, error) {
	if p := passphrase(); p != "" || !client.Exists(home) {
		return p, nil
	}
	fd, ok := terminalIn(cmd)
	if !ok {
		return "", nil
	}
	if _, err := client.ReadAccountID(home, ""); !errors.Is(err, client.ErrPassphraseRequired) {
		return "", nil // unprotected (or another error, which opening reports)
	}
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "Passphrase for %s: ", home)
	b, err := readPassword(fd)
	fmt.Fprintln(w)
	if err != nil {
		return "", fmt.Errorf("read the passphrase: %w", err)
	}
	if len(b) == 0 {
		return "", client.ErrPassphraseRequired
	}
	return string(b), nil
}

// warnUnprotected prints the one-line warning of a home without a
// passphrase, on standard error (never into --json output).
func warnUnprotected(cmd *cobra.Command) {
	fmt.Fprintln(cmd.ErrOrStderr(), "umbra:", client.UnprotectedWarning)
}

func initCmd() *cobra.Command {
	var (
		network string
		restore bool
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "init --network FILE [--restore]",
		Short: "Create your account (or restore it from its recovery phrase)",
		Long: `Create a new Umbra account in your home folder: a key pair (no phone number,
no e-mail), its recovery phrase and an encrypted local database. The
recovery phrase is printed once: write it down; it is the only way to
restore the account.

The database is encrypted with the passphrase in UMBRA_PASSPHRASE. Without
one, the database is not protected: anyone who can read the folder can
read the messages and take over the account, and every command that opens
the home says so on standard error.

--network FILE is required: the network the account joins. A network file
lists node addresses, one per line (/ip4/.../tcp/.../p2p/PEER_ID); 'umbra
devnet' writes one as DIR/bootstrap.txt. It is kept as HOME/network.txt;
'umbra network set FILE' replaces it later.

--restore reads the 24-word recovery phrase from standard input and restores
the same account ID.`,
		Example: `  umbra init --network /tmp/umbra-devnet/bootstrap.txt
  echo "word1 word2 ... word24" | umbra init --restore --home ./restored --network net.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home := homeOf(cmd)
			// No account without a network to join: one made without could
			// not send or receive until given a network file.
			nf, err := readClientNetwork(network)
			if err != nil {
				return fmt.Errorf("init: %w", err)
			}
			phrase := ""
			if restore {
				b, err := io.ReadAll(io.LimitReader(bufio.NewReader(os.Stdin), 4096))
				if err != nil {
					return err
				}
				if phrase = strings.Join(strings.Fields(string(b)), " "); phrase == "" {
					return errors.New("--restore: type or pipe your 24-word recovery phrase on standard input")
				}
			}
			acct, err := createAccount(home, nf, phrase, passphrase())
			if err != nil {
				return err
			}
			id := acct.ID().String()
			out := cmd.OutOrStdout()
			if passphrase() == "" {
				warnUnprotected(cmd)
			}
			pubErr := publishPrekeys(cmd.Context(), home, passphrase())
			if asJSON {
				o := map[string]string{"account_id": id}
				if !restore {
					o["recovery_phrase"] = acct.Phrase()
				}
				return json.NewEncoder(out).Encode(o)
			}
			if restore {
				fmt.Fprintf(out, "Account restored in %s\n\nYour account ID:\n  %s\n", home, id)
			} else {
				fmt.Fprintf(out, "Account created in %s\n\nYour account ID (share it with people who should reach you):\n  %s\n\n", home, id)
				fmt.Fprintf(out, "Your recovery phrase. WRITE IT DOWN NOW and keep it secret: it is shown only\nonce, and anyone who has it can read your messages and act as you.\n\n  %s\n", acct.Phrase())
			}
			if pubErr != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "umbra: warning: could not publish your prekeys yet: %v; they are published the next time umbra runs for this home\n", pubErr)
			}
			return nil
		},
	}
	addHomeFlag(cmd)
	cmd.Flags().StringVar(&network, "network", "", "network file (required): node addresses one per line (a devnet's bootstrap.txt)")
	cmd.Flags().BoolVar(&restore, "restore", false, "restore an account from the recovery phrase on standard input")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"account_id": ..., "recovery_phrase": ...}`)
	return cmd
}

// createAccount creates the account of a new home (a fresh one, or with
// phrase the one it restores) protected by pass ("" for none), as 'umbra
// init' and the web UI's onboarding do. Nothing outside the encrypted
// database names the account.
func createAccount(home string, network *privnet.File, phrase, pass string) (*identity.Account, error) {
	return client.InitNetwork(home, pass, network, phrase)
}

func idCmd() *cobra.Command {
	var asJSON, asQR bool
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Print your account ID (to share), optionally as a QR code",
		Long: `Print your account ID, the one you share so that people can add you.

It is read from the encrypted database (the home folder keeps no clear copy
that would name the account), so a protected home needs its passphrase, as
the other commands do: UMBRA_PASSPHRASE, or typed when asked (standard input
a terminal). It works while a daemon runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home := homeOf(cmd)
			pass, err := homePassphrase(cmd, home)
			if err != nil {
				return err
			}
			id, err := accountID(home, pass, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(map[string]string{"account_id": id})
			}
			if asQR {
				return printQR(out, id)
			}
			fmt.Fprintln(out, id)
			return nil
		},
	}
	addHomeFlag(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"account_id": ...}`)
	cmd.Flags().BoolVar(&asQR, "qr", false, "draw the ID as a QR code in the terminal")
	return cmd
}

// accountID reads the account ID of a home from its database, warning on
// warn if that opens without a passphrase, and removes the clear copy of
// the ID older versions kept.
func accountID(home, pass string, warn io.Writer) (string, error) {
	id, err := client.ReadAccountID(home, pass)
	if err != nil {
		return "", err
	}
	if pass == "" {
		// It opened without a passphrase: the home has none.
		fmt.Fprintln(warn, "umbra:", client.UnprotectedWarning)
	}
	if err := os.Remove(filepath.Join(home, legacyIDFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(warn, "umbra: warning: could not remove %s, a clear copy of your account ID: %v\n", legacyIDFile, err)
	}
	return id.String(), nil
}

// printQR draws text as a QR code with Unicode half blocks (two modules
// per character cell), with a quiet zone, light on dark terminals too.
func printQR(w io.Writer, text string) error {
	code, err := qr.Encode(strings.ToUpper(text), qr.M)
	if err != nil {
		return err
	}
	const quiet = 2
	n := code.Size
	black := func(x, y int) bool {
		if x < 0 || y < 0 || x >= n || y >= n {
			return false
		}
		return code.Black(x, y)
	}
	var b strings.Builder
	for y := -quiet; y < n+quiet; y += 2 {
		for x := -quiet; x < n+quiet; x++ {
			top, bot := black(x, y), black(x, y+1)
			switch {
			case top && bot:
				b.WriteRune(' ')
			case top:
				b.WriteRune('▄')
			case bot:
				b.WriteRune('▀')
			default:
				b.WriteRune('█')
			}
		}
		b.WriteByte('\n')
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// publishPrekeys opens the new account's engine just long enough to put its
// prekey bundle on the network, so contacts can write before it ever runs.
func publishPrekeys(ctx context.Context, home, pass string) error {
	e, err := client.Open(ctx, client.Config{Home: home, Passphrase: pass, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer e.Close()
	return e.PublishPrekeys(ctx)
}
