package onion

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
)

// Silence: a hop that takes a packet and never answers gives the client
// nothing to blame: any of guard, middle and exit may have swallowed it.
// Excluding only the middle for the rest of the call (as once done) left a
// silent guard in place for good: half of every request went into it and
// waited out an attempt, and path bias never counted it. So:
//
//   - A timed-out attempt excludes its guard and its middle for the rest
//     of the call, so the next attempt shares only the exit with it.
//   - Two timed-out attempts in one call share only the exit: the exit is
//     taken as down (as if two relays had reported it, reports.go) and the
//     call ends, so the caller asks another swarm node.
//   - An attempt that then succeeds clears the exit: the silence was the
//     guard's or the middle's. The silent attempt counts as a failure in
//     its guard's path-bias record, and implicates its middle; a middle
//     implicated through two different guards within badFor is avoided.
//   - A guard whose last silentRun attempts were all silent (each cleared
//     by a retry elsewhere, with no success through it in between) is
//     replaced at once, as one that does not answer at all is: path bias
//     alone would take 20 failures, at most one per exit per badFor.
//
// A malicious exit could drop the first copy of each request and answer
// the retry, to charge honest guards failures until path bias rotates them
// (hoping to become one). So an exit clears silent attempts at most once
// per badFor: one exit can cost the client's guards one failure per 30 s
// against the several successes its other requests bring in that time.
// One malicious guard cannot make an honest middle avoided: that takes
// silence through both guards.

// silenceExits bounds the exits remembered for their last clearing, and
// silenceMiddles the middles remembered with the guard that implicated
// them (sweeps keep both far below in practice).
const (
	silenceExits   = 1024
	silenceMiddles = 1024
	// silentRun is how many silent attempts in a row replace a guard.
	silentRun = 5
)

type implication struct {
	guard peer.ID
	at    time.Time
}

// silentExit takes exit as down after two silent attempts through disjoint
// guards and middles.
func (pm *PathManager) silentExit(exit peer.ID) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	pm.down[exit] = pm.now()
}

// cleared records that exit answered in a call where the attempts on paths
// silent timed out: their guards get a path-bias failure and their middles
// an implication, unless exit cleared silent paths within badFor already.
func (pm *PathManager) cleared(exit peer.ID, silent [][]*member.Node) {
	if len(silent) == 0 {
		return
	}
	pm.mu.Lock()
	now := pm.now()
	if recent(pm.clearedBy, exit, now) {
		pm.mu.Unlock()
		return
	}
	sweep(pm.clearedBy, silenceExits, now)
	pm.clearedBy[exit] = now
	for _, p := range silent {
		g, m := p[0].ID, p[1].ID
		if prev, ok := pm.implicated[m]; ok && prev.guard != g && now.Sub(prev.at) <= badFor {
			pm.suspect[m] = now
			delete(pm.implicated, m)
			continue
		}
		if len(pm.implicated) >= silenceMiddles {
			for k, v := range pm.implicated {
				if now.Sub(v.at) > badFor {
					delete(pm.implicated, k)
				}
			}
		}
		if len(pm.implicated) < silenceMiddles {
			pm.implicated[m] = implication{guard: g, at: now}
		}
	}
	pm.mu.Unlock()
	for _, p := range silent {
		pm.guardOutcome(p[0].ID, failure)
		pm.silentGuard(p[0].ID)
	}
}

// silentGuard counts a cleared silent attempt through guard g (a success
// through g resets the count, guardOutcome) and replaces g after
// silentRun in a row.
func (pm *PathManager) silentGuard(g peer.ID) {
	defer pm.notify()
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if !slices.Contains(pm.guards, g) {
		delete(pm.silentRuns, g)
		return
	}
	if pm.silentRuns[g]++; pm.silentRuns[g] >= silentRun {
		delete(pm.silentRuns, g)
		pm.bad[g] = pm.now()
		pm.removeGuardLocked(g)
	}
}

// sweep drops entries older than badFor from m once it holds max.
func sweep(m map[peer.ID]time.Time, max int, now time.Time) {
	if len(m) < max {
		return
	}
	for k, t := range m {
		if now.Sub(t) > badFor {
			delete(m, k)
		}
	}
	if len(m) >= max { // all recent: forget one
		for k := range m {
			delete(m, k)
			break
		}
	}
}
