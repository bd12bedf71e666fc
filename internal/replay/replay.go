// Package replay rejects replays: Cache is a bounded, time-limited set of
// seen tags in memory (signed mailbox requests); KeyLog and Dir keep the
// replay tags of onion layers per onion key in files, so they survive a
// restart of the node.
package replay

import (
	"sync"
	"time"
)

// Cache remembers tags until their expiry. When full, expired entries are
// swept; if it is still full, an arbitrary sixteenth of the live entries is
// evicted. Refusing every new tag instead would let anyone who can mint
// signed requests (every mailbox key is free) lock all users out; eviction
// means that under such a flood an old request might be replayed, which
// signatures valid for 3 minutes around their timestamp
// (mailbox.Verify) keep short-lived.
type Cache struct {
	mu   sync.Mutex
	max  int
	seen map[[32]byte]time.Time
}

// New makes a cache holding at most max tags.
func New(max int) *Cache {
	return &Cache{max: max, seen: make(map[[32]byte]time.Time)}
}

// Add records tag until expires and reports whether it was new. A tag seen
// before (and not yet expired) returns false.
func (c *Cache) Add(tag [32]byte, expires, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[tag]; ok && exp.After(now) {
		return false
	}
	if len(c.seen) >= c.max {
		for k, exp := range c.seen {
			if !exp.After(now) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= c.max {
			drop := max(1, c.max/16)
			for k := range c.seen {
				if drop == 0 {
					break
				}
				delete(c.seen, k)
				drop--
			}
		}
		if c.max <= 0 {
			return false
		}
	}
	c.seen[tag] = expires
	return true
}

// Len is the number of tags held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
