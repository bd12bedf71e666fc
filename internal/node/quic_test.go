package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
)

// TestNodesOverQUIC runs nodes that listen on QUIC only
// (/udp/0/quic-v1 on loopback): they find each other, their connections
// are QUIC, and a client stores and reads a message through them.
func TestNodesOverQUIC(t *testing.T) {
	tn := startNetCfg(t, 3, func(i int, c *node.Config) {
		c.Listen = []string{fmt.Sprintf("/ip4/127.0.%d.1/udp/0/quic-v1", i+1)}
	})
	for i, nd := range tn.nodes {
		if a := nd.Addrs(); len(a) != 1 || !strings.Contains(a[0], "/udp/") || !strings.Contains(a[0], "/quic-v1/p2p/") {
			t.Fatalf("node %d addrs = %v, want one QUIC address", i, a)
		}
		for _, c := range nd.Host().Network().Conns() {
			if !strings.HasSuffix(c.RemoteMultiaddr().String(), "/quic-v1") {
				t.Fatalf("node %d has a connection over %s", i, c.RemoteMultiaddr())
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := tn.client(ctx)
	key, _ := mailbox.NewKey()
	res, err := c.Put(ctx, key.ID(), 0, time.Hour, []byte("over quic"))
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	msgs, err := c.Get(ctx, key, 0)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(msgs) != 1 || string(msgs[0].Data) != "over quic" || msgs[0].Hash != res.Hash {
		t.Fatalf("get = %+v", msgs)
	}
}
