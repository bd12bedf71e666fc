package client

import (
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/umbra-im/umbra/internal/identity"
)

// Trust: safety numbers, blocking, muting, deleting a conversation, and
// the notice written when a contact starts a new session.
//
// Safety numbers follow Signal's NumericFingerprintGenerator. For each side,
//
//	h = version ‖ key ‖ id, then 5200 times h = SHA-512(h ‖ key)
//
// with version the 2-byte big-endian 0, key the account's Ed25519 identity
// public key (32 bytes: the account ID itself) and id the account ID's text
// form ("umbra1…", ASCII). The first 30 bytes of h, as six 5-byte big-endian
// numbers each taken mod 100000, give 30 digits. The two sides' 30 digits
// are concatenated, the smaller first, so both compute the same 60 digits,
// shown in 12 groups of 5.
//
// Why only the Ed25519 key: it is the root of an Umbra identity. The X25519
// identity key is derived from the same seed and bound to it by a signature
// that every envelope checks (identity.PublicIdentity.Verify), and the
// prekeys (X25519 and ML-KEM) are signed by it and rotate weekly. Both sides
// always know each other's Ed25519 key (it is the account ID), before any
// message. So the safety number of two accounts never changes: a different
// key is a different account ID, a different contact. What comparing it
// proves is that the account ID you added is the one your contact holds
// (not one a man in the middle handed you).

// Safety number parameters (Signal's).
const (
	safetyVersion    = 0
	safetyIterations = 5200
)

// EventCleared tells that a conversation's local history was deleted
// (Contact names the peer).
const EventCleared = "cleared"

// NoticeSessionReset marks the notice written when a known contact starts
// a new session (see noteSessionResetLocked).
const NoticeSessionReset = "session_reset"

// numericFingerprint is one side's 30 digits: Signal's construction over
// key and the stable identifier id, with the given iteration count.
func numericFingerprint(iterations int, key, id []byte) string {
	sum := binary.BigEndian.AppendUint16(nil, safetyVersion)
	sum = append(append(sum, key...), id...)
	h := sha512.New()
	for range iterations {
		h.Reset()
		h.Write(sum)
		h.Write(key)
		sum = h.Sum(sum[:0])
	}
	var b strings.Builder
	for i := 0; i < 30; i += 5 {
		var v uint64
		for _, c := range sum[i : i+5] {
			v = v<<8 | uint64(c)
		}
		fmt.Fprintf(&b, "%05d", v%100000)
	}
	return b.String()
}

// displayableFingerprint is the 60 digits both sides show: the two sides'
// numbers, the smaller first.
func displayableFingerprint(local, remote string) string {
	if local <= remote {
		return local + remote
	}
	return remote + local
}

// SafetyNumberOf computes the safety number of two accounts (60 digits).
// Either side gets the same number.
func SafetyNumberOf(a, b identity.AccountID) string {
	fa := numericFingerprint(safetyIterations, a[:], []byte(a.String()))
	fb := numericFingerprint(safetyIterations, b[:], []byte(b.String()))
	return displayableFingerprint(fa, fb)
}

// GroupSafetyNumber splits a safety number into groups of 5 digits.
func GroupSafetyNumber(n string) []string {
	var out []string
	for i := 0; i+5 <= len(n); i += 5 {
		out = append(out, n[i:i+5])
	}
	return out
}

// SafetyNumber is what the verify screen shows.
type SafetyNumber struct {
	Peer     string    `json:"peer"`
	Name     string    `json:"name,omitempty"`
	Number   string    `json:"number"` // 60 digits
	Groups   []string  `json:"groups"` // 12 groups of 5
	Verified bool      `json:"verified"`
	ResetAt  time.Time `json:"reset_at,omitzero"`
}

// verifiedNow reports whether c's verified mark holds: the number it was
// given for is still the safety number.
func verifiedNow(c *Contact, number string) bool {
	return c.Verified && subtle.ConstantTimeCompare([]byte(c.VerifiedNumber), []byte(number)) == 1
}

// SafetyNumber returns the safety number with peer (a contact, a request or
// a blocked account).
func (e *Engine) SafetyNumber(peer string) (*SafetyNumber, error) {
	aid, err := identity.ParseAccountID(peer)
	if err != nil {
		return nil, err
	}
	if aid.Equal(e.acct.ID()) {
		return nil, fmt.Errorf("that is your own account ID")
	}
	num := SafetyNumberOf(e.acct.ID(), aid)
	sn := &SafetyNumber{Peer: aid.String(), Number: num, Groups: GroupSafetyNumber(num)}
	e.mu.Lock()
	c, err := e.d.contact(aid.String())
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if c != nil {
		sn.Name, sn.Verified, sn.ResetAt = c.Name, verifiedNow(c, num), c.ResetAt
	}
	return sn, nil
}

// updateContact loads the contact id (which must exist), applies f and
// stores it, publishing the change.
func (e *Engine) updateContact(id string, f func(c *Contact) error) (*Contact, error) {
	aid, err := identity.ParseAccountID(id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	c, err := e.d.contact(aid.String())
	if err == nil && c == nil {
		err = fmt.Errorf("%s is not in your contacts or requests", aid)
	}
	if err == nil {
		err = f(c)
	}
	if err == nil {
		err = e.d.putJSON(contactKey(c.ID), c)
	}
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	e.bus.publish(Event{Type: EventContact, Contact: c})
	return c, nil
}

// SetVerified marks (or unmarks) the contact's safety number as verified:
// the user compared it with the contact. The mark remembers the number, so
// it lapses by itself if the number is ever different.
func (e *Engine) SetVerified(peer string, verified bool) (*Contact, error) {
	aid, err := identity.ParseAccountID(peer)
	if err != nil {
		return nil, err
	}
	num := SafetyNumberOf(e.acct.ID(), aid)
	return e.updateContact(peer, func(c *Contact) error {
		if c.State == ContactBlocked && verified {
			return fmt.Errorf("%s is blocked: unblock them first", aid)
		}
		c.Verified, c.VerifiedNumber = verified, ""
		if verified {
			c.VerifiedNumber = num
		}
		return nil
	})
}

// SetMuted mutes or unmutes a conversation: the web UI shows no
// notification for a muted one. Messages still arrive and count as unread.
func (e *Engine) SetMuted(peer string, muted bool) (*Contact, error) {
	return e.updateContact(peer, func(c *Contact) error {
		c.Muted = muted
		return nil
	})
}

// Unblock lifts a block: the account goes back to what it was before
// (a contact, or a message request; a contact if it was neither).
func (e *Engine) Unblock(peer string) (*Contact, error) {
	return e.updateContact(peer, func(c *Contact) error {
		if c.State != ContactBlocked {
			return fmt.Errorf("%s is not blocked", c.ID)
		}
		c.State = c.UnblockTo
		if c.State != ContactRequest {
			c.State = ContactAccepted
		}
		c.UnblockTo = ""
		return nil
	})
}

// Blocked lists blocked accounts.
func (e *Engine) Blocked() ([]Contact, error) { return e.contactsIn(ContactBlocked) }

// DeleteConversation deletes the local history with peer: every message
// (both directions) on this device. The contact stays, and so does the
// session: new messages arrive as before. Nothing is sent; the peer keeps
// its copy. A message still queued for sending is sent all the same (it
// just no longer shows). It returns how many messages went.
func (e *Engine) DeleteConversation(peer string) (int, error) {
	aid, err := identity.ParseAccountID(peer)
	if err != nil {
		return 0, err
	}
	peer = aid.String()
	e.mu.Lock()
	keys, err := e.kv.List(unreadPrefix(peer))
	n := 0
	for _, k := range keys {
		if err != nil {
			break
		}
		var m Message
		var ok bool
		if ok, err = e.d.getJSON(k, &m); err != nil {
			break
		}
		if ok && m.ID != "" {
			// The index entry first: a crash between the two leaves a
			// message still listed, deleted by the next try.
			if err = e.kv.Delete(msgIndexKey(m.ID)); err != nil {
				break
			}
		}
		if err = e.kv.Delete(k); err != nil {
			break
		}
		n++
	}
	e.mu.Unlock()
	e.bus.publish(Event{Type: EventCleared, Contact: &Contact{ID: peer}})
	return n, err
}

// sessionResetLocked reports whether a new session from peer, about to be
// added, resets an established one: the peer had a session with us that is
// older than a crossing (both sides writing first at once, which makes a
// second session within crossingWindow). A peer that reinstalled, or
// restored its account from the recovery phrase on a new device, lost its
// sessions and starts a new one. Call it before addSessionLocked.
func (e *Engine) sessionResetLocked(peer string) bool {
	r := e.recordLocked(peer)
	if r == nil || r.sessions[r.Active] == nil {
		return false
	}
	created, ok := r.Created[r.Active]
	return ok && e.now().Sub(created) >= crossingWindow
}

// noteSessionResetLocked writes a notice into the conversation with from
// (to b) saying the contact's session was reset, and returns the events to
// publish. Only for accepted contacts; at most one per crossingWindow per
// contact (the new session is the active one from then on), so a peer
// cannot make us store notices faster than that. The verified mark is cleared if the safety number is no longer
// the one verified; with Umbra's keys it cannot be (see the top of this
// file), so a reset alone keeps the mark, and the notice says so.
func (e *Engine) noteSessionResetLocked(b *batch, from string) ([]Event, error) {
	c, err := e.d.contact(from)
	if err != nil || c == nil || c.State != ContactAccepted {
		return nil, err // a stranger's new session says nothing worth a notice
	}
	aid, err := identity.ParseAccountID(from)
	if err != nil {
		return nil, err
	}
	now := e.now()
	c.ResetAt = now
	if c.Verified && !verifiedNow(c, SafetyNumberOf(e.acct.ID(), aid)) {
		c.Verified, c.VerifiedNumber = false, ""
	}
	if err := putJSON(b, contactKey(c.ID), c); err != nil {
		return nil, err
	}
	text := "This contact's session was reset: they reinstalled Umbra or restored their account on another device. " +
		"Their account ID, and so your safety number, is unchanged; if you did not expect this, compare the safety number with them."
	m := &Message{ID: newMessageID(), From: from, To: e.AccountID(), Text: text, SentAt: now, ReceivedAt: now,
		State: StateRead, Notice: NoticeSessionReset}
	if err := saveMessageTo(b, m); err != nil {
		return nil, err
	}
	return []Event{{Type: EventContact, Contact: c}, {Type: EventMessage, Message: m}}, nil
}
