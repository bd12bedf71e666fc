package client

// Disappearing messages.
//
// Each conversation has a timer (timer/PEER, seconds; none means off).
// Either side sets it with a KindTimer content (Content.Expire), which both
// sides show as a system line (a Message of Kind "timer"); every outgoing
// text carries the conversation's timer in Content.Expire, and a received
// text whose timer differs updates the conversation's (the sender changed
// it, and the two texts may have crossed).
//
// A message with a timer expires that long after it was sent (outgoing:
// its SentAt, the sender's clock) or received (incoming: its ReceivedAt,
// so a message read late still gets the whole time). Expiring deletes it
// from this device (message, index, and an outbox entry not yet sent);
// expireLoop does it on the engine's clock (e.now()) and publishes an
// EventExpired so the UIs remove it. The index expire/TIME/ID keeps the
// loop from reading every message.
//
// The swarm copy of a text with a timer lives no longer than the timer
// (the outbox item's TTL), rounded up to the minute: nodes see times to
// the minute only (wire.TimeGranularity), so the shortest lifetime a
// message can ask for is one minute; for timers of whole minutes it is
// never longer than the timer. A recipient offline longer than that never
// gets the message, which is the point.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
)

// Bounds on a conversation's timer.
const (
	MinTimer = 5 * time.Second
	MaxTimer = envelope.MaxExpire * time.Second
)

// EventExpired says a message disappeared (its timer ran out).
const EventExpired = "expired"

// KindTimerLine is the Kind of the system line a timer change leaves.
const KindTimerLine = "timer"

const (
	timerPrefix  = "timer/"
	expirePrefix = "expire/"
)

// expireKey indexes a message that expires: by time, so the loop reads
// only what is due.
func expireKey(at time.Time, id string) string {
	return fmt.Sprintf("%s%016x/%s", expirePrefix, at.UnixMilli(), id)
}

// expirer wakes the expiry loop when a message that expires is stored.
type expirer struct {
	once sync.Once
	kick chan struct{}
	mu   sync.Mutex // one sweep at a time
}

func (x *expirer) wake() chan struct{} {
	x.once.Do(func() { x.kick = make(chan struct{}, 1) })
	return x.kick
}

func (x *expirer) poke() {
	select {
	case x.wake() <- struct{}{}:
	default:
	}
}

// timerOf is the conversation's timer in seconds (0: off).
func (e *Engine) timerOf(peer string) uint32 {
	secs, _ := e.timerSet(peer)
	return secs
}

// timerSet is the conversation's timer and the send time (unix ms) of
// the content that set it: a content sent before that (overtaken on the
// way) does not change it back.
func (e *Engine) timerSet(peer string) (uint32, int64) {
	v, ok, err := e.kv.Get(timerPrefix + peer)
	if err != nil || !ok {
		return 0, 0
	}
	a, b, _ := strings.Cut(string(v), ":")
	n, err := strconv.ParseUint(a, 10, 32)
	if err != nil || n > envelope.MaxExpire {
		return 0, 0
	}
	at, _ := strconv.ParseInt(b, 10, 64)
	return uint32(n), at
}

func timerValue(secs uint32, sentAt int64) []byte {
	return []byte(strconv.FormatUint(uint64(secs), 10) + ":" + strconv.FormatInt(sentAt, 10))
}

// Timer is the disappearing-message timer of the conversation with peer
// (0: off).
func (e *Engine) Timer(peer string) (time.Duration, error) {
	conv, err := e.conversation(peer)
	if err != nil {
		return 0, err
	}
	return time.Duration(e.timerOf(conv)) * time.Second, nil
}

// CheckTimer reports a timer outside 0 (off) or MinTimer..MaxTimer.
func CheckTimer(d time.Duration) error {
	if d != 0 && (d < MinTimer || d > MaxTimer) {
		return fmt.Errorf("a timer is off or between %v and 4 weeks, not %v", MinTimer, d)
	}
	return nil
}

// SetTimer sets the conversation's timer (0: off), tells peer and leaves a
// system line in the conversation, which it returns.
func (e *Engine) SetTimer(ctx context.Context, peer string, d time.Duration) (*Message, error) {
	if err := CheckTimer(d); err != nil {
		return nil, err
	}
	if strings.HasPrefix(peer, groupPeerPrefix) {
		return e.setGroupTimer(peer, d)
	}
	aid, err := identity.ParseAccountID(peer)
	if err != nil {
		return nil, err
	}
	peer = aid.String()
	c, err := e.d.contact(peer)
	if err != nil {
		return nil, err
	}
	if c == nil || c.State != ContactAccepted {
		return nil, errors.New("set a timer with a contact only: add or accept them first")
	}
	secs := uint32(d / time.Second)
	ct, err := envelope.NewContent(nil, envelope.KindTimer, nil, e.clock())
	if err != nil {
		return nil, err
	}
	ct.Expire = secs
	m := &Message{ID: idOf(ct), From: e.AccountID(), To: peer, Kind: KindTimerLine, Expire: secs,
		SentAt: time.UnixMilli(ct.SentAt), State: StateQueued, Outgoing: true}
	if err := e.kv.Put(timerPrefix+peer, timerValue(secs, ct.SentAt)); err != nil {
		return nil, err
	}
	if err := e.enqueue(ctx, aid, ct, m); err != nil {
		return nil, err
	}
	e.bus.publish(Event{Type: EventMessage, Message: m})
	e.bus.publish(Event{Type: EventContact, Contact: c})
	return m, nil
}

// setGroupTimer sets a group's timer for every member ("group:" and the
// group's ID or name), with a system line.
func (e *Engine) setGroupTimer(peer string, d time.Duration) (*Message, error) {
	conv, err := e.conversation(peer)
	if err != nil {
		return nil, err
	}
	gid := strings.TrimPrefix(conv, groupPeerPrefix)
	secs := uint32(d / time.Second)
	ct, err := envelope.NewContent(nil, envelope.KindTimer, nil, e.clock())
	if err != nil {
		return nil, err
	}
	ct.Expire = secs
	m := &Message{ID: idOf(ct), Group: gid, From: e.AccountID(), To: conv, Kind: KindTimerLine, Expire: secs,
		SentAt: time.UnixMilli(ct.SentAt), State: StateQueued, Outgoing: true}
	then := func(b *batch) error { return b.Put(timerPrefix+conv, timerValue(secs, ct.SentAt)) }
	if err := e.sendGroupContent(gid, ct, m, then); err != nil {
		return nil, err
	}
	e.bus.publish(Event{Type: EventMessage, Message: m})
	return m, nil
}

// receiveGroupTimerLocked applies a member's change of the group's timer
// and leaves the system line.
func (e *Engine) receiveGroupTimerLocked(b *batch, gid, from string, c *envelope.Content) ([]Event, error) {
	if old, _ := e.d.message(idOf(c)); old != nil {
		return nil, nil
	}
	conv := groupPeer(gid)
	m := &Message{ID: idOf(c), Group: gid, From: from, To: conv, Kind: KindTimerLine, Expire: c.Expire,
		SentAt: time.UnixMilli(c.SentAt), ReceivedAt: e.now(), State: StateRead}
	if err := saveMessageTo(b, m); err != nil {
		return nil, err
	}
	if _, at := e.timerSet(conv); c.SentAt >= at {
		b.Put(timerPrefix+conv, timerValue(c.Expire, c.SentAt))
	}
	return []Event{{Type: EventMessage, Message: m}}, nil
}

// stampTimer gives an outgoing text the conversation's timer.
func (e *Engine) stampTimer(c *envelope.Content, m *Message) {
	c.Expire = e.timerOf(m.To)
	m.Expire = c.Expire
	if c.Expire > 0 {
		m.ExpiresAt = m.SentAt.Add(time.Duration(c.Expire) * time.Second)
	}
}

// textTimerLocked gives an incoming text its timer (from receipt) and
// follows the sender's timer when it differs from the conversation's.
func (e *Engine) textTimerLocked(b *batch, from string, c *envelope.Content, m *Message) []Event {
	m.Expire = c.Expire
	if c.Expire > 0 {
		m.ExpiresAt = m.ReceivedAt.Add(time.Duration(c.Expire) * time.Second)
	}
	conv := from
	if m.Group != "" {
		conv = groupPeer(m.Group)
	}
	if secs, at := e.timerSet(conv); secs == c.Expire || c.SentAt <= at {
		return nil
	}
	b.Put(timerPrefix+conv, timerValue(c.Expire, c.SentAt))
	if m.Group != "" {
		return nil
	}
	if ct, _ := e.d.contact(from); ct != nil {
		return []Event{{Type: EventContact, Contact: ct}}
	}
	return nil
}

// receiveTimerLocked applies a peer's timer change and leaves the system
// line. Only a contact or a message request may set it.
func (e *Engine) receiveTimerLocked(b *batch, from string, c *envelope.Content) ([]Event, error) {
	if old, _ := e.d.message(idOf(c)); old != nil {
		return nil, nil
	}
	ct, err := e.d.contact(from)
	if err != nil || ct == nil {
		return nil, err
	}
	m := &Message{ID: idOf(c), From: from, To: e.AccountID(), Kind: KindTimerLine, Expire: c.Expire,
		SentAt: time.UnixMilli(c.SentAt), ReceivedAt: e.now(), State: StateRead}
	if err := saveMessageTo(b, m); err != nil {
		return nil, err
	}
	if _, at := e.timerSet(from); c.SentAt >= at {
		b.Put(timerPrefix+from, timerValue(c.Expire, c.SentAt))
	}
	return []Event{{Type: EventMessage, Message: m}, {Type: EventContact, Contact: ct}}, nil
}

// expireLoop deletes messages as they expire, until ctx ends.
func (e *Engine) expireLoop(ctx context.Context) {
	for {
		// Check at least every second (a list of the expire/ index, in
		// memory), so a clock that jumps (or a test's) is followed and a
		// message stored by any path is seen.
		wait := time.Second
		if next, ok := e.expireDue(); ok {
			wait = min(max(next.Sub(e.now()), 10*time.Millisecond), time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-e.exp.wake():
		case <-t.C:
		}
		t.Stop()
	}
}

// expireDue deletes every message due by now and returns when the next
// one is due (false if none waits).
func (e *Engine) expireDue() (time.Time, bool) {
	e.exp.mu.Lock()
	defer e.exp.mu.Unlock()
	keys, err := e.kv.List(expirePrefix)
	if err != nil {
		e.log.Warn("expire", "err", err)
		return time.Time{}, false
	}
	now := e.now().UnixMilli()
	for _, k := range keys {
		rest := strings.TrimPrefix(k, expirePrefix)
		ts, id, ok := strings.Cut(rest, "/")
		at, err := strconv.ParseInt(ts, 16, 64)
		if !ok || err != nil {
			e.kv.Delete(k)
			continue
		}
		if at > now {
			return time.UnixMilli(at), true
		}
		e.expireOne(k, id)
	}
	return time.Time{}, false
}

// expireOne deletes one message and its index entries.
func (e *Engine) expireOne(key, id string) {
	e.mu.Lock()
	m, err := e.d.message(id)
	if err != nil {
		e.mu.Unlock()
		e.log.Warn("expire", "err", err)
		return
	}
	if m != nil {
		if mk, ok, _ := e.kv.Get(msgIndexKey(id)); ok {
			e.kv.Delete(string(mk))
		}
		e.kv.Delete(msgIndexKey(id))
		e.kv.Delete(outboxKey(id))
	}
	e.kv.Delete(key)
	e.mu.Unlock()
	if m != nil {
		e.bus.publish(Event{Type: EventExpired, Message: m})
	}
}
