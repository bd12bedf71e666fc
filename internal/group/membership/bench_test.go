package membership

import (
	"testing"

	"github.com/umbra-im/umbra/internal/identity"
)

// bigGroup is a 1,000-member group created at once (one admin).
func bigGroup(b *testing.B) (*identity.Account, *Log) {
	a := account(b, 0)
	members := make([]identity.AccountID, MaxMembers-1)
	for i := range members {
		members[i][0], members[i][1], members[i][2] = 1, byte(i>>8), byte(i)
	}
	l, _, _, err := NewGroup(a, Info{Name: "big"}, nil, members)
	if err != nil {
		b.Fatal(err)
	}
	return a, l
}

// BenchmarkApplyAddRemove1000: a member receiving a remove and then an
// add (decoding and signature checks included) in a 1,000-member group. One op is
// a remove+add pair.
func BenchmarkApplyAddRemove1000(b *testing.B) {
	a, src := bigGroup(b)
	base := clone(b, src)
	var victim identity.AccountID
	victim[0] = 1 // a member of bigGroup, removed and added back
	const pairs = 500
	ops := make([][]byte, 0, 2*pairs)
	for i := 0; i < pairs; i++ {
		rm, _, err := src.Propose(a, Change{Kind: OpRemove, Members: []identity.AccountID{victim}})
		if err != nil {
			b.Fatal(err)
		}
		add, _, err := src.Propose(a, Change{Kind: OpAdd, Members: []identity.AccountID{victim}})
		if err != nil {
			b.Fatal(err)
		}
		rb, _ := rm.Marshal()
		ab, _ := add.Marshal()
		ops = append(ops, rb, ab)
	}
	var l *Log
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % pairs
		if k == 0 {
			b.StopTimer()
			l = clone(b, base)
			b.StartTimer()
		}
		for _, enc := range ops[2*k : 2*k+2] {
			op, err := ParseOp(enc)
			if err != nil {
				b.Fatal(err)
			}
			if changed, err := l.Apply(op); err != nil || !changed {
				b.Fatal(changed, err)
			}
		}
	}
	b.StopTimer()
	if len(l.State().Members) != MaxMembers {
		b.Fatal("membership drifted")
	}
}

// BenchmarkLogSize1000 reports the encoded size of a 1,000-member group's
// log: created with all members at once (log-bytes), and grown by 999
// single adds (log-bytes-adds), and how long a new member takes to load
// the latter (ns/op).
func BenchmarkLogSize1000(b *testing.B) {
	_, l := bigGroup(b)
	enc, err := l.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	a := account(b, 0)
	grown, _, _, err := NewGroup(a, Info{Name: "grown"}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < MaxMembers-1; i++ {
		var id identity.AccountID
		id[0], id[1], id[2] = 2, byte(i>>8), byte(i)
		if _, _, err := grown.Propose(a, Change{Kind: OpAdd, Members: []identity.AccountID{id}}); err != nil {
			b.Fatal(err)
		}
	}
	encGrown, err := grown.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Unmarshal(encGrown); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(enc)), "log-bytes")
	b.ReportMetric(float64(len(encGrown)), "log-bytes-adds")
}
