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
// nothing else): its prekey bundle, and how to find the request bucket
// where first contacts go (the client computes the bucket of an account
// and epoch from the account ID, the epoch length and the bucket count).
// Nothing in it depends on the time, so an unchanged card is
// byte-for-byte the same.
type Card struct {
	Bundle    []byte // an encoded ratchet.Bundle
	PeriodSec uint64 // the epoch length, in seconds
	Buckets   uint32 // how many request buckets accounts are spread over
}

// Bounds of a card.
const (
	MaxCardBuckets = 1 << 20
	maxCardBundle  = 16 << 10
	maxCardSize    = maxCardBundle + 512
	cardContext    = "Umbra_Card_v2"
	cardVersion    = 2
)

type cardBody struct {
	Version   uint   `cbor:"1,keyasint"`
	Account   []byte `cbor:"2,keyasint"`
	Bundle    []byte `cbor:"3,keyasint"`
	PeriodSec uint64 `cbor:"4,keyasint"`
	Buckets   uint32 `cbor:"5,keyasint"`
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
		PeriodSec: c.PeriodSec, Buckets: c.Buckets})
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
	case c.Buckets == 0 || c.Buckets > MaxCardBuckets:
		return fmt.Errorf("%w: card has %d request buckets", ErrMalformed, c.Buckets)
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
	c := &Card{Bundle: b.Bundle, PeriodSec: b.PeriodSec, Buckets: b.Buckets}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}
