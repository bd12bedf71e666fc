package p2p_test

import (
	"bufio"
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/wire"
)

// BenchmarkPersistentStream is the round trip of one frame each way on a
// raw stream kept open: the floor under BenchmarkSession.
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

func benchPair(b *testing.B) (srv, cli host.Host, s *p2p.Server) {
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	srv, err := p2p.NewNodeHost(priv, []string{"/ip4/127.0.0.1/tcp/0"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	cli, err = p2p.NewClientHost()
	if err != nil {
		b.Fatal(err)
	}
	if err := cli.Connect(context.Background(), peer.AddrInfo{ID: srv.ID(), Addrs: srv.Addrs()}); err != nil {
		b.Fatal(err)
	}
	s = p2p.NewServer(srv)
	b.Cleanup(func() {
		s.Close()
		cli.Close()
		srv.Close()
	})
	return srv, cli, s
}

func nodesHandler(context.Context, peer.ID, wire.Kind, []byte) (wire.Kind, any) {
	return wire.KindNodesResp, &wire.NodesResp{}
}

// BenchmarkSession is one request/answer exchange on a pooled session: one
// call at a time.
func BenchmarkSession(b *testing.B) {
	srv, cli, s := benchPair(b)
	s.HandleSession("/benchs/2", p2p.SessionOptions{}, nodesHandler)
	pool := p2p.NewPool(cli, p2p.PoolOptions{})
	defer pool.Close()
	proto := p2p.Proto{ID: "/benchs/2"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var resp wire.NodesResp
		if err := pool.Call(context.Background(), srv.ID(), proto, wire.KindNodesReq, &wire.NodesReq{}, wire.KindNodesResp, &resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionParallel runs 64 calls in flight on pooled sessions.
func BenchmarkSessionParallel(b *testing.B) {
	srv, cli, s := benchPair(b)
	s.HandleSession("/benchs/2", p2p.SessionOptions{}, nodesHandler)
	pool := p2p.NewPool(cli, p2p.PoolOptions{})
	defer pool.Close()
	proto := p2p.Proto{ID: "/benchs/2"}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var resp wire.NodesResp
			if err := pool.Call(context.Background(), srv.ID(), proto, wire.KindNodesReq, &wire.NodesReq{}, wire.KindNodesResp, &resp); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
