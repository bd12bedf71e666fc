package membership

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

func TestCreate(t *testing.T) {
	a, b, m := account(t, 0), account(t, 1), account(t, 2)
	l, g, secret, err := NewGroup(a, Info{Name: "Friends", Description: "d"}, idsOf(b), idsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(append([]byte(hashContext), enc...))
	if l.ID() != want || g.Hash() != want {
		t.Fatalf("group ID is not the hash of the signed genesis")
	}
	s := l.State()
	if s.Info.Name != "Friends" || s.Epoch != 1 || s.RekeyNeeded || len(s.Members) != 3 {
		t.Fatalf("state %+v", s)
	}
	if s.Members[a.ID()] != RoleAdmin || s.Members[b.ID()] != RoleAdmin || s.Members[m.ID()] != RoleMember {
		t.Fatalf("roles %v", s.Members)
	}
	ep, sec, ok := l.Secret()
	if !ok || ep != 1 || !bytes.Equal(sec[:], secret) {
		t.Fatal("creator does not hold the first secret")
	}
	// Same creator and info: still a different group (salt).
	l2, _, _, err := NewGroup(a, Info{Name: "Friends", Description: "d"}, idsOf(b), idsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	if l2.ID() == l.ID() {
		t.Fatal("two groups with the same genesis content share an ID")
	}
	// The genesis parses back and binds the creator.
	p, err := ParseOp(enc)
	if err != nil || p.Hash() != l.ID() || p.AuthorID() != a.ID() {
		t.Fatalf("parse genesis: %v", err)
	}
}

func TestAuthorization(t *testing.T) {
	a, m, x, y := account(t, 0), account(t, 1), account(t, 2), account(t, 3)
	n, _ := newNetwork(t, a, idsOfAcc(a), []*identity.Account{m})
	la, lm := n.logs[a.ID()], n.logs[m.ID()]
	before := la.State().Hash()

	// A plain member may not add: Propose refuses ...
	if _, _, err := lm.Propose(m, Change{Kind: OpAdd, Members: idsOf(x)}); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("non-admin add: %v", err)
	}
	for _, c := range []Change{
		{Kind: OpRemove, Members: idsOf(a)},
		{Kind: OpPromote, Members: idsOf(m)},
		{Kind: OpDemote, Members: idsOf(a)},
		{Kind: OpSetInfo, Info: &Info{Name: "mine"}},
		{Kind: OpRekey},
	} {
		if _, _, err := lm.Propose(m, c); !errors.Is(err, ErrNotAuthorized) {
			t.Fatalf("non-admin %s: %v", c.Kind, err)
		}
	}
	// ... and an op it signs anyway is kept but rejected by everyone.
	op := forge(t, la, m, Change{Kind: OpAdd, Members: idsOf(x)})
	if changed, err := la.Apply(op); err != nil || !changed {
		t.Fatalf("apply: %v %v", changed, err)
	}
	if known, rej := la.Status(op.Hash()); !known || !errors.Is(rej, ErrNotAuthorized) {
		t.Fatalf("status %v %v", known, rej)
	}
	if s := la.State(); s.Members[x.ID()] != 0 || s.Rejected != 1 {
		t.Fatalf("non-admin add took effect: %+v", s)
	}

	// Forged signature: an admin's op altered after signing, and an op
	// signed by one key claiming another author.
	good, _, err := la.Propose(a, Change{Kind: OpPromote, Members: idsOf(m)})
	if err != nil {
		t.Fatal(err)
	}
	bad := *good
	bad.enc = nil
	bad.Members = idsBytes(y)
	if _, err := lm.Apply(&bad); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("altered op: %v", err)
	}
	enc, _ := bad.Marshal()
	if _, err := ParseOp(enc); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("parse altered op: %v", err)
	}
	imp := forge(t, lm, m, Change{Kind: OpRemove, Members: idsOf(a)})
	imp.Author = bytes.Clone(a.ID().PublicKey())
	imp.enc = nil
	if _, err := lm.Apply(imp); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("impersonation: %v", err)
	}

	// An op for another group.
	other, _, _, err := NewGroup(a, Info{Name: "other"}, nil, idsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	oop, _, err := other.Propose(a, Change{Kind: OpPromote, Members: idsOf(m)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lm.Apply(oop); !errors.Is(err, ErrWrongGroup) {
		t.Fatalf("other group's op: %v", err)
	}
	og, _ := other.Op(other.ID())
	if _, err := lm.Apply(og); !errors.Is(err, ErrWrongGroup) {
		t.Fatalf("other group's genesis: %v", err)
	}

	// Replays are idempotent.
	if _, err := lm.Apply(op); err != nil {
		t.Fatal(err)
	}
	if changed, err := lm.Apply(good); err != nil || !changed {
		t.Fatalf("first apply: %v %v", changed, err)
	}
	h := lm.State().Hash()
	for i := 0; i < 3; i++ {
		if changed, err := lm.Apply(good); err != nil || changed {
			t.Fatalf("replay: %v %v", changed, err)
		}
	}
	g, _ := lm.Op(lm.ID())
	if changed, err := lm.Apply(g); err != nil || changed {
		t.Fatalf("genesis replay: %v %v", changed, err)
	}
	if lm.State().Hash() != h || h == before {
		t.Fatal("replay changed the state")
	}
}

func idsOfAcc(as ...*identity.Account) []*identity.Account { return as }

func idsBytes(as ...*identity.Account) [][]byte { return idBytes(idsOf(as...)) }

// forge signs a change as acct on l's current heads without the authority
// check Propose makes (what a hostile member can do).
func forge(t testing.TB, l *Log, acct *identity.Account, c Change) *Op {
	t.Helper()
	heads := l.Heads()
	if len(heads) > MaxHeads {
		heads = heads[:MaxHeads]
	}
	op := &Op{Kind: c.Kind, Group: l.id[:], Clock: l.maxClock + 1, Members: idBytes(c.Members), Info: c.Info}
	for _, h := range heads {
		op.Heads = append(op.Heads, bytes.Clone(h[:]))
	}
	switch c.Kind {
	case OpAdd:
		op.Salt = make([]byte, SaltSize)
		op.Commit = Commit(make([]byte, SecretSize))
	case OpRemove, OpRekey:
		op.Commit = Commit(make([]byte, SecretSize))
	}
	if err := op.seal(acct); err != nil {
		t.Fatal(err)
	}
	return op
}

func TestBadClockRefused(t *testing.T) {
	a, m := account(t, 0), account(t, 1)
	l, _, _, err := NewGroup(a, Info{Name: "g"}, nil, idsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	for _, clock := range []uint64{2, 7, 1 << 62} {
		op := forge(t, l, a, Change{Kind: OpPromote, Members: idsOf(m)})
		op.Clock = clock
		if err := op.seal(a); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Apply(op); !errors.Is(err, ErrBadClock) {
			t.Fatalf("clock %d: %v", clock, err)
		}
	}
	if l.Len() != 1 {
		t.Fatal("bad-clock op entered the log")
	}
}

func TestOutOfOrderDelivery(t *testing.T) {
	a, m, x := account(t, 0), account(t, 1), account(t, 2)
	src, _, _, err := NewGroup(a, Info{Name: "g"}, nil, idsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	dst := clone(t, src)
	op1, _, err := src.Propose(a, Change{Kind: OpAdd, Members: idsOf(x)})
	if err != nil {
		t.Fatal(err)
	}
	op2, _, err := src.Propose(a, Change{Kind: OpPromote, Members: idsOf(x)})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := dst.Apply(op2); err != nil || changed {
		t.Fatalf("child before parent: %v %v", changed, err)
	}
	if miss := dst.Missing(); len(miss) != 1 || miss[0] != op1.Hash() {
		t.Fatalf("missing %x", miss)
	}
	if changed, err := dst.Apply(op1); err != nil || !changed {
		t.Fatalf("parent: %v %v", changed, err)
	}
	if dst.Len() != 3 || len(dst.Missing()) != 0 || dst.State().Hash() != src.State().Hash() {
		t.Fatal("pending op not released")
	}
	if dst.State().Members[x.ID()] != RoleAdmin {
		t.Fatal("promote lost")
	}
}

func TestRemovedMemberStaleOpsRejected(t *testing.T) {
	a, b, m := account(t, 0), account(t, 1), account(t, 2)
	n, _ := newNetwork(t, a, idsOfAcc(a, b), []*identity.Account{m})
	rm, err := n.propose(a, Change{Kind: OpRemove, Members: idsOf(b)})
	if err != nil {
		t.Fatal(err)
	}
	// b, still holding its old log, keeps acting as an admin (its ops are
	// concurrent with the removal but sort after it: higher clock).
	lb := n.logs[b.ID()]
	promote, err := n.propose(b, Change{Kind: OpPromote, Members: idsOf(m)})
	if err != nil {
		t.Fatal(err)
	}
	// promote has rm's clock: if it sorts after the removal it is not
	// authorized; if before, it is concurrent with the removal of its
	// author, so it is revoked.
	if promote.Clock != rm.Clock {
		t.Fatalf("test setup: clocks %d and %d", promote.Clock, rm.Clock)
	}
	stale, err := n.propose(b, Change{Kind: OpRemove, Members: idsOf(a)})
	if err != nil {
		t.Fatal(err)
	}
	if stale.Clock <= rm.Clock {
		t.Fatalf("test setup: stale clock %d, removal %d", stale.Clock, rm.Clock)
	}
	n.syncAll()
	for id, l := range n.logs {
		s := l.State()
		if _, ok := s.Members[b.ID()]; ok || s.Members[a.ID()] != RoleAdmin || s.Members[m.ID()] != RoleMember {
			t.Fatalf("%s: removed admin's ops took effect: %v", id, s.Members)
		}
		if _, rej := l.Status(promote.Hash()); !errors.Is(rej, ErrRevoked) && !errors.Is(rej, ErrNotAuthorized) {
			t.Fatalf("concurrent promote status %v", rej)
		}
		if _, rej := l.Status(stale.Hash()); !errors.Is(rej, ErrNotAuthorized) && !errors.Is(rej, ErrRevoked) {
			t.Fatalf("stale op status %v", rej)
		}
	}
	// After seeing its removal b cannot act either.
	if _, _, err := lb.Propose(b, Change{Kind: OpRekey}); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("removed member proposes: %v", err)
	}
	// The removed member does not get the new secret; the others do.
	_, sa, _ := n.logs[a.ID()].Secret()
	_, sm, okm := n.logs[m.ID()].Secret()
	if !okm || sa != sm {
		t.Fatal("remaining member lacks the new secret")
	}
	if _, sb, ok := lb.Secret(); ok && sb == sa {
		t.Fatal("removed member holds the new secret")
	}
}

func TestLeaveAndLastAdmin(t *testing.T) {
	a, m1, m2, m3 := account(t, 0), account(t, 1), account(t, 2), account(t, 3)
	n, _ := newNetwork(t, a, idsOfAcc(a), []*identity.Account{m1, m2})
	if _, err := n.propose(a, Change{Kind: OpAdd, Members: idsOf(m3)}); err != nil {
		t.Fatal(err)
	}
	n.syncAll()
	// A plain member leaves: a rekey is needed (it knows the secret).
	if _, err := n.propose(m2, Change{Kind: OpLeave}); err != nil {
		t.Fatal(err)
	}
	n.syncAll()
	s := n.logs[a.ID()].State()
	if _, ok := s.Members[m2.ID()]; ok || !s.RekeyNeeded {
		t.Fatalf("after leave: %+v", s)
	}
	epoch := s.Epoch
	if _, err := n.propose(a, Change{Kind: OpRekey}); err != nil {
		t.Fatal(err)
	}
	n.syncAll()
	s = n.logs[a.ID()].State()
	if s.RekeyNeeded || s.Epoch != epoch+1 {
		t.Fatalf("after rekey: %+v", s)
	}
	// The last admin leaves: the oldest member (m1, from the genesis;
	// m3 joined later) becomes admin.
	if _, err := n.propose(a, Change{Kind: OpLeave}); err != nil {
		t.Fatal(err)
	}
	n.syncAll()
	for _, l := range n.logs {
		s := l.State()
		if len(s.Members) != 2 || s.Members[m1.ID()] != RoleAdmin || s.Members[m3.ID()] != RoleMember {
			t.Fatalf("last-admin rule: %v", s.Members)
		}
	}
	if _, err := n.propose(m1, Change{Kind: OpRekey}); err != nil {
		t.Fatalf("promoted member cannot rekey: %v", err)
	}
	// A non-member cannot leave.
	if _, _, err := n.logs[a.ID()].Propose(a, Change{Kind: OpLeave}); !errors.Is(err, ErrInvalidChange) {
		t.Fatalf("second leave: %v", err)
	}
	// The last admin may not demote itself away.
	if _, _, err := n.logs[m1.ID()].Propose(m1, Change{Kind: OpDemote, Members: idsOf(m1)}); !errors.Is(err, ErrInvalidChange) {
		t.Fatalf("last admin demotes itself: %v", err)
	}
}

func TestBounds(t *testing.T) {
	a := account(t, 0)
	many := make([]identity.AccountID, MaxMembers)
	for i := range many {
		many[i][0], many[i][1], many[i][2] = 1, byte(i>>8), byte(i)
	}
	// 1,000 members in all (creator + 999) is fine; 1,001 is not.
	if _, _, _, err := NewGroup(a, Info{Name: "g"}, nil, many); !errors.Is(err, ErrMalformed) {
		t.Fatalf("genesis with 1,001 members: %v", err)
	}
	l, _, _, err := NewGroup(a, Info{Name: "g"}, nil, many[:MaxMembers-2])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Propose(a, Change{Kind: OpAdd, Members: many[MaxMembers-2:]}); !errors.Is(err, ErrInvalidChange) {
		t.Fatalf("1,001st member: %v", err)
	}
	if _, _, err := l.Propose(a, Change{Kind: OpAdd, Members: many[MaxMembers-2 : MaxMembers-1]}); err != nil {
		t.Fatalf("1,000th member: %v", err)
	}
	if got := len(l.State().Members); got != MaxMembers {
		t.Fatalf("%d members", got)
	}
	// A forged add past the limit is rejected in the fold.
	op := forge(t, l, a, Change{Kind: OpAdd, Members: many[MaxMembers-1:]})
	if _, err := l.Apply(op); err != nil {
		t.Fatal(err)
	}
	if _, rej := l.Status(op.Hash()); !errors.Is(rej, ErrInvalidChange) || len(l.State().Members) != MaxMembers {
		t.Fatalf("forged 1,001st member: %v", rej)
	}

	// Oversize fields and ops.
	for name, info := range map[string]Info{
		"name":        {Name: strings.Repeat("n", MaxNameLen+1)},
		"empty name":  {},
		"description": {Name: "g", Description: strings.Repeat("d", MaxDescriptionLen+1)},
		"avatar":      {Name: "g", Avatar: make([]byte, MaxAvatarSize+1)},
		"avatar hash": {Name: "g", AvatarHash: make([]byte, 31)},
		"bad utf8":    {Name: "\xff"},
	} {
		if _, _, err := l.Propose(a, Change{Kind: OpSetInfo, Info: &info}); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := ParseOp(make([]byte, MaxOpSize+1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversize op: %v", err)
	}
	heads := make([][]byte, MaxHeads+1)
	for i := range heads {
		heads[i] = bytes.Repeat([]byte{byte(i)}, 32)
	}
	big := forge(t, l, a, Change{Kind: OpRekey})
	big.Heads = heads
	if err := big.seal(a); !errors.Is(err, ErrMalformed) {
		t.Fatalf("too many heads: %v", err)
	}
}

func TestPendingBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("signs MaxPending ops")
	}
	a, m := account(t, 0), account(t, 1)
	l, _, _, err := NewGroup(a, Info{Name: "g"}, nil, idsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= MaxPending; i++ {
		op := forge(t, l, a, Change{Kind: OpRekey})
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		op.Heads = [][]byte{h[:]}
		if err := op.seal(a); err != nil {
			t.Fatal(err)
		}
		_, err := l.Apply(op)
		if i < MaxPending && err != nil {
			t.Fatalf("pending %d: %v", i, err)
		}
		if i == MaxPending && !errors.Is(err, ErrLogFull) {
			t.Fatalf("pending past the limit: %v", err)
		}
	}
	if len(l.Missing()) != MaxPending || l.Len() != 1 {
		t.Fatal("pending set")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	a, b, m, x := account(t, 0), account(t, 1), account(t, 2), account(t, 3)
	n, _ := newNetwork(t, a, idsOfAcc(a, b), []*identity.Account{m})
	if _, err := n.propose(a, Change{Kind: OpAdd, Members: idsOf(x)}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.propose(b, Change{Kind: OpSetInfo, Info: &Info{Name: "renamed", Avatar: []byte("png")}}); err != nil {
		t.Fatal(err)
	}
	n.syncAll()
	l := n.logs[a.ID()]
	c := clone(t, l)
	if c.State().Hash() != l.State().Hash() || c.State().Info.Name != "renamed" {
		t.Fatal("round trip changed the state")
	}
	enc, _ := l.Marshal()
	if _, err := Unmarshal(enc[:len(enc)-3]); err == nil {
		t.Fatal("truncated log accepted")
	}
}

func TestParseOpStrict(t *testing.T) {
	a, m := account(t, 0), account(t, 1)
	l, _, _, err := NewGroup(a, Info{Name: "g"}, nil, idsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	op, _, err := l.Propose(a, Change{Kind: OpPromote, Members: idsOf(m)})
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := op.Marshal()
	if _, err := ParseOp(enc); err != nil {
		t.Fatal(err)
	}
	// An unknown field, even with a valid signature elsewhere, is refused:
	// it would not be covered by the signature.
	var fields map[int]any
	if err := wire.Unmarshal(enc, &fields); err != nil {
		t.Fatal(err)
	}
	fields[99] = 1
	extra, err := wire.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseOp(extra); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown field: %v", err)
	}
	// Wrong fields for the kind.
	for name, mutate := range map[string]func(o *Op){
		"promote with info":   func(o *Op) { o.Info = &Info{Name: "x"} },
		"promote with commit": func(o *Op) { o.Commit = make([]byte, 32) },
		"no heads":            func(o *Op) { o.Heads = nil },
		"short target":        func(o *Op) { o.Members = [][]byte{{1, 2}} },
		"duplicate target":    func(o *Op) { o.Members = append(o.Members, o.Members[0]) },
		"unknown kind":        func(o *Op) { o.Kind = 42 },
		"version":             func(o *Op) { o.Version = 2 },
	} {
		c := *op
		c.Members = append([][]byte(nil), op.Members...)
		mutate(&c)
		msg, _ := c.signedMessage()
		c.Sig = a.Sign(msg)
		b, err := wire.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseOp(b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestUnmarshalRefusesGaps(t *testing.T) {
	a, m := account(t, 0), account(t, 1)
	l, g, _, err := NewGroup(a, Info{Name: "g"}, nil, idsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	op1, _, _ := l.Propose(a, Change{Kind: OpPromote, Members: idsOf(m)})
	op2, _, _ := l.Propose(a, Change{Kind: OpSetInfo, Info: &Info{Name: "h"}})
	var f logFile
	f.Version = Version
	for _, op := range []*Op{g, op2} { // op1 missing
		b, _ := op.Marshal()
		f.Ops = append(f.Ops, b)
	}
	b, _ := wire.Marshal(&f)
	if _, err := Unmarshal(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("log with a gap: %v", err)
	}
	b1, _ := op1.Marshal()
	f.Ops = append(f.Ops, b1) // out of order but complete: accepted
	b, _ = wire.Marshal(&f)
	c, err := Unmarshal(b)
	if err != nil || c.State().Hash() != l.State().Hash() {
		t.Fatalf("complete log out of order: %v", err)
	}
}
