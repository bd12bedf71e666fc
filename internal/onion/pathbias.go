package onion

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Path bias, after Tor's path-bias detection (proposal 209, path-spec
// "Path bias detection"): a guard that fails the circuits it does not like
// (those whose middle is not a colluder) steers its clients' traffic
// through colluders while every single failure looks like bad luck. So the
// client counts, per guard, the circuits it tried through it and those that
// came back through it intact, and replaces a guard whose success rate is
// too low.
//
// Tor starts judging after 150 circuits and scales at 300; a messenger
// client makes far fewer requests, so the numbers here are smaller.
const (
	// BiasMinAttempts is how many circuits a guard must have carried
	// before its success rate is judged.
	BiasMinAttempts = 20
	// BiasScaleAt: when a guard's attempts reach this, both counts are
	// halved, so recent circuits weigh more than old ones and a guard
	// that turns bad is caught within tens of circuits.
	BiasScaleAt = 100
	// BiasMinRate is the success rate below which a guard is replaced. A
	// guard that fails a fraction d of the circuits whose middle is
	// honest, with colluders a fraction f of the middles, succeeds on
	// f + (1-f)(1-d) of its circuits; staying at or above 1/2 caps the
	// colluders' share of its successful circuits at f/(1/2) = 2f, so a
	// guard can at most double what honest middle choice gives its
	// colluders. Honest failures (a middle that went down since the node
	// list was fetched) are far rarer than one in two: at a true failure
	// rate of 25% an honest guard falls below 1/2 after 20 circuits with
	// probability about 0.4%.
	BiasMinRate = 0.5
	// biasDropFor is how long a guard replaced for path bias is not
	// picked as a guard again.
	biasDropFor = 7 * 24 * time.Hour
	// maxDropped bounds the guards remembered as dropped.
	maxDropped = 64
)

// GuardStats is a guard's path-bias record: circuits attempted through it
// and those that came back through it with the middle's box intact
// (scaled down together as they grow).
type GuardStats struct {
	Attempts  float64
	Successes float64
}

// outcome is what one attempt says about its guard.
type outcome int

const (
	neutral outcome = iota // says nothing about the guard (the middle reported the exit down; the call was cancelled)
	success                // the reply came back with the guard's and the middle's boxes intact
	failure                // the guard reported its next hop down, sent an inner box that does not open, or did not answer
)

// GuardStats returns the path-bias record of guard id (false if id is not
// a current guard or has no record yet).
func (pm *PathManager) GuardStats(id peer.ID) (GuardStats, bool) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	st, ok := pm.bias[id]
	if !ok {
		return GuardStats{}, false
	}
	return *st, true
}

// guardOutcome records the outcome of an attempt through guard id, if id
// is one of the persistent guards, and replaces the guard if its success
// rate has fallen below BiasMinRate.
func (pm *PathManager) guardOutcome(id peer.ID, o outcome) {
	if o == neutral {
		return
	}
	defer pm.notify()
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if !slices.Contains(pm.guards, id) {
		return // a one-off first hop (the exit is a guard), or replaced already
	}
	st := pm.bias[id]
	if st == nil {
		st = &GuardStats{}
		pm.bias[id] = st
	}
	st.Attempts++
	if o == success {
		st.Successes++
		delete(pm.silentRuns, id)
	}
	if st.Attempts >= BiasMinAttempts && st.Successes < BiasMinRate*st.Attempts {
		now := pm.now()
		pm.removeGuardLocked(id)
		pm.dropLocked(id, now)
		return
	}
	if st.Attempts >= BiasScaleAt {
		st.Attempts /= 2
		st.Successes /= 2
	}
}

// dropLocked remembers that guard id was replaced for path bias, so it is
// not picked as a guard again for biasDropFor.
func (pm *PathManager) dropLocked(id peer.ID, now time.Time) {
	for k, t := range pm.dropped {
		if now.Sub(t) > biasDropFor {
			delete(pm.dropped, k)
		}
	}
	if len(pm.dropped) >= maxDropped {
		var oldest peer.ID
		var ot time.Time
		for k, t := range pm.dropped {
			if oldest == "" || t.Before(ot) {
				oldest, ot = k, t
			}
		}
		delete(pm.dropped, oldest)
	}
	pm.dropped[id] = now
}

// wasDropped reports whether id was replaced for path bias recently.
func (pm *PathManager) wasDropped(id peer.ID, now time.Time) bool {
	t, ok := pm.dropped[id]
	return ok && now.Sub(t) <= biasDropFor
}
