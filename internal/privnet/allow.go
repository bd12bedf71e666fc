// Package privnet holds what makes an Umbra network private to one
// organisation: the operator's Ed25519 key, the allow-list of node peer
// IDs it signs (versioned; the highest version wins), and the network file
// that carries the network's name, the operator's public key and a
// bootstrap list signed by that key.
package privnet

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/wire"
)

// Limits on a signed allow-list, as a peer may send it.
const (
	MaxAllowNodes = 1024
	MaxAllowBytes = 64 << 10
	maxIDBytes    = 64
)

// ErrInvalid wraps every reason an allow-list is refused.
var ErrInvalid = errors.New("invalid allow-list")

// AllowList is the set of node peer IDs the operator admits to a network.
type AllowList struct {
	Network string   `cbor:"1,keyasint"`
	Version uint64   `cbor:"2,keyasint"`
	Nodes   [][]byte `cbor:"3,keyasint"` // peer ID bytes, sorted, distinct

	ids map[peer.ID]bool
}

type signedList struct {
	List []byte `cbor:"1,keyasint"`
	Sig  []byte `cbor:"2,keyasint"`
}

// allowSigBytes is what the operator signs: a domain separator, then the
// list's encoding (which names the network and the version).
func allowSigBytes(body []byte) []byte {
	return append([]byte("umbra/allow-list/v1\x00"), body...)
}

// NewAllowList builds a list for network at version from peer IDs
// (duplicates dropped, sorted).
func NewAllowList(network string, version uint64, ids []peer.ID) *AllowList {
	seen := map[peer.ID]bool{}
	l := &AllowList{Network: network, Version: version, ids: map[peer.ID]bool{}}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			l.Nodes = append(l.Nodes, []byte(id))
			l.ids[id] = true
		}
	}
	sort.Slice(l.Nodes, func(i, j int) bool { return string(l.Nodes[i]) < string(l.Nodes[j]) })
	return l
}

// Allowed reports whether id is on the list (a nil list allows nobody).
func (l *AllowList) Allowed(id peer.ID) bool { return l != nil && l.ids[id] }

// IDs lists the peer IDs on the list, sorted.
func (l *AllowList) IDs() []peer.ID {
	out := make([]peer.ID, len(l.Nodes))
	for i, b := range l.Nodes {
		out[i] = peer.ID(b)
	}
	return out
}

// Sign encodes and signs l with the operator key.
func (l *AllowList) Sign(key ed25519.PrivateKey) ([]byte, error) {
	if len(l.Nodes) > MaxAllowNodes {
		return nil, fmt.Errorf("privnet: %d nodes, at most %d", len(l.Nodes), MaxAllowNodes)
	}
	body, err := wire.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("privnet: encode allow-list: %w", err)
	}
	raw, err := wire.Marshal(signedList{List: body, Sig: ed25519.Sign(key, allowSigBytes(body))})
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxAllowBytes {
		return nil, fmt.Errorf("privnet: allow-list of %d bytes, at most %d", len(raw), MaxAllowBytes)
	}
	return raw, nil
}

// OpenAllowList verifies a signed allow-list against the operator's key
// and the network name. It checks the size before decoding anything.
func OpenAllowList(raw []byte, operator ed25519.PublicKey, network string) (*AllowList, error) {
	if len(raw) > MaxAllowBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalid, len(raw))
	}
	if len(operator) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: no operator key", ErrInvalid)
	}
	var s signedList
	if err := wire.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !ed25519.Verify(operator, allowSigBytes(s.List), s.Sig) {
		return nil, fmt.Errorf("%w: bad signature", ErrInvalid)
	}
	var l AllowList
	if err := wire.Unmarshal(s.List, &l); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if l.Network != network {
		return nil, fmt.Errorf("%w: network %q, want %q", ErrInvalid, l.Network, network)
	}
	if len(l.Nodes) > MaxAllowNodes {
		return nil, fmt.Errorf("%w: %d nodes", ErrInvalid, len(l.Nodes))
	}
	l.ids = make(map[peer.ID]bool, len(l.Nodes))
	for _, b := range l.Nodes {
		if len(b) == 0 || len(b) > maxIDBytes {
			return nil, fmt.Errorf("%w: peer ID of %d bytes", ErrInvalid, len(b))
		}
		if _, err := peer.IDFromBytes(b); err != nil {
			return nil, fmt.Errorf("%w: peer ID: %v", ErrInvalid, err)
		}
		l.ids[peer.ID(b)] = true
	}
	return &l, nil
}

// PeekVersion decodes the version of a signed allow-list without checking
// anything: a cheap look to skip lists no newer than the one held.
func PeekVersion(raw []byte) (uint64, error) {
	if len(raw) > MaxAllowBytes {
		return 0, fmt.Errorf("%w: %d bytes", ErrInvalid, len(raw))
	}
	var s signedList
	if err := wire.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var v struct {
		Version uint64 `cbor:"2,keyasint"`
	}
	if err := wire.Unmarshal(s.List, &v); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return v.Version, nil
}
