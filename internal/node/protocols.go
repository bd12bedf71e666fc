package node

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/wire"
)

// The session protocols this node calls other nodes on, with their frame
// limits.
var (
	sessReplicate = p2p.Proto{ID: wire.ProtoReplicateSession, MaxReq: wire.MaxFrame, MaxResp: wire.MaxFrame}
	sessSync      = p2p.Proto{ID: wire.ProtoSyncSession, MaxReq: wire.MaxFrame, MaxResp: wire.MaxFrame}
	sessOnion     = p2p.Proto{ID: wire.ProtoOnionSession, MaxReq: onion.MaxPacket + 64, MaxResp: onion.MaxPacket + 64}
)

// nodeMaxSessions bounds the sessions this node opens to one peer on one
// protocol: a second opens only when the first has p2p.DefaultMaxInflight
// calls in flight (onion long-polls relayed to one next hop).
const nodeMaxSessions = 4

// What a node serves another node on a node protocol (and onion, where
// nodes relay): twice the sessions its pool opens, and as many requests in
// flight as those sessions carry. A client on onion/2 or store/2 gets the
// p2p defaults (2 sessions' worth); every peer is also held to its
// address's and subnet's share of the server (p2p.DefaultMaxInflightPerIP).
const (
	nodeMaxPerPeer      = 2 * nodeMaxSessions
	nodeMaxPeerInflight = nodeMaxSessions * p2p.DefaultMaxInflight
)

// learnAddrs teaches the peerstore a node's addresses from its record,
// before a session to it is opened.
func (n *Node) learnAddrs(p peer.ID) {
	if rec, ok := n.table.Get(p); ok {
		n.host.Peerstore().AddAddrs(p, rec.Addrs, n.cfg.RecordTTL)
	}
}

// fail is a handler's answer refusing a request.
func fail(e *wire.Error) (wire.Kind, any) { return wire.KindError, e }
