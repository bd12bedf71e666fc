package member

import (
	"crypto/sha256"
	"net"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/umbra-im/umbra/internal/pow"
)

// Subnets returns the diversity keys of a node's addresses: the /24 (IPv4)
// or /48 (IPv6) of every public address its record lists. Onion paths never
// put two nodes that share a key on one path, swarms hold at most ⌊R/2⌋
// nodes that share one, and the node table bounds how many records one key
// may have. A record cannot escape the rules by listing a decoy address
// first: every address counts (it can claim up to MaxAddrs subnets, which
// only keeps it out of more places).
//
// Private addresses (10/8, 192.168/16, a docker bridge...) count only when
// a node lists no public one, since unrelated hosts share them; loopback
// addresses count only when there is nothing else. IPv4 loopback keys by
// /24 like any IPv4 address (a devnet puts each node in a /24 of its own,
// 127.0.<i>.1); IPv6 loopback by the full address.
func Subnets(addrs []ma.Multiaddr) []string {
	var public, private, loop []string
	for _, a := range addrs {
		ip, err := manet.ToIP(a)
		if err != nil {
			continue
		}
		var key string
		if ip.To4() != nil {
			key = ip.Mask(net.CIDRMask(24, 32)).String() + "/24"
		} else {
			key = ip.Mask(net.CIDRMask(48, 128)).String() + "/48"
		}
		switch {
		case ip.IsLoopback():
			if ip.To4() == nil {
				key = ip.String()
			}
			loop = appendNew(loop, key)
		case ip.IsPrivate() || ip.IsLinkLocalUnicast() || !ip.IsGlobalUnicast():
			private = appendNew(private, key)
		default:
			public = appendNew(public, key)
		}
	}
	for _, keys := range [][]string{public, private, loop} {
		if len(keys) > 0 {
			return keys
		}
	}
	return nil
}

func appendNew(keys []string, k string) []string {
	for _, x := range keys {
		if x == k {
			return keys
		}
	}
	return append(keys, k)
}

// Position is a node's placement position: the hash of its admission
// proof (the network, its peer ID and the proof-of-work nonce). Swarms
// rank nodes by rendezvous hashing of positions, so a node cannot pick its
// position when it makes its key: every position it tries costs a
// proof-of-work of the network's difficulty.
func Position(network string, node []byte, nonce uint64) [32]byte {
	d := pow.Digest(powPrefix(network, node), nonce)
	h := sha256.New()
	h.Write([]byte("umbra/place/v1\x00"))
	h.Write(d[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}
