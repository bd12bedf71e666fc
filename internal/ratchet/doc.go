// Package ratchet implements Umbra's end-to-end encryption: PQXDH session
// setup followed by the Double Ratchet, built from Signal's published
// specifications on the Go standard library.
//
//   - PQXDH (https://signal.org/docs/specifications/pqxdh/, revision 3) with
//     X25519, SHA-256 and ML-KEM-768 (crypto/mlkem).
//   - The Double Ratchet (https://signal.org/docs/specifications/doubleratchet/)
//     with KDF_RK = HKDF-SHA-256, KDF_CK = HMAC-SHA-256 over 0x01/0x02, and
//     AES-256-GCM message encryption keyed by HKDF from the message key.
//
// # Flow
//
// The responder (Bob) publishes a prekey bundle:
//
//	pk, _ := ratchet.GeneratePrekeys(nil, bob, 50, 5)
//	bundle, _ := pk.Bundle(bob)
//	data, _ := bundle.Encode() // publish to Bob's swarm; persist pk.Marshal()
//
// The initiator (Alice) fetches it, starts a session and sends:
//
//	b, _ := ratchet.ParseBundle(data)
//	s, _ := ratchet.Initiate(nil, alice, bobID, b) // verifies the bundle
//	msg, _ := s.Encrypt(plaintext)
//	if s.Pending() { // no reply from Bob yet: ship the PQXDH material too
//		im, _ := s.InitialMessage(msg)
//		msg, _ = im.Encode()
//	}
//
// Bob receives an initial message; unless he already has the session it
// names (Alice sent several before his reply), he responds, which consumes
// the one-time prekeys it used:
//
//	im, _ := ratchet.ParseInitialMessage(data)
//	if s := sessions[im.SessionID(bob)]; s != nil {
//		plaintext, err = s.Decrypt(im.Message)
//	} else {
//		s, plaintext, err = ratchet.Respond(nil, bob, pk, im)
//		// persist s.Marshal() and pk.Marshal() together
//	}
//
// Afterwards both sides call Encrypt and Decrypt. A Session is safe for
// concurrent use; persist it with Marshal after every Encrypt/Decrypt and
// restore it with UnmarshalSession.
//
// # Deviations from the specifications
//
//   - Identity keys: the specs use one XEdDSA key for signing and agreement.
//     Umbra accounts have an Ed25519 key and a separate X25519 key, bound by
//     an Ed25519 signature (identity.PublicIdentity). Prekey signatures are
//     Ed25519 over domain-separated messages that also cover the prekey ID.
//   - The associated data AD = EncodeEC(IK_A) ‖ EncodeEC(IK_B) ‖ IKsig_A ‖
//     IKsig_B, i.e. the spec's AD followed by both Ed25519 identity keys.
//   - ML-KEM-768 replaces Kyber-1024 as the design requires.
//   - Header encryption (spec §4) is not used: the header (ratchet public
//     key, PN, N) travels in clear inside the message. Every message is
//     carried inside a padded envelope addressed to a pairwise mailbox, so a
//     swarm node sees the header of traffic it can already link by mailbox.
//   - Message encryption uses AES-256-GCM with key and nonce from HKDF(mk)
//     instead of the spec's AES-CBC + HMAC; the spec allows an AEAD since
//     each message key is used once.
//   - One-time prekeys are all listed in the published bundle (there is no
//     server to hand out one per request); the initiator picks one at random.
//     Two initiators picking the same one make the later initial message
//     fail to decrypt; the responder republishes its bundle after consuming.
//   - Replays of an initial message that used no one-time prekey recreate
//     the same session (spec §4.6); callers detect them with SessionID.
package ratchet

import "errors"

// Errors. All are returned wrapped with the failing operation.
var (
	// ErrBadBundle: a prekey bundle is malformed or its signatures fail.
	ErrBadBundle = errors.New("ratchet: invalid prekey bundle")
	// ErrMalformed: a message, header or initial message does not parse.
	ErrMalformed = errors.New("ratchet: malformed message")
	// ErrDecrypt: a message failed authentication (tampered, forged, or not
	// for this session). The session is unchanged.
	ErrDecrypt = errors.New("ratchet: message authentication failed")
	// ErrDuplicate: the message was already decrypted (a replay) or its key
	// was discarded (too old). The session is unchanged.
	ErrDuplicate = errors.New("ratchet: message already received or its key was discarded")
	// ErrTooManySkipped: the message would skip more than MaxSkip messages.
	ErrTooManySkipped = errors.New("ratchet: too many skipped messages")
	// ErrUnknownPrekey: an initial message names a prekey we do not have
	// (already consumed, or rotated out).
	ErrUnknownPrekey = errors.New("ratchet: unknown or already used prekey")
	// ErrBadState: serialized state is malformed.
	ErrBadState = errors.New("ratchet: invalid session state")
)
