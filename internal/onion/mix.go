package onion

import (
	"math/rand/v2"
	"time"
)

// MixDelays is how a client draws the mix delays of a path (Loopix,
// Piotrowska et al., USENIX Security 2017): every hop after the guard
// (the middle and the exit) holds the request for an independent delay
// drawn from an exponential distribution of mean Mean, capped at Max
// (itself at most MaxDelay). A packet's time through a relay is then
// memoryless: an observer who sees it arrive learns nothing of when it
// leaves from how long it has already been held.
type MixDelays struct {
	Mean time.Duration // mean delay per hop (before the cap)
	Max  time.Duration // cap per hop; 0 or above MaxDelay means MaxDelay
}

// DefaultMixDelays is the strict mode's choice: 300 ms per hop, capped
// at 5 s. (A read waits for every swarm member it asks, so it pays the
// largest of several draws: 500 ms put the end-to-end median above 5 s.)
var DefaultMixDelays = MixDelays{Mean: 300 * time.Millisecond, Max: MaxDelay}

// max is the cap actually applied.
func (m MixDelays) max() time.Duration {
	if m.Max <= 0 || m.Max > MaxDelay {
		return MaxDelay
	}
	return m.Max
}

// Draw draws one hop's delay: min(Exp(mean), cap), never negative. r is
// the source of randomness (nil: math/rand/v2's global source, seeded from
// the operating system).
func (m MixDelays) Draw(r *rand.Rand) time.Duration {
	if m.Mean <= 0 {
		return 0
	}
	e := rand.ExpFloat64
	if r != nil {
		e = r.ExpFloat64
	}
	d := time.Duration(e() * float64(m.Mean))
	return max(0, min(d, m.max()))
}

// Apply sets the delays of path: the guard (path[0]) gets none; every
// later hop gets a drawn delay, and Mix so that its layer carries the
// delay field even when the draw is 0.
func (m MixDelays) Apply(path []Hop, r *rand.Rand) {
	for i := 1; i < len(path); i++ {
		path[i].Delay, path[i].Mix = m.Draw(r), true
	}
}

// Allowance is the most the delays of a path of n hops can add to a
// request's round trip, for its timeout.
func (m MixDelays) Allowance(n int) time.Duration {
	if n <= 1 || m.Mean <= 0 {
		return 0
	}
	return time.Duration(n-1) * m.max()
}
