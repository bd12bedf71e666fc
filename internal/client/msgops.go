package client

// Conversation actions: replies, reactions, edits, deletes and typing
// indicators.
//
// Each is a Content of its own kind sent through the same path as every
// message (enqueue and the outbox, end-to-end encrypted, padded): a reply
// is a text whose Refs[0] quotes a message; a reaction, an edit and a
// delete name their target(s) in Refs. What a peer sends is checked here:
// a reaction, edit or delete must target a message of the conversation
// with that peer; only a message's author may edit it or delete it for
// everyone; targets we do not hold are ignored; an emoji is a short string
// (MaxReactionBytes, no control or bidi characters); what a peer can make
// us store is bounded by the conversation (one reaction per account per
// message, one text per message).
//
// Typing indicators are not stored: a received one becomes an event for
// open UIs. They leave only while the setting is on (Settings), only over
// an existing session, and the outbox gives up on one after
// typingDropAfter; a receiver ignores one older than typingMaxAge. On the
// wire they look like any other message (same TTL and padding).

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
)

// Events of conversation actions.
const (
	EventUpdate  = "update"  // a message was edited, reacted to or deleted for everyone
	EventRemoved = "removed" // a message was deleted on this device (Message says which)
	EventTyping  = "typing"  // Peer started (Typing) or stopped typing; never stored
)

// MaxReactionBytes bounds a reaction's emoji.
const MaxReactionBytes = 32

// MinIDPrefix is the shortest message ID prefix the actions accept.
const MinIDPrefix = 6

const (
	typingDropAfter = 10 * time.Second // the outbox gives up on a typing indicator
	typingMaxAge    = 15 * time.Second // a receiver ignores an older one
	editKey         = "edit"           // OpsAt key of the last edit
)

// ValidReaction checks an emoji ("" is valid: it takes a reaction back).
func ValidReaction(s string) error {
	if len(s) > MaxReactionBytes {
		return fmt.Errorf("reaction of %d bytes, limit %d", len(s), MaxReactionBytes)
	}
	if !utf8.ValidString(s) {
		return errors.New("reaction is not UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return fmt.Errorf("reaction holds the character %U", r)
		}
	}
	return nil
}

// checkText checks the text of a message or an edit.
func checkText(text string) error {
	if strings.TrimSpace(text) == "" {
		return errors.New("empty message")
	}
	if len(text) > MaxTextBytes {
		return fmt.Errorf("message is longer than %d KiB", MaxTextBytes>>10)
	}
	return nil
}

// replyOf is the ID a text quotes ("" for none).
func replyOf(c *envelope.Content) string {
	if c.Kind != envelope.KindText || len(c.Refs) == 0 {
		return ""
	}
	return hex.EncodeToString(c.Refs[0])
}

// ErrNoMessage is returned when an action names a message the
// conversation does not hold.
var ErrNoMessage = errors.New("no such message in this conversation")

// FindMessage returns the message of the conversation with peer whose ID
// is id or starts with id (at least MinIDPrefix hex characters; a prefix
// more than one message shares is refused).
func (e *Engine) FindMessage(peer, id string) (*Message, error) {
	conv, err := e.conversation(peer)
	if err != nil {
		return nil, err
	}
	return e.findMessage(conv, id)
}

// conversation names a conversation: a contact's account ID, or "group:"
// and a group's ID (or a unique prefix or name of it).
func (e *Engine) conversation(peer string) (string, error) {
	if ref, ok := strings.CutPrefix(peer, groupPeerPrefix); ok {
		gid, err := e.resolveGroup(ref)
		if err != nil {
			return "", err
		}
		return groupPeer(gid), nil
	}
	aid, err := identity.ParseAccountID(peer)
	if err != nil {
		return "", err
	}
	return aid.String(), nil
}

func (e *Engine) findMessage(peer, id string) (*Message, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) < MinIDPrefix || len(id) > 32 {
		return nil, fmt.Errorf("message ID %q: give at least %d of its hex characters", id, MinIDPrefix)
	}
	if _, err := hex.DecodeString(id[:len(id)&^1]); err != nil {
		return nil, fmt.Errorf("message ID %q is not hex", id)
	}
	if len(id) == 32 {
		m, err := e.d.message(id)
		if err != nil {
			return nil, err
		}
		if m == nil || m.Peer() != peer {
			return nil, ErrNoMessage
		}
		return m, nil
	}
	msgs, err := e.d.messages(peer)
	if err != nil {
		return nil, err
	}
	var found *Message
	for i := range msgs {
		if strings.HasPrefix(msgs[i].ID, id) {
			if found != nil {
				return nil, fmt.Errorf("message ID %q is ambiguous: give more of it", id)
			}
			found = &msgs[i]
		}
	}
	if found == nil {
		return nil, ErrNoMessage
	}
	return found, nil
}

// opTarget parses peer, finds the target message and checks that peer is
// a contact we may write to.
func (e *Engine) opTarget(peer, id string) (string, *Message, error) {
	conv, err := e.conversation(peer)
	if err != nil {
		return "", nil, err
	}
	m, err := e.findMessage(conv, id)
	if err != nil {
		return "", nil, err
	}
	if strings.HasPrefix(conv, groupPeerPrefix) {
		return conv, m, nil // sendGroupContent checks that we are in the group
	}
	c, err := e.d.contact(conv)
	if err != nil {
		return "", nil, err
	}
	if c == nil || c.State != ContactAccepted {
		return "", nil, ErrUnknownContact
	}
	return conv, m, nil
}

// Reply sends text to peer quoting the message replyTo (an ID or a unique
// prefix of one in that conversation).
func (e *Engine) Reply(ctx context.Context, peer, replyTo, text string, wait bool) (*Message, error) {
	if ref, ok := strings.CutPrefix(peer, groupPeerPrefix); ok {
		return e.SendGroup(ctx, ref, text, replyTo, wait)
	}
	aid, err := identity.ParseAccountID(peer)
	if err != nil {
		return nil, err
	}
	q, err := e.findMessage(aid.String(), replyTo)
	if err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	if q.Deleted {
		return nil, errors.New("reply: that message was deleted")
	}
	return e.send(ctx, aid.String(), text, q.ID, wait)
}

// sendOp sends a content of kind about targets to aid, applying change to
// the stored first target in the same transaction, publishes the result,
// and waits until the network holds the content (or ctx ends: the outbox
// goes on), so that a short-lived command sends it before it exits.
func (e *Engine) sendOp(ctx context.Context, conv string, kind envelope.Kind, body []byte, targets []string, change func(m *Message) error) (*Message, error) {
	c, err := envelope.NewContent(nil, kind, body, e.clock())
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		ref, err := hex.DecodeString(t)
		if err != nil {
			return nil, err
		}
		c.Refs = append(c.Refs, ref)
	}
	var out *Message
	then := func(b *batch) error {
		m, err := e.d.message(targets[0])
		if err != nil {
			return err
		}
		if m == nil {
			return ErrNoMessage
		}
		if err := change(m); err != nil {
			return err
		}
		out = m
		return saveMessageTo(b, m)
	}
	if gid, ok := strings.CutPrefix(conv, groupPeerPrefix); ok {
		if err := e.sendGroupContent(gid, c, nil, then); err != nil {
			return nil, err
		}
		e.bus.publish(Event{Type: EventUpdate, Message: out})
		return out, nil
	}
	aid, err := identity.ParseAccountID(conv)
	if err != nil {
		return nil, err
	}
	if err := e.enqueueWith(ctx, aid, c, nil, enqueueOpts{then: then}); err != nil {
		return nil, err
	}
	e.bus.publish(Event{Type: EventUpdate, Message: out})
	e.waitOutbox(ctx, outboxKey("r-"+idOf(c)))
	return out, nil
}

// waitOutbox waits until the outbox entry key is gone, or ctx ends.
func (e *Engine) waitOutbox(ctx context.Context, key string) {
	for {
		if _, ok, err := e.kv.Get(key); err != nil || !ok {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// React sets our reaction to a message of the conversation with peer
// (emoji "" takes it back) and tells peer.
func (e *Engine) React(ctx context.Context, peer, id, emoji string) (*Message, error) {
	if err := ValidReaction(emoji); err != nil {
		return nil, err
	}
	aid, m, err := e.opTarget(peer, id)
	if err != nil {
		return nil, err
	}
	if m.Deleted {
		return nil, errors.New("that message was deleted")
	}
	me := e.AccountID()
	at := e.clock()
	return e.sendOp(ctx, aid, envelope.KindReaction, []byte(emoji), []string{m.ID}, func(m *Message) error {
		if m.Deleted {
			return errors.New("that message was deleted")
		}
		setReaction(m, me, emoji, at.UnixMilli())
		return nil
	})
}

func setReaction(m *Message, who, emoji string, at int64) {
	if emoji == "" {
		delete(m.Reactions, who)
	} else {
		if m.Reactions == nil {
			m.Reactions = map[string]string{}
		}
		m.Reactions[who] = emoji
	}
	if len(m.Reactions) == 0 {
		m.Reactions = nil
	}
	if m.OpsAt == nil {
		m.OpsAt = map[string]int64{}
	}
	m.OpsAt["r/"+who] = at
}

// Edit replaces the text of one of our sent messages and tells peer.
func (e *Engine) Edit(ctx context.Context, peer, id, text string) (*Message, error) {
	if err := checkText(text); err != nil {
		return nil, err
	}
	aid, m, err := e.opTarget(peer, id)
	if err != nil {
		return nil, err
	}
	if err := canChange(m, "edit"); err != nil {
		return nil, err
	}
	at := e.clock()
	return e.sendOp(ctx, aid, envelope.KindEdit, []byte(text), []string{m.ID}, func(m *Message) error {
		if err := canChange(m, "edit"); err != nil {
			return err
		}
		applyEdit(m, text, at.UnixMilli())
		return nil
	})
}

// canChange says whether we may edit or delete m for everyone: our own,
// not deleted, and gone out (one still queued could arrive after the
// change, which would then find nothing to change).
func canChange(m *Message, what string) error {
	switch {
	case !m.Outgoing:
		return fmt.Errorf("you can only %s your own messages", what)
	case m.Deleted:
		return errors.New("that message was deleted")
	case m.State == StateQueued:
		return fmt.Errorf("that message is not sent yet: %s it once it is", what)
	case m.State == StateFailed && what == "edit":
		return errors.New("that message could not be sent: there is nothing to edit on the other side")
	}
	return nil
}

func applyEdit(m *Message, text string, at int64) {
	m.Text, m.Edited = text, true
	if m.OpsAt == nil {
		m.OpsAt = map[string]int64{}
	}
	m.OpsAt[editKey] = at
}

func applyDelete(m *Message) {
	m.Text, m.Deleted, m.Edited, m.ReplyTo, m.Reactions, m.OpsAt = "", true, false, "", nil, nil
	m.File = nil // its pieces go at the file worker's next sweep (sweepFiles)
}

// Delete deletes a message of the conversation with peer: on this device
// only, or, with everyone, one of our own for both sides (its text is
// gone from the database on both).
func (e *Engine) Delete(ctx context.Context, peer, id string, everyone bool) (*Message, error) {
	conv, err := e.conversation(peer)
	if err != nil {
		return nil, err
	}
	if everyone {
		aid, m, err := e.opTarget(peer, id)
		if err != nil {
			return nil, err
		}
		if err := canChange(m, "delete for everyone"); err != nil {
			return nil, err
		}
		return e.sendOp(ctx, aid, envelope.KindDelete, nil, []string{m.ID}, func(m *Message) error {
			if !m.Outgoing {
				return errors.New("you can only delete your own messages for everyone")
			}
			applyDelete(m)
			return nil
		})
	}
	e.mu.Lock()
	m, err := e.findMessage(conv, id)
	if err == nil {
		if err = e.kv.Delete(msgKey(m.Peer(), m.SentAt, m.ID)); err == nil {
			err = e.kv.Delete(msgIndexKey(m.ID))
		}
	}
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	e.bus.publish(Event{Type: EventRemoved, Message: m})
	return m, nil
}

// typingOn reports whether typing indicators are on: their setting and
// read receipts both.
func (e *Engine) typingOn() bool {
	st, err := e.Settings()
	return err == nil && st.TypingIndicators && st.ReadReceipts
}

// SendTyping tells peer that we started (or stopped) typing. It does
// nothing while typing indicators are off, to anyone but an accepted
// contact, or without a session (no card is fetched for it). It reports
// whether one was queued.
func (e *Engine) SendTyping(ctx context.Context, peer string, typing bool) (bool, error) {
	aid, err := identity.ParseAccountID(peer)
	if err != nil {
		return false, err
	}
	if !e.typingOn() {
		return false, nil
	}
	if c, err := e.d.contact(aid.String()); err != nil || c == nil || c.State != ContactAccepted {
		return false, err
	}
	var body []byte
	if typing {
		body = []byte{1}
	}
	c, err := envelope.NewContent(nil, envelope.KindTyping, body, e.clock())
	if err != nil {
		return false, err
	}
	if err := e.enqueueWith(ctx, aid, c, nil, enqueueOpts{sessionOnly: true, dropAfter: typingDropAfter}); err != nil {
		return false, err
	}
	return true, nil
}

// receiveTypingLocked turns a fresh typing indicator from an accepted
// contact into an event, while typing indicators are on.
func (e *Engine) receiveTypingLocked(from string, c *envelope.Content) []Event {
	if age := e.now().Sub(time.UnixMilli(c.SentAt)); age > typingMaxAge || age < -typingMaxAge {
		return nil
	}
	if ct, _ := e.d.contact(from); ct == nil || ct.State != ContactAccepted || !e.typingOn() {
		return nil
	}
	return []Event{{Type: EventTyping, Peer: from, Typing: len(c.Body) > 0}}
}

// receiveOpLocked applies a reaction, edit or delete from a peer to b and
// returns the events to publish. What it may not do is ignored (logged):
// targets of another conversation, not written by the sender (edits,
// deletes), deleted already, or older than what was applied. An action on
// a message not held yet is kept aside (pendingOp), as the nodes return a
// mailbox's messages of the same minute in no particular order.
func (e *Engine) receiveOpLocked(b *batch, from string, c *envelope.Content) ([]Event, error) {
	refs := c.RefIDs()
	if len(refs) == 0 || (c.Kind != envelope.KindDelete && len(refs) != 1) {
		e.log.Debug("ignored an action without a target", "from", short(from), "kind", c.Kind)
		return nil, nil
	}
	var events []Event
	for _, ref := range refs {
		m, err := e.d.message(ref.String())
		if err != nil {
			return nil, err
		}
		if m == nil {
			if err := e.keepOpLocked(b, ref.String(), pendingOp{From: from, Kind: c.Kind, Body: c.Body, SentAt: c.SentAt, At: e.now()}); err != nil {
				return nil, err
			}
			continue
		}
		if m.Group != "" || !e.applyOp(m, from, c.Kind, c.Body, c.SentAt) {
			continue
		}
		if err := saveMessageTo(b, m); err != nil {
			return nil, err
		}
		events = append(events, Event{Type: EventUpdate, Message: m})
	}
	return events, nil
}

// applyOp applies an action from a peer to m, if it may; it reports
// whether m changed.
func (e *Engine) applyOp(m *Message, from string, kind envelope.Kind, body []byte, sentAt int64) bool {
	if m.Group == "" && m.Peer() != from || m.Deleted { // a group's: the caller checked the group
		e.log.Debug("ignored an action on a message of another conversation or deleted", "from", short(from), "kind", kind)
		return false
	}
	own := !m.Outgoing && m.From == from
	switch kind {
	case envelope.KindReaction:
		emoji := string(body)
		if ValidReaction(emoji) != nil || sentAt <= m.OpsAt["r/"+from] {
			return false
		}
		setReaction(m, from, emoji, sentAt)
	case envelope.KindEdit:
		if !own || checkText(string(body)) != nil || sentAt <= m.OpsAt[editKey] {
			e.log.Warn("refused an edit", "from", short(from), "own", own)
			return false
		}
		applyEdit(m, string(body), sentAt)
	case envelope.KindDelete:
		if !own {
			e.log.Warn("refused a delete of a message the sender did not write", "from", short(from))
			return false
		}
		applyDelete(m)
	default:
		return false
	}
	return true
}

// pendingOp is an action on a message not held yet, kept under
// pendop/TARGET/SENDER/N until the message comes (then applied and
// emptied), for at most pendingOpTTL. A sender has at most
// maxPendingPerPeer of them, everyone together maxPendingOps.
type pendingOp struct {
	From   string        `json:"from"`
	Group  string        `json:"group,omitempty"` // for a message of this group
	Kind   envelope.Kind `json:"kind"`
	Body   []byte        `json:"body,omitempty"`
	SentAt int64         `json:"sent_at"`
	At     time.Time     `json:"at"`
}

const (
	pendingOpPrefix   = "pendop/"
	pendingOpTTL      = 7 * 24 * time.Hour
	maxPendingPerPeer = 64
	maxPendingOps     = 1024
)

// keepOpLocked keeps op on target aside in b, within the bounds; on the
// way it removes what was applied or is too old.
func (e *Engine) keepOpLocked(b *batch, target string, op pendingOp) error {
	keys, err := e.kv.List(pendingOpPrefix)
	if err != nil {
		return err
	}
	total, mine := 0, 0
	for _, k := range keys {
		v, ok, err := e.kv.Get(k)
		if err != nil {
			return err
		}
		var p pendingOp
		if !ok || len(v) == 0 || json.Unmarshal(v, &p) != nil || e.now().Sub(p.At) > pendingOpTTL {
			if err := e.kv.Delete(k); err != nil {
				return err
			}
			continue
		}
		total++
		if p.From == op.From {
			mine++
		}
	}
	if total >= maxPendingOps || mine >= maxPendingPerPeer {
		e.log.Debug("ignored an action on a message not held", "from", short(op.From), "kind", op.Kind)
		return nil
	}
	return putJSON(b, fmt.Sprintf("%s%s/%s/%s", pendingOpPrefix, target, op.From, newMessageID()), op)
}

// applyPendingLocked applies to m, a message just received, the actions
// kept aside for it, in the order they were made, and empties them in b.
func (e *Engine) applyPendingLocked(b *batch, m *Message) error {
	keys, err := e.kv.List(pendingOpPrefix + m.ID + "/")
	if err != nil || len(keys) == 0 {
		return err
	}
	var ops []pendingOp
	for _, k := range keys {
		v, ok, err := e.kv.Get(k)
		if err != nil {
			return err
		}
		var p pendingOp
		if ok && len(v) > 0 && json.Unmarshal(v, &p) == nil {
			ops = append(ops, p)
		}
		if err := b.Put(k, nil); err != nil { // applied: removed on the next clean-up
			return err
		}
	}
	slices.SortFunc(ops, func(x, y pendingOp) int { return cmp.Compare(x.SentAt, y.SentAt) })
	for _, p := range ops {
		if p.Group == m.Group {
			e.applyOp(m, p.From, p.Kind, p.Body, p.SentAt)
		}
	}
	return nil
}
