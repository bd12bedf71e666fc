package client

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/umbra-im/umbra/internal/cover"
	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

// Privacy modes (Config.Privacy).
const (
	// PrivacyStandard: fast delivery (long-polls); a client's traffic does
	// not depend on its contacts, but shows when it is active.
	PrivacyStandard = "standard"
	// PrivacyStrict: Loopix-style (Piotrowska et al., 2017). The client
	// sends, loops and fetches at constant Poisson rates whether or not it
	// has anything to do, real operations taking the place of cover ones,
	// and every onion request is held a random time at its middle and
	// exit. A global passive observer sees the same traffic from an idle
	// client and a chatting one. Messages take seconds, and the link
	// carries a constant load (docs/privacy.md).
	PrivacyStrict = "strict"
)

// DefaultStrictCover is the strict mode's schedule (cover.DefaultConfig):
// a send tick a second on average, a loop every two seconds and a fetch a
// second.
var DefaultStrictCover = cover.DefaultConfig

// coverSize is a cover envelope's wire size: a receipt's or a short
// text's.
const coverSize = 1024

// strictRoles is the fetch rotation: this epoch's inbox every other fetch,
// the rest in turn, so a message waits about two fetch intervals.
var strictRoles = []reader{{false, 0}, {true, 0}, {false, 0}, {false, 1}, {false, 0}, {true, 1}}

// strictState is what the strict schedule keeps between ticks.
type strictState struct {
	sched *cover.Scheduler

	mu      sync.Mutex
	next    int                                    // next role in strictRoles
	cursors map[mailbox.ID]*swarmclient.DropCursor // bucket cursors, by bucket
}

func (e *Engine) strict() bool { return e.cfg.Privacy == PrivacyStrict }

// startStrict makes the schedule and runs it; it is stopped with the
// engine. The readers of the standard mode do not run: reads happen at
// fetch ticks.
func (e *Engine) startStrict() {
	cfg := e.cfg.Cover
	if cfg.SendRate == 0 && cfg.LoopRate == 0 && cfg.FetchRate == 0 {
		cfg = DefaultStrictCover
	}
	cfg.CoverSend = e.coverSend
	cfg.LoopCover = e.coverSend
	cfg.CoverFetch = e.strictFetch
	e.st = &strictState{sched: cover.New(cfg, nil, nil), cursors: map[mailbox.ID]*swarmclient.DropCursor{}}
	e.goLoop(func(ctx context.Context) {
		if err := e.st.sched.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			e.log.Warn("strict schedule", "err", err)
		}
	})
}

// do runs a network operation: at once in the standard mode; in the strict
// mode at the next tick of its process (it takes the place of a cover
// request), waiting for it.
func (e *Engine) do(ctx context.Context, kind cover.Kind, op func(context.Context) error) error {
	if e.st == nil {
		return op(ctx)
	}
	done := make(chan error, 1)
	if err := e.st.sched.Enqueue(kind, func(sctx context.Context) error {
		err := op(sctx)
		done <- err
		return err
	}); err != nil {
		return fmt.Errorf("strict schedule: %w", err)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// later runs a network operation whose answer the caller does not wait
// for: at once in the standard mode, at the next tick of its process in
// the strict mode.
func (e *Engine) later(ctx context.Context, kind cover.Kind, op func(context.Context) error) {
	if e.st != nil {
		if err := e.st.sched.Enqueue(kind, op); err != nil {
			e.log.Debug("strict schedule", "err", err)
		}
		return
	}
	if err := op(ctx); err != nil {
		e.log.Debug("request", "err", err)
	}
}

// coverSend is a send tick with nothing to send, and every loop tick: a
// cover envelope (shaped like a real inbox envelope, with a message's
// coarse times and TTL) stored in this client's own inbox, which a later
// fetch reads and deletes as junk (Loopix's loop cover). To the exit and
// the inbox's swarm it is a message like any other; the inbox receives a
// constant stream whatever the contacts send.
func (e *Engine) coverSend(ctx context.Context) error {
	in, ok := e.inboxOf(e.epoch(e.now()))
	if !ok {
		return e.ensureInboxRoots()
	}
	data, err := envelope.CoverInbox(coverSize)
	if err != nil {
		return err
	}
	_, err = e.net.PutReq(ctx, &wire.StoreReq{Mailbox: in.box[:], Timestamp: wire.CoarseTime(e.now().UnixMilli()),
		TTL: wire.CoarseTTL(e.cfg.MessageTTL.Milliseconds()), Data: data})
	return err
}

// strictFetch is a fetch tick with no other read queued: one read, without
// waiting, of the next mailbox in strictRoles.
func (e *Engine) strictFetch(ctx context.Context) error {
	e.st.mu.Lock()
	r := strictRoles[e.st.next%len(strictRoles)]
	e.st.next++
	e.st.mu.Unlock()
	ep := e.epoch(e.now())
	if ep < r.lag {
		return nil
	}
	in := e.requestOf(ep - r.lag)
	var cur *swarmclient.DropCursor
	if r.request {
		e.st.mu.Lock()
		if cur = e.st.cursors[in.box]; cur == nil {
			cur = &swarmclient.DropCursor{}
			e.st.cursors[in.box] = cur
			for box := range e.st.cursors { // keep the last few buckets' cursors
				if len(e.st.cursors) > 4 && box != in.box {
					delete(e.st.cursors, box)
				}
			}
		}
		e.st.mu.Unlock()
	} else {
		var ok bool
		if in, ok = e.inboxOf(ep - r.lag); !ok {
			if err := e.ensureInboxRoots(); err != nil {
				return err
			}
			return nil
		}
	}
	msgs, err := e.readOnce(ctx, in, cur, 0)
	if err != nil {
		return err
	}
	if _, again := e.drain(ctx, in, msgs); again && r.request {
		e.st.mu.Lock()
		delete(e.st.cursors, in.box)
		e.st.mu.Unlock()
	}
	return nil
}

// mixFor is the onion mix delays of the mode: none in the standard mode.
func (c *Config) mixFor() *onion.MixDelays {
	if c.Privacy == PrivacyStrict {
		return &onion.DefaultMixDelays
	}
	return nil
}
