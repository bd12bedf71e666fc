package swarmclient

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/files"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/wire"
)

// The client is a files.Net: each share request goes to its node through
// the client's transport (an onion path whose exit is that node).
var _ files.Net = (*Client)(nil)

// ShareNodes is the IDs of the nodes of the list, to place shares on.
func (c *Client) ShareNodes() [][]byte {
	var out [][]byte
	for _, n := range c.Nodes() {
		out = append(out, []byte(n.ID))
	}
	return out
}

// node finds a node of the list by its ID bytes.
func (c *Client) nodeByID(id []byte) (*member.Node, error) {
	pid, err := peer.IDFromBytes(id)
	if err != nil {
		return nil, fmt.Errorf("share node: %w", err)
	}
	for _, n := range c.Nodes() {
		if n.ID == pid {
			return n, nil
		}
	}
	return nil, fmt.Errorf("node %s is not in the node list", pid.ShortString())
}

// PutShare stores one share on node.
func (c *Client) PutShare(ctx context.Context, node []byte, req *wire.SharePutReq) (*wire.SharePutResp, error) {
	n, err := c.nodeByID(node)
	if err != nil {
		return nil, err
	}
	var resp wire.SharePutResp
	if err := c.call(ctx, n, wire.KindSharePutReq, req, wire.KindSharePutResp, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// GetShare reads one share from node (the caller checks it).
func (c *Client) GetShare(ctx context.Context, node []byte, a files.Address) ([]byte, error) {
	n, err := c.nodeByID(node)
	if err != nil {
		return nil, err
	}
	var resp wire.ShareGetResp
	if err := c.call(ctx, n, wire.KindShareGetReq, &wire.ShareGetReq{Addr: a[:]}, wire.KindShareGetResp, &resp); err != nil {
		return nil, err
	}
	return resp.Data, nil
}

// VerifyReceipt checks node's signature over files.ReceiptMessage
// (VerifyShareReceipt).
func (c *Client) VerifyReceipt(node []byte, a files.Address, expiry int64, sig []byte) bool {
	id, err := peer.IDFromBytes(node)
	if err != nil {
		return false
	}
	return VerifyShareReceipt(id, a, expiry, sig) == nil
}
