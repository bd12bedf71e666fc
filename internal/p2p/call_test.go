package p2p_test

import (
	"bufio"
	"context"
	"github.com/libp2p/go-libp2p/core/network"
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

// BenchmarkPersistentStream is the round trip of one frame each way on a
// stream kept open, for comparison with BenchmarkCall's stream per call.
func BenchmarkPersistentStream(b *testing.B) {
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	srv, err := p2p.NewNodeHost(priv, []string{"/ip4/127.0.0.1/tcp/0"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	srv.SetStreamHandler("/benchp/1", func(s network.Stream) {
		r := bufio.NewReader(s)
		for {
			if _, _, err := wire.ReadFrame(r, 1<<20); err != nil {
				s.Reset()
				return
			}
			if err := wire.WriteFrame(s, wire.KindNodesResp, &wire.NodesResp{}); err != nil {
				return
			}
		}
	})
	cli, err := p2p.NewClientHost()
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	if err := cli.Connect(context.Background(), peer.AddrInfo{ID: srv.ID(), Addrs: srv.Addrs()}); err != nil {
		b.Fatal(err)
	}
	s, err := cli.NewStream(context.Background(), srv.ID(), "/benchp/1")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := bufio.NewReader(s)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := wire.WriteFrame(s, wire.KindNodesReq, &wire.NodesReq{}); err != nil {
			b.Fatal(err)
		}
		var resp wire.NodesResp
		if err := wire.Read(r, 1<<20, wire.KindNodesResp, &resp); err != nil {
			b.Fatal(err)
		}
	}
}
