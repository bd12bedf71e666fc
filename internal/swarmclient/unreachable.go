package swarmclient

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/wire"
)

// Unreachable nodes are remembered, also across runs (in the kept node
// list), so that a command does not pay a dead node's timeout again and
// again: a store asks them last, after every member that answered lately
// (issue 11, lab finding 4: each CLI command paid 5–10 s per dead node it
// asked). Only failures to reach a node count (no connection, no answer,
// "next hop unreachable"), never an answer from the node itself, and a
// success clears the mark. The memory only reorders: a node is never left
// out for it, so a wrong mark costs nothing but order.
const (
	// UnreachableFor is how long a node that could not be reached is
	// asked last.
	UnreachableFor = 10 * time.Minute
	// maxUnreachable bounds the marks kept (a list holds at most a few
	// thousand nodes; the oldest mark goes first).
	maxUnreachable = 4096
)

// unreachable is the set of recently unreachable nodes and when each was
// found so.
type unreachable struct {
	mu sync.Mutex
	at map[peer.ID]time.Time
}

func (u *unreachable) mark(id peer.ID, now time.Time) (added bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.at == nil {
		u.at = make(map[peer.ID]time.Time)
	}
	_, had := u.at[id]
	if !had && len(u.at) >= maxUnreachable {
		var oldest peer.ID
		var ot time.Time
		for k, t := range u.at {
			if oldest == "" || t.Before(ot) {
				oldest, ot = k, t
			}
		}
		delete(u.at, oldest)
	}
	u.at[id] = now
	return !had
}

func (u *unreachable) clear(id peer.ID) (removed bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, had := u.at[id]
	delete(u.at, id)
	return had
}

// recent reports whether id was found unreachable within UnreachableFor.
func (u *unreachable) recent(id peer.ID, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.at[id]
	return ok && now.Sub(t) < UnreachableFor && !t.After(now.Add(maxClockSkew))
}

// snapshot is the marks still recent at now, for the kept list (unix ms by
// peer ID).
func (u *unreachable) snapshot(now time.Time) map[string]int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]int64{}
	for id, t := range u.at {
		if now.Sub(t) < UnreachableFor {
			out[id.String()] = t.UnixMilli()
		}
	}
	return out
}

// restore takes the marks of a kept list.
func (u *unreachable) restore(m map[string]int64, now time.Time) {
	for s, ms := range m {
		id, err := peer.Decode(s)
		if err != nil {
			continue
		}
		if t := time.UnixMilli(ms); now.Sub(t) < UnreachableFor && !t.After(now.Add(maxClockSkew)) {
			u.mark(id, t)
		}
	}
}

// lastIfUnreachable reorders nodes (in place, stably) so that those found
// unreachable lately come last.
func (c *Client) lastIfUnreachable(nodes []*member.Node) {
	now := c.clock()
	slices.SortStableFunc(nodes, func(a, b *member.Node) int {
		ua, ub := c.down.recent(a.ID, now), c.down.recent(b.ID, now)
		switch {
		case ua == ub:
			return 0
		case ua:
			return 1
		}
		return -1
	})
}

// noted records what a call to n says about n's reachability, and keeps
// the list (OnRefresh) when the set of marks changed.
func (c *Client) noted(n *member.Node, err error) {
	var changed bool
	switch {
	case err == nil:
		changed = c.down.clear(n.ID)
	case c.unreachableErr(err):
		changed = c.down.mark(n.ID, c.clock())
	}
	if changed && c.onRefresh != nil {
		c.onRefresh(c.NodeList())
	}
}

// unreachableErr reports whether err says the node could not be reached,
// as opposed to an answer from it or a cancelled call: through onion
// paths, the relays said so or the exit was silent on two paths; direct,
// any failure that is not an answer.
func (c *Client) unreachableErr(err error) bool {
	if c.paths != nil {
		return errors.Is(err, onion.ErrExitUnreachable)
	}
	var we *wire.Error
	return !errors.Is(err, context.Canceled) && !errors.As(err, &we)
}

// clock is c.now, or the wall clock for a Client made without Dial.
func (c *Client) clock() time.Time {
	if c.now == nil {
		return time.Now()
	}
	return c.now()
}
