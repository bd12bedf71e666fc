// Package adversary runs hostile Umbra nodes and peers against networks of
// real node processes. A Node joins the network the way an honest node
// does (a signed record with a valid admission proof, announced by gossip)
// and then speaks the wire protocol as it likes: it can ask for what it
// should not see, send what it should not send, and answer requests with
// lies. The tests of this package run each attack of the threat model
// (docs/architecture.md, "Threat model") against a devnet and check what
// the honest nodes and clients do.
//
// Everything here listens on loopback addresses only.
package adversary

import (
	"bufio"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/wire"
)

// Protocols as a node calls them (session form).
var (
	StoreProto     = p2p.Proto{ID: wire.ProtoStoreSession, MaxReq: wire.MaxClientRequest, MaxResp: wire.MaxFrame}
	ReplicateProto = p2p.Proto{ID: wire.ProtoReplicateSession, MaxReq: wire.MaxFrame, MaxResp: wire.MaxFrame}
	SyncProto      = p2p.Proto{ID: wire.ProtoSyncSession, MaxReq: wire.MaxFrame, MaxResp: wire.MaxFrame}
	OnionProto     = p2p.Proto{ID: wire.ProtoOnionSession, MaxReq: 1280<<10 + 64, MaxResp: 1280<<10 + 64}
)

// Node is a hostile node: a libp2p host with a valid node record.
type Node struct {
	H      host.Host
	Priv   crypto.PrivKey
	Onion  *ecdh.PrivateKey
	Params wire.Params
	PoW    uint64
	Pool   *p2p.Pool
	Srv    *p2p.Server

	mu     sync.Mutex
	seq    uint64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewNode starts a hostile node listening on ip (a loopback address) for
// the network params, with a solved admission proof.
func NewNode(ip string, params wire.Params) (*Node, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	return NewNodeWithKey(ip, params, priv)
}

// NewNodeWithKey is NewNode with a chosen identity key (a ground key).
func NewNodeWithKey(ip string, params wire.Params, priv crypto.PrivKey) (*Node, error) {
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	nonce, err := member.SolvePoW(params.Network, []byte(id), params.PoWBits, nil)
	if err != nil {
		return nil, err
	}
	return NewNodeWithProof(ip, params, priv, nonce)
}

// NewNodeWithProof is NewNode with a chosen key and admission proof.
func NewNodeWithProof(ip string, params wire.Params, priv crypto.PrivKey, nonce uint64) (*Node, error) {
	ok, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	// Dials leave from ip: on one loopback that is what makes the
	// attacker a host of its own to the nodes' per-address limits.
	h, err := p2p.NewNodeHost(priv, []string{"/ip4/" + ip + "/tcp/0"}, nil, p2p.DialFromListenAddr())
	if err != nil {
		return nil, err
	}
	a := &Node{H: h, Priv: priv, Onion: ok, Params: params, PoW: nonce}
	a.Pool = p2p.NewPool(h, p2p.PoolOptions{})
	a.Srv = p2p.NewServer(h)
	return a, nil
}

// ID is the node's peer ID.
func (a *Node) ID() peer.ID { return a.H.ID() }

// Close stops the node's loops and its host.
func (a *Node) Close() {
	a.mu.Lock()
	if a.cancel != nil {
		a.cancel()
	}
	a.mu.Unlock()
	a.wg.Wait()
	a.Pool.Close()
	a.Srv.Close()
	a.H.Close()
}

// Record signs a fresh record of the node, valid for ttl.
func (a *Node) Record(ttl time.Duration) ([]byte, error) {
	a.mu.Lock()
	seq := uint64(time.Now().UnixNano())
	if seq <= a.seq {
		seq = a.seq + 1
	}
	a.seq = seq
	a.mu.Unlock()
	rec := member.Record{
		Network:  a.Params.Network,
		Node:     []byte(a.ID()),
		OnionKey: a.Onion.PublicKey().Bytes(),
		Version:  "adversary",
		Seq:      seq,
		Expires:  time.Now().Add(ttl).UnixMilli(),
		PoW:      a.PoW,
	}
	for _, ad := range a.H.Addrs() {
		rec.Addrs = append(rec.Addrs, ad.Bytes())
	}
	return member.Sign(rec, a.Priv)
}

// FakeRecord signs a record of a node that does not exist: a fresh key with
// a valid admission proof, claiming addr (a multiaddr nobody answers at).
func FakeRecord(params wire.Params, addr string, ttl time.Duration) ([]byte, peer.ID, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, "", err
	}
	nonce, err := member.SolvePoW(params.Network, []byte(id), params.PoWBits, nil)
	if err != nil {
		return nil, "", err
	}
	maddr, err := ma.NewMultiaddr(addr)
	if err != nil {
		return nil, "", err
	}
	ok, _ := ecdh.X25519().GenerateKey(rand.Reader)
	rec := member.Record{Network: params.Network, Node: []byte(id), OnionKey: ok.PublicKey().Bytes(), Version: "fake",
		Seq: uint64(time.Now().UnixNano()), Expires: time.Now().Add(ttl).UnixMilli(), PoW: nonce, Addrs: [][]byte{maddr.Bytes()}}
	raw, err := member.Sign(rec, priv)
	return raw, id, err
}

// Learn teaches the host where a peer listens.
func (a *Node) Learn(ai peer.AddrInfo) { a.H.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour) }

// Announce pushes records to peer to by gossip (/umbra/members/1): it offers
// their versions and sends the ones the peer asks for. It returns how many
// the peer asked for.
func (a *Node) Announce(ctx context.Context, to peer.ID, records [][]byte) (int, error) {
	var versions []wire.MemberVersion
	byID := map[string][]byte{}
	for _, raw := range records {
		n, err := member.Open(raw, a.Params, time.Now())
		if err != nil {
			return 0, fmt.Errorf("announce: own record invalid: %w", err)
		}
		versions = append(versions, wire.MemberVersion{Node: []byte(n.ID), Seq: n.Record.Seq})
		byID[string(n.ID)] = raw
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := a.H.NewStream(ctx, to, protocol.ID(wire.ProtoMembers))
	if err != nil {
		return 0, err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.WriteFrame(s, wire.KindMembersDigest, &wire.MembersDigest{Params: a.Params, Versions: versions}); err != nil {
		s.Reset()
		return 0, err
	}
	var delta wire.MembersDelta
	if err := wire.Read(bufio.NewReader(s), wire.MaxFrame, wire.KindMembersDelta, &delta); err != nil {
		s.Reset()
		return 0, err
	}
	var push [][]byte
	for _, w := range delta.Want {
		if raw, ok := byID[string(w)]; ok {
			push = append(push, raw)
		}
	}
	if err := wire.WriteFrame(s, wire.KindMembersPush, &wire.MembersPush{Records: push}); err != nil {
		s.Reset()
		return 0, err
	}
	_ = s.CloseWrite()
	return len(push), nil
}

// Join announces the node's own record to the given nodes now and then
// every few seconds until Close, as an honest node refreshes its record.
func (a *Node) Join(targets []peer.AddrInfo) error {
	for _, t := range targets {
		a.Learn(t)
	}
	announce := func(ctx context.Context) error {
		rec, err := a.Record(30 * time.Second)
		if err != nil {
			return err
		}
		var errs []error
		ok := 0
		for _, t := range targets {
			if _, err := a.Announce(ctx, t.ID, [][]byte{rec}); err != nil {
				errs = append(errs, err)
				continue
			}
			ok++
		}
		if ok == 0 {
			return fmt.Errorf("adversary: no node took our record: %w", errors.Join(errs...))
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	a.cancel = cancel
	a.mu.Unlock()
	if err := announce(ctx); err != nil {
		return err
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t := time.NewTicker(3 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = announce(ctx)
			}
		}
	}()
	return nil
}

// Call sends one request to a node on a session of proto.
func (a *Node) Call(ctx context.Context, to peer.ID, proto p2p.Proto, kind wire.Kind, req any, respKind wire.Kind, resp any) error {
	return a.Pool.Call(ctx, to, proto, kind, req, respKind, resp)
}

// Serve answers proto's sessions with h.
func (a *Node) Serve(proto string, h p2p.Handler) {
	a.Srv.HandleSession(proto, p2p.SessionOptions{MaxReq: wire.MaxFrame}, h)
}

// Params asks a node for the network parameters (a node-list request).
func Params(ctx context.Context, h host.Host, to peer.AddrInfo) (wire.Params, error) {
	h.Peerstore().AddAddrs(to.ID, to.Addrs, time.Hour)
	pool := p2p.NewPool(h, p2p.PoolOptions{})
	defer pool.Close()
	var resp wire.NodesResp
	if err := pool.Call(ctx, to.ID, StoreProto, wire.KindNodesReq, &wire.NodesReq{}, wire.KindNodesResp, &resp); err != nil {
		return wire.Params{}, err
	}
	return resp.Params, nil
}
