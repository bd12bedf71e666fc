package membership

import (
	"bytes"
	"sync"
	"testing"
)

var (
	poolOnce sync.Once
	poolBase *Log
	poolOps  []*Op
	poolRef  [32]byte
)

// pool is a fixed set of concurrent ops by three admins (see
// concurrentOps) and the state hash they fold to.
func pool(t testing.TB) (*Log, []*Op, [32]byte) {
	poolOnce.Do(func() {
		poolBase, poolOps = concurrentOps(t, 1, 30)
		poolRef = deliverAll(t, poolBase, poolOps, seqn(len(poolOps))).State().Hash()
	})
	return poolBase, poolOps, poolRef
}

func FuzzParseOp(f *testing.F) {
	base, ops, _ := pool(f)
	g, _ := base.Op(base.ID())
	for _, op := range append([]*Op{g}, ops...) {
		b, err := op.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa0})
	f.Add([]byte{0xa1, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := ParseOp(b)
		if err != nil {
			return
		}
		enc, err := op.Marshal()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatal("accepted op does not re-encode to its bytes")
		}
		if op.validate() != nil || op.check() != nil {
			t.Fatal("accepted op fails its own checks")
		}
		if op.Hash() != opHash(b) {
			t.Fatal("hash")
		}
	})
}

// FuzzApply delivers the pool's ops in a fuzzer-chosen order, with
// duplicates and omissions made up at the end, plus one fuzzer-made op;
// the state must be the pool's.
func FuzzApply(f *testing.F) {
	_, ops, _ := pool(f)
	f.Add([]byte{0, 1, 2, 3}, []byte(nil))
	f.Add([]byte{29, 28, 27, 5, 5, 5, 0}, []byte{0xa0})
	raw, _ := ops[3].Marshal()
	f.Add([]byte{9, 8, 7}, raw)
	mut := bytes.Clone(raw)
	mut[len(mut)/2] ^= 1
	f.Add([]byte{1}, mut)
	f.Fuzz(func(t *testing.T, order, extra []byte) {
		base, ops, ref := pool(t)
		l := clone(t, base)
		for _, b := range order {
			if _, err := l.Apply(ops[int(b)%len(ops)]); err != nil {
				t.Fatal(err)
			}
		}
		if op, err := ParseOp(extra); err == nil {
			if changed, _ := l.Apply(op); changed {
				return // a new validly signed op: a different op set
			}
		}
		for _, op := range ops {
			if _, err := l.Apply(op); err != nil {
				t.Fatal(err)
			}
		}
		s := l.State()
		checkInvariants(t, s)
		if len(l.pending) == 0 && s.Hash() != ref {
			t.Fatal("delivery order changed the state")
		}
	})
}
