package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/umbra-im/umbra/internal/cover"
	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/ratchet"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

// inbound is a mailbox the engine reads: this client's inbox (read and
// emptied with its key) or its request bucket (a drop mailbox shared with
// other accounts, read without a key, never emptied), of one epoch.
type inbound struct {
	key     *mailbox.Key // the inbox's; nil for a request bucket
	box     mailbox.ID
	request bool
	epoch   uint64
}

func (e *Engine) inboxOf(epoch uint64) (inbound, bool) {
	k := e.inboxKey(epoch)
	if k == nil {
		return inbound{}, false
	}
	return inbound{key: k, box: k.ID(), epoch: epoch}, true
}

func (e *Engine) requestOf(epoch uint64) inbound {
	return inbound{box: e.requestBox(epoch), request: true, epoch: epoch}
}

// readOnce reads in: an inbox from its swarm, a request bucket from the
// cursor on (every entry for a nil cursor), waiting up to wait for
// something new.
func (e *Engine) readOnce(ctx context.Context, in inbound, cur *swarmclient.DropCursor, wait time.Duration) ([]swarmclient.Message, error) {
	if !in.request {
		return e.net.Get(ctx, in.key, wait)
	}
	if cur == nil {
		cur = &swarmclient.DropCursor{}
	}
	return e.net.ReadDropSince(ctx, in.box, cur, wait)
}

// errLocalStore marks a received message that could not be stored
// locally (a disk error): it is left in the swarm and read again.
var errLocalStore = errors.New("local database write failed")

// maxCatchUpEpochs bounds how far back a catch-up reads.
const maxCatchUpEpochs = 64

// catchUpSet lists the older mailboxes the long-polls do not cover: the
// inbox and the request bucket of every epoch before the last two, back
// to this client's first epoch or as far as a message lives (MessageTTL;
// for buckets, the drop namespace's shorter TTL cap), whichever is later. A recipient offline for days, or a sender whose
// outbox held a message for days, still meets: the message waits in the
// mailbox of the epoch it was sealed in. The list depends on the time
// only, never on contacts.
func (e *Engine) catchUpSet() []inbound {
	ep := e.epoch(e.now())
	back := uint64(e.cfg.MessageTTL/e.cfg.EpochPeriod) + 1
	back = min(back, maxCatchUpEpochs)
	first := e.firstEpoch()
	if first > 0 {
		first-- // a sender's clock may run behind
	}
	if ep > back && first < ep-back {
		first = ep - back
	}
	dropFirst := e.epoch(e.now().Add(-time.Duration(wire.MaxDropTTL) * time.Millisecond)) // no entry outlives the cap
	var set []inbound
	for epoch := first; epoch+1 < ep; epoch++ { // ep and ep-1 are long-polled
		if in, ok := e.inboxOf(epoch); ok {
			set = append(set, in)
		}
		if epoch >= dropFirst {
			set = append(set, e.requestOf(epoch))
		}
	}
	return set
}

// seenValue is what a seen mark holds: the message's expiry (unix ms),
// after which no node serves it and the mark can go.
func seenValue(expiry time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(expiry.UnixMilli()))
}

// pruneSeen deletes the seen marks of messages that have expired
// everywhere (an hour of slack for clocks), so the database does not grow
// with every message ever received.
func (e *Engine) pruneSeen(ctx context.Context) (int, error) {
	keys, err := e.kv.List("seen/")
	if err != nil {
		return 0, err
	}
	cutoff := e.now().Add(-time.Hour).UnixMilli()
	n := 0
	for _, k := range keys {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		v, ok, err := e.kv.Get(k)
		if err != nil || !ok || len(v) != 8 || int64(binary.BigEndian.Uint64(v)) >= cutoff {
			continue
		}
		if err := e.kv.Delete(k); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// catchUpLoop reads the older mailboxes once at start and after every
// epoch change (see catchUpSet), in random order with random gaps so the
// reads do not tie the mailboxes together, and prunes expired seen marks
// and inbox roots.
func (e *Engine) catchUpLoop(ctx context.Context) {
	for {
		if err := e.ensureInboxRoots(); err != nil {
			e.log.Warn("inbox roots", "err", err)
		}
		if err := e.pruneInboxRoots(); err != nil {
			e.log.Warn("prune inbox roots", "err", err)
		}
		if n, err := e.pruneSeen(ctx); err != nil {
			e.log.Warn("prune seen marks", "err", err)
		} else if n > 0 {
			e.log.Debug("pruned seen marks", "n", n)
		}
		set := e.catchUpSet()
		mrand.Shuffle(len(set), func(i, j int) { set[i], set[j] = set[j], set[i] })
		for _, in := range set {
			if e.st == nil { // the strict schedule spaces the reads itself
				sleep(ctx, e.cfg.Schedule.catchUpGap())
			}
			if ctx.Err() != nil {
				return
			}
			err := e.do(ctx, cover.Fetch, func(ctx context.Context) error {
				msgs, err := e.readOnce(ctx, in, nil, 0)
				if err == nil {
					e.drain(ctx, in, msgs)
				}
				return err
			})
			if err != nil {
				e.log.Debug("catch up", "err", err)
			}
		}
		ep := e.epoch(e.now())
		epochEnd := time.Unix(0, 0).Add(time.Duration(ep+1) * e.cfg.EpochPeriod)
		sleep(ctx, epochEnd.Sub(e.now())+e.cfg.Schedule.catchUpGap())
		if ctx.Err() != nil {
			return
		}
	}
}

// A reader long-polls one role: this client's inbox or its request
// bucket, of the current epoch (lag 0) or the one before (lag 1). Four
// readers run whatever the number of contacts; each picks its mailbox
// afresh for every poll, waits a random time at the node and pauses a
// random time between polls, so the four do not move in step. A bucket
// reader keeps a cursor, so it waits for what is new in the bucket.
type reader struct {
	request bool
	lag     uint64
}

var readers = []reader{{false, 0}, {false, 1}, {true, 0}, {true, 1}}

// inboxLoop runs the readers until ctx ends.
func (e *Engine) inboxLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.read(ctx, r)
		}()
	}
	wg.Wait()
}

// read runs one reader: process what arrives, delete it from the swarm,
// long-poll again.
func (e *Engine) read(ctx context.Context, r reader) {
	backoff := 250 * time.Millisecond
	var cur *swarmclient.DropCursor
	var curBox mailbox.ID
	sleep(ctx, e.cfg.Schedule.pollGap())
	for ctx.Err() == nil {
		ep := e.epoch(e.now())
		if ep < r.lag {
			sleep(ctx, time.Second)
			continue
		}
		in := e.requestOf(ep - r.lag)
		if !r.request {
			var ok bool
			if in, ok = e.inboxOf(ep - r.lag); !ok {
				if err := e.ensureInboxRoots(); err != nil {
					e.log.Warn("inbox roots", "err", err)
				}
				sleep(ctx, e.cfg.Schedule.pollGap()+time.Second)
				continue
			}
		}
		if cur == nil || curBox != in.box {
			cur, curBox = &swarmclient.DropCursor{}, in.box
		}
		msgs, err := e.readOnce(ctx, in, cur, e.cfg.Schedule.pollWait())
		e.log.Debug("read", "request", in.request, "epoch", in.epoch, "n", len(msgs), "err", err)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Debug("poll", "err", err)
			sleep(ctx, backoff)
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 250 * time.Millisecond
		fresh, again := e.drain(ctx, in, msgs)
		if again {
			cur = nil // read the bucket from the start again: seen marks skip what was stored
		}
		if fresh == 0 && len(msgs) > 0 || again {
			sleep(ctx, time.Second) // only old messages came back, or storing fails: do not spin
		}
		sleep(ctx, e.cfg.Schedule.pollGap())
	}
}

// drain processes the messages read from one mailbox, then deletes them
// from an inbox (a request bucket keeps them: nobody can delete there,
// and they are mostly other accounts'; a seen mark skips them next time).
// It returns how many were new, and whether some must be read again (a
// local write failed).
func (e *Engine) drain(ctx context.Context, in inbound, msgs []swarmclient.Message) (fresh int, again bool) {
	var done [][32]byte
	receipts := map[string][]string{} // delivered receipts owed, by sender
	markSeen := func(m swarmclient.Message) {
		if err := e.kv.Put(seenKey(m.Hash), seenValue(m.Expiry)); err != nil {
			e.log.Error("mark seen", "err", err)
		}
	}
	for _, m := range msgs {
		if _, seen, _ := e.kv.Get(seenKey(m.Hash)); seen {
			done = append(done, m.Hash)
			continue
		}
		data, ok := e.inboundData(in, m)
		if !ok {
			if in.request {
				markSeen(m)
			}
			done = append(done, m.Hash) // junk: delete it, remember nothing
			continue
		}
		m.Data = data
		stored, err := e.process(in, m, receipts)
		if errors.Is(err, errLocalStore) {
			// Not processed: it stays in the swarm for the next read.
			e.log.Error("could not store a received message; will retry", "err", err)
			again = true
			continue
		}
		fresh++
		switch {
		case err == nil:
		case errors.Is(err, envelope.ErrDecrypt) || errors.Is(err, envelope.ErrWork):
			// Another account's bucket entry, a strict-mode cover envelope,
			// or junk from someone who knows the inbox.
			e.log.Debug("an entry sealed for nobody here", "err", err)
		default:
			e.log.Warn("dropped an undecryptable message", "err", err)
		}
		if !stored {
			markSeen(m)
		}
		done = append(done, m.Hash)
	}
	// One receipt per sender for the whole batch (up to envelope.MaxRefs
	// IDs each), not one per message.
	for from, ids := range receipts {
		e.oweReceipts(from, envelope.KindReceiptDelivered, ids)
	}
	if len(done) > 0 && !in.request {
		e.later(ctx, cover.Send, func(ctx context.Context) error {
			_, err := e.net.Delete(ctx, in.key, done)
			return err
		})
	}
	return fresh, again
}

// inboundData returns the envelope a message read from in carries, or
// false for what does not belong there: in a request bucket only drop
// entries with their proof-of-work, in an inbox only namespace 0.
// Checking the work is one hash, before any decryption.
func (e *Engine) inboundData(in inbound, m swarmclient.Message) ([]byte, bool) {
	if !in.request {
		return m.Data, m.Namespace == 0
	}
	if m.Namespace != wire.DropNamespace {
		return nil, false
	}
	bits, payload, err := mailbox.RequestWork(in.box, m.Timestamp.UnixMilli(), m.Expiry.UnixMilli(), m.Data)
	if err != nil || bits < mailbox.RequestWorkBase {
		return nil, false
	}
	return payload, true
}

// SyncOnce reads every mailbox once, without waiting, and processes what
// is there (CLI commands without a daemon use it).
func (e *Engine) SyncOnce(ctx context.Context) error {
	if err := e.ensureInboxRoots(); err != nil {
		return err
	}
	ep := e.epoch(e.now())
	set := e.catchUpSet()
	for lag := range uint64(2) {
		if ep < lag {
			continue
		}
		if in, ok := e.inboxOf(ep - lag); ok {
			set = append(set, in)
		}
		set = append(set, e.requestOf(ep-lag))
	}
	var errs []error
	for _, in := range set {
		msgs, err := e.readOnce(ctx, in, nil, 0)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.drain(ctx, in, msgs)
	}
	if len(set) > 0 && len(errs) == len(set) {
		return fmt.Errorf("could not read any mailbox: %w", errs[0])
	}
	e.drainGroupIn()
	if err := e.sweepGroups(ctx, true); err != nil {
		return err
	}
	e.drainGroupOut(ctx)
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// process decrypts one message from a mailbox and acts on its content.
// Delivered receipts it owes are added to receipts, by sender. The advanced
// ratchet state, what the message carries (a text, a new contact) and the
// message's seen mark are written in one transaction, under e.mu: a crash
// can neither advance the ratchet past a message it did not store (which
// would lose it, its key being gone) nor store it twice. It reports whether
// it wrote the seen mark.
func (e *Engine) process(in inbound, m swarmclient.Message, receipts map[string][]string) (bool, error) {
	env, err := envelope.Parse(m.Data)
	if err != nil {
		return false, err
	}
	e.mu.Lock()
	locked := true
	defer func() {
		if locked {
			e.mu.Unlock()
		}
	}()
	var opened *envelope.Opened
	switch {
	case env.Type == envelope.TypeInitial && in.request:
		opened, err = envelope.OpenInitial(nil, e.acct, e.prekeys, e.sessionByIDLocked, env)
	case env.Type == envelope.TypeInbox && in.request:
		// A contact that knows no current inbox of ours sealed to our
		// identity key.
		opened, err = envelope.OpenInbox(e.acct, e.acct.AgreementKey(), e.sessionByIDLocked, env)
	case env.Type == envelope.TypeInbox:
		priv := e.inboxHPKE(genOf(in.epoch))
		if priv == nil {
			return false, errors.New("an inbox of a generation without a root")
		}
		opened, err = envelope.OpenInbox(e.acct, priv, e.sessionByIDLocked, env)
	default:
		return false, fmt.Errorf("a %s envelope does not belong in this mailbox", env.Type)
	}
	if err != nil {
		if errors.Is(err, ratchet.ErrDuplicate) {
			return false, nil
		}
		return false, err
	}
	from := opened.Sender.ID().String()
	if c, _ := e.d.contact(from); c != nil && c.State == ContactBlocked {
		return false, nil // dropped, and no session is kept with a blocked account
	}
	// From here on the ratchet (and, for a new session, the prekeys) has
	// advanced in memory: a failure to store must roll that back and leave
	// the message in the swarm, to be read again.
	rollback := func(err error) (bool, error) {
		e.forgetPeerLocked(from)
		if opened.NewSession {
			if pk, perr := loadPrekeys(e.kv, e.acct); perr == nil {
				e.prekeys = pk
			}
		}
		return false, fmt.Errorf("%w: %w", errLocalStore, err)
	}
	var b batch
	b.Put(seenKey(m.Hash), seenValue(m.Expiry))
	reset := opened.NewSession && e.sessionResetLocked(from)
	if opened.NewSession {
		if err := e.addSessionLocked(from, opened.Session, &b); err != nil {
			return rollback(err)
		}
		if err := e.savePrekeysTo(&b); err != nil {
			return rollback(err)
		}
	} else if err := saveSessionTo(&b, from, opened.Session); err != nil {
		return rollback(err)
	}
	if a := opened.Content.Inbox; len(a) > 0 {
		if ann, err := parseAnnouncement(a); err != nil {
			e.log.Warn("ignored a malformed inbox announcement", "from", short(from), "err", err)
		} else if err := e.mergeAnnouncementTo(&b, from, ann); err != nil {
			return rollback(err)
		}
	}
	if env.Type == envelope.TypeInbox && in.request {
		// The contact lost track of our inboxes: tell it again with the
		// next message.
		if err := b.Put(inboxToldPrefix+from, binary.BigEndian.AppendUint64(nil, 0)); err != nil {
			return rollback(err)
		}
	}
	owed := map[string][]string{}
	var events []Event
	if reset {
		if events, err = e.noteSessionResetLocked(&b, from); err != nil {
			return rollback(err)
		}
	}
	more, err := e.receiveContentLocked(&b, from, opened.Content, owed)
	if err != nil {
		return rollback(err)
	}
	events = append(events, more...)
	if err := e.kv.PutMany(b.entries); err != nil {
		return rollback(err)
	}
	for k, ids := range owed {
		receipts[k] = append(receipts[k], ids...)
	}
	if opened.NewSession {
		if err := e.pruneSessionsLocked(from); err != nil {
			e.log.Warn("prune sessions", "err", err)
		}
	}
	locked = false
	e.mu.Unlock()
	if opened.NewSession {
		e.republishSoon()
	}
	for _, ev := range events {
		e.bus.publish(ev)
	}
	e.handleReceipt(opened.Content)
	return true, nil
}

// handleReceipt moves our messages on when c is a receipt.
func (e *Engine) handleReceipt(c *envelope.Content) {
	if c.Kind != envelope.KindReceiptDelivered && c.Kind != envelope.KindReceiptRead {
		return
	}
	state := StateDelivered
	if c.Kind == envelope.KindReceiptRead {
		state = StateRead
	}
	for _, id := range c.RefIDs() {
		e.setState(id.String(), state, "")
	}
}

// receiveContentLocked writes what an incoming content changes to b and
// returns the events to publish once b is committed. Receipts are handled
// after the commit (handleReceipt); kinds this client does not know are
// ignored.
func (e *Engine) receiveContentLocked(b *batch, from string, c *envelope.Content, owed map[string][]string) ([]Event, error) {
	switch c.Kind {
	case envelope.KindText:
		return e.receiveTextLocked(b, from, c, owed)
	case envelope.KindReaction, envelope.KindEdit, envelope.KindDelete:
		return e.receiveOpLocked(b, from, c)
	case envelope.KindTyping:
		return e.receiveTypingLocked(from, c), nil
	case envelope.KindProfile:
		return e.receiveProfileLocked(b, from, c)
	case envelope.KindTimer:
		return e.receiveTimerLocked(b, from, c)
	case envelope.KindGroup:
		// Applied by the group worker (it takes the group lock, which
		// comes before e.mu), from this durable entry.
		if err := putJSON(b, groupInPrefix+idOf(c), groupIn{From: from, Body: c.Body, At: e.now()}); err != nil {
			return nil, err
		}
		e.kickGroups()
	}
	return nil, nil
}

// receiveTextLocked writes an incoming text (and, from a stranger, a
// message request) to b and returns the events to publish once b is
// committed. A delivered receipt is owed (added to receipts) when the
// sender is an accepted contact. A text already held is ignored.
func (e *Engine) receiveTextLocked(b *batch, from string, c *envelope.Content, receipts map[string][]string) ([]Event, error) {
	if old, _ := e.d.message(idOf(c)); old != nil {
		return nil, nil // a duplicate: shown once
	}
	contact, err := e.d.contact(from)
	if err != nil {
		return nil, err
	}
	var events []Event
	if contact == nil {
		contact = &Contact{ID: from, State: ContactRequest, AddedAt: e.now()}
		if err := putJSON(b, contactKey(from), contact); err != nil {
			return nil, err
		}
		events = append(events, Event{Type: EventContact, Contact: contact})
	}
	m := &Message{ID: idOf(c), From: from, To: e.AccountID(), Text: string(c.Body), SentAt: time.UnixMilli(c.SentAt),
		ReceivedAt: e.now(), State: StateReceived, ReplyTo: replyOf(c)}
	if err := e.receiveFileLocked(b, c, m); err != nil {
		return nil, err
	}
	events = append(events, e.textTimerLocked(b, from, c, m)...)
	if err := e.applyPendingLocked(b, m); err != nil { // actions that came first
		return nil, err
	}
	if err := saveMessageTo(b, m); err != nil {
		return nil, err
	}
	if contact.State == ContactAccepted {
		receipts[from] = append(receipts[from], m.ID)
	}
	return append(events, Event{Type: EventMessage, Message: m}), nil
}

// incomingIDsLocked lists the IDs of the messages peer sent us.
func (e *Engine) incomingIDsLocked(peer string) []string {
	msgs, err := e.d.messages(peer)
	if err != nil {
		return nil
	}
	var ids []string
	for _, m := range msgs {
		if !m.Outgoing && m.Notice == "" {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// MarkRead marks every incoming message from peer as read and owes read
// receipts for them (none when the user turned them off: Settings).
// peer may be "group:" and a group (MarkGroupRead).
func (e *Engine) MarkRead(ctx context.Context, peer string) (int, error) {
	peer, err := e.conversation(peer)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	msgs, err := e.d.messages(peer)
	if err != nil {
		e.mu.Unlock()
		return 0, err
	}
	var ids []string
	for i := range msgs {
		m := &msgs[i]
		if !m.Outgoing && m.State == StateReceived {
			m.State = StateRead
			if err := e.d.saveMessage(m); err != nil {
				e.mu.Unlock()
				return 0, err
			}
			ids = append(ids, m.ID)
			e.bus.publish(Event{Type: EventState, Message: m})
		}
	}
	e.mu.Unlock()
	e.oweReceipts(peer, envelope.KindReceiptRead, ids)
	return len(ids), nil
}

// Messages lists the conversation with peer, or every message if peer is "".
func (e *Engine) Messages(peer string) ([]Message, error) {
	e.expireDue() // nothing expired is listed, with or without the loop
	if peer != "" {
		aid, err := identity.ParseAccountID(peer)
		if err != nil {
			return nil, err
		}
		peer = aid.String()
	}
	return e.d.messages(peer)
}
