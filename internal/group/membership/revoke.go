package membership

import "errors"

// ErrRevoked is the rejection of an op whose author was removed or demoted,
// by a more senior admin, in an op concurrent with it (neither in the
// other's causal past).
var ErrRevoked = errors.New("membership: author's role was revoked concurrently")

// Revocation rule. Ordering by Lamport clock alone would let a removed (or
// demoted) admin backdate ops: sign them on old heads, so they get low
// clocks and sort before its removal, where it was still an admin — even
// an op that demotes the remover, so the removal no longer applies.
//
// So admins have a seniority: the order in which they became admin (the
// genesis admins in list order, then promotions in fold order; a demoted
// admin promoted again starts over; plain members rank below every
// admin). A remove or demote r by Y of X, with Y senior to X, revokes
// every op of X concurrent with r, wherever it sorts: r is judged as if
// those ops did not exist, and if it applies so, they are excluded (kept,
// marked ErrRevoked) and the fold is redone. Exclusions only grow, so this
// ends; they are computed from scratch, in the total order, from the op
// set alone, so every member reaches the same state. X's ops in r's causal
// past stand; X's ops with r in their past were checked after r anyway.
//
// A junior admin's removal of a senior one applies in order like any op,
// but does not revoke the senior's concurrent ops: between two admins
// revoking each other concurrently, the senior one wins.

// foldOnce folds the ops in order, skipping the excluded ones, and returns
// the fold and each op's rejection.
func (l *Log) foldOnce(excluded map[[32]byte]bool) (*fold, map[*entry]error) {
	f := newFold()
	rej := make(map[*entry]error, len(l.order))
	for _, e := range l.order {
		if excluded[e.hash] {
			rej[e] = ErrRevoked
			f.rejected++
			continue
		}
		if err := f.apply(e); err != nil {
			rej[e] = err
		}
	}
	return f, rej
}

// refold recomputes the state from the genesis, then the exclusions, until
// no more ops are excluded.
func (l *Log) refold() {
	l.excluded = make(map[[32]byte]bool)
	for {
		f, rej := l.foldOnce(l.excluded)
		l.f = f
		for _, e := range l.order {
			e.rejected = rej[e]
		}
		if !l.findExclusions(rej) {
			return
		}
	}
}

// findExclusions looks, in the total order, for the first remove or demote
// that revokes ops (see above), adds them to l.excluded and reports true;
// false if there is none.
func (l *Log) findExclusions(rej map[*entry]error) bool {
	for _, r := range l.order {
		if !isRevocation(r.op.Kind) || l.excluded[r.hash] {
			continue
		}
		c := l.concurrentOps(r, func(o *entry) bool { return rej[o] == nil })
		if len(c) == 0 {
			continue
		}
		senior := rej[r] == nil && l.f.senior[r.hash]
		if rej[r] != nil {
			// Judge r as if the targets' concurrent ops did not exist.
			tent := make(map[[32]byte]bool, len(l.excluded)+len(c))
			for h := range l.excluded {
				tent[h] = true
			}
			for _, o := range c {
				tent[o.hash] = true
			}
			f2, rej2 := l.foldOnce(tent)
			senior = rej2[r] == nil && f2.senior[r.hash]
		}
		if senior {
			for _, o := range c {
				l.excluded[o.hash] = true
			}
			return true
		}
	}
	return false
}

func isRevocation(k Kind) bool { return k == OpRemove || k == OpDemote }

// concurrentOps returns the ops of r's targets that are concurrent with r
// and pass keep.
func (l *Log) concurrentOps(r *entry, keep func(*entry) bool) []*entry {
	var out []*entry
	var past map[[32]byte]bool
	for _, x := range accountIDs(r.op.Members) {
		for _, o := range l.byAuthor[x] {
			if o == r || !keep(o) {
				continue
			}
			if past == nil {
				past = l.ancestors(r, 0)
			}
			if past[o.hash] || l.ancestors(o, r.op.Clock)[r.hash] {
				continue
			}
			out = append(out, o)
		}
	}
	return out
}

// revokes reports whether e, just appended to a log without exclusions,
// could make the exclusions non-empty (then the log refolds): e is a
// remove or demote with concurrent ops of its targets in the log, or a
// remove or demote of e's author in the log is concurrent with e.
func (l *Log) revokes(e *entry) bool {
	if isRevocation(e.op.Kind) && len(l.concurrentOps(e, func(*entry) bool { return true })) > 0 {
		return true
	}
	for _, r := range l.revokers[e.op.AuthorID()] {
		if r != e && !l.ancestors(e, r.op.Clock)[r.hash] {
			return true
		}
	}
	return false
}
