package p2p

import (
	"net/netip"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/umbra-im/umbra/internal/wire"
)

// Server-wide request slots and the shares of them one source may hold.
const (
	// DefaultMaxInflightTotal bounds the requests served at once on all
	// sessions of a server together.
	DefaultMaxInflightTotal = 4096
	// DefaultMaxInflightPerIP is the most one IP address may hold: 1/8 of
	// the total, so that a host minting throwaway peer IDs leaves 7/8 of
	// the slots to everyone else, and two such hosts still leave 3/4.
	DefaultMaxInflightPerIP = DefaultMaxInflightTotal / 8
	// DefaultMaxInflightPerSubnet is the most one /24 (IPv4) or /48
	// (IPv6) may hold: 1/4 of the total, twice one address's share, since
	// a subnet is one operator's block of addresses more often than a
	// crowd of unrelated users; taking every slot then takes four
	// subnets. (A loopback address is its own subnet: tests run many
	// "hosts" as 127.x.y.z.)
	DefaultMaxInflightPerSubnet = DefaultMaxInflightTotal / 4
)

// source is where a stream comes from, for fairness: its IP address and
// subnet (zero values for a connection without an IP, which share one
// bucket).
type source struct {
	ip     netip.Addr
	subnet netip.Prefix
}

// sourceOf keys a connection by its remote IP: the address, and its /24
// (IPv4) or /48 (IPv6); a loopback address is keyed whole, as its own
// subnet.
func sourceOf(c network.Conn) source {
	ip, err := manet.ToIP(c.RemoteMultiaddr())
	if err != nil {
		return source{}
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return source{}
	}
	return sourceOfAddr(a.Unmap())
}

func sourceOfAddr(a netip.Addr) source {
	bits := 24
	switch {
	case a.IsLoopback():
		bits = a.BitLen()
	case a.Is6():
		bits = 48
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return source{}
	}
	return source{ip: a, subnet: p}
}

// slotLimits are the caps of a slots.
type slotLimits struct {
	total, perIP, perSubnet int
}

var defaultSlotLimits = slotLimits{DefaultMaxInflightTotal, DefaultMaxInflightPerIP, DefaultMaxInflightPerSubnet}

// slots counts the requests a server is serving, in all, per source IP,
// per source subnet and per (peer, protocol), and refuses one over a cap.
// Refusing at once (rather than waiting for a slot) keeps one peer's
// flood from stalling the session readers of everyone else.
type slots struct {
	lim slotLimits

	mu     sync.Mutex
	total  int
	ip     map[netip.Addr]int
	subnet map[netip.Prefix]int
	peer   map[poolKey]int
}

func newSlots(lim slotLimits) *slots {
	return &slots{lim: lim, ip: make(map[netip.Addr]int), subnet: make(map[netip.Prefix]int), peer: make(map[poolKey]int)}
}

// take takes a slot for a request of peer key from src, where the peer
// may hold maxPeer on this protocol; nil if granted, else the error to
// answer: 429 over the peer's, the IP's or the subnet's share, 503 when
// the server is full.
func (s *slots) take(key poolKey, src source, maxPeer int) *wire.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.peer[key] >= maxPeer:
		return wire.Errorf(wire.CodeRateLimited, "%d requests in flight from this peer on %s; the limit is %d", s.peer[key], key.proto, maxPeer)
	case s.ip[src.ip] >= s.lim.perIP:
		return wire.Errorf(wire.CodeRateLimited, "%d requests in flight from this address; the limit is %d", s.ip[src.ip], s.lim.perIP)
	case s.subnet[src.subnet] >= s.lim.perSubnet:
		return wire.Errorf(wire.CodeRateLimited, "%d requests in flight from this subnet; the limit is %d", s.subnet[src.subnet], s.lim.perSubnet)
	case s.total >= s.lim.total:
		return wire.Errorf(wire.CodeUnavailable, "node busy: %d requests in flight", s.total)
	}
	s.total++
	s.peer[key]++
	s.ip[src.ip]++
	s.subnet[src.subnet]++
	return nil
}

// give returns a slot taken by take.
func (s *slots) give(key poolKey, src source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.peer[key]--; s.peer[key] <= 0 {
		delete(s.peer, key)
	}
	if s.ip[src.ip]--; s.ip[src.ip] <= 0 {
		delete(s.ip, src.ip)
	}
	if s.subnet[src.subnet]--; s.subnet[src.subnet] <= 0 {
		delete(s.subnet, src.subnet)
	}
}

// inUse is the number of slots taken (tests and metrics).
func (s *slots) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}
