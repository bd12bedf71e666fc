// Package membership is the membership state of an Umbra group: a log of
// signed operations (create, add, remove, promote, demote, set info, leave,
// rekey) that every member folds, in one total order, into the same state —
// the member list with roles, the group's name, description and avatar, and
// the epoch of the group secret from which the group's rotating mailbox and
// the sender-key layer's epoch key are derived.
//
// The package is a deterministic core: no I/O, no clocks, no goroutines.
// Operations travel between members over the group mailbox (or pairwise, for
// a new member's copy of the log); fresh epoch secrets travel only over the
// pairwise sessions, the log carries only their commitments. See
// docs/groups-membership.md for the protocol.
package membership

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// Protocol limits. They bound what any member (hostile or not) can make the
// others store or compute.
const (
	// Version is the op format version.
	Version = 1
	// MaxMembers is the most members (admins included) a group can have.
	MaxMembers = 1000
	// MaxOps is the most operations a group's log holds (pending ones
	// included); further operations are refused with ErrLogFull.
	MaxOps = 10000
	// MaxOpSize is the largest encoded operation.
	MaxOpSize = 64 << 10
	// MaxLogBytes bounds the encoded operations a log holds in all.
	MaxLogBytes = 16 << 20
	// MaxPending is the most operations held while their heads are missing.
	MaxPending = 1024
	// MaxHeads is the most heads an operation names.
	MaxHeads = 16
	// MaxNameLen and MaxDescriptionLen bound the group's name and
	// description (bytes of UTF-8).
	MaxNameLen        = 128
	MaxDescriptionLen = 2048
	// MaxAvatarSize bounds inline avatar bytes; larger avatars go to the
	// file layer and only their SHA-256 (AvatarHash) is in the log.
	MaxAvatarSize = 16 << 10
	// SecretSize is the size of an epoch secret.
	SecretSize = 32
	// SaltSize is the size of an op's salt (create nonce, add ratchet input).
	SaltSize = 32
)

// Domain-separation strings. They are part of the protocol.
const (
	sigContext    = "Umbra_GroupOp_v1"
	hashContext   = "Umbra_GroupOpHash_v1"
	commitContext = "Umbra_GroupSecretCommit_v1"
)

// Kind is the type of an operation.
type Kind uint8

// Operation kinds.
const (
	OpCreate  Kind = iota + 1 // genesis: creator, info, initial admins and members
	OpAdd                     // an admin adds members (ratchets the epoch secret)
	OpRemove                  // an admin removes members (fresh epoch secret)
	OpPromote                 // an admin makes members admins
	OpDemote                  // an admin makes admins plain members
	OpSetInfo                 // an admin changes name, description, avatar
	OpLeave                   // a member leaves (signed by the leaver)
	OpRekey                   // an admin sets a fresh epoch secret
)

var kindNames = [...]string{"", "create", "add", "remove", "promote", "demote", "set-info", "leave", "rekey"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Role is a member's role.
type Role uint8

// Roles.
const (
	RoleMember Role = 1
	RoleAdmin  Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleMember:
		return "member"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Info is the group's descriptive information.
type Info struct {
	Name        string `cbor:"1,keyasint"`
	Description string `cbor:"2,keyasint,omitempty"`
	// AvatarHash is the SHA-256 of an avatar stored elsewhere (32 bytes),
	// or empty. At most one of AvatarHash and Avatar is set.
	AvatarHash []byte `cbor:"3,keyasint,omitempty"`
	// Avatar is a small inline avatar (at most MaxAvatarSize bytes).
	Avatar []byte `cbor:"4,keyasint,omitempty"`
}

func (i *Info) validate() error {
	switch {
	case i.Name == "" || len(i.Name) > MaxNameLen || !utf8.ValidString(i.Name):
		return fmt.Errorf("name must be 1 to %d bytes of UTF-8", MaxNameLen)
	case len(i.Description) > MaxDescriptionLen || !utf8.ValidString(i.Description):
		return fmt.Errorf("description must be at most %d bytes of UTF-8", MaxDescriptionLen)
	case len(i.AvatarHash) != 0 && len(i.AvatarHash) != sha256.Size:
		return errors.New("avatar hash must be 32 bytes")
	case len(i.Avatar) > MaxAvatarSize:
		return fmt.Errorf("inline avatar must be at most %d bytes", MaxAvatarSize)
	case len(i.Avatar) != 0 && len(i.AvatarHash) != 0:
		return errors.New("set either an avatar hash or inline avatar bytes, not both")
	}
	return nil
}

func (i Info) clone() Info {
	i.AvatarHash = bytes.Clone(i.AvatarHash)
	i.Avatar = bytes.Clone(i.Avatar)
	return i
}

// Op is one signed membership operation. Its CBOR form uses integer keys
// and must be canonical (the deterministic encoding of its own fields): an
// op is signed, so unknown fields are refused rather than skipped, and one
// op has exactly one encoding and one hash. A newer format bumps Version.
type Op struct {
	Version uint8 `cbor:"1,keyasint"`
	Kind    Kind  `cbor:"2,keyasint"`
	// Group is the group ID (empty in the genesis op, whose hash is the ID).
	Group []byte `cbor:"3,keyasint,omitempty"`
	// Author is the signer's account ID (Ed25519 public key).
	Author []byte `cbor:"4,keyasint"`
	// Clock is the Lamport clock: 0 for the genesis, else 1 + the largest
	// clock among Heads.
	Clock uint64 `cbor:"5,keyasint"`
	// Heads are the hashes of the ops the author had seen last (the
	// frontier of its log, at most MaxHeads, the highest clocks first).
	Heads [][]byte `cbor:"6,keyasint,omitempty"`
	// Members are the targets: the initial plain members (create), the
	// members added, removed, promoted or demoted.
	Members [][]byte `cbor:"7,keyasint,omitempty"`
	// Admins are the initial admins (create only; includes the author).
	Admins [][]byte `cbor:"8,keyasint,omitempty"`
	// Info is the group's info (create, set-info).
	Info *Info `cbor:"9,keyasint,omitempty"`
	// Commit is the commitment SHA-256(commitContext ‖ secret) to the
	// epoch secret in force after this op (create, add, remove, rekey).
	Commit []byte `cbor:"10,keyasint,omitempty"`
	// Salt is random: in the genesis it makes the group ID unique; in an
	// add it is the input of the secret ratchet (see AddSecret).
	Salt []byte `cbor:"11,keyasint,omitempty"`
	// Sig is Author's Ed25519 signature over sigContext ‖ the op's
	// encoding without Sig.
	Sig []byte `cbor:"12,keyasint,omitempty"`

	enc     []byte   // canonical encoding, set by Marshal
	hash    [32]byte // hashContext hash of enc
	checked []byte   // the encoding that last passed check
}

// Errors returned by ParseOp and Apply (wrapped).
var (
	ErrMalformed     = errors.New("membership: malformed operation")
	ErrBadSignature  = errors.New("membership: bad operation signature")
	ErrWrongGroup    = errors.New("membership: operation is for another group")
	ErrBadClock      = errors.New("membership: operation clock does not follow its heads")
	ErrLogFull       = errors.New("membership: group log is full")
	ErrNotAuthorized = errors.New("membership: not authorized")
)

// Hash is the op's hash: SHA-256(hashContext ‖ encoding). The genesis op's
// hash is the group ID.
func (o *Op) Hash() [32]byte {
	if o.enc == nil {
		if _, err := o.Marshal(); err != nil {
			return [32]byte{}
		}
	}
	return o.hash
}

// AuthorID returns the author's account ID (zero if malformed).
func (o *Op) AuthorID() identity.AccountID {
	var id identity.AccountID
	copy(id[:], o.Author)
	return id
}

// Marshal returns the op's canonical encoding.
func (o *Op) Marshal() ([]byte, error) {
	b, err := wire.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("membership: encode op: %w", err)
	}
	o.enc = b
	o.hash = opHash(b)
	return bytes.Clone(b), nil
}

func opHash(enc []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(hashContext))
	h.Write(enc)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func (o *Op) signedMessage() ([]byte, error) {
	c := *o
	c.Sig = nil
	b, err := wire.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("membership: encode op: %w", err)
	}
	return append([]byte(sigContext), b...), nil
}

// seal signs o with acct and fixes its encoding.
func (o *Op) seal(acct *identity.Account) error {
	id := acct.ID()
	o.Version = Version
	o.Author = id[:]
	o.Sig = nil
	msg, err := o.signedMessage()
	if err != nil {
		return err
	}
	o.Sig = acct.Sign(msg)
	if _, err := o.Marshal(); err != nil {
		return err
	}
	return o.check()
}

// ParseOp decodes and checks one operation: size, canonical encoding,
// structure for its kind, and signature. It does not check authority (that
// depends on the log; see Log.Apply).
func ParseOp(b []byte) (*Op, error) {
	if len(b) > MaxOpSize {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrMalformed, len(b), MaxOpSize)
	}
	var o Op
	if err := wire.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	enc, err := wire.Marshal(&o)
	if err != nil || !bytes.Equal(enc, b) {
		return nil, fmt.Errorf("%w: not canonical or unknown fields", ErrMalformed)
	}
	o.enc = enc
	o.hash = opHash(enc)
	if err := o.check(); err != nil {
		return nil, err
	}
	return &o, nil
}

// check verifies the op's encoding size, structure and signature. An op
// whose current encoding already passed is not checked again (an Op is
// mutable: Marshal refreshes enc, so a changed op is checked afresh).
func (o *Op) check() error {
	if o.enc == nil {
		if _, err := o.Marshal(); err != nil {
			return err
		}
	}
	if o.checked != nil && bytes.Equal(o.checked, o.enc) {
		return nil
	}
	if len(o.enc) > MaxOpSize {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrMalformed, len(o.enc), MaxOpSize)
	}
	if err := o.validate(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, o.Kind, err)
	}
	msg, err := o.signedMessage()
	if err != nil {
		return err
	}
	if !ed25519.Verify(ed25519.PublicKey(o.Author), msg, o.Sig) {
		return ErrBadSignature
	}
	o.checked = o.enc
	return nil
}

// validate checks the op's fields for its kind (no signature, no state).
func (o *Op) validate() error {
	if o.Version != Version {
		return fmt.Errorf("unsupported version %d", o.Version)
	}
	if len(o.Author) != ed25519.PublicKeySize {
		return errors.New("author must be 32 bytes")
	}
	if len(o.Sig) != ed25519.SignatureSize {
		return errors.New("signature must be 64 bytes")
	}
	if o.Kind == OpCreate {
		if len(o.Group) != 0 || o.Clock != 0 || len(o.Heads) != 0 {
			return errors.New("genesis has no group, heads or clock")
		}
	} else {
		if len(o.Group) != 32 {
			return errors.New("group ID must be 32 bytes")
		}
		if o.Clock == 0 {
			return errors.New("clock must be positive")
		}
		if err := ids(o.Heads, 1, MaxHeads, nil); err != nil {
			return fmt.Errorf("heads: %w", err)
		}
	}
	want := func(members, admins, info, commit, salt bool) error {
		switch {
		case !members && len(o.Members) != 0:
			return errors.New("unexpected members")
		case !admins && len(o.Admins) != 0:
			return errors.New("unexpected admins")
		case !info && o.Info != nil:
			return errors.New("unexpected info")
		case info && o.Info == nil:
			return errors.New("missing info")
		case !commit && len(o.Commit) != 0:
			return errors.New("unexpected secret commitment")
		case commit && len(o.Commit) != sha256.Size:
			return errors.New("secret commitment must be 32 bytes")
		case !salt && len(o.Salt) != 0:
			return errors.New("unexpected salt")
		case salt && len(o.Salt) != SaltSize:
			return fmt.Errorf("salt must be %d bytes", SaltSize)
		}
		if info {
			return o.Info.validate()
		}
		return nil
	}
	switch o.Kind {
	case OpCreate:
		if err := want(true, true, true, true, true); err != nil {
			return err
		}
		seen := make(map[string]bool, len(o.Admins)+len(o.Members))
		if err := ids(o.Admins, 1, MaxMembers, seen); err != nil {
			return fmt.Errorf("admins: %w", err)
		}
		if err := ids(o.Members, 0, MaxMembers-len(o.Admins), seen); err != nil {
			return fmt.Errorf("members: %w", err)
		}
		if !seen[string(o.Author)] || !containsID(o.Admins, o.Author) {
			return errors.New("the creator must be an admin")
		}
		return nil
	case OpAdd:
		if err := want(true, false, false, true, true); err != nil {
			return err
		}
	case OpRemove:
		if err := want(true, false, false, true, false); err != nil {
			return err
		}
	case OpPromote, OpDemote:
		if err := want(true, false, false, false, false); err != nil {
			return err
		}
	case OpSetInfo:
		return want(false, false, true, false, false)
	case OpLeave:
		return want(false, false, false, false, false)
	case OpRekey:
		return want(false, false, false, true, false)
	default:
		return fmt.Errorf("unknown kind %d", o.Kind)
	}
	return ids(o.Members, 1, MaxMembers, nil)
}

// ids checks a list of 32-byte IDs: count in [min, max], no duplicates
// (across lists sharing seen).
func ids(list [][]byte, min, max int, seen map[string]bool) error {
	if len(list) < min || len(list) > max {
		return fmt.Errorf("need %d to %d entries, got %d", min, max, len(list))
	}
	if seen == nil {
		seen = make(map[string]bool, len(list))
	}
	for _, id := range list {
		if len(id) != 32 {
			return errors.New("entry must be 32 bytes")
		}
		if seen[string(id)] {
			return errors.New("duplicate entry")
		}
		seen[string(id)] = true
	}
	return nil
}

func containsID(list [][]byte, id []byte) bool {
	for _, x := range list {
		if bytes.Equal(x, id) {
			return true
		}
	}
	return false
}

func accountIDs(list [][]byte) []identity.AccountID {
	out := make([]identity.AccountID, len(list))
	for i, b := range list {
		copy(out[i][:], b)
	}
	return out
}

func idBytes(list []identity.AccountID) [][]byte {
	out := make([][]byte, len(list))
	for i := range list {
		out[i] = bytes.Clone(list[i][:])
	}
	return out
}

// Commit returns the commitment to an epoch secret carried in ops.
func Commit(secret []byte) []byte {
	h := sha256.New()
	h.Write([]byte(commitContext))
	h.Write(secret)
	return h.Sum(nil)
}
