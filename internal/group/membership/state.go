package membership

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// State is a snapshot of a group's folded state.
type State struct {
	ID      [32]byte
	Info    Info
	Members map[identity.AccountID]Role
	// Epoch counts the applied ops that set the epoch secret: the genesis
	// (epoch 1), adds, removes and rekeys.
	Epoch uint64
	// SecretOp is the last applied op that set the epoch secret: the
	// secret in force is the one committed to by this op.
	SecretOp [32]byte
	// RekeyNeeded is set when some current member may lack the epoch
	// secret in force or some former member may hold it: a member left
	// since the last fresh secret, or concurrent membership changes mean
	// the secret's author did not send it to exactly the current members.
	// An admin then proposes a rekey (see docs/groups-membership.md for
	// which one).
	RekeyNeeded bool
	// Head is the last op in the total order.
	Head [32]byte
	// Ops and Rejected count the ops in the log and those skipped.
	Ops, Rejected int
}

// Admins returns the admins, sorted.
func (s State) Admins() []identity.AccountID {
	var out []identity.AccountID
	for id, r := range s.Members {
		if r == RoleAdmin {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b identity.AccountID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Hash is a digest of everything members must agree on (ID, info, members
// and roles, epoch, the op that set the secret, whether a rekey is needed,
// the last op): two members with the same log have the same hash.
func (s State) Hash() [32]byte {
	ids := slices.SortedFunc(maps.Keys(s.Members), func(a, b identity.AccountID) int { return bytes.Compare(a[:], b[:]) })
	h := hashState{ID: s.ID[:], Info: s.Info, Epoch: s.Epoch, SecretOp: s.SecretOp[:],
		RekeyNeeded: s.RekeyNeeded, Head: s.Head[:]}
	for _, id := range ids {
		h.Members = append(h.Members, append(bytes.Clone(id[:]), byte(s.Members[id])))
	}
	b, err := wire.Marshal(&h)
	if err != nil {
		panic("membership: encode state: " + err.Error())
	}
	return sha(b)
}

// State returns the current state.
func (l *Log) State() State {
	f := l.f
	s := State{
		ID:          l.id,
		Info:        f.info.clone(),
		Members:     make(map[identity.AccountID]Role, len(f.members)),
		Epoch:       uint64(len(f.chain)),
		RekeyNeeded: l.rekeyNeeded(),
		Head:        l.order[len(l.order)-1].hash,
		Ops:         len(l.order),
		Rejected:    f.rejected,
	}
	for id, m := range f.members {
		s.Members[id] = m.role
	}
	if len(f.chain) > 0 {
		s.SecretOp = f.chain[len(f.chain)-1].hash
	}
	return s
}

// Role returns id's role, or 0 if id is not a member.
func (l *Log) Role(id identity.AccountID) Role {
	if m := l.f.members[id]; m != nil {
		return m.role
	}
	return 0
}

// rekeyNeeded: see State.RekeyNeeded. With F the last fresh-secret op in
// the fold, the secret in force reached exactly the current members when
//   - F's author's view (the fold of F's causal past, F included) has the
//     same members just after F as the whole fold has just after F,
//   - no member left after F, and
//   - the adds after F form a causal chain from F (each adder ratcheted the
//     secret everyone else ratchets).
func (l *Log) rekeyNeeded() bool {
	if l.rekey != nil {
		return *l.rekey
	}
	v := l.computeRekey()
	l.rekey = &v
	return v
}

func (l *Log) computeRekey() bool {
	f := l.f
	if len(f.chain) == 0 {
		return false
	}
	if f.leaveAfterFresh {
		return true
	}
	F := f.chain[f.lastFresh]
	if F.op.Kind != OpCreate {
		// The members just after F: no remove or leave follows F, so they
		// are the current members but those added since.
		after := maps.Clone(f.members)
		for _, a := range f.chain[f.lastFresh+1:] {
			for _, id := range accountIDs(a.op.Members) {
				delete(after, id)
			}
		}
		if l.viewMembers(F) != digest(after) {
			return true
		}
	}
	prev := F
	for _, a := range f.chain[f.lastFresh+1:] {
		if !l.ancestors(a, prev.op.Clock)[prev.hash] {
			return true
		}
		prev = a
	}
	return false
}

// viewMembers is the digest of the members just after F in the fold of
// F's causal past and F: the members F's author sent the secret to. It is
// the zero digest if F does not apply there.
func (l *Log) viewMembers(F *entry) [32]byte {
	past := l.ancestors(F, 0)
	past[F.hash] = true
	sub := &Log{id: l.id, ops: make(map[[32]byte]*entry, len(past)), byAuthor: make(map[identity.AccountID][]*entry)}
	for _, e := range l.order {
		if past[e.hash] {
			c := &entry{op: e.op, hash: e.hash}
			sub.ops[c.hash] = c
			sub.order = append(sub.order, c)
			a := e.op.AuthorID()
			sub.byAuthor[a] = append(sub.byAuthor[a], c)
		}
	}
	sub.refold()
	last := sub.order[len(sub.order)-1]
	if last.hash != F.hash || last.rejected != nil {
		return [32]byte{}
	}
	return digest(sub.f.members)
}

// ancestors returns the causal past of e (not e itself), walking only ops
// with a clock of at least minClock.
func (l *Log) ancestors(e *entry, minClock uint64) map[[32]byte]bool {
	seen := make(map[[32]byte]bool)
	stack := []*entry{e}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, h := range x.op.Heads {
			k := [32]byte(h)
			if seen[k] {
				continue
			}
			p := l.ops[k]
			if p == nil || p.op.Clock < minClock {
				continue
			}
			seen[k] = true
			stack = append(stack, p)
		}
	}
	return seen
}

// ErrSecretMismatch is returned by ReceiveSecret when a secret does not
// match the op's commitment.
var ErrSecretMismatch = errors.New("membership: epoch secret does not match the op's commitment")

// ReceiveSecret stores the epoch secret in force after op (as sent over a
// pairwise session by the op's author), after checking it against the op's
// commitment. For an add, it is the ratcheted secret (new members receive
// it; existing members derive it and need not).
func (l *Log) ReceiveSecret(op [32]byte, secret []byte) error {
	e, ok := l.ops[op]
	if !ok {
		return fmt.Errorf("membership: receive secret: op %x is not in the log", op[:6])
	}
	if len(e.op.Commit) == 0 {
		return fmt.Errorf("membership: receive secret: a %s op has no secret", e.op.Kind)
	}
	if len(secret) != SecretSize || subtle.ConstantTimeCompare(Commit(secret), e.op.Commit) != 1 {
		return ErrSecretMismatch
	}
	l.secrets[op] = [32]byte(secret)
	return nil
}

// Secret returns the epoch and the epoch secret in force, if this member
// holds it: the secret of the last fresh-secret op in the fold (or, for a
// member who joined since, of the earliest add it holds a secret for),
// ratcheted through the adds applied after it. ok is false when the secret
// was not received (yet): the member waits for it, or, when RekeyNeeded,
// for the rekey. While RekeyNeeded, members may hold different secrets.
func (l *Log) Secret() (epoch uint64, secret [32]byte, ok bool) {
	f := l.f
	epoch = uint64(len(f.chain))
	for i := f.lastFresh; i < len(f.chain); i++ {
		s, have := l.secrets[f.chain[i].hash]
		if !have {
			continue
		}
		for _, a := range f.chain[i+1:] {
			s = AddSecret(s[:], a.op.Salt)
		}
		return epoch, s, true
	}
	return epoch, [32]byte{}, false
}
