package membership

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"

	"github.com/umbra-im/umbra/internal/mailbox"
)

// HKDF info strings of the values derived from an epoch secret. They are
// part of the protocol.
const (
	infoAddRatchet = "Umbra_GroupAddRatchet_v1"
	infoMailbox    = "Umbra_GroupMailbox_v1"
	infoMailboxKey = "Umbra_GroupMailboxKey_v1"
	infoEpochKey   = "Umbra_GroupEpochKey_v1"
)

func hkdf32(secret []byte, info string) [32]byte {
	k, err := hkdf.Key(sha256.New, secret, nil, info, 32)
	if err != nil {
		panic("membership: hkdf of 32 bytes cannot fail: " + err.Error())
	}
	var out [32]byte
	copy(out[:], k)
	return out
}

// AddSecret is the epoch secret after an add with the given salt, from the
// secret before it: HKDF-SHA256(prev, info = "Umbra_GroupAddRatchet_v1" ‖
// salt). Existing members compute it themselves; the new members get it
// from the adder over their pairwise sessions and cannot invert it, so they
// cannot derive the earlier epoch's mailboxes or epoch key.
func AddSecret(prev, salt []byte) [32]byte {
	return hkdf32(prev, infoAddRatchet+string(salt))
}

// MailboxSeed is the Ed25519 seed (mailbox.KeyFromSeed) of the group's
// mailbox in a time epoch (see ratchet.Epoch: the same 24 h periods as 1:1
// inboxes): HKDF-SHA256(secret, "Umbra_GroupMailbox_v1" ‖ be64(timeEpoch)).
// Every member holds it, so any member may read the mailbox; nodes see a
// mailbox ID that changes every time epoch and every epoch secret and is
// unlinkable to the group or its members.
func MailboxSeed(secret []byte, timeEpoch uint64) [32]byte {
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], timeEpoch)
	return hkdf32(secret, infoMailbox+string(e[:]))
}

// MailboxID is the group's mailbox ID in a time epoch: the public key of
// MailboxSeed.
func MailboxID(secret []byte, timeEpoch uint64) mailbox.ID {
	seed := MailboxSeed(secret, timeEpoch)
	k, err := mailbox.KeyFromSeed(seed[:])
	if err != nil {
		panic("membership: 32-byte seed: " + err.Error())
	}
	return k.ID()
}

// MailboxKey is a symmetric key for the group mailbox layer (for example to
// encrypt the outer envelope of group messages and ops so nodes see only
// ciphertext), per time epoch.
func MailboxKey(secret []byte, timeEpoch uint64) [32]byte {
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], timeEpoch)
	return hkdf32(secret, infoMailboxKey+string(e[:]))
}

// EpochKey is the key the sender-key layer mixes into its associated data
// (or chain derivation), so a message is bound to the membership epoch its
// sender was in.
func EpochKey(secret []byte) [32]byte {
	return hkdf32(secret, infoEpochKey)
}
