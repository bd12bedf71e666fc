package client

import (
	"github.com/libp2p/go-libp2p/core/peer"
)

// keyGuards holds the onion guards (peer IDs as text), kept across runs.
const keyGuards = "guards"

// keepGuards restores the guards of the last run into the path manager and
// saves them whenever they change, so the client keeps its two guards for
// as long as they stay healthy (as Tor and Session do): a client that picked
// new guards on every start would show itself to many more first hops.
func (e *Engine) keepGuards() {
	pm := e.paths()
	if pm == nil {
		return // direct mode, or no real nodes
	}
	var saved []string
	if ok, err := e.d.getJSON(keyGuards, &saved); err == nil && ok {
		var ids []peer.ID
		for _, s := range saved {
			if id, err := peer.Decode(s); err == nil {
				ids = append(ids, id)
			}
		}
		pm.SetGuards(ids)
	}
	pm.OnGuardsChange(func(g []peer.ID) {
		out := make([]string, len(g))
		for i, id := range g {
			out[i] = id.String()
		}
		if err := e.d.putJSON(keyGuards, out); err != nil {
			e.log.Warn("save guards", "err", err)
		}
	})
}

// Guards are the onion guards in use (none in direct mode).
func (e *Engine) Guards() []peer.ID {
	if pm := e.paths(); pm != nil {
		return pm.Guards()
	}
	return nil
}
