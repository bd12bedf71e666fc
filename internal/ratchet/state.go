package ratchet

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"slices"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// StateVersion is the version of the serialized session state.
const StateVersion = 1

// MaxStateSize bounds a serialized session (a full skipped-key store is
// about 150 KiB).
const MaxStateSize = 512 << 10

type skippedWire struct {
	DH  []byte `cbor:"1,keyasint"`
	N   uint32 `cbor:"2,keyasint"`
	Key []byte `cbor:"3,keyasint"`
}

type stateWire struct {
	Version   uint                    `cbor:"1,keyasint"`
	ID        []byte                  `cbor:"2,keyasint"`
	Role      Role                    `cbor:"3,keyasint"`
	Local     identity.PublicIdentity `cbor:"4,keyasint"`
	Remote    identity.PublicIdentity `cbor:"5,keyasint"`
	AD        []byte                  `cbor:"6,keyasint"`
	Mailbox   []byte                  `cbor:"7,keyasint"`
	DHs       []byte                  `cbor:"8,keyasint"`
	DHr       []byte                  `cbor:"9,keyasint,omitempty"`
	RK        []byte                  `cbor:"10,keyasint"`
	CKs       []byte                  `cbor:"11,keyasint,omitempty"`
	CKr       []byte                  `cbor:"12,keyasint,omitempty"`
	Ns        uint32                  `cbor:"13,keyasint,omitempty"`
	Nr        uint32                  `cbor:"14,keyasint,omitempty"`
	PN        uint32                  `cbor:"15,keyasint,omitempty"`
	Skipped   []skippedWire           `cbor:"16,keyasint,omitempty"` // oldest first
	OldRemote [][]byte                `cbor:"17,keyasint,omitempty"`
	Pending   *InitialMessage         `cbor:"18,keyasint,omitempty"`
}

// Marshal serializes the session (CBOR). The output holds secret keys:
// store it encrypted (see the keystore package), and replace the previous
// copy, which must not be used again.
func (s *Session) Marshal() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := stateWire{
		Version: StateVersion, ID: s.id[:], Role: s.role,
		Local: s.local, Remote: s.remote, AD: s.ad, Mailbox: s.mbox,
		DHs: s.dhs.Bytes(), DHr: s.dhr, RK: s.rk, CKs: s.cks, CKr: s.ckr,
		Ns: s.ns, Nr: s.nr, PN: s.pn, OldRemote: s.oldRemote, Pending: s.pending,
	}
	for _, e := range s.skipped.entries() {
		w.Skipped = append(w.Skipped, skippedWire{DH: slices.Clone(e.key.dh[:]), N: e.key.n, Key: e.mk})
	}
	b, err := wire.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("ratchet: marshal session: %w", err)
	}
	return b, nil
}

// UnmarshalSession restores a session saved by Marshal. The restored
// session draws new ratchet keys from crypto/rand.
func UnmarshalSession(data []byte) (*Session, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadState}, a...)...)
	}
	if len(data) > MaxStateSize {
		return nil, bad("%d bytes, limit %d", len(data), MaxStateSize)
	}
	var w stateWire
	if err := wire.Unmarshal(data, &w); err != nil {
		return nil, bad("%v", err)
	}
	if w.Version != StateVersion {
		return nil, bad("version %d (this client understands %d)", w.Version, StateVersion)
	}
	if w.Role != Initiator && w.Role != Responder {
		return nil, bad("role %d", w.Role)
	}
	idOK := func(p identity.PublicIdentity) bool {
		return len(p.SigningKey) == 32 && len(p.AgreementKey) == keySize && len(p.Binding) == sigSize
	}
	optKey := func(b []byte) bool { return b == nil || len(b) == keySize }
	switch {
	case len(w.ID) != len(SessionID{}):
		return nil, bad("session ID")
	case !idOK(w.Local) || !idOK(w.Remote):
		return nil, bad("identities")
	case len(w.AD) != 2*(1+keySize)+2*32:
		return nil, bad("associated data")
	case len(w.Mailbox) != keySize || len(w.DHs) != keySize || len(w.RK) != keySize:
		return nil, bad("key sizes")
	case !optKey(w.DHr) || !optKey(w.CKs) || !optKey(w.CKr):
		return nil, bad("optional key sizes")
	case len(w.Skipped) > MaxSkippedKeys:
		return nil, bad("%d skipped keys, limit %d", len(w.Skipped), MaxSkippedKeys)
	case len(w.OldRemote) > maxOldRemote:
		return nil, bad("%d old ratchet keys", len(w.OldRemote))
	case w.Pending != nil && w.Role != Initiator:
		return nil, bad("responder with a pending initial message")
	}
	if w.Pending != nil {
		p := w.Pending
		if !idOK(p.Initiator) || len(p.BaseKey) != keySize || len(p.KEMCiphertext) != kemCTSize {
			return nil, bad("pending initial message")
		}
	}
	s := &Session{
		role: w.Role, local: w.Local, remote: w.Remote, ad: w.AD, mbox: w.Mailbox,
		dhr: w.DHr, rk: w.RK, cks: w.CKs, ckr: w.CKr, ns: w.Ns, nr: w.Nr, pn: w.PN,
		skipped: newSkippedStore(), pending: w.Pending, rnd: rand.Reader,
	}
	copy(s.id[:], w.ID)
	var err error
	if s.dhs, err = ecdh.X25519().NewPrivateKey(w.DHs); err != nil {
		return nil, bad("ratchet key: %v", err)
	}
	for _, o := range w.OldRemote {
		if len(o) != keySize {
			return nil, bad("old ratchet key size")
		}
	}
	s.oldRemote = w.OldRemote
	entries := make([]skippedEntry, 0, len(w.Skipped))
	for _, e := range w.Skipped {
		if len(e.DH) != keySize || len(e.Key) != keySize {
			return nil, bad("skipped key sizes")
		}
		entries = append(entries, skippedEntry{key: mkSkipKey(e.DH, e.N), mk: e.Key})
	}
	s.skipped.add(entries)
	return s, nil
}
