package membership

import (
	"encoding/binary"
	"testing"

	"github.com/umbra-im/umbra/internal/identity"
)

// account returns a deterministic test account.
func account(t testing.TB, n int) *identity.Account {
	t.Helper()
	seed := make([]byte, identity.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(n)+1)
	a, err := identity.FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func accounts(t testing.TB, from, n int) []*identity.Account {
	out := make([]*identity.Account, n)
	for i := range out {
		out[i] = account(t, from+i)
	}
	return out
}

func idsOf(as ...*identity.Account) []identity.AccountID {
	out := make([]identity.AccountID, len(as))
	for i, a := range as {
		out[i] = a.ID()
	}
	return out
}

// clone copies a log through Marshal/Unmarshal, with the secrets held.
func clone(t testing.TB, l *Log) *Log {
	t.Helper()
	b, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// network is a test group: a replica log per account, and the pairwise
// delivery of epoch secrets (opHash -> recipient -> secret).
type network struct {
	t       testing.TB
	logs    map[identity.AccountID]*Log
	secrets map[[32]byte]map[identity.AccountID][]byte
}

func newNetwork(t testing.TB, creator *identity.Account, admins, members []*identity.Account) (*network, *Op) {
	t.Helper()
	l, g, secret, err := NewGroup(creator, Info{Name: "test group"}, idsOf(admins...), idsOf(members...))
	if err != nil {
		t.Fatal(err)
	}
	n := &network{t: t, logs: map[identity.AccountID]*Log{creator.ID(): l},
		secrets: map[[32]byte]map[identity.AccountID][]byte{}}
	n.send(g.Hash(), secret, append(idsOf(admins...), idsOf(members...)...))
	for _, a := range append(admins, members...) {
		if a.ID() != creator.ID() {
			n.logs[a.ID()] = clone(t, l)
		}
	}
	n.deliver()
	return n, g
}

// send records a secret sent pairwise to recipients.
func (n *network) send(op [32]byte, secret []byte, to []identity.AccountID) {
	m := n.secrets[op]
	if m == nil {
		m = map[identity.AccountID][]byte{}
		n.secrets[op] = m
	}
	for _, id := range to {
		m[id] = secret
	}
}

// deliver hands every replica the secrets sent to it for ops in its log.
func (n *network) deliver() {
	for id, l := range n.logs {
		for op, m := range n.secrets {
			if s, ok := m[id]; ok {
				if known, _ := l.Status(op); known {
					if err := l.ReceiveSecret(op, s); err != nil {
						n.t.Fatal(err)
					}
				}
			}
		}
	}
}

// propose makes a change on a's replica and sends its secret the way the
// engine would: a fresh secret to the members remaining in a's view, a
// ratcheted one to the new members (who also get a copy of the log).
func (n *network) propose(a *identity.Account, c Change) (*Op, error) {
	l := n.logs[a.ID()]
	op, secret, err := l.Propose(a, c)
	if err != nil {
		return nil, err
	}
	switch c.Kind {
	case OpRemove, OpRekey:
		var to []identity.AccountID
		for id := range l.State().Members {
			to = append(to, id)
		}
		n.send(op.Hash(), secret, to)
	case OpAdd:
		n.send(op.Hash(), secret, c.Members)
		for _, id := range c.Members {
			if _, ok := n.logs[id]; !ok {
				n.logs[id] = clone(n.t, l)
			}
		}
	}
	n.deliver()
	return op, nil
}

// sync applies every op of from's replica to to's.
func (n *network) sync(to, from identity.AccountID) {
	dst, src := n.logs[to], n.logs[from]
	for _, e := range src.order {
		if _, err := dst.Apply(e.op); err != nil {
			n.t.Fatal(err)
		}
	}
	n.deliver()
}

// syncAll merges every replica with every other.
func (n *network) syncAll() {
	for a := range n.logs {
		for b := range n.logs {
			if a != b {
				n.sync(a, b)
			}
		}
	}
	for a := range n.logs {
		for b := range n.logs {
			if a != b {
				n.sync(a, b)
			}
		}
	}
}
