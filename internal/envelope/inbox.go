package envelope

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"fmt"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/ratchet"
	"github.com/umbra-im/umbra/internal/wire"
)

// TypeInbox: a ratchet message of an established session, HPKE-sealed
// (same suite as TypeInitial, info hpkeInboxInfo) together with its
// session ID to an X25519 key of the recipient: the key of the recipient's
// current inbox generation, or, when the sender knows no inbox of the
// recipient, the recipient's identity agreement key (the envelope then
// goes to the recipient's request mailbox). A swarm node sees neither the
// session, nor the ratchet header, nor which key it was sealed to, so
// envelopes of different conversations in one inbox, and of one
// conversation in different inboxes, look alike.
const TypeInbox Type = 3

const (
	hpkeInboxInfo = "Umbra_Inbox_v1"
	// inboxReserve: the ratchet reserve, plus the HPKE encapsulated key
	// (32) and tag (16), the session ID (16) and the CBOR of the sealed
	// pair.
	inboxReserve = ratchetReserve + 80
)

// inboxWire is what TypeInbox seals.
type inboxWire struct {
	Session []byte `cbor:"1,keyasint"` // ratchet.SessionID
	Message []byte `cbor:"2,keyasint"` // ratchet message
}

// SealInbox encrypts c from local to the peer of the established session s
// and HPKE-seals the result, with s's ID, to the X25519 public key to. The
// envelope's length is one of WireSizes. It advances s: persist s
// afterwards. s must not be pending (use Seal for first contact).
func SealInbox(local *identity.Account, s *ratchet.Session, c *Content, to []byte) ([]byte, error) {
	if s.Pending() {
		return nil, fmt.Errorf("envelope: seal inbox: the session is still pending: first contact uses Seal")
	}
	pub, err := ecdh.X25519().NewPublicKey(to)
	if err != nil {
		return nil, fmt.Errorf("envelope: seal inbox: %w", err)
	}
	hpub, err := hpke.NewDHKEMPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("envelope: seal inbox: %w", err)
	}
	cb, err := c.Encode()
	if err != nil {
		return nil, err
	}
	inner, err := sealPayload(local, s.RemoteIdentity().SigningKey, cb)
	if err != nil {
		return nil, err
	}
	padded, err := Pad(inner, PaddedSizes(TypeInbox))
	if err != nil {
		return nil, err
	}
	msg, err := s.Encrypt(padded)
	if err != nil {
		return nil, fmt.Errorf("envelope: seal: %w", err)
	}
	id := s.ID()
	pair, err := wire.Marshal(inboxWire{Session: id[:], Message: msg})
	if err != nil {
		return nil, err
	}
	body, err := hpke.Seal(hpub, hpkeKDF, hpkeAEAD, []byte(hpkeInboxInfo), pair)
	if err != nil {
		return nil, fmt.Errorf("envelope: seal inbox: hpke: %w", err)
	}
	return fillTo(&envelopeWire{Version: Version, Type: TypeInbox, Body: body}, len(padded)+inboxReserve)
}

// OpenInbox opens a TypeInbox envelope with the X25519 private key it was
// sealed to, then decrypts the message with the session lookup returns
// for the session ID inside (nil: unknown session, an error). It advances
// that session: persist it afterwards.
func OpenInbox(local *identity.Account, priv *ecdh.PrivateKey, lookup func(ratchet.SessionID) *ratchet.Session, env *Envelope) (*Opened, error) {
	if env.Type != TypeInbox {
		return nil, fmt.Errorf("envelope: open: %s envelope given to OpenInbox", env.Type)
	}
	hpriv, err := hpke.NewDHKEMPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("envelope: open: %w", err)
	}
	pair, err := hpke.Open(hpriv, hpkeKDF, hpkeAEAD, []byte(hpkeInboxInfo), env.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: inbox envelope: %v", ErrDecrypt, err)
	}
	var w inboxWire
	if err := wire.Unmarshal(pair, &w); err != nil {
		return nil, fmt.Errorf("%w: inbox envelope: %v", ErrMalformed, err)
	}
	var id ratchet.SessionID
	if len(w.Session) != len(id) || len(w.Message) == 0 {
		return nil, fmt.Errorf("%w: inbox envelope fields", ErrMalformed)
	}
	copy(id[:], w.Session)
	s := lookup(id)
	if s == nil {
		return nil, ErrUnknownSession
	}
	pt, err := s.Decrypt(w.Message)
	if err != nil {
		return nil, fmt.Errorf("envelope: open: %w", err)
	}
	return finishOpen(local, s, TypeInbox, pt, false)
}

// inboxBodyOver is how much longer a TypeInbox body is than its padded
// plaintext (HPKE, the sealed pair and the ratchet message with small
// counters); TestCoverLooksReal checks it against real envelopes.
const inboxBodyOver = 137

// CoverInbox is a cover envelope for the strict mode: a TypeInbox
// envelope of wireSize bytes (one of WireSizes) whose body is random
// bytes as long as a real one's, so a node that parses it sees what a
// real inbox envelope shows. Nobody can open it; its recipient drops it.
func CoverInbox(wireSize int) ([]byte, error) {
	n := wireSize - inboxReserve
	if n <= 0 {
		return nil, fmt.Errorf("envelope: cover: %d is too small for an inbox envelope", wireSize)
	}
	body := make([]byte, n+inboxBodyOver)
	rand.Read(body)
	return fillTo(&envelopeWire{Version: Version, Type: TypeInbox, Body: body}, wireSize)
}
