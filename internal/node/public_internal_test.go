package node

import (
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// TestReplicaPublicNamespaceChecked: a replicated or repaired message in
// a public namespace must carry the mailbox key's signature too, so a
// malicious node cannot fill it by replication.
func TestReplicaPublicNamespaceChecked(t *testing.T) {
	n := &Node{cfg: Config{Now: time.Now}}
	owner, _ := mailbox.NewKey()
	other, _ := mailbox.NewKey()
	id := owner.ID()
	ts := time.Now().UnixMilli()
	exp := ts + time.Hour.Milliseconds()
	msg := func(ns int32, data []byte) *wire.Message {
		h := swarm.MessageHash(id, ns, ts, exp, data)
		return &wire.Message{Hash: h[:], Mailbox: id[:], Namespace: ns, Timestamp: ts, Expiry: exp, Data: data}
	}
	if _, err := n.fromWire(msg(wire.PublicNamespace, owner.SignPublic(ts, exp, []byte("bundle")))); err != nil {
		t.Fatalf("the owner's message: %v", err)
	}
	if _, err := n.fromWire(msg(wire.PublicNamespace, other.SignPublic(ts, exp, []byte("junk")))); err == nil {
		t.Fatal("a replica signed by another key was accepted")
	}
	if _, err := n.fromWire(msg(wire.PublicNamespace, make([]byte, 100))); err == nil {
		t.Fatal("an unsigned replica was accepted")
	}
	if _, err := n.fromWire(msg(0, []byte("private namespace: no signature needed"))); err != nil {
		t.Fatalf("a private-namespace replica: %v", err)
	}
}
