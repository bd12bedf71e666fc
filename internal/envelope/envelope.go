// Package envelope turns a message's Content into the bytes stored in a
// mailbox, and back: sealed sender, padding and the envelope encoding.
//
// # Layers (inside out)
//
//  1. Content (CBOR): message ID, sender clock, kind, body, refs.
//  2. Sealed payload (CBOR): the sender's Ed25519 account key, the encoded
//     Content, and the sender's signature over
//     "Umbra_SealedContent_v1" ‖ sender key ‖ recipient key ‖ content,
//     which binds sender, recipient and message.
//  3. Padding: the sealed payload padded (0x80, zeros) to a bucket size
//     (PaddedSizes).
//  4. Ratchet encryption of the padded payload with the session.
//  5. Envelope (CBOR): version, type and body, plus a pad field that makes
//     its length exactly one of WireSizes. For TypeRatchet the body is the
//     ratchet message. For TypeInitial (the initiator's messages until the
//     first reply) the body is HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256),
//     HKDF-SHA256, AES-256-GCM, base mode) of the PQXDH initial message to
//     the recipient's X25519 identity key, with a fresh ephemeral key.
//
// So the envelope shows a swarm node neither the sender nor the recipient
// (the mailbox is pairwise or the recipient's request mailbox), and only
// a size out of WireSizes. The recipient learns the sender only after
// decryption.
//
// Opening: call Parse, then OpenRatchet with the session the mailbox
// belongs to, or OpenInitial for TypeInitial.
package envelope

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"errors"
	"fmt"
	"io"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/ratchet"
	"github.com/umbra-im/umbra/internal/wire"
)

// Version is the version of the envelope encoding.
const Version = 1

// Type says how an envelope's body is encrypted.
type Type uint8

const (
	// TypeInitial: HPKE-sealed PQXDH initial message (first contact).
	TypeInitial Type = 1
	// TypeRatchet: a ratchet message of an established session.
	TypeRatchet Type = 2
)

func (t Type) String() string {
	switch t {
	case TypeInitial:
		return "initial"
	case TypeRatchet:
		return "ratchet"
	case TypeInbox:
		return "inbox"
	case TypeGroup:
		return "group"
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

// Errors.
var (
	ErrMalformed = errors.New("envelope: malformed")
	ErrTooLarge  = errors.New("envelope: too large")
	// ErrUnknownType: an envelope type this client does not know; skip it.
	ErrUnknownType = errors.New("envelope: unknown envelope type")
	// ErrSender: the sealed sender does not match the session's peer or its
	// signature fails.
	ErrSender = errors.New("envelope: sender authentication failed")
	// ErrDecrypt: the HPKE layer of an initial envelope fails to open.
	ErrDecrypt = errors.New("envelope: cannot decrypt")
	// ErrWork: an initial envelope without enough proof-of-work.
	ErrWork = errors.New("envelope: first-contact proof-of-work missing or too small")
	// ErrUnknownSession: an inbox envelope names a session this client
	// does not hold.
	ErrUnknownSession = errors.New("envelope: no session for this inbox envelope")
)

type envelopeWire struct {
	Version uint   `cbor:"1,keyasint"`
	Type    Type   `cbor:"2,keyasint"`
	Body    []byte `cbor:"3,keyasint"`
	Pad     []byte `cbor:"4,keyasint,omitempty"` // zeros; ignored
	Fill    []byte `cbor:"5,keyasint,omitempty"` // see fillTo; ignored
	Work    []byte `cbor:"6,keyasint,omitempty"` // TypeInitial: proof-of-work nonce, be64 (work.go)
}

// Envelope is a parsed envelope.
type Envelope struct {
	Type Type
	Body []byte
	Work []byte // TypeInitial: the proof-of-work nonce
}

// Parse decodes an envelope. An unknown Type returns ErrUnknownType (skip
// the envelope; a newer client sent it).
func Parse(data []byte) (*Envelope, error) {
	if len(data) > wire.MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data))
	}
	var w envelopeWire
	if err := wire.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.Version != Version {
		return nil, fmt.Errorf("%w: envelope version %d", ErrUnknownType, w.Version)
	}
	if w.Type != TypeInitial && w.Type != TypeRatchet && w.Type != TypeInbox && w.Type != TypeGroup {
		return nil, fmt.Errorf("%w: %d", ErrUnknownType, w.Type)
	}
	if len(w.Body) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	return &Envelope{Type: w.Type, Body: w.Body, Work: w.Work}, nil
}

// HPKE suite and info string of initial envelopes.
var (
	hpkeKDF  = hpke.HKDFSHA256()
	hpkeAEAD = hpke.AES256GCM()
)

const hpkeInfo = "Umbra_SealedSender_v1"

// Seal encrypts c from local to the peer of session s and returns the
// envelope, whose length is one of WireSizes. While s.Pending() (the
// initiator before any reply) the envelope is TypeInitial. It advances s:
// persist s afterwards. Calls for one session must not run concurrently
// with each other or with that session's Decrypt.
func Seal(local *identity.Account, s *ratchet.Session, c *Content) ([]byte, error) {
	cb, err := c.Encode()
	if err != nil {
		return nil, err
	}
	inner, err := sealPayload(local, s.RemoteIdentity().SigningKey, cb)
	if err != nil {
		return nil, err
	}
	return sealInner(s, inner)
}

// sealInner pads, ratchet-encrypts and wraps an encoded sealed payload.
func sealInner(s *ratchet.Session, inner []byte) ([]byte, error) {
	typ := TypeRatchet
	if s.Pending() {
		typ = TypeInitial
	}
	padded, err := Pad(inner, PaddedSizes(typ))
	if err != nil {
		return nil, err
	}
	wireSize := len(padded) + ratchetReserve
	msg, err := s.Encrypt(padded)
	if err != nil {
		return nil, fmt.Errorf("envelope: seal: %w", err)
	}
	w := &envelopeWire{Version: Version, Type: typ, Body: msg}
	if typ == TypeInitial {
		wireSize = len(padded) + initialReserve
		if w.Body, err = sealInitial(s, msg); err != nil {
			return nil, err
		}
		// First contact lands in the recipient's public request mailbox:
		// the work makes each one cost the sender (work.go).
		w.Work = solveWork(s.RemoteIdentity().SigningKey, w.Body, RequestWorkBits)
	}
	return fillTo(w, wireSize)
}

// sealInitial wraps a ratchet message in the PQXDH initial message and
// HPKE-seals it to the peer's X25519 identity key.
func sealInitial(s *ratchet.Session, msg []byte) ([]byte, error) {
	im, err := s.InitialMessage(msg)
	if err != nil {
		return nil, fmt.Errorf("envelope: seal: %w", err)
	}
	imb, err := im.Encode()
	if err != nil {
		return nil, fmt.Errorf("envelope: seal: %w", err)
	}
	remote := s.RemoteIdentity()
	pub, err := remote.AgreementPublicKey()
	if err != nil {
		return nil, fmt.Errorf("envelope: seal: %w", err)
	}
	hpub, err := hpke.NewDHKEMPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("envelope: seal: %w", err)
	}
	body, err := hpke.Seal(hpub, hpkeKDF, hpkeAEAD, []byte(hpkeInfo), imb)
	if err != nil {
		return nil, fmt.Errorf("envelope: seal: hpke: %w", err)
	}
	return body, nil
}

// Opened is a decrypted, authenticated message.
type Opened struct {
	Type    Type
	Content *Content
	// Sender is the sender's public identity (authenticated by PQXDH and
	// the sealed signature).
	Sender identity.PublicIdentity
	// Session is the session the message was decrypted with. When
	// NewSession is true, OpenInitial created it (and consumed one-time
	// prekeys): persist the session and the prekeys together.
	Session    *ratchet.Session
	NewSession bool
}

// OpenRatchet opens a TypeRatchet envelope with session s (the session the
// mailbox it came from belongs to). It advances s: persist s afterwards.
// Errors from the ratchet (ratchet.ErrDuplicate for a replay,
// ratchet.ErrDecrypt for tampering) are wrapped.
func OpenRatchet(local *identity.Account, s *ratchet.Session, env *Envelope) (*Opened, error) {
	if env.Type != TypeRatchet {
		return nil, fmt.Errorf("envelope: open: %s envelope given to OpenRatchet", env.Type)
	}
	pt, err := s.Decrypt(env.Body)
	if err != nil {
		return nil, fmt.Errorf("envelope: open: %w", err)
	}
	return finishOpen(local, s, TypeRatchet, pt, false)
}

// OpenInitial opens a TypeInitial envelope: it decrypts the HPKE layer with
// local's X25519 identity key, then either decrypts the message with the
// existing session lookup returns for its ratchet.SessionID (the initiator
// sent several before our reply; lookup may be nil), or sets up the
// session with ratchet.Respond, consuming one-time prekeys from pk. rnd
// is for new ratchet keys (crypto/rand when nil).
func OpenInitial(rnd io.Reader, local *identity.Account, pk *ratchet.Prekeys,
	lookup func(ratchet.SessionID) *ratchet.Session, env *Envelope) (*Opened, error) {
	if env.Type != TypeInitial {
		return nil, fmt.Errorf("envelope: open: %s envelope given to OpenInitial", env.Type)
	}
	// The cheap check first: spam without work costs us no decryption.
	if !checkWork(local.Public().SigningKey, env.Body, env.Work, RequestWorkBits) {
		return nil, ErrWork
	}
	priv, err := hpke.NewDHKEMPrivateKey(local.AgreementKey())
	if err != nil {
		return nil, fmt.Errorf("envelope: open: %w", err)
	}
	imb, err := hpke.Open(priv, hpkeKDF, hpkeAEAD, []byte(hpkeInfo), env.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: initial envelope: %v", ErrDecrypt, err)
	}
	im, err := ratchet.ParseInitialMessage(imb)
	if err != nil {
		return nil, fmt.Errorf("envelope: open: %w", err)
	}
	var s *ratchet.Session
	if lookup != nil {
		s = lookup(im.SessionID(local))
	}
	if s != nil {
		pt, err := s.Decrypt(im.Message)
		if err != nil {
			return nil, fmt.Errorf("envelope: open: %w", err)
		}
		return finishOpen(local, s, TypeInitial, pt, false)
	}
	s, pt, err := ratchet.Respond(rnd, local, pk, im)
	if err != nil {
		return nil, fmt.Errorf("envelope: open: %w", err)
	}
	return finishOpen(local, s, TypeInitial, pt, true)
}

func finishOpen(local *identity.Account, s *ratchet.Session, typ Type, padded []byte, isNew bool) (*Opened, error) {
	inner, err := Unpad(padded, PaddedSizes(typ))
	if err != nil {
		return nil, fmt.Errorf("envelope: open: %w", err)
	}
	remote := s.RemoteIdentity()
	c, err := openPayload(inner, remote.SigningKey, local.Public().SigningKey)
	if err != nil {
		return nil, err
	}
	return &Opened{Type: typ, Content: c, Sender: remote, Session: s, NewSession: isNew}, nil
}

// sealedWire is the sealed payload inside the ratchet encryption.
type sealedWire struct {
	Version   uint   `cbor:"1,keyasint"`
	Sender    []byte `cbor:"2,keyasint"` // Ed25519 account key
	Content   []byte `cbor:"3,keyasint"` // encoded Content
	Signature []byte `cbor:"4,keyasint"`
}

const sealedContext = "Umbra_SealedContent_v1"

func sealedMessage(sender, recipient, content []byte) []byte {
	m := make([]byte, 0, len(sealedContext)+64+len(content))
	m = append(m, sealedContext...)
	m = append(m, sender...)
	m = append(m, recipient...)
	return append(m, content...)
}

func sealPayload(local *identity.Account, recipient, content []byte) ([]byte, error) {
	sender := local.Public().SigningKey
	b, err := wire.Marshal(sealedWire{
		Version: Version, Sender: sender, Content: content,
		Signature: local.Sign(sealedMessage(sender, recipient, content)),
	})
	if err != nil {
		return nil, fmt.Errorf("envelope: seal: %w", err)
	}
	return b, nil
}

// openPayload checks the sealed payload: it must come from the session's
// peer (wantSender), be signed by it, and be addressed to us.
func openPayload(data, wantSender, recipient []byte) (*Content, error) {
	var w sealedWire
	if err := wire.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: sealed payload: %v", ErrMalformed, err)
	}
	if w.Version != Version || len(w.Sender) != ed25519.PublicKeySize || len(w.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: sealed payload fields", ErrMalformed)
	}
	if !bytes.Equal(w.Sender, wantSender) {
		return nil, fmt.Errorf("%w: sealed sender is not the session's peer", ErrSender)
	}
	if !ed25519.Verify(ed25519.PublicKey(w.Sender), sealedMessage(w.Sender, recipient, w.Content), w.Signature) {
		return nil, fmt.Errorf("%w: bad signature", ErrSender)
	}
	return ParseContent(w.Content)
}
