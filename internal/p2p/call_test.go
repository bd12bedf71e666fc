package p2p_test

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/wire"
)

func BenchmarkCall(b *testing.B) {
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	srv, err := p2p.NewNodeHost(priv, []string{"/ip4/127.0.0.1/tcp/0"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	p2p.Handle(srv, "/bench/1", 10e9, 1<<20, func(s *p2p.Stream, k wire.Kind, body []byte) error {
		return s.Reply(wire.KindNodesResp, &wire.NodesResp{})
	})
	cli, err := p2p.NewClientHost()
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	if err := cli.Connect(context.Background(), peer.AddrInfo{ID: srv.ID(), Addrs: srv.Addrs()}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var resp wire.NodesResp
		if err := p2p.Call(context.Background(), cli, srv.ID(), "/bench/1", wire.KindNodesReq, &wire.NodesReq{}, wire.KindNodesResp, &resp, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
