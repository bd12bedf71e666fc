package client

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/ratchet"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

// inbound is a mailbox the engine polls, and whose messages are from.
type inbound struct {
	key  *mailbox.Key
	peer string            // "" for the request mailbox
	sess ratchet.SessionID // the session of peer whose mailbox it is
}

// requestMailbox is the public mailbox where strangers reach an account:
// its ID is the account's Ed25519 public key, so knowing the account ID is
// enough to write there, and the account key is needed to read it.
func requestMailbox(aid identity.AccountID) mailbox.ID {
	var id mailbox.ID
	copy(id[:], aid.PublicKey())
	return id
}

func (e *Engine) requestKey() *mailbox.Key {
	k, _ := mailbox.KeyFromSeed(e.acct.SigningKey().Seed())
	return k
}

// inboundSet lists the mailboxes to poll: the request mailbox and, for
// every session, the peer's sending mailbox of this epoch and the last.
func (e *Engine) inboundSet() []inbound {
	set := []inbound{{key: e.requestKey()}}
	ep := ratchet.Epoch(e.now(), e.cfg.EpochPeriod)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, peer := range e.sessionPeersLocked() {
		r := e.recordLocked(peer)
		if r == nil {
			continue
		}
		for _, s := range r.sessions {
			set = appendMailbox(set, peer, s, ep)
			set = appendMailbox(set, peer, s, ep-1)
		}
	}
	return set
}

// appendMailbox adds the mailbox where peer sends on session s in epoch.
func appendMailbox(set []inbound, peer string, s *ratchet.Session, epoch uint64) []inbound {
	seed := s.ReceiveMailboxSeed(epoch)
	mk, err := mailbox.KeyFromSeed(seed[:])
	if err != nil {
		return set
	}
	return append(set, inbound{key: mk, peer: peer, sess: s.ID()})
}

// errLocalStore marks a received message that could not be stored
// locally (a disk error): it is left in the swarm and read again.
var errLocalStore = errors.New("local database write failed")

// maxCatchUpEpochs bounds how far back a catch-up reads.
const maxCatchUpEpochs = 64

// catchUpSet lists the older mailboxes the long-polls do not cover: for
// every session, the peer's sending mailboxes of the epochs before the last
// two, back to the session's start (one epoch earlier, for clock skew) or
// as far as a message lives (MessageTTL), whichever is later. A recipient
// offline for days, or a sender whose outbox held a message for days, still
// meets: the message waits in the mailbox of the epoch it was sealed in.
func (e *Engine) catchUpSet() []inbound {
	now := e.now()
	ep := ratchet.Epoch(now, e.cfg.EpochPeriod)
	back := uint64(e.cfg.MessageTTL/e.cfg.EpochPeriod) + 1
	back = min(back, maxCatchUpEpochs)
	var set []inbound
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, peer := range e.sessionPeersLocked() {
		r := e.recordLocked(peer)
		if r == nil {
			continue
		}
		for id, s := range r.sessions {
			first := ratchet.Epoch(r.Created[id], e.cfg.EpochPeriod)
			if first > 0 {
				first--
			}
			if ep > back && first < ep-back {
				first = ep - back
			}
			for epoch := first; epoch+1 < ep; epoch++ { // ep and ep-1 are long-polled
				set = appendMailbox(set, peer, s, epoch)
			}
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
// epoch change (see catchUpSet), and prunes expired seen marks.
func (e *Engine) catchUpLoop(ctx context.Context) {
	for {
		if n, err := e.pruneSeen(ctx); err != nil {
			e.log.Warn("prune seen marks", "err", err)
		} else if n > 0 {
			e.log.Debug("pruned seen marks", "n", n)
		}
		for _, in := range e.catchUpSet() {
			if ctx.Err() != nil {
				return
			}
			msgs, err := e.net.Get(ctx, in.key, 0)
			if err != nil {
				e.log.Debug("catch up", "err", err)
				continue
			}
			e.drain(ctx, in, msgs)
		}
		ep := ratchet.Epoch(e.now(), e.cfg.EpochPeriod)
		epochEnd := time.Unix(0, 0).Add(time.Duration(ep+1) * e.cfg.EpochPeriod)
		sleep(ctx, time.Until(epochEnd)+time.Second)
		if ctx.Err() != nil {
			return
		}
	}
}

func (e *Engine) resubscribe() {
	select {
	case e.resub <- struct{}{}:
	default:
	}
}

// inboxLoop long-polls every inbound mailbox through onion paths and
// restarts the pollers when the set changes (a new session, a new epoch).
func (e *Engine) inboxLoop(ctx context.Context) {
	for {
		pctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, in := range e.inboundSet() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.poll(pctx, in)
			}()
		}
		ep := ratchet.Epoch(e.now(), e.cfg.EpochPeriod)
		epochEnd := time.Unix(0, 0).Add(time.Duration(ep+1) * e.cfg.EpochPeriod)
		select {
		case <-ctx.Done():
		case <-e.resub:
		case <-time.After(time.Until(epochEnd)):
		}
		cancel()
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
	}
}

// poll reads one mailbox until ctx ends: process what arrives, delete it
// from the swarm, long-poll again.
func (e *Engine) poll(ctx context.Context, in inbound) {
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		msgs, err := e.net.Get(ctx, in.key, 25*time.Second)
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
		if fresh := e.drain(ctx, in, msgs); fresh == 0 && len(msgs) > 0 {
			sleep(ctx, time.Second) // only old messages came back: do not spin
		}
	}
}

// drain processes the messages read from one mailbox, then deletes them
// from the swarm. It returns how many were new.
func (e *Engine) drain(ctx context.Context, in inbound, msgs []swarmclient.Message) int {
	var done [][32]byte
	fresh := 0
	receipts := map[string][]string{} // delivered receipts owed, by sender
	for _, m := range msgs {
		data, ok := e.inboundData(in, m)
		if !ok {
			if m.Namespace != wire.PublicNamespace {
				done = append(done, m.Hash) // junk: delete it, remember nothing
			}
			continue
		}
		m.Data = data
		if _, seen, _ := e.kv.Get(seenKey(m.Hash)); seen {
			done = append(done, m.Hash)
			continue
		}
		stored, err := e.process(in, m, receipts)
		if errors.Is(err, errLocalStore) {
			// Not processed: it stays in the swarm for the next read.
			e.log.Error("could not store a received message; will retry", "err", err)
			continue
		}
		fresh++
		if err != nil {
			e.log.Warn("dropped an undecryptable message", "err", err)
		}
		if !stored {
			if err := e.kv.Put(seenKey(m.Hash), seenValue(m.Expiry)); err != nil {
				e.log.Error("mark seen", "err", err)
			}
		}
		done = append(done, m.Hash)
	}
	// Owed, not sent: they leave batched and late (receipts.go).
	for from, ids := range receipts {
		e.oweReceipts(from, envelope.KindReceiptDelivered, ids)
	}
	if len(done) > 0 {
		if _, err := e.net.Delete(ctx, in.key, done); err != nil {
			e.log.Debug("delete processed messages", "err", err)
		}
	}
	return fresh
}

// inboundData returns the envelope a message read from in carries, or
// false for what does not belong there: in the request mailbox only
// first-contact messages with their proof-of-work (the public namespace
// holds our own prekey bundles), in a pairwise mailbox only namespace 0.
// Checking the work is one hash, before any decryption.
func (e *Engine) inboundData(in inbound, m swarmclient.Message) ([]byte, bool) {
	if in.peer != "" {
		return m.Data, m.Namespace == 0
	}
	if m.Namespace != wire.RequestNamespace {
		return nil, false
	}
	bits, payload, err := mailbox.RequestWork(in.key.ID(), m.Timestamp.UnixMilli(), m.Expiry.UnixMilli(), m.Data)
	if err != nil || bits < mailbox.RequestWorkBase {
		return nil, false
	}
	return payload, true
}

// SyncOnce reads every inbound mailbox once, without waiting, and
// processes what is there (CLI commands without a daemon use it). A first
// contact opens a new session, whose mailbox is then read too.
func (e *Engine) SyncOnce(ctx context.Context) error {
	done := map[mailbox.ID]bool{}
	for round := 0; round < 3; round++ {
		var errs []error
		n := 0
		for _, in := range append(e.inboundSet(), e.catchUpSet()...) {
			if done[in.key.ID()] {
				continue
			}
			done[in.key.ID()] = true
			n++
			msgs, err := e.net.Get(ctx, in.key, 0)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			e.drain(ctx, in, msgs)
		}
		if n == 0 {
			return nil
		}
		if len(errs) == n {
			return fmt.Errorf("could not read any mailbox: %w", errs[0])
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
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
	if in.peer == "" {
		if env.Type != envelope.TypeInitial {
			return false, errors.New("a non-initial envelope in the request mailbox")
		}
		opened, err = envelope.OpenInitial(nil, e.acct, e.prekeys, e.sessionByIDLocked, env)
	} else {
		s := e.peerSessionLocked(in.peer, in.sess)
		if s == nil {
			return false, errors.New("no session for this mailbox")
		}
		opened, err = envelope.OpenRatchet(e.acct, s, env)
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
	if in.peer != "" && from != in.peer {
		return false, errors.New("sender does not match the mailbox's session")
	}
	// From here on the ratchet (and, for a new session, the prekeys) has
	// advanced in memory: a failure to store must roll that back and leave
	// the message in the swarm, to be read again.
	rollback := func(err error) (bool, error) {
		e.forgetPeerLocked(from)
		if in.peer != "" {
			e.forgetPeerLocked(in.peer)
		}
		if opened.NewSession {
			if pk, perr := loadPrekeys(e.kv, e.acct); perr == nil {
				e.prekeys = pk
			}
		}
		return false, fmt.Errorf("%w: %w", errLocalStore, err)
	}
	var b batch
	b.Put(seenKey(m.Hash), seenValue(m.Expiry))
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
	var events []Event
	owed := map[string][]string{}
	if opened.Content.Kind == envelope.KindText {
		if events, err = e.receiveTextLocked(&b, from, opened.Content, owed); err != nil {
			return rollback(err)
		}
	}
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
		e.resubscribe()
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
		ReceivedAt: e.now(), State: StateReceived}
	if err := saveMessageTo(b, m); err != nil {
		return nil, err
	}
	if contact.State == ContactAccepted {
		receipts[from] = append(receipts[from], m.ID)
	}
	return append(events, Event{Type: EventMessage, Message: m}), nil
}

// receipt sends a delivered or read receipt for message IDs (hex).
func (e *Engine) receipt(ctx context.Context, to string, kind envelope.Kind, ids []string) {
	aid, err := identity.ParseAccountID(to)
	if err != nil || len(ids) == 0 {
		return
	}
	for len(ids) > 0 {
		n := min(len(ids), envelope.MaxRefs)
		var refs []envelope.MessageID
		for _, h := range ids[:n] {
			var id envelope.MessageID
			if b, err := hex.DecodeString(h); err == nil && len(b) == len(id) {
				copy(id[:], b)
				refs = append(refs, id)
			}
		}
		ids = ids[n:]
		c, err := envelope.NewReceipt(nil, kind, refs, e.now())
		if err != nil {
			e.log.Warn("make receipt", "err", err)
			return
		}
		if err := e.enqueue(ctx, aid, c, nil); err != nil {
			e.log.Warn("queue receipt", "err", err)
		}
	}
}

// incomingIDsLocked lists the IDs of the messages peer sent us.
func (e *Engine) incomingIDsLocked(peer string) []string {
	msgs, err := e.d.messages(peer)
	if err != nil {
		return nil
	}
	var ids []string
	for _, m := range msgs {
		if !m.Outgoing {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// MarkRead marks every incoming message from peer as read and owes read
// receipts for them (none when the user turned them off: Settings).
func (e *Engine) MarkRead(ctx context.Context, peer string) (int, error) {
	aid, err := identity.ParseAccountID(peer)
	if err != nil {
		return 0, err
	}
	peer = aid.String()
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
	if peer != "" {
		aid, err := identity.ParseAccountID(peer)
		if err != nil {
			return nil, err
		}
		peer = aid.String()
	}
	return e.d.messages(peer)
}
