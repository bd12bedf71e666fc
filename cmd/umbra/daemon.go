package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/privnet"
	"github.com/umbra-im/umbra/internal/ui"
)

func daemonCmd() *cobra.Command {
	var listen, network string
	var receiptMax time.Duration
	var privacy string
	cmd := &cobra.Command{
		Use:   "daemon [--ui 127.0.0.1:PORT] [--network FILE]",
		Short: "Keep the client running: receive messages, serve the local API and web UI",
		Long: `Run the client engine for your home folder: it long-polls your mailboxes
through onion paths, sends queued messages, and serves the local API and
the web UI on a loopback address. It writes HOME/daemon.json with the URL
and a bearer token; other umbra commands for this home then talk to it,
sending the token as an Authorization header. Open the printed web UI
address in a browser: the token is in its #fragment, which the browser
never sends to a server; the page keeps it for the tab and takes it out of
the address bar. The API answers only requests addressed to 127.0.0.1,
localhost or [::1] on its port, and never reads the token from a URL.

The address and token stay the same from one start to the next, so a tab
left open reconnects after a restart: the daemon keeps the token, and the
port it chose when --ui has port 0 (the default), in HOME/ui.json (mode
0600). If that port is taken, it takes another, remembers it, and says so.
An explicit --ui port is used as given and is not remembered. Delete
HOME/ui.json while the daemon is stopped for a new port and token.

--network FILE installs FILE as the home's network file before the engine
starts (as 'umbra network set FILE' does), replacing the one it has; a file
that does not parse or lists no node address is refused.

On a home without an account, give --network FILE: the daemon then serves
the web UI's onboarding, which creates the account (or restores one from
its recovery phrase) and starts the engine. The account is protected by
UMBRA_PASSPHRASE if the daemon has one, else by a passphrase chosen in the
page (or, after a clear warning, none). A home protected by a passphrase
the daemon was not given (UMBRA_PASSPHRASE unset) asks for it on the
terminal when standard input is one; if none is typed there, the daemon
waits for it: the web UI asks for it.

--privacy strict turns on Loopix-style cover traffic: the daemon sends,
loops and fetches at constant random (Poisson) rates whether or not you
chat, real messages taking the place of cover, and every request waits a
random time at two relays. Someone watching your link, or the whole
network, then sees the same traffic when you are idle and when you chat.
Messages take a few seconds instead of well under one, and the link
carries about 2.5 requests a second (see docs/privacy.md).`,
		Example: `  umbra daemon --home ./alice --ui 127.0.0.1:7070
  umbra daemon --home ./alice --privacy strict
  umbra daemon --home ./new-user --network /tmp/umbra-devnet/bootstrap.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			direct, _ := cmd.Flags().GetBool("direct")
			home := homeOf(cmd)
			pass, err := daemonPassphrase(cmd, home)
			if err != nil {
				return err
			}
			d, err := startDaemon(cmd.Context(), daemonConfig{Home: home, Listen: listen, Network: network,
				Passphrase: pass, Direct: direct, Log: log, ReceiptDelay: client.DefaultReceiptDelay.ScaledTo(receiptMax),
				Privacy: privacy})
			if err != nil {
				return err
			}
			defer d.Stop()
			if d.movedFrom != 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "umbra: the web UI's port %d (from the last start) is taken: now on port %d; browser tabs open on the old address must be reopened at the new one\n",
					d.movedFrom, d.srv.Port())
			}
			e := d.srv.Engine()
			account := "none yet: open the web UI to create one"
			switch {
			case e != nil:
				account = e.AccountID()
				if e.Unprotected() {
					warnUnprotected(cmd)
				}
			case d.srv.Locked():
				account = "locked: open the web UI and type its passphrase (or set UMBRA_PASSPHRASE)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "umbra daemon for %s\n  account: %s\n  api:     %s (token in %s, sent as Authorization: Bearer)\n  web UI:  %s\n",
				home, account, d.srv.URL(), filepath.Join(home, client.DaemonFile), d.UIURL())
			<-cmd.Context().Done()
			return nil
		},
	}
	chatFlags(cmd)
	cmd.Flags().StringVar(&listen, "ui", defaultUI, "loopback address for the API and web UI (port 0: the port of the last start if free, kept in HOME/"+client.UIFile+")")
	cmd.Flags().StringVar(&network, "network", "", "network file (a devnet's bootstrap.txt): installed in the home (replacing its own), or joined by an account created in the web UI")
	cmd.Flags().StringVar(&privacy, "privacy", client.PrivacyStandard, `"standard" (fast) or "strict" (constant cover traffic and mix delays: hides when you chat)`)
	cmd.Flags().DurationVar(&receiptMax, "receipt-delay-max", client.ReceiptDelayMax,
		"the longest a receipt waits; the delay distribution keeps its shape, scaled to this cap (tests and devnets)")
	_ = cmd.Flags().MarkHidden("receipt-delay-max")
	return cmd
}

// daemonPassphrase is the passphrase the daemon opens its home with:
// homePassphrase's, except that nothing typed at the prompt leaves a
// protected home locked, to be unlocked in the web UI.
func daemonPassphrase(cmd *cobra.Command, home string) (string, error) {
	pass, err := homePassphrase(cmd, home)
	if errors.Is(err, client.ErrPassphraseRequired) {
		return "", nil
	}
	return pass, err
}

type daemonConfig struct {
	Home    string
	Listen  string
	Network string // network file: installed in a home with an account, or the one an account created in the web UI joins
	// Passphrase opens the home's database ("" for none). Without it, a
	// protected home waits to be unlocked in the web UI.
	Passphrase string
	Direct     bool
	Log        *slog.Logger
	// ReceiptDelay is the engine's receipt delay (zero: the default).
	ReceiptDelay client.ReceiptDelay
	// Privacy is the engine's privacy mode ("" is standard).
	Privacy string
}

// daemon is a running API and web UI server for one home.
type daemon struct {
	srv    *api.Server
	home   string
	cancel context.CancelFunc
	done   chan struct{} // closed when the server stopped
	// movedFrom is the web UI port remembered from the last start, if it
	// was taken and the daemon listens on another one (else 0).
	movedFrom int
}

// startDaemon serves the API and web UI for cfg.Home until ctx ends or Stop.
// A home with an account gets its engine opened and started (or, if its
// passphrase is missing, waits for it from the web UI); a home without one
// is served for onboarding (it needs a network).
func startDaemon(ctx context.Context, cfg daemonConfig) (*daemon, error) {
	srv := api.NewServer(nil, cfg.Log)
	srv.UI = ui.Handler()
	open := func(ctx context.Context, pass string) (*client.Engine, error) {
		e, err := client.Open(ctx, client.Config{Home: cfg.Home, Passphrase: pass, Logger: cfg.Log, Direct: cfg.Direct, ReceiptDelay: cfg.ReceiptDelay,
			Privacy: cfg.Privacy})
		if err != nil {
			return nil, err
		}
		e.Start()
		return e, nil
	}
	if client.Exists(cfg.Home) {
		if cfg.Network != "" {
			nf, err := readClientNetwork(cfg.Network)
			if err != nil {
				return nil, fmt.Errorf("--network: %w", err)
			}
			if err := client.SetNetwork(cfg.Home, nf); err != nil {
				return nil, fmt.Errorf("--network: install it in %s: %w", cfg.Home, err)
			}
			cfg.Log.Info("network file installed", "home", cfg.Home, "from", cfg.Network, "nodes", len(nf.Addrs))
		}
		e, err := open(ctx, cfg.Passphrase)
		switch {
		case errors.Is(err, client.ErrPassphraseRequired):
			srv.Unlock = open
		case err != nil:
			return nil, err
		default:
			srv.SetEngine(e)
		}
	} else {
		nf, err := onboardingNetwork(cfg)
		if err != nil {
			return nil, err
		}
		srv.DaemonPassphrase = cfg.Passphrase != ""
		srv.Onboard = func(ctx context.Context, phrase, pass string) (*client.Engine, error) {
			if pass == "" {
				pass = cfg.Passphrase
			}
			if err := ensureAccount(cfg.Home, nf, phrase, pass); err != nil {
				return nil, err
			}
			e, err := open(ctx, pass)
			if err != nil {
				return nil, fmt.Errorf("open the new account: %w", err)
			}
			// Publish now so contacts can write at once (the engine retries if this fails).
			if err := e.PublishPrekeys(ctx); err != nil {
				cfg.Log.Warn("publish prekeys of the new account; will retry", "err", err)
			}
			return e, nil
		}
		srv.Restore = restoreInDaemon(cfg, nf, open)
	}
	fail := func(err error) (*daemon, error) {
		srv.CloseEngine()
		return nil, err
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return fail(fmt.Errorf("create home: %w", err))
	}
	movedFrom, err := listenUI(srv, cfg.Home, cfg.Listen, cfg.Log)
	if err != nil {
		return fail(err)
	}
	if err := srv.WriteInfo(cfg.Home); err != nil {
		return fail(fmt.Errorf("write %s: %w", client.DaemonFile, err))
	}
	sctx, cancel := context.WithCancel(ctx)
	d := &daemon{srv: srv, home: cfg.Home, cancel: cancel, done: make(chan struct{}), movedFrom: movedFrom}
	go func() {
		defer close(d.done)
		if err := srv.Serve(sctx); err != nil {
			cfg.Log.Error("API server stopped", "err", err)
		}
	}()
	return d, nil
}

// onboardingNetwork is the network a new account joins: --network, or a
// network file already in the home.
func onboardingNetwork(cfg daemonConfig) (*privnet.File, error) {
	if cfg.Network != "" {
		nf, err := readClientNetwork(cfg.Network)
		if err != nil {
			return nil, fmt.Errorf("--network: %w", err)
		}
		return nf, nil
	}
	if nf, err := client.ReadNetwork(cfg.Home); err == nil && len(nf.Addrs) > 0 {
		return nf, nil
	}
	return nil, fmt.Errorf("%s has no account yet: start the daemon with --network FILE (a devnet's bootstrap.txt) to create one in the web UI, or run 'umbra init --network FILE' first", cfg.Home)
}

// ensureAccount creates the home's account from phrase with passphrase
// pass, or accepts the one a previous attempt (that could not join the
// network) already created from the same phrase.
func ensureAccount(home string, network *privnet.File, phrase, pass string) error {
	if !client.Exists(home) {
		_, err := createAccount(home, network, phrase, pass)
		return err
	}
	want, err := identity.Restore(phrase)
	if err != nil {
		return err
	}
	have, err := client.ReadAccountID(home, pass)
	if err != nil {
		return err
	}
	if !have.Equal(want.ID()) {
		return errors.New("this home already holds another account (created with 'umbra init'?): restart the daemon to use it")
	}
	return nil
}

// UIURL is the web UI's address with the token (in the fragment, which the
// browser never sends to a server).
func (d *daemon) UIURL() string { return d.srv.UIURL() }

// Stop stops serving, closes the engine and removes daemon.json.
func (d *daemon) Stop() {
	d.cancel()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
	d.srv.CloseEngine()
	os.Remove(filepath.Join(d.home, client.DaemonFile))
}
