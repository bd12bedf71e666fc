package swarmclient

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/wire"
)

type source struct {
	id   peer.ID
	node *member.Node  // a known node: asked through the transport
	boot peer.AddrInfo // a bootstrap address: asked directly
}

// Call sends one request to node n through the client's transport.
func (c *Client) Call(ctx context.Context, n *member.Node, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error {
	return c.call(ctx, n, reqKind, req, respKind, resp)
}

func (c *Client) call(ctx context.Context, n *member.Node, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error {
	err := c.tr.Call(ctx, n, reqKind, req, respKind, resp)
	c.noted(n, err)
	return err
}

// bootstrapCall asks a bootstrap node for the node list directly, on a
// store session from a throwaway host of its own, so the bootstrap node
// cannot tie this fetch to the client's later onion traffic by peer ID.
func bootstrapCall(ctx context.Context, b peer.AddrInfo, resp *wire.NodesResp) error {
	h, err := p2p.NewClientHost()
	if err != nil {
		return err
	}
	defer h.Close()
	h.Peerstore().AddAddrs(b.ID, b.Addrs, time.Minute)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p2p.DefaultCallTimeout)
		defer cancel()
	}
	s, err := p2p.OpenSession(ctx, h, b.ID, storeProto, 1)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Call(ctx, wire.KindNodesReq, &wire.NodesReq{}, wire.KindNodesResp, resp)
}

// directTransport sends requests straight to the node, each node's on one
// session (a long-lived stream carrying pipelined requests) that the pool
// opens on first use; closing the host ends them.
type directTransport struct {
	h    host.Host
	pool *p2p.Pool
}

// storeProto is the client protocol on sessions.
var storeProto = p2p.Proto{ID: wire.ProtoStoreSession, MaxReq: wire.MaxClientRequest, MaxResp: wire.MaxFrame}

func newDirectTransport(h host.Host) *directTransport {
	return &directTransport{h: h, pool: p2p.NewPool(h, p2p.PoolOptions{})}
}

func (d *directTransport) Call(ctx context.Context, n *member.Node, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error {
	if d.h.Network().Connectedness(n.ID) != network.Connected {
		d.h.Peerstore().AddAddrs(n.ID, n.Addrs, time.Hour)
	}
	return d.pool.Call(ctx, n.ID, storeProto, reqKind, req, respKind, resp)
}
