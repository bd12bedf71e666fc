package envelope

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// A Card is what an account publishes for strangers, in the public
// namespace of the mailbox named by its account key (a mailbox that holds
// nothing else): its prekey bundle and the IDs of its request mailboxes,
// where first contacts go. Request mailboxes rotate every epoch; their
// keys derive from the account's secret seed, so only the account can read
// them, and nothing ties one to the account but this signed card.
type Card struct {
	Bundle     []byte   // an encoded ratchet.Bundle
	PeriodSec  uint64   // the epoch length, in seconds
	FirstEpoch uint64   // Requests[i] is the request mailbox of epoch FirstEpoch+i
	Requests   [][]byte // 32-byte mailbox IDs
}

// Bounds of a card.
const (
	MaxCardRequests = 64
	maxCardBundle   = 16 << 10
	maxCardSize     = maxCardBundle + MaxCardRequests*35 + 256
	cardContext     = "Umbra_Card_v1"
	cardVersion     = 1
)

type cardBody struct {
	Version    uint     `cbor:"1,keyasint"`
	Account    []byte   `cbor:"2,keyasint"`
	Bundle     []byte   `cbor:"3,keyasint"`
	PeriodSec  uint64   `cbor:"4,keyasint"`
	FirstEpoch uint64   `cbor:"5,keyasint"`
	Requests   [][]byte `cbor:"6,keyasint"`
}

type cardWire struct {
	Body []byte `cbor:"1,keyasint"`
	Sig  []byte `cbor:"2,keyasint"`
}

func cardSigned(body []byte) []byte { return append([]byte(cardContext), body...) }

// Encode signs the card with the account's key. The encoding is
// deterministic (Ed25519 signatures are), so an unchanged card encodes to
// the same bytes: republishing it shows a reader nothing new.
func (c *Card) Encode(acct *identity.Account) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	body, err := wire.Marshal(cardBody{Version: cardVersion, Account: acct.ID().PublicKey(), Bundle: c.Bundle,
		PeriodSec: c.PeriodSec, FirstEpoch: c.FirstEpoch, Requests: c.Requests})
	if err != nil {
		return nil, err
	}
	return wire.Marshal(cardWire{Body: body, Sig: acct.Sign(cardSigned(body))})
}

func (c *Card) check() error {
	switch {
	case len(c.Bundle) == 0 || len(c.Bundle) > maxCardBundle:
		return fmt.Errorf("%w: card bundle of %d bytes", ErrMalformed, len(c.Bundle))
	case c.PeriodSec == 0:
		return fmt.Errorf("%w: card epoch period 0", ErrMalformed)
	case len(c.Requests) == 0 || len(c.Requests) > MaxCardRequests:
		return fmt.Errorf("%w: card lists %d request mailboxes", ErrMalformed, len(c.Requests))
	}
	for _, r := range c.Requests {
		if len(r) != 32 {
			return fmt.Errorf("%w: request mailbox ID of %d bytes", ErrMalformed, len(r))
		}
	}
	return nil
}

// ErrCardSignature: a card not signed by the account it claims.
var ErrCardSignature = errors.New("envelope: card signature does not verify")

// ParseCard decodes a card and checks that account signed it.
func ParseCard(data []byte, account identity.AccountID) (*Card, error) {
	if len(data) > maxCardSize {
		return nil, fmt.Errorf("%w: card of %d bytes", ErrTooLarge, len(data))
	}
	var w cardWire
	if err := wire.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: card: %v", ErrMalformed, err)
	}
	if !ed25519.Verify(account.PublicKey(), cardSigned(w.Body), w.Sig) {
		return nil, ErrCardSignature
	}
	var b cardBody
	if err := wire.Unmarshal(w.Body, &b); err != nil {
		return nil, fmt.Errorf("%w: card body: %v", ErrMalformed, err)
	}
	if b.Version != cardVersion {
		return nil, fmt.Errorf("%w: card version %d", ErrUnknownType, b.Version)
	}
	if len(b.Account) != len(account) || !account.Equal(identity.AccountID(b.Account)) {
		return nil, ErrCardSignature
	}
	c := &Card{Bundle: b.Bundle, PeriodSec: b.PeriodSec, FirstEpoch: b.FirstEpoch, Requests: b.Requests}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// Request returns the request mailbox ID of epoch (of the card's period),
// false when the card does not cover it.
func (c *Card) Request(epoch uint64) ([32]byte, bool) {
	var id [32]byte
	if epoch < c.FirstEpoch || epoch-c.FirstEpoch >= uint64(len(c.Requests)) {
		return id, false
	}
	copy(id[:], c.Requests[epoch-c.FirstEpoch])
	return id, true
}
