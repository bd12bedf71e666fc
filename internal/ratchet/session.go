package ratchet

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/umbra-im/umbra/internal/identity"
)

// Role says which side of PQXDH a session was on.
type Role uint8

const (
	// Initiator is the side that fetched a bundle and called Initiate.
	Initiator Role = 1
	// Responder is the side that called Respond.
	Responder Role = 2
)

func (r Role) String() string {
	switch r {
	case Initiator:
		return "initiator"
	case Responder:
		return "responder"
	}
	return fmt.Sprintf("Role(%d)", r)
}

// SessionID names a session on both sides: the first 16 bytes of
// SHA-256("Umbra_SessionID_v1" ‖ IKsig_A ‖ IKsig_B ‖ EK_A). It is not
// secret, but keep it off the wire: it would link a conversation's messages.
type SessionID [16]byte

func sessionID(initiator, responder, baseKey []byte) SessionID {
	h := sha256.New()
	h.Write([]byte("Umbra_SessionID_v1"))
	h.Write(initiator)
	h.Write(responder)
	h.Write(baseKey)
	var id SessionID
	copy(id[:], h.Sum(nil))
	return id
}

// maxOldRemote is how many previous remote ratchet keys a session
// remembers, to recognise replays from finished chains.
const maxOldRemote = 16

// Session is one side of a Double Ratchet conversation with one peer. It is
// safe for concurrent use. Persist it with Marshal after every Encrypt and
// Decrypt (both change it); a session restored from an older copy would
// reuse message keys it already used.
type Session struct {
	mu sync.Mutex

	id     SessionID
	role   Role
	local  identity.PublicIdentity
	remote identity.PublicIdentity
	ad     []byte
	mbox   []byte // pairwise mailbox secret (see MailboxSeeds)

	dhs      *ecdh.PrivateKey // DHs: our current ratchet key pair
	dhr      []byte           // DHr: their current ratchet public key, nil before any
	rk       []byte           // RK
	cks, ckr []byte           // CKs, CKr; nil when absent
	ns, nr   uint32
	pn       uint32
	skipped  skippedStore

	// oldRemote are previous DHr values, newest last.
	oldRemote [][]byte
	// pending is the PQXDH material the initiator still sends with every
	// message until it receives the first reply.
	pending *InitialMessage

	rnd io.Reader // for new ratchet keys; not serialized
}

// ID returns the session ID (the same on both sides).
func (s *Session) ID() SessionID { return s.id }

// Role returns which side of PQXDH this session was on.
func (s *Session) Role() Role { return s.role }

// LocalIdentity returns our public identity.
func (s *Session) LocalIdentity() identity.PublicIdentity { return s.local.Clone() }

// RemoteIdentity returns the peer's public identity, authenticated by
// PQXDH.
func (s *Session) RemoteIdentity() identity.PublicIdentity { return s.remote.Clone() }

// AssociatedData returns PQXDH's AD for this session.
func (s *Session) AssociatedData() []byte { return slices.Clone(s.ad) }

// Pending reports whether this is the initiator's session and no reply has
// been decrypted yet: each message must then travel inside an
// InitialMessage (see InitialMessage) so the responder can set up the
// session from whichever arrives first.
func (s *Session) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending != nil
}

// InitialMessage wraps msg, a message returned by Encrypt while Pending,
// in the PQXDH initial message.
func (s *Session) InitialMessage(msg []byte) (*InitialMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		return nil, fmt.Errorf("ratchet: initial message: session is not pending")
	}
	im := s.pending.clone()
	im.Message = slices.Clone(msg)
	return im, nil
}

// Encrypt encrypts plaintext as the next message of the sending chain
// (spec RatchetEncrypt) and returns the encoded message.
func (s *Session) Encrypt(plaintext []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cks == nil {
		return nil, fmt.Errorf("ratchet: encrypt: no sending chain yet")
	}
	if s.ns == math.MaxUint32 {
		return nil, fmt.Errorf("ratchet: encrypt: sending chain exhausted")
	}
	hb, err := encodeHeader(Header{DH: s.dhs.PublicKey().Bytes(), PN: s.pn, N: s.ns})
	if err != nil {
		return nil, fmt.Errorf("ratchet: encrypt: %w", err)
	}
	if len(plaintext) > MaxMessageSize {
		return nil, fmt.Errorf("ratchet: encrypt: plaintext of %d bytes is too large", len(plaintext))
	}
	nextCK, mk := kdfCK(s.cks)
	defer clear(mk)
	ct, err := sealMessage(mk, s.ad, hb, plaintext)
	if err != nil {
		return nil, fmt.Errorf("ratchet: encrypt: %w", err)
	}
	out, err := encodeMessage(hb, ct)
	if err != nil {
		return nil, fmt.Errorf("ratchet: encrypt: %w", err)
	}
	if len(out) > MaxMessageSize {
		return nil, fmt.Errorf("ratchet: encrypt: plaintext of %d bytes is too large for a %d-byte message", len(plaintext), MaxMessageSize)
	}
	clear(s.cks)
	s.cks = nextCK
	s.ns++
	return out, nil
}

// Decrypt authenticates and decrypts an encoded message (spec
// RatchetDecrypt). On any error the session is left exactly as it was. A
// message whose key was already used returns ErrDuplicate; a tampered or
// foreign one ErrDecrypt.
func (s *Session) Decrypt(data []byte) ([]byte, error) {
	m, err := ParseMessage(data)
	if err != nil {
		return nil, fmt.Errorf("ratchet: decrypt: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pt, err := s.decrypt(m)
	if err != nil {
		return nil, fmt.Errorf("ratchet: decrypt: %w", err)
	}
	s.pending = nil
	return pt, nil
}

func (s *Session) decrypt(m *Message) ([]byte, error) {
	h := m.Header
	// A skipped message's key (TrySkippedMessageKeys).
	if mk, ok := s.skipped.get(h.DH, h.N); ok {
		pt, err := openMessage(mk, s.ad, m.HeaderBytes, m.Ciphertext)
		if err != nil {
			return nil, err // keep the key: the genuine message may follow
		}
		s.skipped.remove(h.DH, h.N)
		return pt, nil
	}

	// Work on copies; commit only once the message authenticates.
	var (
		staged   []skippedEntry
		rk, ckr  = s.rk, s.ckr
		cks      = s.cks
		dhs      = s.dhs
		dhr      = s.dhr
		ns, nr   = s.ns, s.nr
		pn       = s.pn
		ratchets = false
	)
	skip := func(until uint32) error {
		if ckr == nil || until <= nr {
			return nil
		}
		if until-nr > MaxSkip {
			return ErrTooManySkipped
		}
		for nr < until {
			var mk []byte
			ckr, mk = kdfCK(ckr)
			staged = append(staged, skippedEntry{key: mkSkipKey(dhr, nr), mk: mk})
			nr++
		}
		return nil
	}
	wipeStaged := func() {
		for _, e := range staged {
			clear(e.mk)
		}
	}

	if !bytes.Equal(h.DH, dhr) {
		for _, old := range s.oldRemote {
			if bytes.Equal(old, h.DH) {
				return nil, ErrDuplicate
			}
		}
		// DHRatchet: finish the current receiving chain, then step.
		if err := skip(h.PN); err != nil {
			return nil, err
		}
		pn, ns, nr = ns, 0, 0
		dhr = h.DH
		out, err := dh(dhs, dhr)
		if err != nil {
			wipeStaged()
			return nil, ErrDecrypt
		}
		rk, ckr, err = kdfRK(rk, out)
		clear(out)
		if err != nil {
			wipeStaged()
			return nil, err
		}
		if dhs, err = newX25519(s.rnd); err != nil {
			wipeStaged()
			return nil, err
		}
		out, err = dh(dhs, dhr)
		if err != nil {
			wipeStaged()
			return nil, ErrDecrypt
		}
		rk, cks, err = kdfRK(rk, out)
		clear(out)
		if err != nil {
			wipeStaged()
			return nil, err
		}
		ratchets = true
	}
	if h.N < nr {
		return nil, ErrDuplicate
	}
	if ckr == nil {
		return nil, ErrDecrypt // no receiving chain for this key
	}
	if err := skip(h.N); err != nil {
		wipeStaged()
		return nil, err
	}
	ckr, mk := kdfCK(ckr)
	defer clear(mk)
	nr++
	pt, err := openMessage(mk, s.ad, m.HeaderBytes, m.Ciphertext)
	if err != nil {
		wipeStaged()
		return nil, err
	}

	// Commit.
	if ratchets {
		if s.dhr != nil {
			s.oldRemote = append(s.oldRemote, s.dhr)
			if len(s.oldRemote) > maxOldRemote {
				s.oldRemote = slices.Clone(s.oldRemote[len(s.oldRemote)-maxOldRemote:])
			}
		}
		clear(s.rk)
		if s.cks != nil {
			clear(s.cks)
		}
	}
	if s.ckr != nil {
		clear(s.ckr)
	}
	s.rk, s.ckr, s.cks = rk, ckr, cks
	s.dhs, s.dhr = dhs, slices.Clone(dhr)
	s.ns, s.nr, s.pn = ns, nr, pn
	s.skipped.add(staged)
	return pt, nil
}

// SkippedKeys returns how many skipped-message keys the session holds.
func (s *Session) SkippedKeys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.skipped.len()
}
