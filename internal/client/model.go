package client

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/umbra-im/umbra/internal/keystore"
)

// KV is the encrypted key/value database the engine keeps everything in.
type KV interface {
	Put(key string, val []byte) error
	Get(key string) ([]byte, bool, error)
	Delete(key string) error
	List(prefix string) ([]string, error) // keys with the prefix, sorted
	// PutMany stores several entries atomically (all or none).
	PutMany(entries []keystore.Entry) error
}

// batch collects writes to commit together with KV.PutMany.
type batch struct{ entries []keystore.Entry }

func (b *batch) Put(key string, val []byte) error {
	b.entries = append(b.entries, keystore.Entry{Name: key, Value: val})
	return nil
}

// kvWriter is what saving needs: the KV itself or a batch.
type kvWriter interface {
	Put(key string, val []byte) error
}

// putJSON writes v, JSON-encoded, under key to w.
func putJSON(w kvWriter, key string, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.Put(key, j)
}

// Message states, in order. A received message is "received" then "read".
const (
	StateQueued    = "queued"    // in the outbox, not yet acknowledged by the network
	StateSent      = "sent"      // a write quorum of the recipient's swarm holds it
	StateDelivered = "delivered" // the recipient's device decrypted it (receipt)
	StateRead      = "read"      // the recipient read it (receipt)
	StateReceived  = "received"  // an incoming message, not yet read
	StateFailed    = "failed"    // could not be sent (see Error)
)

var stateRank = map[string]int{StateQueued: 0, StateFailed: 0, StateSent: 1, StateDelivered: 2, StateRead: 3, StateReceived: 0}

// Message is a chat message as the user sees it.
type Message struct {
	ID         string    `json:"id"` // 32 hex chars, chosen by the sender
	From       string    `json:"from"`
	To         string    `json:"to"`
	Text       string    `json:"text"`
	SentAt     time.Time `json:"sent_at"` // sender's clock
	ReceivedAt time.Time `json:"received_at,omitzero"`
	State      string    `json:"state"`
	Outgoing   bool      `json:"outgoing"`
	Error      string    `json:"error,omitempty"`
	// Conversation actions (msgops.go): the quoted message of a reply,
	// reactions by account ID, the edited and deleted-for-everyone marks.
	ReplyTo   string            `json:"reply_to,omitempty"`
	Reactions map[string]string `json:"reactions,omitempty"`
	Edited    bool              `json:"edited,omitempty"`
	Deleted   bool              `json:"deleted,omitempty"`
	// OpsAt is when (sender's clock, Unix ms) the last edit and each
	// account's last reaction were made: an older one arriving late is
	// ignored.
	OpsAt map[string]int64 `json:"ops_at,omitempty"`
	// Notice marks a line the engine wrote into the conversation, not a
	// message anyone sent (NoticeSessionReset); Text explains it.
	Notice string `json:"notice,omitempty"`
	// Kind is "" for a text, KindTimerLine for a timer change's system
	// line.
	Kind string `json:"kind,omitempty"`
	// Expire is the disappearing-message timer it was sent with (seconds,
	// 0: none); ExpiresAt is when it is deleted (see timer.go).
	Expire    uint32    `json:"expire,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Group is the group (its ID) a group message belongs to; To is then
	// the group's conversation. DeliveredCount and ReadCount are how many
	// members acknowledged an outgoing group message.
	Group          string `json:"group,omitempty"`
	DeliveredCount int    `json:"delivered_count,omitempty"`
	ReadCount      int    `json:"read_count,omitempty"`
	// File is the file the message carries (files.go); Text is then its
	// caption.
	File *Attachment `json:"file,omitempty"`
}

// Peer is the other side of a message: the conversation it belongs to.
func (m *Message) Peer() string {
	if m.Group != "" {
		return groupPeer(m.Group)
	}
	if m.Outgoing {
		return m.To
	}
	return m.From
}

// Contact states.
const (
	ContactAccepted = "contact" // added by the user, or a request they accepted
	ContactRequest  = "request" // a stranger wrote first: a message request
	ContactBlocked  = "blocked" // messages are dropped
)

// Contact is someone the user talks to (or who asked to).
type Contact struct {
	ID      string    `json:"id"`
	Name    string    `json:"name,omitempty"`
	State   string    `json:"state"`
	AddedAt time.Time `json:"added_at"`
	// Trust (trust.go): the safety number the user compared and marked
	// verified (Verified holds only while it is still the number), muted
	// notifications, the state an unblock returns to, and the last time
	// the contact started a new session (a reinstall or restore).
	Verified       bool      `json:"verified,omitempty"`
	VerifiedNumber string    `json:"verified_number,omitempty"`
	Muted          bool      `json:"muted,omitempty"`
	UnblockTo      string    `json:"unblock_to,omitempty"`
	ResetAt        time.Time `json:"reset_at,omitzero"`
}

// outboxItem is a message the network has not acknowledged yet. It holds
// the already encrypted request, so a resend after a crash stores the very
// same bytes (same hash): the swarm and the recipient see it once.
type outboxItem struct {
	MsgID     string    `json:"msg_id,omitempty"` // the chat message it carries ("" for receipts)
	To        string    `json:"to"`
	Mailbox   []byte    `json:"mailbox"`
	Namespace int32     `json:"ns"`
	Timestamp int64     `json:"ts"`
	TTL       int64     `json:"ttl"`
	Data      []byte    `json:"data"`
	Attempts  int       `json:"attempts"`
	NextTry   time.Time `json:"next_try"`
	Created   time.Time `json:"created"`
	// DropAfter, when set, is when the outbox gives up on the item
	// (typing indicators: stale ones are worth nothing).
	DropAfter time.Time `json:"drop_after,omitzero"`
}

// Key layout in the KV store.
func msgKey(peer string, sentAt time.Time, id string) string {
	return fmt.Sprintf("msg/%s/%016x/%s", peer, sentAt.UnixMilli(), id)
}
func msgIndexKey(id string) string    { return "msgidx/" + id }
func contactKey(id string) string     { return "contact/" + id }
func outboxKey(id string) string      { return "outbox/" + id }
func seenKey(hash [32]byte) string    { return "seen/" + hex.EncodeToString(hash[:]) }
func unreadPrefix(peer string) string { return "msg/" + peer + "/" }

type db struct{ kv KV }

func (d db) putJSON(key string, v any) error { return putJSON(d.kv, key, v) }

func (d db) getJSON(key string, v any) (bool, error) {
	b, ok, err := d.kv.Get(key)
	if err != nil || !ok {
		return false, err
	}
	return true, json.Unmarshal(b, v)
}

func (d db) contact(id string) (*Contact, error) {
	var c Contact
	ok, err := d.getJSON(contactKey(id), &c)
	if err != nil || !ok {
		return nil, err
	}
	return &c, nil
}

func (d db) contacts() ([]Contact, error) {
	keys, err := d.kv.List("contact/")
	if err != nil {
		return nil, err
	}
	out := make([]Contact, 0, len(keys))
	for _, k := range keys {
		var c Contact
		if ok, err := d.getJSON(k, &c); err != nil {
			return nil, err
		} else if ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// saveMessage stores m (new or updated) and its index entry.
func (d db) saveMessage(m *Message) error {
	var b batch
	if err := saveMessageTo(&b, m); err != nil {
		return err
	}
	return d.kv.PutMany(b.entries)
}

// saveMessageTo writes m and its index entry to w.
func saveMessageTo(w kvWriter, m *Message) error {
	k := msgKey(m.Peer(), m.SentAt, m.ID)
	if err := putJSON(w, k, m); err != nil {
		return err
	}
	if !m.ExpiresAt.IsZero() {
		if err := w.Put(expireKey(m.ExpiresAt, m.ID), nil); err != nil {
			return err
		}
	}
	return w.Put(msgIndexKey(m.ID), []byte(k))
}

func (d db) message(id string) (*Message, error) {
	k, ok, err := d.kv.Get(msgIndexKey(id))
	if err != nil || !ok {
		return nil, err
	}
	var m Message
	if ok, err := d.getJSON(string(k), &m); err != nil || !ok {
		return nil, err
	}
	return &m, nil
}

// messages lists the conversation with peer ("" for all), ordered by the
// sender's clock with the message ID as a stable tiebreak.
func (d db) messages(peer string) ([]Message, error) {
	prefix := "msg/"
	if peer != "" {
		prefix = unreadPrefix(peer)
	}
	keys, err := d.kv.List(prefix)
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(keys))
	for _, k := range keys {
		var m Message
		if ok, err := d.getJSON(k, &m); err != nil {
			return nil, err
		} else if ok {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].SentAt.Equal(out[j].SentAt) {
			return out[i].SentAt.Before(out[j].SentAt)
		}
		return strings.Compare(out[i].ID, out[j].ID) < 0
	})
	return out, nil
}
