// Package p2p wraps go-libp2p for Umbra: host construction with the
// project's safety settings (explicit resource-manager limits), and
// request/response sessions on streams.
package p2p

import (
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// HostOption adjusts a node host.
type HostOption func(*hostOptions)

type hostOptions struct {
	announce       []ma.Multiaddr
	extra          []libp2p.Option
	fromListenAddr bool
}

// DialFromListenAddr makes the host's TCP dials leave from its listen
// address and port (SO_REUSEPORT, go-libp2p's default), so the peer sees
// the connection come from that address. Only for tests that run many
// "hosts" as 127.x.y.z addresses of one loopback, where per-address
// limits must see each host's own address; see NewNodeHost for why
// nodes do not do it otherwise.
func DialFromListenAddr() HostOption {
	return func(o *hostOptions) { o.fromListenAddr = true }
}

// WithLibp2p adds libp2p options (a private network's connection gater).
func WithLibp2p(opts ...libp2p.Option) HostOption {
	return func(o *hostOptions) { o.extra = append(o.extra, opts...) }
}

// Announce makes the host advertise exactly addrs (in identify, and in
// its Addrs, which the node's signed record is made of) instead of the
// addresses it listens on: for a node behind a port forward or a load
// balancer, or one listening on an address that others cannot dial. An
// empty list keeps the listen addresses. The caller validates them.
func Announce(addrs []ma.Multiaddr) HostOption {
	return func(o *hostOptions) { o.announce = addrs }
}

// NewNodeHost builds a libp2p host that listens only where told, speaks Noise
// over TCP or QUIC, has no relay, no NAT mapping, and a resource manager
// with the limits of NodeLimits.
func NewNodeHost(priv crypto.PrivKey, listen []string, reg prometheus.Registerer, opt ...HostOption) (host.Host, error) {
	return newNodeHost(priv, listen, reg, NodeLimits(), opt...)
}

func newNodeHost(priv crypto.PrivKey, listen []string, reg prometheus.Registerer, limits rcmgr.ConcreteLimitConfig, opt ...HostOption) (host.Host, error) {
	var ho hostOptions
	for _, o := range opt {
		o(&ho)
	}
	rm, err := newResourceManager(limits)
	if err != nil {
		return nil, err
	}
	for _, l := range listen {
		if _, err := ma.NewMultiaddr(l); err != nil {
			rm.Close()
			return nil, fmt.Errorf("p2p: listen address %q: %w", l, err)
		}
	}
	// No SO_REUSEPORT unless asked (DialFromListenAddr): with it go-libp2p
	// dials from the listen port (for NAT hole punching, which Umbra does
	// not do), so two nodes that dial each other at the same moment over a
	// link with some delay get one TCP connection by simultaneous open,
	// which both sides take as their own outbound one and fail, again at
	// every retry (TestTwoNodesOverDelay: a 2-node network over 20 ms
	// links never formed). Without it each dial has its own port, and two
	// crossing dials are two connections.
	tcpOpts := []any{tcp.DisableReuseport()}
	if ho.fromListenAddr {
		tcpOpts = nil
	}
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings(listen...),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Transport(tcp.NewTCPTransport, tcpOpts...),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Muxer(yamux.ID, nodeYamuxTransport()),
		libp2p.ResourceManager(rm),
		libp2p.DisableRelay(),
		libp2p.UserAgent("umbra"),
	}
	if priv != nil {
		opts = append(opts, libp2p.Identity(priv))
	}
	if len(ho.announce) > 0 {
		announce := slices.Clone(ho.announce)
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr {
			return slices.Clone(announce) // libp2p reuses the slice it gets
		}))
	}
	if reg != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(reg))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	opts = append(opts, ho.extra...)
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("p2p: start libp2p host: %w", err)
	}
	return h, nil
}

// NewClientHost builds a libp2p host for a client: a fresh random identity
// (never an account key), no listening address, and a resource manager
// with the limits of ClientLimits.
func NewClientHost() (host.Host, error) {
	return newClientHost(ClientLimits())
}

func newClientHost(limits rcmgr.ConcreteLimitConfig) (host.Host, error) {
	rm, err := newResourceManager(limits)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(
		libp2p.NoListenAddrs,
		libp2p.Security(noise.ID, noise.New),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Muxer(yamux.ID, yamuxTransport()),
		libp2p.ResourceManager(rm),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("umbra-client"),
	)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("p2p: start libp2p client host: %w", err)
	}
	return h, nil
}

// yamuxWindow is the largest receive window of a yamux stream (libp2p's
// default is 16 MiB). A session the server has stopped reading (it has
// MaxInflight requests in flight) can make yamux buffer at most its window;
// 1 MiB keeps that small and still moves 10 MiB/s per stream at 100 ms of
// round trip.
const yamuxWindow = 1 << 20

func yamuxTransport() *yamux.Transport {
	t := *yamux.DefaultTransport
	t.MaxStreamWindowSize = yamuxWindow
	return &t
}

// Between nodes, yamux's own pings are spaced out. By default every
// connection pings every 30 s to keep alive (when idle) and every 30 s to
// measure the round trip (always), and a node ends up connected to most of
// the network (gossip picks peers at random): at 100 nodes these pings
// and their acknowledgements were about 1 KB/s of an idle node's traffic.
// The nodes a node shares swarms with are pinged by its own failure
// detector (internal/node/liveness.go); any other connection is checked
// when a call over it fails. Keepalives remain, every 2 minutes, so that
// idle connections through stateful firewalls are not dropped.
const (
	nodeKeepAlive  = 2 * time.Minute
	nodeMeasureRTT = 10 * time.Minute
)

func nodeYamuxTransport() *yamux.Transport {
	t := yamuxTransport()
	t.KeepAliveInterval = nodeKeepAlive
	t.MeasureRTTInterval = nodeMeasureRTT
	return t
}

// newResourceManager makes a resource manager with fixed limits and
// explicit connection limits per IP and subnet. Its Prometheus metrics are
// off: they come from a trace that formats a timestamp under one global
// lock for every reservation in every scope, and Umbra reserves every
// frame (about 14 trace events per request: they tripled the allocations
// of a session round trip).
func newResourceManager(limits rcmgr.ConcreteLimitConfig) (network.ResourceManager, error) {
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits),
		rcmgr.WithLimitPerSubnet(connsPerSubnetV4, connsPerSubnetV6),
		rcmgr.WithNetworkPrefixLimit(loopbackV4, loopbackV6),
		rcmgr.WithConnRateLimiters(newConnRate()),
		rcmgr.WithMetricsDisabled(),
	)
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	return rm, nil
}
