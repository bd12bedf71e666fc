// Package p2p wraps go-libp2p for Umbra: host construction with the
// project's safety settings, and framed request/response calls on streams.
package p2p

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// NewNodeHost builds a libp2p host that listens only where told, speaks Noise
// over TCP or QUIC, has no relay, no NAT mapping, and a resource manager.
func NewNodeHost(priv crypto.PrivKey, listen []string, reg prometheus.Registerer) (host.Host, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	for _, l := range listen {
		if _, err := ma.NewMultiaddr(l); err != nil {
			return nil, fmt.Errorf("p2p: listen address %q: %w", l, err)
		}
	}
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings(listen...),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.ResourceManager(rm),
		libp2p.DisableRelay(),
		libp2p.UserAgent("umbra"),
	}
	if priv != nil {
		opts = append(opts, libp2p.Identity(priv))
	}
	if reg != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(reg))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: start libp2p host: %w", err)
	}
	return h, nil
}

// NewClientHost builds a libp2p host for a client: a fresh random identity
// (never an account key), no listening address.
func NewClientHost() (host.Host, error) {
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.DefaultLimits.AutoScale()))
	if err != nil {
		return nil, err
	}
	return libp2p.New(
		libp2p.NoListenAddrs,
		libp2p.Security(noise.ID, noise.New),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.ResourceManager(rm),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("umbra-client"),
	)
}
