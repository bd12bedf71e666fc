// Package member holds signed node records, their admission proof-of-work
// and the table of live nodes that every node keeps and gossips.
package member

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/umbra-im/umbra/internal/pow"
	"github.com/umbra-im/umbra/internal/wire"
)

// Limits on what a record may hold.
const (
	MaxAddrs       = 8
	MaxVersionLen  = 64
	MaxRecordBytes = 2048
	// MaxRecordTTL bounds how far in the future a record may claim to live
	// (node.Config.RecordTTL defaults to 30 minutes: see there).
	MaxRecordTTL = 2 * time.Hour
)

// Record is a node's self-description, signed with its libp2p identity key.
type Record struct {
	Network  string   `cbor:"1,keyasint"`
	Node     []byte   `cbor:"2,keyasint"` // peer ID bytes
	OnionKey []byte   `cbor:"3,keyasint"` // X25519 public key
	Addrs    [][]byte `cbor:"4,keyasint"` // multiaddr bytes
	Version  string   `cbor:"5,keyasint"`
	Seq      uint64   `cbor:"6,keyasint"`
	Expires  int64    `cbor:"7,keyasint"` // unix ms
	PoW      uint64   `cbor:"8,keyasint"` // admission proof nonce
}

type signed struct {
	Record []byte `cbor:"1,keyasint"`
	Sig    []byte `cbor:"2,keyasint"`
}

// Node is a verified record with its parsed fields.
type Node struct {
	ID      peer.ID
	Record  Record
	Addrs   []ma.Multiaddr
	Raw     []byte   // the signed encoding, as gossiped
	Pos     [32]byte // placement position (Position)
	Subnets []string // diversity keys of Addrs (Subnets), never empty
}

// AddrInfo is the libp2p dialing information of the node.
func (n *Node) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: n.ID, Addrs: n.Addrs} }

// Sign encodes and signs r with key.
func Sign(r Record, key crypto.PrivKey) ([]byte, error) {
	body, err := wire.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("member: encode record: %w", err)
	}
	sig, err := key.Sign(recordSigBytes(body))
	if err != nil {
		return nil, fmt.Errorf("member: sign record: %w", err)
	}
	return wire.Marshal(signed{Record: body, Sig: sig})
}

func recordSigBytes(body []byte) []byte {
	return append([]byte("umbra/record/v1\x00"), body...)
}

// ErrInvalid wraps every reason a record is refused.
var ErrInvalid = errors.New("invalid node record")

// Open verifies a signed record against the network parameters and now.
func Open(raw []byte, p wire.Params, now time.Time) (*Node, error) {
	if len(raw) > MaxRecordBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalid, len(raw))
	}
	var s signed
	if err := wire.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var r Record
	if err := wire.Unmarshal(s.Record, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if r.Network != p.Network {
		return nil, fmt.Errorf("%w: network %q, want %q", ErrInvalid, r.Network, p.Network)
	}
	id, err := peer.IDFromBytes(r.Node)
	if err != nil {
		return nil, fmt.Errorf("%w: peer ID: %v", ErrInvalid, err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: peer ID carries no key: %v", ErrInvalid, err)
	}
	ok, err := pub.Verify(recordSigBytes(s.Record), s.Sig)
	if err != nil || !ok {
		return nil, fmt.Errorf("%w: bad signature", ErrInvalid)
	}
	if !CheckPoW(p.Network, r.Node, r.PoW, p.PoWBits) {
		return nil, fmt.Errorf("%w: admission proof-of-work below %d bits", ErrInvalid, p.PoWBits)
	}
	exp := time.UnixMilli(r.Expires)
	if !exp.After(now) {
		return nil, fmt.Errorf("%w: expired", ErrInvalid)
	}
	if exp.Sub(now) > MaxRecordTTL {
		return nil, fmt.Errorf("%w: expiry too far ahead", ErrInvalid)
	}
	if len(r.OnionKey) != 32 {
		return nil, fmt.Errorf("%w: onion key must be 32 bytes", ErrInvalid)
	}
	if len(r.Version) > MaxVersionLen {
		return nil, fmt.Errorf("%w: version too long", ErrInvalid)
	}
	if len(r.Addrs) == 0 || len(r.Addrs) > MaxAddrs {
		return nil, fmt.Errorf("%w: %d addresses", ErrInvalid, len(r.Addrs))
	}
	n := &Node{ID: id, Record: r, Raw: raw}
	for _, b := range r.Addrs {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return nil, fmt.Errorf("%w: address: %v", ErrInvalid, err)
		}
		n.Addrs = append(n.Addrs, a)
	}
	n.Pos = Position(p.Network, r.Node, r.PoW)
	if n.Subnets = Subnets(n.Addrs); len(n.Subnets) == 0 {
		n.Subnets = []string{"unknown:" + id.String()}
	}
	return n, nil
}

// Peek decodes a signed record's node and sequence without checking its
// signature or anything else: a cheap look before Open, to skip records
// that could not change anything.
func Peek(raw []byte) (peer.ID, uint64, error) {
	if len(raw) > MaxRecordBytes {
		return "", 0, fmt.Errorf("%w: %d bytes", ErrInvalid, len(raw))
	}
	var s signed
	if err := wire.Unmarshal(raw, &s); err != nil {
		return "", 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var r struct {
		Node []byte `cbor:"2,keyasint"`
		Seq  uint64 `cbor:"6,keyasint"`
	}
	if err := wire.Unmarshal(s.Record, &r); err != nil {
		return "", 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return peer.ID(r.Node), r.Seq, nil
}

// powPrefix is what a node's admission proof hashes before the nonce:
// "umbra/pow/v1\0" ‖ network ‖ 0 ‖ peer ID.
func powPrefix(network string, node []byte) []byte {
	p := make([]byte, 0, 14+len(network)+len(node))
	p = append(p, "umbra/pow/v1\x00"...)
	p = append(p, network...)
	p = append(p, 0)
	return append(p, node...)
}

// CheckPoW reports whether nonce proves bits of work for node on network.
func CheckPoW(network string, node []byte, nonce uint64, bits int) bool {
	return pow.Check(powPrefix(network, node), nonce, bits)
}

// SolvePoW finds a nonce for node. Expected work is 2^bits hashes; it stops
// early (returning an error) when stop is closed.
func SolvePoW(network string, node []byte, bits int, stop <-chan struct{}) (uint64, error) {
	n, err := pow.Solve(powPrefix(network, node), bits, stop)
	if err != nil {
		return 0, fmt.Errorf("member: %w", err)
	}
	return n, nil
}
