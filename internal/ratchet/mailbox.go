package ratchet

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// DefaultMailboxPeriod is how long a pairwise mailbox is used before both
// sides move to the next one.
const DefaultMailboxPeriod = 24 * time.Hour

// Epoch returns the mailbox epoch of t: floor(unix seconds / period).
// period <= 0 means DefaultMailboxPeriod; times before 1970 are epoch 0.
// Near an epoch boundary a receiver should also poll the previous epoch's
// mailbox, since clocks differ and messages lag.
func Epoch(t time.Time, period time.Duration) uint64 {
	if period <= 0 {
		period = DefaultMailboxPeriod
	}
	sec := t.Unix()
	p := int64(period / time.Second)
	if p <= 0 {
		p = 1
	}
	if sec < 0 {
		return 0
	}
	return uint64(sec / p)
}

// MailboxSeeds are the two pairwise mailbox seeds of one epoch. Each is an
// Ed25519 seed for mailbox.KeyFromSeed: the mailbox's ID is its public key,
// and the seed's holder may read and delete it. Both sides derive the same
// pair.
type MailboxSeeds struct {
	// InitiatorToResponder is where the initiator writes and the responder
	// reads.
	InitiatorToResponder [32]byte
	// ResponderToInitiator is where the responder writes and the initiator
	// reads.
	ResponderToInitiator [32]byte
}

const (
	mailboxInfoI2R = "Umbra_Mailbox_InitiatorToResponder"
	mailboxInfoR2I = "Umbra_Mailbox_ResponderToInitiator"
)

// deriveMailboxSeeds expands the session's mailbox secret (HKDF-SHA-256 of
// the PQXDH SK under its own info string, so it reveals nothing about the
// ratchet keys) for one epoch and direction.
func deriveMailboxSeeds(secret []byte, epoch uint64) MailboxSeeds {
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], epoch)
	var m MailboxSeeds
	for _, d := range []struct {
		info string
		out  *[32]byte
	}{{mailboxInfoI2R, &m.InitiatorToResponder}, {mailboxInfoR2I, &m.ResponderToInitiator}} {
		k, err := hkdf.Key(sha256.New, secret, nil, d.info+string(e[:]), 32)
		if err != nil {
			panic("ratchet: hkdf of 32 bytes cannot fail: " + err.Error())
		}
		copy(d.out[:], k)
	}
	return m
}

// MailboxSeeds returns the pairwise mailbox seeds of the given epoch. They
// depend only on the PQXDH shared secret and the epoch, not on the ratchet
// state, so both sides agree whatever messages are in flight.
func (s *Session) MailboxSeeds(epoch uint64) MailboxSeeds {
	return deriveMailboxSeeds(s.mbox, epoch)
}

// SendMailboxSeed is the seed of the mailbox this side writes to in epoch.
func (s *Session) SendMailboxSeed(epoch uint64) [32]byte {
	m := s.MailboxSeeds(epoch)
	if s.role == Initiator {
		return m.InitiatorToResponder
	}
	return m.ResponderToInitiator
}

// ReceiveMailboxSeed is the seed of the mailbox this side reads in epoch.
func (s *Session) ReceiveMailboxSeed(epoch uint64) [32]byte {
	m := s.MailboxSeeds(epoch)
	if s.role == Initiator {
		return m.ResponderToInitiator
	}
	return m.InitiatorToResponder
}
