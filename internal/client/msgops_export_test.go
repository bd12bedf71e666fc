package client

import (
	"context"
	"encoding/hex"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
)

// SendRawOp queues a content of any kind with any targets to peer, without
// the checks React, Edit and Delete make: what a hostile client could send
// (for tests).
func (e *Engine) SendRawOp(ctx context.Context, peer string, kind envelope.Kind, body []byte, refs ...string) error {
	aid, err := identity.ParseAccountID(peer)
	if err != nil {
		return err
	}
	c, err := envelope.NewContent(nil, kind, body, e.clock())
	if err != nil {
		return err
	}
	for _, r := range refs {
		b, err := hex.DecodeString(r)
		if err != nil {
			return err
		}
		c.Refs = append(c.Refs, b)
	}
	return e.enqueue(ctx, aid, c, nil)
}
