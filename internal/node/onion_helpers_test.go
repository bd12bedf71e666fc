package node_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/wire"
)

// onionProto is the session protocol onion packets travel on.
var onionProto = p2p.Proto{ID: wire.ProtoOnionSession, MaxReq: onion.MaxPacket + 64, MaxResp: onion.MaxPacket + 64}

// onionClient sends hand-built onion packets from a throwaway host (its
// own peer ID: a "previous hop" to the node it sends to).
type onionClient struct {
	h    host.Host
	pool *p2p.Pool
}

func newOnionClient(t testing.TB) *onionClient {
	t.Helper()
	h, err := p2p.NewClientHost()
	if err != nil {
		t.Fatal(err)
	}
	c := &onionClient{h: h, pool: p2p.NewPool(h, p2p.PoolOptions{})}
	t.Cleanup(func() {
		c.pool.Close()
		h.Close()
	})
	return c
}

// hop is nd as a client would know it from nd's own current record.
func (c *onionClient) hop(t testing.TB, nd *node.Node) onion.Hop {
	t.Helper()
	rec, ok := nd.Table().Get(nd.ID())
	if !ok {
		t.Fatalf("node %s has no record of itself", nd.ID())
	}
	c.h.Peerstore().AddAddrs(nd.ID(), rec.Addrs, time.Hour)
	return onion.Hop{ID: []byte(nd.ID()), OnionKey: rec.Record.OnionKey}
}

// send sends a packet to its first hop and returns the reply packet.
func (c *onionClient) send(ctx context.Context, to peer.ID, pkt []byte) ([]byte, error) {
	var out wire.OnionPacket
	err := c.pool.Call(ctx, to, onionProto, wire.KindOnion, &wire.OnionPacket{Data: pkt}, wire.KindOnion, &out)
	return out.Data, err
}

// roundTrip builds request for path, sends it and opens the reply.
func (c *onionClient) roundTrip(ctx context.Context, t testing.TB, path []onion.Hop, request []byte) ([]byte, error) {
	t.Helper()
	pkt, circ, err := onion.Build(path, request)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := c.send(ctx, peer.ID(path[0].ID), pkt)
	if err != nil {
		return nil, err
	}
	return circ.Open(reply)
}

// junkRequest is a request the exit refuses at once with a small 400
// answer (an unknown kind): the cheapest full round trip.
func junkRequest() []byte {
	b := make([]byte, 64)
	rand.Read(b)
	b[0] = 0xee
	return b
}

// longPoll is a freshly signed retrieve of an empty mailbox that waits up
// to wait at the exit.
func longPoll(t testing.TB, wait time.Duration) []byte {
	t.Helper()
	key, err := mailbox.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	id := key.ID()
	req := &wire.RetrieveReq{Mailbox: id[:], WaitMs: wait.Milliseconds()}
	req.Auth.Timestamp, req.Auth.Sig = key.Sign(mailbox.MethodRetrieve, time.Now(), req.AuthFields())
	b, err := wire.EncodeMsg(wire.KindRetrieveReq, req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wireCode is the code of a wire error in err's chain (0 if none).
func wireCode(err error) int {
	var we *wire.Error
	if errorsAs(err, &we) {
		return int(we.Code)
	}
	return 0
}

// eventually is waitFor for tests and benchmarks.
func eventually(t testing.TB, d time.Duration, f func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
