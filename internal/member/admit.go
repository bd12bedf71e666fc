package member

import (
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrNotAdmitted is returned for a valid record of a node the table's
// admission rule (SetAdmit) refuses: on a private network, a node that is
// not on the operator's allow-list.
var ErrNotAdmitted = errors.New("node not admitted to this network")

// SetAdmit sets the rule that decides which nodes the table takes records
// of (nil: every node, as on a public network). Records of refused nodes
// are ignored by Offer, Upsert, Restore and Delta. It does not drop
// records already held: call Purge after changing what the rule admits.
// The rule is called with the table locked and must not call the table.
func (t *Table) SetAdmit(admit func(peer.ID) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.admit = admit
}

func (t *Table) admitted(id peer.ID) bool {
	t.mu.RLock()
	a := t.admit
	t.mu.RUnlock()
	return a == nil || a(id)
}

// Purge drops every record, verified or pending, of a node the admission
// rule now refuses, and returns the verified nodes it dropped.
func (t *Table) Purge() []peer.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.admit == nil {
		return nil
	}
	var out []peer.ID
	for id := range t.nodes {
		if !t.admit(id) {
			delete(t.nodes, id)
			delete(t.ages, id)
			out = append(out, id)
		}
	}
	for id := range t.pend {
		if !t.admit(id) {
			t.dropPendingLocked(id)
		}
	}
	if len(out) > 0 {
		t.bump()
	}
	return out
}

func (t *Table) admittedLocked(id peer.ID) bool { return t.admit == nil || t.admit(id) }
