package client

import (
	"strings"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
)

// GroupBoxKeys are the keys of the mailboxes of a group that this engine
// reads now: every epoch secret it holds, in this time epoch and the one
// before (for tests and benchmarks that look at what the nodes hold).
func (e *Engine) GroupBoxKeys(gid string) []*mailbox.Key {
	e.gmu.Lock()
	defer e.gmu.Unlock()
	gs, err := e.loadGroupLocked(gid)
	if err != nil || gs == nil {
		return nil
	}
	te := groupTE(e.now())
	var out []*mailbox.Key
	for _, bx := range gs.meta.Boxes {
		for _, t := range []uint64{te, te - 1} {
			k, _ := boxKey(bx.Secret, t)
			out = append(out, k)
		}
	}
	return out
}

// GroupChains lists, for a group, the member of each chain this engine
// holds by the index of chains by member, and how many chain records it
// holds (for tests).
func (e *Engine) GroupChains(gid string) (members []string, records int) {
	idx := groupChainPre + "m/" + gid + "/"
	keys, _ := e.kv.List(idx)
	for _, k := range keys {
		m, _, _ := strings.Cut(strings.TrimPrefix(k, idx), "/")
		members = append(members, m)
	}
	recs, _ := e.kv.List(groupChainPre + gid + "/")
	return members, len(recs)
}

// GroupHeld is how many group messages this engine keeps aside until their
// chains come (for tests).
func (e *Engine) GroupHeld(gid string) int {
	keys, _ := e.kv.List(groupHeldPre + gid + "/")
	return len(keys)
}

// DropFormerChainsAt runs the clean-up of former members' chains as if
// it were at (for tests: the 48 h a former member's chain is kept).
func (e *Engine) DropFormerChainsAt(gid string, at time.Time) error {
	e.gmu.Lock()
	defer e.gmu.Unlock()
	gs, err := e.loadGroupLocked(gid)
	if err != nil || gs == nil {
		return err
	}
	return e.dropFormerChains(gs, gs.log.State(), at)
}
