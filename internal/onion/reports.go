package onion

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// What hops report about their next hop (a HopError: "next hop
// unreachable", "refused", "not a node"...). One report blames only its
// reporter: a guard's counts against its path bias and excludes the node
// it names for that call; a middle's makes the middle itself avoided for
// badFor. Were the named node avoided instead, one malicious relay could
// push honest nodes out of every path by naming them. But a node that is
// really down is named by every hop asked to reach it, and blaming each of
// them would push honest middles out instead (one per request to a dead
// exit). So when two distinct reporters name the same node within badFor,
// the node is taken as down: avoided in every role, requests to it as exit
// fail at once, and the middles that reported it are cleared. Two
// colluding relays on paths to an honest node can make a client avoid it
// for badFor; one cannot.
const (
	// corroborate is how many distinct reporters make a node down.
	corroborate = 2
	// maxReported bounds the nodes with reports kept (the client only
	// builds paths to nodes of its list, so this is never reached in
	// practice; it bounds the map anyway).
	maxReported = 1024
)

// report is one hop's claim that its next hop failed.
type report struct {
	by, named peer.ID
	guard     bool // the reporter is the path's first hop
}

// reported records r. A middle's report makes it suspect (avoided) unless
// the named node is found down, which clears every middle that reported
// it.
func (pm *PathManager) reported(r report) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	now := pm.now()
	if !r.guard {
		pm.suspect[r.by] = now
	}
	by := pm.reports[r.named]
	if by == nil {
		if len(pm.reports) >= maxReported {
			pm.sweepReportsLocked(now)
		}
		if len(pm.reports) >= maxReported {
			return
		}
		by = make(map[peer.ID]time.Time)
		pm.reports[r.named] = by
	}
	for k, t := range by {
		if now.Sub(t) > badFor {
			delete(by, k)
		}
	}
	by[r.by] = now
	if len(by) < corroborate {
		return
	}
	pm.down[r.named] = now
	for k := range by {
		delete(pm.suspect, k)
	}
}

func (pm *PathManager) sweepReportsLocked(now time.Time) {
	for named, by := range pm.reports {
		for k, t := range by {
			if now.Sub(t) > badFor {
				delete(by, k)
			}
		}
		if len(by) == 0 {
			delete(pm.reports, named)
		}
	}
}

// isDown reports whether id was named down by two reporters recently.
func (pm *PathManager) isDown(id peer.ID, now time.Time) bool {
	return recent(pm.down, id, now)
}

// Down reports whether id is taken as down (named by two reporters).
func (pm *PathManager) Down(id peer.ID) bool {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return pm.isDown(id, pm.now())
}

// recent reports whether m holds id from at most badFor ago, deleting an
// older entry.
func recent(m map[peer.ID]time.Time, id peer.ID, now time.Time) bool {
	t, ok := m[id]
	if ok && now.Sub(t) > badFor {
		delete(m, id)
		return false
	}
	return ok
}
