// Package senderkey implements Signal's Sender Keys for group messages,
// built from the published construction (libsignal's SenderKey state and
// group_cipher) on the Go standard library.
//
// Each member has, per group, a sending chain: a random 16-byte chain ID,
// a 32-byte chain key, an iteration counter and an Ed25519 signing key
// pair. The message key of iteration i is HMAC-SHA-256(CK_i, 0x01) and the
// next chain key CK_{i+1} = HMAC-SHA-256(CK_i, 0x02), the Double Ratchet's
// symmetric-key chain. A message key is expanded with HKDF-SHA-256 into an
// AES-256-GCM key and nonce and encrypts exactly one message. Each message
// is signed with the chain's Ed25519 key, so members, who all know the
// chain key, cannot forge each other's messages.
//
// # Flow
//
// A member makes its chain and sends the distribution to every other
// member over the pairwise 1:1 sessions (the ratchet package), which
// authenticate who it comes from:
//
//	own, dist, _ := senderkey.NewSenderChain(nil)
//	d, _ := dist.Encode() // send to each member through the 1:1 session
//	msg, _ := own.Encrypt(paddedPlaintext, groupID)
//	// persist own.Marshal() BEFORE sending msg, then write msg once to
//	// the group's swarm
//
// A member that receives a distribution from a peer keeps a PeerChain for
// it and decrypts that peer's messages with it:
//
//	dist, _ := senderkey.ParseDistribution(d)
//	peer, _ := senderkey.NewReceiverChain(dist)
//	m, _ := senderkey.ParseMessage(msg) // m.ChainID picks the PeerChain
//	pt, err := peer.Decrypt(msg, groupID)
//	// persist peer.Marshal()
//
// A member joining later gets each sender's Distribution() at that
// sender's current iteration and so cannot decrypt earlier messages.
// After a member is removed, every remaining member must make a new chain
// and distribute it to the remaining members only: the removed member
// holds every old chain key and signing public key.
//
// OwnChain and PeerChain are safe for concurrent use. Both change on every
// Encrypt or Decrypt; persist them with Marshal afterwards. Restoring an
// older OwnChain would encrypt two messages with one key and nonce, so the
// new state must be stored before the message leaves the device.
//
// The associated data given to Encrypt and Decrypt (normally the group ID)
// is covered by both the signature and the AEAD: a message replayed into
// another group does not decrypt there.
package senderkey

import (
	"errors"

	"github.com/umbra-im/umbra/internal/wire"
)

// Errors. All are returned wrapped with the failing operation.
var (
	// ErrMalformed: a message or distribution does not parse.
	ErrMalformed = errors.New("senderkey: malformed message")
	// ErrWrongChain: a message belongs to another chain than the one asked
	// to decrypt it.
	ErrWrongChain = errors.New("senderkey: message is for another chain")
	// ErrDecrypt: a message failed authentication (bad signature, other
	// associated data, tampered). The chain is unchanged.
	ErrDecrypt = errors.New("senderkey: message authentication failed")
	// ErrDuplicate: the message was already decrypted (a replay), or its
	// key was evicted from the skipped-key store. The chain is unchanged.
	ErrDuplicate = errors.New("senderkey: message already received or its key was discarded")
	// ErrBeforeDistribution: the message precedes the iteration at which
	// we received the chain (sent before we joined). The chain is
	// unchanged.
	ErrBeforeDistribution = errors.New("senderkey: message predates the chain's distribution")
	// ErrTooManySkipped: the message would skip more than MaxSkip
	// iterations. The chain is unchanged.
	ErrTooManySkipped = errors.New("senderkey: too many skipped messages")
	// ErrExhausted: the sending chain has used every iteration; make a
	// new chain.
	ErrExhausted = errors.New("senderkey: sending chain exhausted")
	// ErrBadState: serialized chain state is malformed.
	ErrBadState = errors.New("senderkey: invalid chain state")
)

// Versions of the encodings. They are part of the protocol.
const (
	MessageVersion      = 1
	DistributionVersion = 1
	StateVersion        = 1
)

// Bounds on what a sender can make a receiver compute and store.
const (
	// MaxSkip is how many iterations one message may move a receiving
	// chain forward past the next expected one (each skipped iteration
	// costs two HMACs and, until used, a stored key).
	MaxSkip = 2000
	// MaxSkippedKeys is how many skipped message keys a PeerChain keeps;
	// beyond it the oldest (lowest iteration) are evicted.
	MaxSkippedKeys = 2000
	// MaxMessageSize bounds an encoded sender message: the largest message
	// a swarm node stores.
	MaxMessageSize = wire.MaxMessageSize
	// MaxDistributionSize bounds an encoded distribution.
	MaxDistributionSize = 256
	// MaxStateSize bounds a serialized chain (a full skipped-key store is
	// about 80 KiB).
	MaxStateSize = 256 << 10
	// MaxOverhead is the most Encrypt adds to a plaintext: chain ID,
	// iteration, version, AES-GCM tag, signature and CBOR framing.
	MaxOverhead = 128
)
