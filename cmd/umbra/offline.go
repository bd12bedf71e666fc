package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/client"
)

// flushWait bounds how long a command waits, before it exits, for what it
// queued (and, for one that acts, the receipts it owes) to leave.
var flushWait = 20 * time.Second

// openEngine opens a command's in-process engine. When no node of the
// network file answers, a command that would go online works offline from
// the local data instead, after a one-line warning: 'messages' shows the
// history, 'send' queues for a contact with a session.
func openEngine(cmd *cobra.Command, cfg client.Config) (*client.Engine, error) {
	e, err := client.Open(cmd.Context(), cfg)
	var ue *client.UnreachableError
	if cfg.Offline || !errors.As(err, &ue) {
		return e, err
	}
	cfg.Offline = true
	e, err = client.Open(cmd.Context(), cfg)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "umbra: warning: %v: working offline, from local data\n", ue)
	return e, nil
}

type localEngineKey struct{}

func withLocalEngine(ctx context.Context, e *client.Engine) context.Context {
	return context.WithValue(ctx, localEngineKey{}, e)
}

// localEngine is the command's in-process engine, nil when a daemon
// serves the command.
func localEngine(ctx context.Context) *client.Engine {
	e, _ := ctx.Value(localEngineKey{}).(*client.Engine)
	return e
}

// flushLocal sends what e has queued before the command exits, for at most
// flushWait; with receipts, the receipts owed go too. What is left is told
// on stderr (owed receipts only for a command that acts: reading messages
// owes "delivered" receipts, which keep their random delay).
func flushLocal(ctx context.Context, cmd *cobra.Command, e *client.Engine, receipts bool) {
	ctx, cancel := context.WithTimeout(ctx, flushWait)
	defer cancel()
	var left client.Pending
	if e.Online() {
		left = e.Flush(ctx, receipts)
	} else {
		left = e.Pending()
	}
	if !receipts {
		left.Receipts = 0
	}
	if left.Empty() {
		return
	}
	what := plural(left.Outbox, "item") + " in the outbox"
	if left.Receipts > 0 {
		what += " and " + plural(left.Receipts, "receipt") + " owed"
	}
	if left.Group > 0 {
		what += " and " + plural(left.Group, "group change") + " to send"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "umbra: %s still queued: sent by the next command or daemon that reaches the network\n", what)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// sentState is the state to print for m, just queued by 'send': without a
// daemon, the command's engine first tries to send it (flushWait at most).
// list gives m's conversation (nil: the 1:1 conversation with m.To).
func sentState(ctx context.Context, m client.Message, list func(*client.Engine) ([]client.Message, error)) (string, error) {
	e := localEngine(ctx)
	if e == nil || !e.Online() {
		return m.State, nil
	}
	fctx, cancel := context.WithTimeout(ctx, flushWait)
	defer cancel()
	e.Flush(fctx, true)
	if list == nil {
		list = func(e *client.Engine) ([]client.Message, error) { return e.Messages(m.To) }
	}
	ms, err := list(e)
	if err != nil {
		return m.State, nil
	}
	for _, x := range ms {
		if x.ID == m.ID && x.State == client.StateFailed {
			return x.State, fmt.Errorf("message %s failed: %s", x.ID, x.Error)
		}
		if x.ID == m.ID {
			return x.State, nil
		}
	}
	return m.State, nil
}
