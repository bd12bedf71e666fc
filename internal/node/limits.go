package node

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// rateLimit is a token bucket per peer: rate tokens a second, up to burst.
// Peers that go quiet are forgotten, so the map stays as small as the set
// of peers sending.
type rateLimit struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu    sync.Mutex
	peers map[peer.ID]*bucket
	swept time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimit(rate float64, burst int, now func() time.Time) *rateLimit {
	return &rateLimit{rate: rate, burst: float64(burst), now: now, peers: make(map[peer.ID]*bucket)}
}

// allow takes cost tokens from p's bucket and reports whether it had them.
// A request that costs more than the whole burst is allowed only from a
// full bucket, which it empties.
func (l *rateLimit) allow(p peer.ID, cost int) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for id, b := range l.peers {
			if now.Sub(b.last) > time.Minute {
				delete(l.peers, id)
			}
		}
		l.swept = now
	}
	b := l.peers[p]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.peers[p] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	c := float64(cost)
	if c > l.burst {
		if b.tokens < l.burst {
			return false
		}
		c = l.burst
	}
	if b.tokens < c {
		return false
	}
	b.tokens -= c
	return true
}
