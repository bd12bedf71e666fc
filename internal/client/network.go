package client

import (
	"context"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

// Network is what the engine needs of the network to send and receive:
// store, read (long-polling), delete, publish and read public data, and
// keep its node list fresh. *swarmclient.Client is the real one; tests
// inject an in-memory swarm (internal/memswarm) through Config.Network.
type Network interface {
	// PutReq stores a prepared message in its mailbox's swarm.
	PutReq(ctx context.Context, req *wire.StoreReq) (*swarmclient.PutResult, error)
	// Get reads every message of key's mailbox; with none there and
	// wait > 0, it waits that long for one to land.
	Get(ctx context.Context, key *mailbox.Key, wait time.Duration) ([]swarmclient.Message, error)
	// GetSince reads what key's mailbox got since cur (everything for a
	// new cursor) without deleting it, waiting up to wait for something
	// new (a group's mailbox, which every member reads).
	GetSince(ctx context.Context, key *mailbox.Key, cur *swarmclient.DropCursor, wait time.Duration) ([]swarmclient.Message, error)
	// Delete removes messages from key's mailbox.
	Delete(ctx context.Context, key *mailbox.Key, hashes [][32]byte) (int, error)
	// Publish stores data, signed by key, in its mailbox's public namespace.
	Publish(ctx context.Context, key *mailbox.Key, ttl time.Duration, data []byte) (*swarmclient.PutResult, error)
	// ReadPublic reads a mailbox's public namespace.
	ReadPublic(ctx context.Context, mb mailbox.ID) ([]swarmclient.Message, error)
	// ReadDropSince reads a drop mailbox's entries new since cur (every
	// entry for a new cursor); with none and wait > 0, it waits that long
	// for one.
	ReadDropSince(ctx context.Context, mb mailbox.ID, cur *swarmclient.DropCursor, wait time.Duration) ([]swarmclient.Message, error)
	// Refresh refreshes the node list.
	Refresh(ctx context.Context) error
	// Close ends the network client.
	Close() error
}

var _ Network = (*swarmclient.Client)(nil)

// nodeNetwork is what only a network of real nodes has: a node list,
// swarms, onion paths and their guards. The engine's status and guard
// keeping use it when the network has it; an injected network need not.
type nodeNetwork interface {
	Nodes() []*member.Node
	Swarm(mb mailbox.ID) []*member.Node
	Paths() *onion.PathManager
	Call(ctx context.Context, n *member.Node, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error
}

var _ nodeNetwork = (*swarmclient.Client)(nil)

// nodes is the engine's network of real nodes, nil when it has none
// (offline, or an injected network).
func (e *Engine) nodes() nodeNetwork {
	n, _ := e.net.(nodeNetwork)
	return n
}

// paths is the onion path manager in use, nil in direct mode or without
// real nodes.
func (e *Engine) paths() *onion.PathManager {
	if n := e.nodes(); n != nil {
		return n.Paths()
	}
	return nil
}
