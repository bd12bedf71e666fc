package client

import (
	"context"
	"errors"
	"time"
)

// ErrFirstMessageOffline: a first message to a contact starts a session
// from the contact's prekeys, which only the network has. Such a message
// is not queued: the user is told to send it again once online (queueing
// the plaintext to encrypt later would keep a message the user believes
// sent in a state no one else can see, and its first-contact envelope
// would take prekeys read long after the user wrote it).
var ErrFirstMessageOffline = errors.New("can't queue a first message to this contact while offline: it needs their prekeys from the network; send it again once a node answers")

// Online reports whether the engine has a network (it was not opened
// offline).
func (e *Engine) Online() bool { return e.net != nil }

// Pending is what waits to leave: entries in the outbox (messages and
// receipts already encrypted) and receipts owed but not yet queued.
type Pending struct {
	Outbox   int `json:"outbox"`
	Receipts int `json:"receipts"`
	// Group counts group controls (invitations, new keys) not yet
	// encrypted for all their recipients, and received ones not applied.
	Group int `json:"group,omitempty"`
	// Files counts files still uploading (their messages wait for them).
	Files int `json:"files,omitempty"`
}

// Empty reports whether nothing waits.
func (p Pending) Empty() bool {
	return p.Outbox == 0 && p.Receipts == 0 && p.Group == 0 && p.Files == 0
}

// Pending counts what waits to leave.
func (e *Engine) Pending() Pending {
	var p Pending
	if keys, err := e.kv.List("outbox/"); err == nil {
		p.Outbox = len(keys)
	}
	for _, n := range e.receiptSched().pending() {
		p.Receipts += n
	}
	for _, pre := range []string{groupOutPrefix, groupInPrefix} {
		if keys, err := e.kv.List(pre); err == nil {
			p.Group += len(keys)
		}
	}
	if keys, err := e.kv.List(fileUpPrefix); err == nil {
		p.Files = len(keys)
	}
	return p
}

// Flush sends what waits now, for a command about to exit: with receipts,
// the owed receipts are queued at once instead of at their random delay;
// then it waits until the outbox is empty or ctx ends, and returns what is
// left. An engine that is offline or not started sends nothing.
//
// Sending receipts early gives up their delay (receipts.go): a command
// that flushes them runs on a user's action (reading, sending), not at
// the moment the messages arrived, and without the flush they would wait
// in the database until some later command or daemon, for days perhaps.
func (e *Engine) Flush(ctx context.Context, receipts bool) Pending {
	if e.net == nil || e.ctx == nil {
		return e.Pending()
	}
	if receipts {
		e.receiptSched().flush()
	}
	for {
		select {
		case e.kick <- struct{}{}:
		default:
		}
		e.kickGroups()
		if p := e.Pending(); p.Outbox == 0 && p.Group == 0 && p.Files == 0 {
			return p
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return e.Pending()
		case <-e.ctx.Done():
			t.Stop()
			return e.Pending()
		case <-t.C:
		}
	}
}

// flush queues every owed batch now (those whose timer had not fired).
func (s *receiptScheduler) flush() {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	var keys []string
	for k, b := range s.all {
		if b.timer != nil && b.timer() {
			b.timer = nil
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	for _, k := range keys {
		s.fire(k)
	}
}
