package node

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/privnet"
)

// On a private network (Config.Operator set) the node holds the newest
// allow-list signed by the operator that it has seen: from its store (the
// last run), from Config.AllowFile, or from a peer by gossip. Only nodes
// on it (and this node itself) enter the table; gossip with other peers
// carries the allow-list only; connections to them are not dialled, and a
// node removed from the list is dropped from the table, its connections
// closed and its new connections refused. Clients (not on any list) may
// still connect: they are served the client protocols only, which any
// peer may use.

const allowKey = "allow-list"

// maxRemembered bounds the removed nodes whose connections are refused.
const maxRemembered = 4 * privnet.MaxAllowNodes

type privState struct {
	mu      sync.RWMutex
	list    *privnet.AllowList
	raw     []byte
	removed map[peer.ID]bool // on an earlier list, not on the current one
	boot    map[peer.ID]bool // bootstrap nodes (the signed network file)
}

func (n *Node) private() bool { return len(n.cfg.Operator) != 0 }

// admit is the table's admission rule on a private network.
func (n *Node) admit(id peer.ID) bool {
	if id == n.self {
		return true
	}
	n.pn.mu.RLock()
	defer n.pn.mu.RUnlock()
	return n.pn.list.Allowed(id)
}

// allowList returns the signed list held and its version (0: none).
func (n *Node) allowList() ([]byte, uint64) {
	n.pn.mu.RLock()
	defer n.pn.mu.RUnlock()
	if n.pn.list == nil {
		return nil, 0
	}
	return n.pn.raw, n.pn.list.Version
}

// AllowVersion is the version of the allow-list the node holds (0: none).
func (n *Node) AllowVersion() uint64 {
	_, v := n.allowList()
	return v
}

func (n *Node) removedPeer(id peer.ID) bool {
	n.pn.mu.RLock()
	defer n.pn.mu.RUnlock()
	return n.pn.removed[id]
}

// loadAllow takes the list saved by the last run and the one in AllowFile,
// whichever is newer.
func (n *Node) loadAllow() {
	n.pn.boot = map[peer.ID]bool{}
	for _, b := range n.bootstrapPeers() {
		n.pn.boot[b.ID] = true
	}
	if b, ok, err := n.store.GetKV(allowKey); err == nil && ok {
		n.adoptAllow(b, "store")
	}
	n.readAllowFile()
	if _, v := n.allowList(); v == 0 {
		n.log.Warn("private network: no allow-list yet; waiting for one from the bootstrap nodes", "network", n.cfg.Params.Network)
	}
}

func (n *Node) readAllowFile() {
	st, err := os.Stat(n.cfg.AllowFile)
	if err != nil || st.Size() > privnet.MaxAllowBytes {
		return
	}
	b, err := os.ReadFile(n.cfg.AllowFile)
	if err != nil {
		return
	}
	n.adoptAllow(b, "file")
}

// allowFileLoop rereads AllowFile, so that an operator may hand a new
// list to any one node and gossip takes it to the others.
func (n *Node) allowFileLoop(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n.readAllowFile()
		}
	}
}

// adoptAllow takes a signed allow-list if it is newer than the one held
// and verifies against the operator key; it then drops the records of
// nodes no longer listed and closes their connections. It reports whether
// the list was taken.
func (n *Node) adoptAllow(raw []byte, from string) bool {
	if !n.private() || len(raw) == 0 {
		return false
	}
	v, err := privnet.PeekVersion(raw)
	if _, cur := n.allowList(); err != nil || v <= cur {
		return false
	}
	l, err := privnet.OpenAllowList(raw, n.cfg.Operator, n.cfg.Params.Network)
	if err != nil {
		n.log.Info("allow-list refused", "from", from, "err", err)
		return false
	}
	n.pn.mu.Lock()
	if n.pn.list != nil && n.pn.list.Version >= l.Version {
		n.pn.mu.Unlock()
		return false
	}
	var gone []peer.ID
	if n.pn.list != nil {
		for _, id := range n.pn.list.IDs() {
			if !l.Allowed(id) {
				gone = append(gone, id)
			}
		}
	}
	if n.pn.removed == nil || len(n.pn.removed)+len(gone) > maxRemembered {
		n.pn.removed = map[peer.ID]bool{}
	}
	for _, id := range gone {
		n.pn.removed[id] = true
	}
	for _, id := range l.IDs() {
		delete(n.pn.removed, id)
	}
	n.pn.list, n.pn.raw = l, raw
	n.pn.mu.Unlock()

	if err := n.store.SetKV(allowKey, raw); err != nil {
		n.log.Warn("save allow-list", "err", err)
	}
	dropped := n.table.Purge()
	for _, id := range append(gone, dropped...) {
		if id != n.self {
			_ = n.host.Network().ClosePeer(id)
		}
	}
	n.log.Info("allow-list adopted", "from", from, "version", l.Version, "nodes", len(l.Nodes),
		"removed", len(gone), "dropped", len(dropped))
	if !l.Allowed(n.self) {
		n.log.Warn("this node is not on the network's allow-list; ask the operator to run: umbra network allow "+n.self.String(), "network", n.cfg.Params.Network)
	}
	n.gossipNews.Store(true) // pass it on within a round
	return true
}

// gater refuses, on a private network, connections to nodes that are not
// on the allow-list (nor bootstrap nodes of the signed network file), and
// any connection of a node removed from it.
type gater struct{ n *Node }

func (g gater) InterceptPeerDial(p peer.ID) bool {
	n := g.n
	if n.removedPeer(p) {
		return false
	}
	n.pn.mu.RLock()
	defer n.pn.mu.RUnlock()
	return n.pn.list.Allowed(p) || n.pn.boot[p]
}

func (g gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (g gater) InterceptAccept(network.ConnMultiaddrs) bool  { return true }
func (g gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

func (g gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	if g.n.removedPeer(p) {
		g.n.log.Debug("refused a connection of a removed node", "peer", p2p.ShortID(p))
		return false
	}
	return true
}
