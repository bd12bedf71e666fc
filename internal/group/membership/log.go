package membership

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// ErrNoSecret is returned by Propose for an add when this member does not
// hold the current epoch secret.
var ErrNoSecret = errors.New("membership: the current epoch secret is not known here")

type entry struct {
	op       *Op
	hash     [32]byte
	rejected error // why the op was skipped in the fold; nil if applied
}

// less is the total order: Lamport clock, then op hash.
func less(a, b *entry) bool {
	if a.op.Clock != b.op.Clock {
		return a.op.Clock < b.op.Clock
	}
	return bytes.Compare(a.hash[:], b.hash[:]) < 0
}

// Log is one member's copy of a group's operation log and the state folded
// from it. It is not safe for concurrent use.
//
// Every op enters the log once its heads are in it (until then it waits,
// bounded, in a pending set); the log is a DAG in which every op's clock is
// one more than its heads' largest. The state is the fold of all ops in
// the total order (clock, hash); each op's authority is checked against the
// state just before it, and an op that fails is kept but skipped (marked
// rejected), so every member holding the same op set reaches the same state
// whatever order the ops arrived in.
type Log struct {
	id       [32]byte
	ops      map[[32]byte]*entry
	order    []*entry // total order
	frontier map[[32]byte]*entry
	maxClock uint64
	bytes    int // encoded size of ops and pending ops
	pending  map[[32]byte]*Op
	f        *fold
	secrets  map[[32]byte][32]byte // epoch secret after op, as received here
	byAuthor map[identity.AccountID][]*entry
	revokers map[identity.AccountID][]*entry // removes and demotes by target
	excluded map[[32]byte]bool               // ops revoked by a concurrent removal or demotion of their author
	rekey    *bool                           // cached rekeyNeeded; nil when stale
}

// NewGroup creates a group: it signs the genesis op with acct (who becomes
// an admin), and returns the log, the genesis op to send to the initial
// members, and the first epoch secret to send to each of them over the
// pairwise sessions.
func NewGroup(acct *identity.Account, info Info, admins, members []identity.AccountID) (*Log, *Op, []byte, error) {
	me := acct.ID()
	if !slices.Contains(admins, me) {
		admins = append([]identity.AccountID{me}, admins...)
	}
	secret, salt := make([]byte, SecretSize), make([]byte, SaltSize)
	if err := readRandom(secret, salt); err != nil {
		return nil, nil, nil, err
	}
	info = info.clone()
	op := &Op{Kind: OpCreate, Admins: idBytes(admins), Members: idBytes(members), Info: &info,
		Commit: Commit(secret), Salt: salt}
	if err := op.seal(acct); err != nil {
		return nil, nil, nil, fmt.Errorf("membership: create group: %w", err)
	}
	l, err := FromGenesis(op)
	if err != nil {
		return nil, nil, nil, err
	}
	l.secrets[l.id] = [32]byte(secret)
	return l, op, secret, nil
}

// FromGenesis starts a log from a group's genesis op (as a member invited
// to it does before applying the rest of the log).
func FromGenesis(op *Op) (*Log, error) {
	if op == nil || op.Kind != OpCreate {
		return nil, fmt.Errorf("%w: not a genesis op", ErrMalformed)
	}
	if _, err := op.Marshal(); err != nil {
		return nil, err
	}
	if err := op.check(); err != nil {
		return nil, err
	}
	l := &Log{
		id:       op.hash,
		ops:      make(map[[32]byte]*entry),
		frontier: make(map[[32]byte]*entry),
		pending:  make(map[[32]byte]*Op),
		f:        newFold(),
		secrets:  make(map[[32]byte][32]byte),
		byAuthor: make(map[identity.AccountID][]*entry),
		revokers: make(map[identity.AccountID][]*entry),
	}
	l.insert(op)
	return l, nil
}

// ID returns the group ID: the hash of the signed genesis op.
func (l *Log) ID() [32]byte { return l.id }

// Apply adds op to the log. It checks the op's structure and signature, its
// group and its clock (refusing, with an error, what no member would
// accept), and returns changed = true if the op (and any pending op it
// released) entered the log. A duplicate returns false and no error. An op
// whose heads are not all in the log yet is held pending (false, nil; see
// Missing) and enters when they arrive. An op that enters but that its
// author was not entitled to is kept and skipped in the fold: Status tells.
func (l *Log) Apply(op *Op) (changed bool, err error) {
	if op == nil {
		return false, ErrMalformed
	}
	if _, err := op.Marshal(); err != nil {
		return false, err
	}
	if op.Kind == OpCreate {
		if op.hash == l.id {
			return false, nil
		}
		return false, ErrWrongGroup
	}
	if !bytes.Equal(op.Group, l.id[:]) {
		return false, ErrWrongGroup
	}
	if _, ok := l.ops[op.hash]; ok {
		return false, nil
	}
	if _, ok := l.pending[op.hash]; ok {
		return false, nil
	}
	if err := op.check(); err != nil {
		return false, err
	}
	if len(l.ops)+len(l.pending) >= MaxOps || l.bytes+len(op.enc) > MaxLogBytes {
		return false, ErrLogFull
	}
	if !l.headsKnown(op) {
		if len(l.pending) >= MaxPending {
			return false, fmt.Errorf("%w: too many ops waiting for their heads", ErrLogFull)
		}
		l.pending[op.hash] = op
		l.bytes += len(op.enc)
		return false, nil
	}
	if err := l.insert(op); err != nil {
		return false, err
	}
	l.drainPending()
	return true, nil
}

func (l *Log) headsKnown(op *Op) bool {
	for _, h := range op.Heads {
		if _, ok := l.ops[[32]byte(h)]; !ok {
			return false
		}
	}
	return true
}

// insert adds an op whose heads are all in the log.
func (l *Log) insert(op *Op) error {
	if op.Kind != OpCreate {
		var max uint64
		for _, h := range op.Heads {
			max = maxU(max, l.ops[[32]byte(h)].op.Clock)
		}
		if op.Clock != max+1 {
			return fmt.Errorf("%w: clock %d, heads' largest %d", ErrBadClock, op.Clock, max)
		}
	}
	e := &entry{op: op, hash: op.hash}
	l.ops[e.hash] = e
	l.bytes += len(op.enc)
	for _, h := range op.Heads {
		delete(l.frontier, [32]byte(h))
	}
	l.frontier[e.hash] = e
	l.maxClock = maxU(l.maxClock, op.Clock)
	l.rekey = nil
	i := sort.Search(len(l.order), func(i int) bool { return less(e, l.order[i]) })
	author := op.AuthorID()
	l.byAuthor[author] = append(l.byAuthor[author], e)
	if op.Kind == OpRemove || op.Kind == OpDemote {
		for _, t := range accountIDs(op.Members) {
			l.revokers[t] = append(l.revokers[t], e)
		}
	}
	if i == len(l.order) && len(l.excluded) == 0 {
		l.order = append(l.order, e)
		e.rejected = l.f.apply(e)
		if !l.revokes(e) {
			return nil
		}
	} else {
		l.order = slices.Insert(l.order, i, e)
	}
	l.refold()
	return nil
}

// drainPending moves pending ops whose heads have arrived into the log;
// those with a bad clock are dropped.
func (l *Log) drainPending() {
	for progress := true; progress; {
		progress = false
		for h, op := range l.pending {
			if !l.headsKnown(op) {
				continue
			}
			delete(l.pending, h)
			l.bytes -= len(op.enc)
			if l.insert(op) == nil {
				progress = true
			}
		}
	}
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// Missing returns the heads that pending ops wait for: the ops to ask the
// group (or the op's sender) for.
func (l *Log) Missing() [][32]byte {
	var out [][32]byte
	seen := make(map[[32]byte]bool)
	for _, op := range l.pending {
		for _, h := range op.Heads {
			k := [32]byte(h)
			_, known := l.ops[k]
			_, waiting := l.pending[k]
			if !known && !waiting && !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	slices.SortFunc(out, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Status reports whether the op is in the log (pending ops are not) and, if
// it is, why it was skipped in the fold (nil if it was applied).
func (l *Log) Status(hash [32]byte) (known bool, rejected error) {
	e, ok := l.ops[hash]
	if !ok {
		return false, nil
	}
	return true, e.rejected
}

// Op returns the op with the given hash, if it is in the log.
func (l *Log) Op(hash [32]byte) (*Op, bool) {
	e, ok := l.ops[hash]
	if !ok {
		return nil, false
	}
	return e.op, true
}

// Len is the number of ops in the log (pending ones excluded).
func (l *Log) Len() int { return len(l.order) }

// Heads returns the log's frontier (the ops no other op names as a head),
// highest clock first: what a new op names as its heads (at most MaxHeads
// of them).
func (l *Log) Heads() [][32]byte {
	es := make([]*entry, 0, len(l.frontier))
	for _, e := range l.frontier {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int {
		if less(b, a) {
			return -1
		}
		return 1
	})
	out := make([][32]byte, len(es))
	for i, e := range es {
		out[i] = e.hash
	}
	return out
}

// Change is a proposed operation (everything but create).
type Change struct {
	Kind    Kind
	Members []identity.AccountID // add, remove, promote, demote
	Info    *Info                // set-info
}

// Propose signs change as acct's next op, checks acct may make it in the
// current state, applies it to the log, and returns the op to send to the
// group. For remove and rekey it returns the fresh epoch secret, to send to
// every remaining member over the pairwise sessions; for add, the ratcheted
// secret (AddSecret), to send to the new members with the log (the others
// derive it). Other kinds return no secret.
func (l *Log) Propose(acct *identity.Account, c Change) (*Op, []byte, error) {
	heads := l.Heads()
	if len(heads) > MaxHeads {
		heads = heads[:MaxHeads]
	}
	op := &Op{Kind: c.Kind, Group: l.id[:], Clock: l.maxClock + 1, Members: idBytes(c.Members)}
	for _, h := range heads {
		op.Heads = append(op.Heads, bytes.Clone(h[:]))
	}
	if c.Info != nil {
		info := c.Info.clone()
		op.Info = &info
	}
	var secret []byte
	switch c.Kind {
	case OpAdd:
		_, cur, ok := l.Secret()
		if !ok {
			return nil, nil, ErrNoSecret
		}
		op.Salt = make([]byte, SaltSize)
		if err := readRandom(op.Salt); err != nil {
			return nil, nil, err
		}
		s := AddSecret(cur[:], op.Salt)
		secret = s[:]
	case OpRemove, OpRekey:
		secret = make([]byte, SecretSize)
		if err := readRandom(secret); err != nil {
			return nil, nil, err
		}
	case OpCreate:
		return nil, nil, fmt.Errorf("%w: use NewGroup to create a group", ErrMalformed)
	}
	if secret != nil {
		op.Commit = Commit(secret)
	}
	if err := op.seal(acct); err != nil {
		return nil, nil, fmt.Errorf("membership: propose %s: %w", c.Kind, err)
	}
	if err := l.f.authorize(op); err != nil {
		return nil, nil, err
	}
	if _, err := l.Apply(op); err != nil {
		return nil, nil, fmt.Errorf("membership: propose %s: %w", c.Kind, err)
	}
	if secret != nil {
		l.secrets[op.hash] = [32]byte(secret)
	}
	return op, secret, nil
}

func readRandom(bufs ...[]byte) error {
	for _, b := range bufs {
		if _, err := io.ReadFull(rand.Reader, b); err != nil {
			return fmt.Errorf("membership: read random: %w", err)
		}
	}
	return nil
}

// logFile is the encoded log: every op in the total order.
type logFile struct {
	Version uint8    `cbor:"1,keyasint"`
	Ops     [][]byte `cbor:"2,keyasint"`
}

// Marshal encodes the log's ops (pending ops and secrets are not included),
// in the total order, which is also a causal order. It is what an adder
// sends a new member.
func (l *Log) Marshal() ([]byte, error) {
	f := logFile{Version: Version, Ops: make([][]byte, len(l.order))}
	for i, e := range l.order {
		f.Ops[i] = e.op.enc
	}
	b, err := wire.Marshal(&f)
	if err != nil {
		return nil, fmt.Errorf("membership: encode log: %w", err)
	}
	return b, nil
}

// Unmarshal decodes a log made by Marshal, checking every op as Apply does.
// Every op must enter the log (a log with gaps is refused).
func Unmarshal(b []byte) (*Log, error) {
	if len(b) > MaxLogBytes+MaxOps*8+64 {
		return nil, fmt.Errorf("%w: log of %d bytes", ErrLogFull, len(b))
	}
	var f logFile
	if err := wire.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: log: %w", ErrMalformed, err)
	}
	if f.Version != Version || len(f.Ops) == 0 || len(f.Ops) > MaxOps {
		return nil, fmt.Errorf("%w: log version %d with %d ops", ErrMalformed, f.Version, len(f.Ops))
	}
	g, err := ParseOp(f.Ops[0])
	if err != nil {
		return nil, err
	}
	l, err := FromGenesis(g)
	if err != nil {
		return nil, err
	}
	for i, ob := range f.Ops[1:] {
		op, err := ParseOp(ob)
		if err != nil {
			return nil, fmt.Errorf("membership: log op %d: %w", i+1, err)
		}
		if _, err := l.Apply(op); err != nil {
			return nil, fmt.Errorf("membership: log op %d: %w", i+1, err)
		}
	}
	if len(l.pending) != 0 || len(l.order) != len(f.Ops) {
		return nil, fmt.Errorf("%w: log has gaps or duplicates", ErrMalformed)
	}
	return l, nil
}

// hashState is the encoding hashed by State.Hash.
type hashState struct {
	ID          []byte   `cbor:"1,keyasint"`
	Info        Info     `cbor:"2,keyasint"`
	Members     [][]byte `cbor:"3,keyasint"` // sorted account ‖ role
	Epoch       uint64   `cbor:"4,keyasint"`
	SecretOp    []byte   `cbor:"5,keyasint"`
	RekeyNeeded bool     `cbor:"6,keyasint"`
	Head        []byte   `cbor:"7,keyasint"`
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }
