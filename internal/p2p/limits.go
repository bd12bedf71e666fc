package p2p

import (
	"math"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/x/rate"

	"github.com/umbra-im/umbra/internal/wire"
)

// ServiceName is the resource-manager service of every Umbra stream (all
// its protocols, both directions): its scope bounds the memory of every
// Umbra frame buffer together.
const ServiceName = "umbra"

const mib = 1 << 20

// What the resource manager counts, and so what these limits bound:
//   - yamux reserves 256 KiB for each TCP stream's receive window when it
//     opens, in the stream's peer and the system scopes, and reserves the
//     window's growth (up to yamuxWindow) only while those scopes are under
//     half their limit;
//   - QUIC reserves its connection windows in the connection's scope;
//   - Umbra reserves every frame buffer, as it grows, in the stream's scope
//     (stream, protocol-peer, protocol, Umbra service, service-peer, peer,
//     system): a server reserves a request until its answer is written, and
//     the answer while it waits to be written (priority medium: at most 60 %
//     of any scope's limit); a client reserves an answer until it is decoded
//     (priority high: 80 %). So the peers' requests can never take the last
//     40 % that this node's own calls need for their answers.
//
// Reservations are not allocations: a yamux window is allocated only as a
// peer sends faster than we read, which a session server does only while
// it has MaxInflight requests in flight (at most DefaultMaxInflightTotal /
// DefaultMaxInflight = 32 sessions at once, each buffering at most
// yamuxWindow). The node's memory under attack is then about: the Umbra
// service's 64 MiB of frame buffers (of which peers' requests at most 60 %,
// 38 MiB, and handlers' decoded copies of them as much again), 32 MiB of
// stalled yamux windows, and the state of at most 2,048 streams (about
// 8 KiB each: 16 MiB), above the node's idle heap: under 256 MiB RSS when
// the Go GC is given a memory limit near 200 MiB. The system memory limit
// is higher than this because it must hold the 256 KiB yamux reservation
// of every open TCP stream, which mostly stays empty.

// NodeLimits are a node host's resource-manager limits, every scope set
// explicitly (libp2p's own services, identify and ping, keep libp2p's base
// limits). docs/architecture.md lists them with their reasons.
func NodeLimits() rcmgr.ConcreteLimitConfig {
	umbra := rcmgr.BaseLimit{StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048, Memory: 64 * mib}
	cfg := rcmgr.PartialLimitConfig{
		// 2,048 streams at 256 KiB of yamux window each would reserve
		// 512 MiB; 384 MiB leaves room for 64 MiB of frames and ~1,200
		// open TCP streams (QUIC streams reserve nothing up front).
		System: rcmgr.BaseLimit{ConnsInbound: 512, ConnsOutbound: 512, Conns: 768, FD: 768,
			StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048, Memory: 384 * mib}.ToResourceLimits(),
		// Connections and streams not yet tied to a peer or protocol
		// (handshakes, protocol negotiation).
		Transient: rcmgr.BaseLimit{ConnsInbound: 64, ConnsOutbound: 64, Conns: 128, FD: 64,
			StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 16 * mib}.ToResourceLimits(),
		Service:            map[string]rcmgr.ResourceLimits{ServiceName: umbra.ToResourceLimits()},
		ServicePeer:        map[string]rcmgr.ResourceLimits{ServiceName: rcmgr.BaseLimit{StreamsInbound: 32, StreamsOutbound: 32, Streams: 64, Memory: 24 * mib}.ToResourceLimits()},
		ServiceDefault:     rcmgr.BaseLimit{StreamsInbound: 128, StreamsOutbound: 128, Streams: 256, Memory: 16 * mib}.ToResourceLimits(),
		ServicePeerDefault: rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 16, Streams: 32, Memory: 4 * mib}.ToResourceLimits(),
		// Per protocol, all peers together: the sessions a node serves
		// (clients on store and onion, nodes on all four) and gossip.
		Protocol: map[protocol.ID]rcmgr.ResourceLimits{
			wire.ProtoStoreSession:     rcmgr.BaseLimit{StreamsInbound: 1024, StreamsOutbound: 64, Streams: 1024, Memory: 32 * mib}.ToResourceLimits(),
			wire.ProtoOnionSession:     rcmgr.BaseLimit{StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048, Memory: 48 * mib}.ToResourceLimits(),
			wire.ProtoReplicateSession: rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 32 * mib}.ToResourceLimits(),
			wire.ProtoSyncSession:      rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 24 * mib}.ToResourceLimits(),
			wire.ProtoMembers:          rcmgr.BaseLimit{StreamsInbound: 128, StreamsOutbound: 128, Streams: 256, Memory: 16 * mib}.ToResourceLimits(),
		},
		ProtocolDefault: rcmgr.BaseLimit{StreamsInbound: 128, StreamsOutbound: 128, Streams: 256, Memory: 16 * mib}.ToResourceLimits(),
		// One peer on one protocol: a pool opens at most 4 sessions (a
		// node's) and a server takes at most 8; 16 MiB of which 60 % for
		// requests is 2 requests of 4 MiB or 36 stores of 260 KiB at once.
		ProtocolPeerDefault: rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 16, Streams: 32, Memory: 16 * mib}.ToResourceLimits(),
		// One peer: a node peer holds ~20 streams (4 sessions on each of
		// replicate, sync, onion, gossip, identify), a client fewer; 128
		// streams' yamux windows are 32 MiB.
		PeerDefault: rcmgr.BaseLimit{ConnsInbound: 8, ConnsOutbound: 8, Conns: 8, FD: 8,
			StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 48 * mib}.ToResourceLimits(),
		Conn:   rcmgr.BaseLimit{ConnsInbound: 1, ConnsOutbound: 1, Conns: 1, FD: 1, Memory: 32 * mib}.ToResourceLimits(),
		Stream: rcmgr.BaseLimit{StreamsInbound: 1, StreamsOutbound: 1, Streams: 1, Memory: 16 * mib}.ToResourceLimits(),
	}
	return cfg.Build(libp2pBase())
}

// ClientLimits are a client host's resource-manager limits. A client serves
// nothing: its streams are its own sessions to nodes, and what it reserves
// is the answers to its own calls, each at most 4 MiB and only for a call
// in flight (an answer to no call is skipped unread).
func ClientLimits() rcmgr.ConcreteLimitConfig {
	cfg := rcmgr.PartialLimitConfig{
		System: rcmgr.BaseLimit{ConnsInbound: 16, ConnsOutbound: 128, Conns: 144, FD: 144,
			StreamsInbound: 64, StreamsOutbound: 512, Streams: 576, Memory: 256 * mib}.ToResourceLimits(),
		Transient: rcmgr.BaseLimit{ConnsInbound: 16, ConnsOutbound: 32, Conns: 48, FD: 32,
			StreamsInbound: 32, StreamsOutbound: 64, Streams: 96, Memory: 16 * mib}.ToResourceLimits(),
		Service:             map[string]rcmgr.ResourceLimits{ServiceName: rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 512, Streams: 512, Memory: 128 * mib}.ToResourceLimits()},
		ServicePeer:         map[string]rcmgr.ResourceLimits{ServiceName: rcmgr.BaseLimit{StreamsInbound: 4, StreamsOutbound: 16, Streams: 16, Memory: 96 * mib}.ToResourceLimits()},
		ServiceDefault:      rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 16 * mib}.ToResourceLimits(),
		ServicePeerDefault:  rcmgr.BaseLimit{StreamsInbound: 8, StreamsOutbound: 8, Streams: 16, Memory: 4 * mib}.ToResourceLimits(),
		ProtocolDefault:     rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 256, Streams: 256, Memory: 64 * mib}.ToResourceLimits(),
		ProtocolPeerDefault: rcmgr.BaseLimit{StreamsInbound: 4, StreamsOutbound: 8, Streams: 8, Memory: 64 * mib}.ToResourceLimits(),
		PeerDefault: rcmgr.BaseLimit{ConnsInbound: 4, ConnsOutbound: 4, Conns: 4, FD: 4,
			StreamsInbound: 16, StreamsOutbound: 64, Streams: 64, Memory: 96 * mib}.ToResourceLimits(),
		Conn:   rcmgr.BaseLimit{ConnsInbound: 1, ConnsOutbound: 1, Conns: 1, FD: 1, Memory: 32 * mib}.ToResourceLimits(),
		Stream: rcmgr.BaseLimit{StreamsInbound: 1, StreamsOutbound: 1, Streams: 1, Memory: 64 * mib}.ToResourceLimits(),
	}
	return cfg.Build(libp2pBase())
}

// libp2pBase is libp2p's base (unscaled) limits with its own services'
// limits (identify, ping, ...), under the scopes set above.
func libp2pBase() rcmgr.ConcreteLimitConfig {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	return scaling.Scale(0, 0)
}

// Connections per remote address and subnet, both directions: at most 128
// per IPv4 address and 256 per /24; 128 per IPv6 /56 and 256 per /48.
// Loopback is exempt (as in libp2p's defaults): tests and devnets run every
// node and client there. One address is often many users (an office or a
// carrier behind one NAT: 50 clients from one address must work, each
// holding a connection or two to a node it uses); what one address can
// make a node hold is bounded by the system scope (512 inbound
// connections, 384 MiB) and the in-flight request shares (fair.go), not by
// counting its connections low. libp2p's default of 8 per address made the
// 17th client behind a NAT fail (issue 11, lab finding 1).
var (
	connsPerSubnetV4 = []rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: 128}, {PrefixLength: 24, ConnCount: 256}}
	connsPerSubnetV6 = []rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: 128}, {PrefixLength: 48, ConnCount: 256}}
	loopbackV4       = []rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("127.0.0.0/8"), ConnCount: math.MaxInt}}
	loopbackV6       = []rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("::1/128"), ConnCount: math.MaxInt}}
)

// newConnRate is the rate limit on new connections: per IPv4 address (or
// IPv6 /56) 4 a second with a burst of 256, per IPv4 /24 (IPv6 /48) 16 a
// second with a burst of 512; loopback exempt. libp2p's default (a burst
// of 16 per address, then one every 5 s) stopped a NAT's clients after
// ~36 commands: each CLI run opens about 4 connections (issue 11, lab
// finding 1). A handshake costs a node one X25519 and a few hashes, and
// the transient scope bounds the handshakes in progress (64).
func newConnRate() *rate.Limiter {
	return &rate.Limiter{
		NetworkPrefixLimits: []rate.PrefixLimit{
			{Prefix: netip.MustParsePrefix("127.0.0.0/8")},
			{Prefix: netip.MustParsePrefix("::1/128")},
		},
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 32, Limit: rate.Limit{RPS: 4, Burst: 256}},
				{PrefixLength: 24, Limit: rate.Limit{RPS: 16, Burst: 512}},
			},
			IPv6SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 56, Limit: rate.Limit{RPS: 4, Burst: 256}},
				{PrefixLength: 48, Limit: rate.Limit{RPS: 16, Burst: 512}},
			},
			GracePeriod: time.Minute,
		},
	}
}
