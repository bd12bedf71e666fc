package client

import (
	"context"
	"crypto/ecdh"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// MaxTextBytes bounds a text message.
const MaxTextBytes = 64 << 10

// Send encrypts text for a contact, queues it durably and returns once a
// write quorum of the recipient's swarm holds it (state "sent"), or when
// ctx ends (state "queued": the outbox keeps trying).
func (e *Engine) Send(ctx context.Context, to, text string) (*Message, error) {
	return e.send(ctx, to, text, "", true)
}

// Queue encrypts text for a contact and queues it durably, returning at
// once (state "queued"); the outbox sends it.
func (e *Engine) Queue(ctx context.Context, to, text string) (*Message, error) {
	return e.send(ctx, to, text, "", false)
}

// send sends a text; replyTo, when set, is the ID of the message it quotes
// (checked by Reply).
func (e *Engine) send(ctx context.Context, to, text, replyTo string, wait bool) (*Message, error) {
	aid, err := identity.ParseAccountID(to)
	if err != nil {
		return nil, err
	}
	to = aid.String()
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("empty message")
	}
	if len(text) > MaxTextBytes {
		return nil, fmt.Errorf("message is longer than %d KiB", MaxTextBytes>>10)
	}
	c, err := e.d.contact(to)
	if err != nil {
		return nil, err
	}
	switch {
	case c == nil:
		return nil, ErrUnknownContact
	case c.State == ContactBlocked:
		return nil, errors.New("you blocked this account: add it as a contact again to write to it")
	case c.State == ContactRequest:
		if _, err := e.AddContact(to, ""); err != nil { // replying accepts the request
			return nil, err
		}
	}
	c2, err := envelope.NewContent(nil, envelope.KindText, []byte(text), e.clock())
	if err != nil {
		return nil, err
	}
	m := &Message{ID: idOf(c2), From: e.AccountID(), To: to, Text: text, SentAt: time.UnixMilli(c2.SentAt), State: StateQueued, Outgoing: true}
	if replyTo != "" {
		ref, err := hex.DecodeString(replyTo)
		if err != nil || len(ref) != len(envelope.MessageID{}) {
			return nil, fmt.Errorf("reply: bad message ID %q", replyTo)
		}
		c2.Refs, m.ReplyTo = [][]byte{ref}, replyTo
	}
	e.stampTimer(c2, m)
	watch, stop := e.Subscribe()
	defer stop()
	if err := e.enqueue(ctx, aid, c2, m); err != nil {
		return nil, err
	}
	e.bus.publish(Event{Type: EventMessage, Message: m})
	e.tellProfile(ctx, to) // the first text to a contact, or after a change
	if !wait {
		return m, nil
	}
	for {
		select {
		case ev := <-watch:
			if ev.Message != nil && ev.Message.ID == m.ID && ev.Message.State != StateQueued {
				if ev.Message.State == StateFailed {
					return ev.Message, errors.New(ev.Message.Error)
				}
				return ev.Message, nil
			}
		case <-ctx.Done():
			return m, nil // still queued; the outbox goes on
		}
	}
}

// clock is the sender clock: wall time in milliseconds, made strictly
// increasing so that a sender's messages keep their order.
func (e *Engine) clock() time.Time {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	t := e.now().Truncate(time.Millisecond)
	if !t.After(e.lastClock) {
		t = e.lastClock.Add(time.Millisecond)
	}
	e.lastClock = t
	return t
}

// enqueue encrypts a content for aid and puts it in the outbox (and m, if
// it is a chat message, in the conversation), saving the ratchet state in
// the same transaction, so a message key is never reused nor an entry lost.
//
// Where it goes: a first contact (a session the peer has not answered
// yet) goes as an initial envelope to the peer's request bucket of this
// epoch (computed from its account ID and its card's bucket count);
// later messages go sealed to the peer's inbox of this epoch, which the
// peer announced inside the ratchet, or, if no announcement covers now,
// sealed to the peer's identity key into its request bucket. Every content carries our own inbox announcement until
// the peer has been told of our next generation.
func (e *Engine) enqueue(ctx context.Context, aid identity.AccountID, c *envelope.Content, m *Message) error {
	return e.enqueueWith(ctx, aid, c, m, enqueueOpts{})
}

// enqueueOpts change what enqueueWith does.
type enqueueOpts struct {
	// then, if set, writes more to the same transaction, under e.mu (the
	// local side of an edit, reaction or delete); its error cancels all.
	then func(b *batch) error
	// sessionOnly: queue nothing (and return nil) unless a session with
	// the peer exists and an inbox of the peer is known: no card is
	// fetched, nothing goes to a request bucket (typing indicators).
	sessionOnly bool
	// dropAfter: the outbox gives up on the item after this long.
	dropAfter time.Duration
}

func (e *Engine) enqueueWith(ctx context.Context, aid identity.AccountID, c *envelope.Content, m *Message, o enqueueOpts) error {
	to := aid.String()
	now := e.now()
	e.mu.Lock()
	s, haveSession := e.sessionLocked(to)
	_, _, knowInbox := e.peerInbox(to, now)
	needCard := !haveSession || s.Pending() || !knowInbox
	e.mu.Unlock()
	if o.sessionOnly && needCard {
		return nil // no session, or no inbox of the peer to write to
	}
	var card *envelope.Card
	switch {
	case !haveSession:
		// A new session takes prekeys from a card read now: a kept one may
		// list one-time prekeys long since used.
		if e.net == nil {
			return ErrFirstMessageOffline
		}
		var err error
		if card, err = e.fetchCard(ctx, aid); err != nil {
			return err
		}
	case needCard:
		var err error
		if card, err = e.peerCard(ctx, aid); err != nil {
			return err
		}
	}
	if err := e.ensureInboxRoots(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// A new session (if any), the advanced ratchet state, the message and
	// its outbox entry are written in one transaction: a crash leaves all
	// or none of them, and a failure rolls the cached state back.
	var b batch
	fail := func(err error) error {
		e.forgetPeerLocked(to)
		return err
	}
	s, ok := e.sessionLocked(to)
	if !ok {
		if card == nil {
			return errors.New("no card of the recipient to start a session with")
		}
		bundle, err := ratchet.ParseBundle(card.Bundle)
		if err != nil {
			return fmt.Errorf("start a session with %s: %w", short(to), err)
		}
		if s, err = ratchet.Initiate(nil, e.acct, aid, bundle); err != nil {
			return fmt.Errorf("start a session with %s: %w", short(to), err)
		}
		if err := e.addSessionLocked(to, s, &b); err != nil {
			return fail(err)
		}
	}
	// An item the outbox may give up on (dropAfter) carries no inbox
	// announcement: one lost with it would be marked as told.
	if o.dropAfter == 0 && e.toldGen(to) < e.announcedGen() {
		ann, next, err := e.announcement()
		if err != nil {
			return err
		}
		c.Inbox = ann
		b.Put(inboxToldPrefix+to, binary.BigEndian.AppendUint64(nil, next))
	}
	item := &outboxItem{MsgID: idOf(c), To: to, Created: now}
	if o.dropAfter > 0 {
		item.DropAfter = now.Add(o.dropAfter)
	}
	// Nodes see times to the minute only; the exact time travels inside
	// the content (SentAt).
	item.Timestamp = wire.CoarseTime(now.UnixMilli())
	item.TTL = wire.CoarseTTL(e.cfg.MessageTTL.Milliseconds())
	if c.Kind == envelope.KindText && c.Expire > 0 { // a disappearing text: see timer.go
		item.TTL = min(item.TTL, wire.CoarseTTL(int64(c.Expire)*1000))
	}
	inboxID, inboxKey, haveInbox := e.peerInbox(to, now)
	request := s.Pending() || !haveInbox
	var box mailbox.ID
	var err error
	switch {
	case s.Pending():
		// No answer yet: the envelope carries the PQXDH material, sealed to
		// the recipient's identity, into their request bucket.
		item.Data, err = envelope.Seal(e.acct, s, c)
	case haveInbox:
		box = inboxID
		item.Data, err = envelope.SealInbox(e.acct, s, c, inboxKey)
	default:
		var pub *ecdh.PublicKey
		if pub, err = s.RemoteIdentity().AgreementPublicKey(); err == nil {
			item.Data, err = envelope.SealInbox(e.acct, s, c, pub.Bytes())
		}
	}
	if err != nil {
		return fail(fmt.Errorf("encrypt: %w", err))
	}
	if request {
		if card == nil {
			return fail(errors.New("no card of the recipient"))
		}
		box = RequestBucket(aid, ratchet.Epoch(now, time.Duration(card.PeriodSec)*time.Second), card.Buckets)
		// The recipient's request bucket: a drop mailbox, where every node
		// asks for proof-of-work bound to the message and keeps it at most
		// wire.MaxDropTTL.
		item.Namespace = wire.DropNamespace
		item.TTL = min(item.TTL, wire.MaxDropTTL)
		item.Data = mailbox.SealRequest(box, item.Timestamp, item.Timestamp+item.TTL, item.Data, mailbox.RequestWorkBase)
	}
	item.Mailbox = box[:]
	if err := saveSessionTo(&b, to, s); err != nil {
		return fail(err)
	}
	key := idOf(c)
	if m == nil {
		key = "r-" + key
		item.MsgID = ""
	} else if err := saveMessageTo(&b, m); err != nil {
		return fail(err)
	}
	if err := putJSON(&b, outboxKey(key), item); err != nil {
		return fail(err)
	}
	if o.then != nil {
		if err := o.then(&b); err != nil {
			return fail(err)
		}
	}
	if err := e.kv.PutMany(b.entries); err != nil {
		return fail(err)
	}
	select {
	case e.kick <- struct{}{}:
	default:
	}
	return nil
}

// idOf is a content's message ID in hex.
func idOf(c *envelope.Content) string { return hex.EncodeToString(c.ID) }

func short(id string) string {
	if len(id) > 14 {
		return id[:14] + "…"
	}
	return id
}

// outboxLoop sends queued items, several at a time and oldest first,
// retrying with backoff until the network acknowledges them. The durable
// outbox is the KV's "outbox/" entries; the loop reads each entry once and
// schedules from memory, so a long queue costs no rescan of the database
// per send.
func (e *Engine) outboxLoop(ctx context.Context) {
	const workers = 8
	var (
		mu       sync.Mutex
		items    = map[string]*outboxItem{} // every entry read so far, by key
		inflight = map[string]bool{}
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, workers)
	defer wg.Wait()
	for {
		keys, err := e.kv.List("outbox/")
		if err != nil {
			e.log.Error("outbox", "err", err)
		}
		now := time.Now()
		next := now.Add(5 * time.Second)
		var ready []string
		mu.Lock()
		listed := make(map[string]bool, len(keys))
		for _, k := range keys {
			listed[k] = true
			it, ok := items[k]
			if !ok {
				it = new(outboxItem)
				if ok, err := e.d.getJSON(k, it); err != nil || !ok {
					continue
				}
				items[k] = it
			}
			if inflight[k] {
				continue
			}
			if it.NextTry.After(now) {
				if it.NextTry.Before(next) {
					next = it.NextTry
				}
				continue
			}
			ready = append(ready, k)
		}
		for k := range items {
			if !listed[k] && !inflight[k] {
				delete(items, k)
			}
		}
		slices.SortFunc(ready, func(a, b string) int {
			if c := items[a].Created.Compare(items[b].Created); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		mu.Unlock()
		for _, k := range ready {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			mu.Lock()
			it := items[k]
			inflight[k] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				done := e.sendItem(ctx, k, it)
				mu.Lock()
				delete(inflight, k)
				if done {
					delete(items, k)
				}
				mu.Unlock()
				select {
				case e.kick <- struct{}{}:
				default:
				}
			}()
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-e.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// sendItem stores one outbox item; it reports whether the item left the
// outbox (acknowledged, or failed for good). On a retryable failure it
// records the next try in it and on disk.
func (e *Engine) sendItem(ctx context.Context, key string, it *outboxItem) bool {
	if !it.DropAfter.IsZero() && e.now().After(it.DropAfter) {
		e.finishItem(key, it, StateFailed, "") // too late to be worth sending
		return true
	}
	req := &wire.StoreReq{Mailbox: it.Mailbox, Namespace: it.Namespace, Timestamp: it.Timestamp, TTL: it.TTL, Data: it.Data}
	var res *swarmclient.PutResult
	err := e.do(ctx, cover.Send, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var err error
		res, err = e.net.PutReq(cctx, req)
		return err
	})
	if ctx.Err() != nil {
		return false
	}
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeRateLimited && we.WorkBits > 0 && (it.Namespace == wire.RequestNamespace || it.Namespace == wire.DropNamespace) && len(it.Data) >= 8 {
		// The recipient's request bucket is busy: its nodes ask for
		// more work. Pay it and send again at once.
		bits := min(we.WorkBits, mailbox.RequestWorkMax)
		e.log.Info("first contact needs more proof-of-work", "bits", bits)
		it.Data = mailbox.SealRequest(mailbox.ID(it.Mailbox), it.Timestamp, it.Timestamp+it.TTL, it.Data[8:], bits)
		if err := e.d.putJSON(key, it); err != nil {
			e.log.Error("outbox", "err", err)
		}
		return false
	}
	if err != nil {
		it.Attempts++
		backoff := min(time.Duration(1<<min(it.Attempts, 6))*250*time.Millisecond, 15*time.Second)
		it.NextTry = time.Now().Add(backoff)
		e.log.Info("send failed; will retry", "attempt", it.Attempts, "in", backoff, "err", err)
		if errors.As(err, &we) && (we.Code == wire.CodeMailboxFull || we.Code == wire.CodeBadRequest) && it.Attempts >= 5 {
			e.finishItem(key, it, StateFailed, err.Error())
			return true
		}
		if err := e.d.putJSON(key, it); err != nil {
			e.log.Error("outbox", "err", err)
		}
		return false
	}
	if res.Deleted {
		// Stored before (the acknowledgement was lost, say in a crash)
		// and since read and deleted by the recipient, who signed that.
		e.finishItem(key, it, StateDelivered, "")
		return true
	}
	e.finishItem(key, it, StateSent, "")
	return true
}

// finishItem moves an item's message on, then removes the item from the
// outbox. In this order, whoever sees the outbox empty (Flush, then the
// 'send' command printing the state) sees the new state too; a crash
// between the two sends the item again, which the swarm stores once, and
// a state never moves back.
func (e *Engine) finishItem(key string, it *outboxItem, state, errText string) {
	if it.MsgID != "" {
		e.setState(it.MsgID, state, errText)
	}
	if err := e.kv.Delete(key); err != nil {
		e.log.Error("outbox", "err", err)
	}
}

// setState advances an outgoing message's state, never backwards: a
// message fails only while it is queued (one that was sent, delivered or
// read stays so), and a failed one can still move on to sent and beyond.
func (e *Engine) setState(id, state, errText string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.d.message(id)
	if err != nil || m == nil || !m.Outgoing {
		return
	}
	if state == StateFailed && m.State != StateQueued {
		return
	}
	if state != StateFailed && stateRank[state] <= stateRank[m.State] && m.State != StateFailed {
		return
	}
	m.State, m.Error = state, errText
	if err := e.d.saveMessage(m); err != nil {
		e.log.Error("save message", "err", err)
		return
	}
	e.bus.publish(Event{Type: EventState, Message: m})
}
