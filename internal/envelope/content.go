package envelope

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/umbra-im/umbra/internal/wire"
)

// ContentVersion is the version of the Content encoding.
const ContentVersion = 1

// Bounds on Content, checked by Encode and ParseContent. They guarantee
// that every valid Content fits the largest envelope.
const (
	MaxBodySize = 252 << 10 // bytes of Content.Body
	MaxRefs     = 64        // entries of Content.Refs
	// MaxInboxSize bounds Content.Inbox.
	MaxInboxSize = 2048
	// MaxExpire bounds Content.Expire: four weeks.
	MaxExpire = 28 * 24 * 3600
)

// Kind says what a Content is. Receivers must ignore (and may acknowledge
// with a delivery receipt) kinds they do not know, so new kinds can be
// added without breaking old clients.
type Kind uint16

const (
	// KindText is a chat message; Body is UTF-8 text.
	KindText Kind = 1
	// KindReceiptDelivered acknowledges delivery of the messages in Refs.
	KindReceiptDelivered Kind = 2
	// KindReceiptRead reports that the messages in Refs were read.
	KindReceiptRead Kind = 3
	// KindTyping is a typing indicator: Body is 1 when the sender started
	// typing, empty when it stopped.
	KindTyping Kind = 4
	// KindProfile carries the sender's profile (display name and avatar;
	// the client defines the Body encoding).
	KindProfile Kind = 5
	// KindReaction reacts to the message in Refs[0]: Body is the emoji,
	// empty to take a reaction back.
	KindReaction Kind = 6
	// KindEdit replaces the text of the sender's message in Refs[0] by
	// Body.
	KindEdit Kind = 7
	// KindDelete deletes the sender's messages in Refs for everyone.
	KindDelete Kind = 8
	// KindTimer sets the conversation's disappearing-message timer to
	// Content.Expire seconds (0 turns it off).
	KindTimer Kind = 9
	// KindGroup carries group control over a pairwise session: an
	// invitation (the group's op log and epoch secret) or a fresh epoch
	// secret; the client defines Body.
	KindGroup Kind = 10
)

func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindReceiptDelivered:
		return "receipt-delivered"
	case KindReceiptRead:
		return "receipt-read"
	case KindTyping:
		return "typing"
	case KindProfile:
		return "profile"
	case KindReaction:
		return "reaction"
	case KindEdit:
		return "edit"
	case KindDelete:
		return "delete"
	case KindTimer:
		return "timer"
	case KindGroup:
		return "group"
	}
	return fmt.Sprintf("kind-%d", uint16(k))
}

// MessageID identifies a message end to end (for deduplication, receipts
// and ordering ties). It is random and carries no meaning.
type MessageID [16]byte

func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// Content is the plaintext of a message, as the sender wrote it. Its CBOR
// encoding has integer keys; unknown keys are skipped by ParseContent, so
// later versions can add fields (use keys above 8).
type Content struct {
	Version uint `cbor:"1,keyasint"`
	// ID is 16 random bytes (see MessageID).
	ID []byte `cbor:"2,keyasint"`
	// SentAt is the sender's clock when sending, in Unix milliseconds.
	SentAt int64  `cbor:"3,keyasint"`
	Kind   Kind   `cbor:"4,keyasint"`
	Body   []byte `cbor:"5,keyasint,omitempty"`
	// Refs are the IDs (16 bytes each) of messages this one refers to:
	// the messages a receipt acknowledges or a delete removes, the one a
	// reply (a KindText with Refs) quotes, a reaction or an edit targets.
	Refs [][]byte `cbor:"6,keyasint,omitempty"`
	// Inbox, when set, tells the recipient where the sender reads from
	// now on: an encoded inbox announcement (the client defines it),
	// carried inside the end-to-end encryption like everything else.
	Inbox []byte `cbor:"7,keyasint,omitempty"`
	// Expire is the conversation's disappearing-message timer in seconds
	// as the sender knows it (0: off). A text carries it so both sides
	// delete the message after the same time; a KindTimer sets it.
	Expire uint32 `cbor:"8,keyasint,omitempty"`
	// File, on a KindText, is the attachment the message carries (the
	// client defines it: a file's manifest, name, type and thumbnail);
	// Body is then its caption. Body and File together are at most
	// MaxBodySize bytes.
	File []byte `cbor:"9,keyasint,omitempty"`
}

// NewContent makes a Content with a fresh random ID (from rnd, crypto/rand
// when nil) and SentAt = now.
func NewContent(rnd io.Reader, kind Kind, body []byte, now time.Time) (*Content, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	id := make([]byte, len(MessageID{}))
	if _, err := io.ReadFull(rnd, id); err != nil {
		return nil, fmt.Errorf("envelope: new content: %w", err)
	}
	c := &Content{Version: ContentVersion, ID: id, SentAt: now.UnixMilli(), Kind: kind, Body: body}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// NewReceipt makes a receipt of the given kind for the messages refs.
func NewReceipt(rnd io.Reader, kind Kind, refs []MessageID, now time.Time) (*Content, error) {
	c, err := NewContent(rnd, kind, nil, now)
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		c.Refs = append(c.Refs, append([]byte(nil), r[:]...))
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// MessageID returns ID as a MessageID.
func (c *Content) MessageID() MessageID {
	var id MessageID
	copy(id[:], c.ID)
	return id
}

// RefIDs returns Refs as MessageIDs.
func (c *Content) RefIDs() []MessageID {
	out := make([]MessageID, len(c.Refs))
	for i, r := range c.Refs {
		copy(out[i][:], r)
	}
	return out
}

func (c *Content) check() error {
	switch {
	case c.Version != ContentVersion:
		return fmt.Errorf("%w: content version %d", ErrMalformed, c.Version)
	case len(c.ID) != len(MessageID{}):
		return fmt.Errorf("%w: message ID is %d bytes", ErrMalformed, len(c.ID))
	case len(c.Body)+len(c.File) > MaxBodySize:
		return fmt.Errorf("%w: body and file of %d bytes, limit %d", ErrTooLarge, len(c.Body)+len(c.File), MaxBodySize)
	case len(c.Refs) > MaxRefs:
		return fmt.Errorf("%w: %d referenced messages, limit %d", ErrTooLarge, len(c.Refs), MaxRefs)
	case c.Expire > MaxExpire:
		return fmt.Errorf("%w: timer of %d s, limit %d", ErrMalformed, c.Expire, MaxExpire)
	case len(c.Inbox) > MaxInboxSize:
		return fmt.Errorf("%w: inbox announcement of %d bytes, limit %d", ErrTooLarge, len(c.Inbox), MaxInboxSize)
	}
	for _, r := range c.Refs {
		if len(r) != len(MessageID{}) {
			return fmt.Errorf("%w: referenced message ID is %d bytes", ErrMalformed, len(r))
		}
	}
	return nil
}

// Encode checks and encodes the content.
func (c *Content) Encode() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	b, err := wire.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("envelope: encode content: %w", err)
	}
	return b, nil
}

// maxContentSize bounds an encoded Content.
const maxContentSize = MaxBodySize + MaxRefs*18 + MaxInboxSize + 256

// ParseContent decodes and checks a content. Unknown fields are skipped;
// an unknown Kind is not an error.
func ParseContent(data []byte) (*Content, error) {
	if len(data) > maxContentSize {
		return nil, fmt.Errorf("%w: content of %d bytes", ErrTooLarge, len(data))
	}
	var c Content
	if err := wire.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%w: content: %v", ErrMalformed, err)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}
