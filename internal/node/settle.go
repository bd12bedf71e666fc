package node

import (
	"sync"
	"time"
)

// changeLog remembers when each mailbox last changed at this node, so that
// anti-entropy can leave alone mailboxes with writes still in flight: their
// replicas differ for a few milliseconds by design, and comparing them while
// they settle would only exchange hash lists for nothing. A mailbox that
// keeps changing is still synced at least every force interval.
type changeLog struct {
	settle, force time.Duration

	mu      sync.Mutex
	changed map[[32]byte]time.Time
	synced  map[[32]byte]time.Time
}

func newChangeLog(settle, force time.Duration) *changeLog {
	return &changeLog{settle: settle, force: force,
		changed: make(map[[32]byte]time.Time), synced: make(map[[32]byte]time.Time)}
}

// touch records a change of mb at now.
func (c *changeLog) touch(mb [32]byte, now time.Time) {
	c.mu.Lock()
	c.changed[mb] = now
	c.mu.Unlock()
}

// settled reports whether mb may be compared now: it has not changed within
// the settle window, or it has not been compared for the force interval.
func (c *changeLog) settled(mb [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.changed[mb]
	if !ok || now.Sub(t) >= c.settle {
		return true
	}
	return now.Sub(c.synced[mb]) >= c.force
}

// markSynced records that mb was offered for comparison at now.
func (c *changeLog) markSynced(mb [32]byte, now time.Time) {
	c.mu.Lock()
	c.synced[mb] = now
	c.mu.Unlock()
}

// prune forgets mailboxes that have settled and were synced since.
func (c *changeLog) prune(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for mb, t := range c.changed {
		if now.Sub(t) >= c.settle {
			delete(c.changed, mb)
		}
	}
	for mb, t := range c.synced {
		if now.Sub(t) >= c.force {
			delete(c.synced, mb)
		}
	}
}
