package node

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/wire"
)

// The session protocols this node calls other nodes on, with the one-shot
// protocol each falls back to for older peers and the frame limits.
var (
	sessReplicate = p2p.Proto{ID: wire.ProtoReplicateSession, Legacy: wire.ProtoReplicate, MaxReq: wire.MaxFrame, MaxResp: wire.MaxFrame}
	sessSync      = p2p.Proto{ID: wire.ProtoSyncSession, Legacy: wire.ProtoSync, MaxReq: wire.MaxFrame, MaxResp: wire.MaxFrame}
	sessOnion     = p2p.Proto{ID: wire.ProtoOnionSession, Legacy: wire.ProtoOnion, MaxReq: onion.MaxPacket + 64, MaxResp: onion.MaxPacket + 64}
)

// nodeMaxSessions bounds the sessions this node opens to one peer on one
// protocol: a second opens only when the first has p2p.DefaultMaxInflight
// calls in flight (onion long-polls relayed to one next hop).
const nodeMaxSessions = 4

// learnAddrs teaches the peerstore a node's addresses from its record,
// before a session to it is opened.
func (n *Node) learnAddrs(p peer.ID) {
	if rec, ok := n.table.Get(p); ok {
		n.host.Peerstore().AddAddrs(p, rec.Addrs, n.cfg.RecordTTL)
	}
}

// fail is a handler's answer refusing a request.
func fail(e *wire.Error) (wire.Kind, any) { return wire.KindError, e }
