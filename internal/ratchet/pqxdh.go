package ratchet

import (
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// InitialVersion is the version of the initial message encoding.
const InitialVersion = 1

// InitialMessage is PQXDH's initial message (spec §3.3) carrying the first
// ratchet message: who the initiator is, its ephemeral key, which of the
// responder's prekeys were used, the ML-KEM ciphertext, and Message, an
// encoded ratchet message (the spec's "initial ciphertext").
type InitialMessage struct {
	Version        uint                    `cbor:"1,keyasint"`
	Initiator      identity.PublicIdentity `cbor:"2,keyasint"`
	BaseKey        []byte                  `cbor:"3,keyasint"`           // EK_A, X25519
	SignedPrekeyID uint32                  `cbor:"4,keyasint"`           // SPK_B used
	OneTimeID      uint32                  `cbor:"5,keyasint,omitempty"` // OPK_B used, 0 if none
	KEMPrekeyID    uint32                  `cbor:"6,keyasint"`           // PQPK_B used
	KEMCiphertext  []byte                  `cbor:"7,keyasint"`           // CT
	Message        []byte                  `cbor:"8,keyasint"`           // first ratchet message
}

func (im *InitialMessage) clone() *InitialMessage {
	c := *im
	c.Initiator = im.Initiator.Clone()
	c.BaseKey = slices.Clone(im.BaseKey)
	c.KEMCiphertext = slices.Clone(im.KEMCiphertext)
	c.Message = slices.Clone(im.Message)
	return &c
}

// MaxInitialOverhead is the most an InitialMessage's encoding adds to the
// ratchet message it carries.
const MaxInitialOverhead = 1293

// maxInitialSize bounds an encoded initial message.
const maxInitialSize = MaxMessageSize + 4096

// Encode returns the CBOR encoding of the initial message.
func (im *InitialMessage) Encode() ([]byte, error) {
	b, err := wire.Marshal(im)
	if err != nil {
		return nil, fmt.Errorf("ratchet: encode initial message: %w", err)
	}
	return b, nil
}

// ParseInitialMessage decodes an initial message and checks its structure
// (not its authenticity: Respond does that).
func ParseInitialMessage(data []byte) (*InitialMessage, error) {
	if len(data) > maxInitialSize {
		return nil, fmt.Errorf("%w: initial message of %d bytes", ErrMalformed, len(data))
	}
	var im InitialMessage
	if err := wire.Unmarshal(data, &im); err != nil {
		return nil, fmt.Errorf("%w: initial message: %v", ErrMalformed, err)
	}
	if im.Version != InitialVersion {
		return nil, fmt.Errorf("%w: initial message version %d", ErrMalformed, im.Version)
	}
	if len(im.Initiator.SigningKey) != 32 || len(im.Initiator.AgreementKey) != keySize || len(im.Initiator.Binding) != sigSize ||
		len(im.BaseKey) != keySize || len(im.KEMCiphertext) != kemCTSize || len(im.Message) == 0 || len(im.Message) > MaxMessageSize {
		return nil, fmt.Errorf("%w: initial message field sizes", ErrMalformed)
	}
	return &im, nil
}

// SessionID returns the ID of the session this initial message starts, as
// the responder local computes it. Use it to find a session already set up
// by an earlier initial message of the same initiator.
func (im *InitialMessage) SessionID(local *identity.Account) SessionID {
	return sessionID(im.Initiator.SigningKey, local.Public().SigningKey, im.BaseKey)
}

// associatedData is PQXDH's AD = EncodeEC(IK_A) ‖ EncodeEC(IK_B), followed
// by both Ed25519 identity keys.
func associatedData(a, b identity.PublicIdentity) []byte {
	ad := encodeEC(a.AgreementKey)
	ad = append(ad, encodeEC(b.AgreementKey)...)
	ad = append(ad, a.SigningKey...)
	return append(ad, b.SigningKey...)
}

// deriveSK computes SK = KDF(DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS) and wipes the
// inputs.
func deriveSK(dhs [][]byte, ss []byte) ([]byte, error) {
	km := make([]byte, 0, 4*keySize+len(ss))
	for _, d := range dhs {
		km = append(km, d...)
		clear(d)
	}
	km = append(km, ss...)
	clear(ss)
	defer clear(km)
	return pqxdhKDF(km)
}

func mailboxSecret(sk []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, sk, nil, mailboxSecretInfo, keySize)
}

// Initiate runs PQXDH as the initiator (Alice) against remote's bundle,
// which it verifies first (signatures and that it belongs to remote), and
// returns a Session ready to Encrypt. It uses a random one-time prekey and
// a one-time ML-KEM prekey when the bundle has them, else the last-resort
// ML-KEM prekey. rnd supplies key material (crypto/rand when nil).
//
// While Pending, wrap each encrypted message with Session.InitialMessage.
func Initiate(rnd io.Reader, local *identity.Account, remote identity.AccountID, b *Bundle) (*Session, error) {
	rnd = orDefault(rnd)
	if err := b.Verify(remote); err != nil {
		return nil, fmt.Errorf("ratchet: initiate: %w", err)
	}
	pick := func(n int) (int, error) {
		var r [4]byte
		if _, err := io.ReadFull(rnd, r[:]); err != nil {
			return 0, err
		}
		return int(binary.BigEndian.Uint32(r[:]) % uint32(n)), nil
	}
	var opk *OneTimePrekey
	if len(b.OneTimePrekeys) > 0 {
		i, err := pick(len(b.OneTimePrekeys))
		if err != nil {
			return nil, fmt.Errorf("ratchet: initiate: %w", err)
		}
		opk = &b.OneTimePrekeys[i]
	}
	kemKey := b.LastResortKEM
	if len(b.OneTimeKEMs) > 0 {
		i, err := pick(len(b.OneTimeKEMs))
		if err != nil {
			return nil, fmt.Errorf("ratchet: initiate: %w", err)
		}
		kemKey = b.OneTimeKEMs[i]
	}

	ek, err := newX25519(rnd)
	if err != nil {
		return nil, fmt.Errorf("ratchet: initiate: %w", err)
	}
	ikA := local.AgreementKey()
	dh1, err1 := dh(ikA, b.SignedPrekey.Key)
	dh2, err2 := dh(ek, b.Identity.AgreementKey)
	dh3, err3 := dh(ek, b.SignedPrekey.Key)
	dhs := [][]byte{dh1, dh2, dh3}
	var err4 error
	if opk != nil {
		var dh4 []byte
		dh4, err4 = dh(ek, opk.Key)
		dhs = append(dhs, dh4)
	}
	if err := firstErr(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("%w: initiate: key agreement: %v", ErrBadBundle, err)
	}
	encKey, err := mlkem.NewEncapsulationKey768(kemKey.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: initiate: %v", ErrBadBundle, err)
	}
	ss, ct, err := encapsulate(encKey, rnd)
	if err != nil {
		return nil, fmt.Errorf("ratchet: initiate: encapsulate: %w", err)
	}
	sk, err := deriveSK(dhs, ss)
	if err != nil {
		return nil, fmt.Errorf("ratchet: initiate: %w", err)
	}
	defer clear(sk)

	localPub := local.Public()
	s := &Session{
		id:      sessionID(localPub.SigningKey, b.Identity.SigningKey, ek.PublicKey().Bytes()),
		role:    Initiator,
		local:   localPub,
		remote:  b.Identity.Clone(),
		ad:      associatedData(localPub, b.Identity),
		skipped: newSkippedStore(),
		rnd:     rnd,
	}
	if s.mbox, err = mailboxSecret(sk); err != nil {
		return nil, fmt.Errorf("ratchet: initiate: %w", err)
	}
	// RatchetInitAlice: DHr = SPK_B; RK, CKs = KDF_RK(SK, DH(DHs, DHr)).
	if s.dhs, err = newX25519(rnd); err != nil {
		return nil, fmt.Errorf("ratchet: initiate: %w", err)
	}
	s.dhr = slices.Clone(b.SignedPrekey.Key)
	out, err := dh(s.dhs, s.dhr)
	if err != nil {
		return nil, fmt.Errorf("%w: initiate: %v", ErrBadBundle, err)
	}
	s.rk, s.cks, err = kdfRK(sk, out)
	clear(out)
	if err != nil {
		return nil, fmt.Errorf("ratchet: initiate: %w", err)
	}
	s.pending = &InitialMessage{
		Version:        InitialVersion,
		Initiator:      localPub.Clone(),
		BaseKey:        ek.PublicKey().Bytes(),
		SignedPrekeyID: b.SignedPrekey.ID,
		KEMPrekeyID:    kemKey.ID,
		KEMCiphertext:  ct,
	}
	if opk != nil {
		s.pending.OneTimeID = opk.ID
	}
	return s, nil
}

// Respond runs PQXDH as the responder (Bob): it checks the initiator's
// identity, recomputes SK from the prekeys im names, and decrypts the first
// ratchet message. Only when that message authenticates are the one-time
// prekeys it used deleted from pk (persist pk afterwards). It returns the
// new session and the first plaintext.
//
// Call it only for an initial message whose SessionID names no existing
// session; otherwise decrypt im.Message with that session.
func Respond(rnd io.Reader, local *identity.Account, pk *Prekeys, im *InitialMessage) (*Session, []byte, error) {
	rnd = orDefault(rnd)
	if err := im.Initiator.Verify(); err != nil {
		return nil, nil, fmt.Errorf("ratchet: respond: %w", err)
	}
	spk, opk, dk, oneTimeKEM, err := pk.lookup(im.SignedPrekeyID, im.OneTimeID, im.KEMPrekeyID)
	if err != nil {
		return nil, nil, fmt.Errorf("ratchet: respond: %w", err)
	}
	dh1, err1 := dh(spk, im.Initiator.AgreementKey)
	dh2, err2 := dh(local.AgreementKey(), im.BaseKey)
	dh3, err3 := dh(spk, im.BaseKey)
	dhs := [][]byte{dh1, dh2, dh3}
	var err4 error
	if opk != nil {
		var dh4 []byte
		dh4, err4 = dh(opk, im.BaseKey)
		dhs = append(dhs, dh4)
	}
	if err := firstErr(err1, err2, err3, err4); err != nil {
		return nil, nil, fmt.Errorf("ratchet: respond: key agreement: %w", ErrDecrypt)
	}
	ss, err := dk.Decapsulate(im.KEMCiphertext)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: respond: %v", ErrMalformed, err)
	}
	sk, err := deriveSK(dhs, ss)
	if err != nil {
		return nil, nil, fmt.Errorf("ratchet: respond: %w", err)
	}
	defer clear(sk)

	localPub := local.Public()
	s := &Session{
		id:      im.SessionID(local),
		role:    Responder,
		local:   localPub,
		remote:  im.Initiator.Clone(),
		ad:      associatedData(im.Initiator, localPub),
		skipped: newSkippedStore(),
		rnd:     rnd,
	}
	if s.mbox, err = mailboxSecret(sk); err != nil {
		return nil, nil, fmt.Errorf("ratchet: respond: %w", err)
	}
	// RatchetInitBob: DHs = SPK_B's key pair (a private copy from
	// lookup), RK = SK.
	s.dhs = spk
	s.rk = slices.Clone(sk)

	m, err := ParseMessage(im.Message)
	if err != nil {
		return nil, nil, fmt.Errorf("ratchet: respond: %w", err)
	}
	pt, err := s.decrypt(m)
	if err != nil {
		return nil, nil, fmt.Errorf("ratchet: respond: %w", err)
	}
	pk.consume(im.OneTimeID, oneTimeKEMID(oneTimeKEM, im.KEMPrekeyID))
	return s, pt, nil
}

func oneTimeKEMID(oneTime bool, id uint32) uint32 {
	if oneTime {
		return id
	}
	return 0
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
