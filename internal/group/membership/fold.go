package membership

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/umbra-im/umbra/internal/identity"
)

// ErrInvalidChange is wrapped by the rejection of an authorized op that
// does not fit the state it is applied to (adding a member twice, removing
// a non-member, a 1,001st member, demoting the last admin).
var ErrInvalidChange = errors.New("membership: invalid change")

type member struct {
	role  Role
	since uint64 // join sequence number: lower is older
	// adminSince is the sequence number at which the member last became
	// an admin (0 for a plain member): lower is more senior.
	adminSince uint64
}

// rank is a member's seniority as an admin: lower is more senior; plain
// members rank below every admin.
func (m *member) rank() uint64 {
	if m == nil || m.role != RoleAdmin {
		return ^uint64(0)
	}
	return m.adminSince
}

// fold is the state reached by applying ops in the total order.
type fold struct {
	info    Info
	members map[identity.AccountID]*member
	admins  int
	seq     uint64
	// chain holds the applied ops that set the epoch secret (create, add,
	// remove, rekey), in order; lastFresh indexes the last one that set a
	// fresh (random) secret rather than ratcheting (every kind but add).
	chain     []*entry
	lastFresh int
	// leaveAfterFresh: a member left after the last fresh secret, which
	// that member knows: a rekey is needed.
	leaveAfterFresh bool
	rejected        int
	// senior holds the applied removes and demotes whose author was more
	// senior than every target (see revoke.go).
	senior map[[32]byte]bool
}

func newFold() *fold {
	return &fold{members: make(map[identity.AccountID]*member), senior: make(map[[32]byte]bool)}
}

// authorize checks, without changing anything, that o may be applied to f:
// the author's role and the change's fit. Structure and signature were
// checked when the op entered the log.
func (f *fold) authorize(o *Op) error {
	author := o.AuthorID()
	m := f.members[author]
	switch o.Kind {
	case OpCreate:
		if len(f.members) != 0 || len(f.chain) != 0 {
			return fmt.Errorf("%w: second genesis", ErrInvalidChange)
		}
		return nil
	case OpLeave:
		if m == nil {
			return fmt.Errorf("%w: the leaver is not a member", ErrInvalidChange)
		}
		return nil
	}
	if m == nil || m.role != RoleAdmin {
		return fmt.Errorf("%w: %s by a non-admin", ErrNotAuthorized, o.Kind)
	}
	targets := accountIDs(o.Members)
	switch o.Kind {
	case OpAdd:
		for _, t := range targets {
			if f.members[t] != nil {
				return fmt.Errorf("%w: %s is already a member", ErrInvalidChange, t)
			}
		}
		if len(f.members)+len(targets) > MaxMembers {
			return fmt.Errorf("%w: a group has at most %d members", ErrInvalidChange, MaxMembers)
		}
	case OpRemove:
		for _, t := range targets {
			if f.members[t] == nil {
				return fmt.Errorf("%w: %s is not a member", ErrInvalidChange, t)
			}
			if t == author {
				return fmt.Errorf("%w: an admin leaves with a leave, not a remove", ErrInvalidChange)
			}
		}
	case OpPromote:
		for _, t := range targets {
			if tm := f.members[t]; tm == nil || tm.role != RoleMember {
				return fmt.Errorf("%w: %s is not a plain member", ErrInvalidChange, t)
			}
		}
	case OpDemote:
		for _, t := range targets {
			if tm := f.members[t]; tm == nil || tm.role != RoleAdmin {
				return fmt.Errorf("%w: %s is not an admin", ErrInvalidChange, t)
			}
		}
		if f.admins-len(targets) < 1 {
			return fmt.Errorf("%w: a group keeps at least one admin", ErrInvalidChange)
		}
	case OpSetInfo, OpRekey:
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrInvalidChange, o.Kind)
	}
	return nil
}

// apply applies e to f if it is authorized, else leaves f unchanged and
// returns the reason.
func (f *fold) apply(e *entry) error {
	o := e.op
	if err := f.authorize(o); err != nil {
		f.rejected++
		return err
	}
	if o.Kind == OpRemove || o.Kind == OpDemote {
		senior := true
		author := f.members[o.AuthorID()].rank()
		for _, t := range accountIDs(o.Members) {
			senior = senior && author < f.members[t].rank()
		}
		f.senior[e.hash] = senior
	}
	switch o.Kind {
	case OpCreate:
		for _, a := range accountIDs(o.Admins) {
			f.join(a, RoleAdmin)
		}
		for _, a := range accountIDs(o.Members) {
			f.join(a, RoleMember)
		}
		f.info = o.Info.clone()
		f.fresh(e)
	case OpAdd:
		for _, a := range accountIDs(o.Members) {
			f.join(a, RoleMember)
		}
		f.chain = append(f.chain, e)
	case OpRemove:
		for _, a := range accountIDs(o.Members) {
			f.drop(a)
		}
		f.fresh(e)
	case OpLeave:
		f.drop(o.AuthorID())
		if f.admins == 0 {
			f.promoteOldest()
		}
		f.leaveAfterFresh = true
	case OpPromote:
		for _, a := range accountIDs(o.Members) {
			f.seq++
			f.members[a].role = RoleAdmin
			f.members[a].adminSince = f.seq
			f.admins++
		}
	case OpDemote:
		for _, a := range accountIDs(o.Members) {
			f.members[a].role = RoleMember
			f.members[a].adminSince = 0
			f.admins--
		}
	case OpSetInfo:
		f.info = o.Info.clone()
	case OpRekey:
		f.fresh(e)
	}
	return nil
}

func (f *fold) fresh(e *entry) {
	f.chain = append(f.chain, e)
	f.lastFresh = len(f.chain) - 1
	f.leaveAfterFresh = false
}

// digest hashes a set of member IDs.
func digest(set map[identity.AccountID]*member) [32]byte {
	ids := slices.SortedFunc(maps.Keys(set), func(a, b identity.AccountID) int { return bytes.Compare(a[:], b[:]) })
	h := sha256.New()
	for _, id := range ids {
		h.Write(id[:])
	}
	return [32]byte(h.Sum(nil))
}

func (f *fold) join(a identity.AccountID, r Role) {
	f.seq++
	f.members[a] = &member{role: r, since: f.seq}
	if r == RoleAdmin {
		f.members[a].adminSince = f.seq
		f.admins++
	}
}

func (f *fold) drop(a identity.AccountID) {
	if m := f.members[a]; m != nil {
		if m.role == RoleAdmin {
			f.admins--
		}
		delete(f.members, a)
	}
}

// promoteOldest makes the longest-standing member an admin: the rule when
// the last admin leaves. Join sequence numbers are unique, so the choice is
// deterministic.
func (f *fold) promoteOldest() {
	var oldest *member
	for _, m := range f.members {
		if oldest == nil || m.since < oldest.since {
			oldest = m
		}
	}
	if oldest != nil {
		f.seq++
		oldest.role = RoleAdmin
		oldest.adminSince = f.seq
		f.admins++
	}
}

// isMembership reports whether kind changes who is a member.
func isMembership(k Kind) bool {
	return k == OpCreate || k == OpAdd || k == OpRemove || k == OpLeave
}
