package membership

import "errors"

// ErrRevoked is the rejection of an op whose author was removed or demoted
// by an op concurrent with it (neither in the other's causal past).
var ErrRevoked = errors.New("membership: author's role was revoked concurrently")

// Revocation rule. Ordering by Lamport clock alone would let a removed (or
// demoted) admin backdate ops: sign them on old heads, so they get low
// clocks and sort before its removal, where it was still an admin. So a
// valid remove or demote r of X also revokes every op of X that is
// concurrent with r, wherever it sorts: such ops are excluded (kept,
// marked ErrRevoked) and the fold is redone without them. Exclusions only
// grow, so this ends; they are a function of the op set, so every member
// reaches the same state. Ops of X in r's causal past stand; ops of X that
// have r in their past were checked after r anyway (X was re-added or
// re-promoted since).

// refold recomputes the state from the genesis, then the exclusions, until
// no more ops are excluded.
func (l *Log) refold() {
	l.excluded = make(map[[32]byte]bool)
	for {
		l.f = newFold()
		for _, e := range l.order {
			if l.excluded[e.hash] {
				e.rejected = ErrRevoked
				l.f.rejected++
				continue
			}
			e.rejected = l.f.apply(e)
		}
		if !l.findExclusions() {
			return
		}
	}
}

// findExclusions adds to l.excluded the valid ops that a valid revocation
// revokes; it reports whether it added any.
func (l *Log) findExclusions() bool {
	added := false
	for _, r := range l.order {
		if l.revoked(r, func(o *entry) { l.excluded[o.hash] = true }) {
			added = true
		}
	}
	return added
}

// revoked calls exclude for each applied op that r, if it is an applied
// remove or demote, revokes, and reports whether there was any.
func (l *Log) revoked(r *entry, exclude func(*entry)) bool {
	if r.rejected != nil || (r.op.Kind != OpRemove && r.op.Kind != OpDemote) {
		return false
	}
	any := false
	var past map[[32]byte]bool
	for _, x := range accountIDs(r.op.Members) {
		for _, o := range l.byAuthor[x] {
			if o == r || o.rejected != nil {
				continue
			}
			if past == nil {
				past = l.ancestors(r, 0)
			}
			if past[o.hash] || l.ancestors(o, r.op.Clock)[r.hash] {
				continue
			}
			exclude(o)
			any = true
		}
	}
	return any
}

// revokes reports whether e, just appended to a log without exclusions,
// makes the exclusions non-empty: e revokes a concurrent op, or a
// revocation in the log revokes e.
func (l *Log) revokes(e *entry) bool {
	if l.revoked(e, func(*entry) {}) {
		return true
	}
	if e.rejected != nil {
		return false
	}
	author := e.op.AuthorID()
	for _, r := range l.revokers[author] {
		if r == e || r.rejected != nil {
			continue
		}
		if !l.ancestors(e, r.op.Clock)[r.hash] {
			return true
		}
	}
	return false
}
