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

// SendRawText queues a text with the given message ID (hex) to peer,
// without storing it on this side (for tests: a text that arrives after
// actions on it).
func (e *Engine) SendRawText(ctx context.Context, peer, id, text string) error {
	aid, err := identity.ParseAccountID(peer)
	if err != nil {
		return err
	}
	c, err := envelope.NewContent(nil, envelope.KindText, []byte(text), e.clock())
	if err != nil {
		return err
	}
	if c.ID, err = hex.DecodeString(id); err != nil {
		return err
	}
	return e.enqueue(ctx, aid, c, nil)
}
