package files

import (
	"errors"
	"fmt"

	"github.com/umbra-im/umbra/internal/wire"
)

const (
	// MaxNodeID bounds a node ID in a Manifest (libp2p peer IDs are 38
	// bytes for Ed25519 keys).
	MaxNodeID = 64
	// MaxManifest bounds an encoded Manifest, so that it fits a message
	// with room for a thumbnail.
	MaxManifest = 200 << 10
)

// Manifest is what a reader needs to fetch and rebuild a file: it travels
// inside the end-to-end encryption of the message that carries the file.
type Manifest struct {
	Version uint   `cbor:"1,keyasint"`
	Size    int64  `cbor:"2,keyasint"`
	Key     []byte `cbor:"3,keyasint"`
	Params  Params `cbor:"4,keyasint"`
	// Shares are the addresses of every share, stripe after stripe, N
	// per stripe.
	Shares [][]byte `cbor:"5,keyasint"`
	// Nodes are the nodes that acknowledged shares, and Where[j] the
	// index in Nodes of the node that holds Shares[j].
	Nodes [][]byte `cbor:"6,keyasint"`
	Where []uint16 `cbor:"7,keyasint"`
	// Expiry is when the nodes may drop the shares (Unix ms).
	Expiry int64 `cbor:"8,keyasint"`
}

// Stripe returns the addresses of stripe i's shares.
func (m *Manifest) Stripe(i int) []Address {
	n := m.Params.N
	out := make([]Address, n)
	for j := range out {
		copy(out[j][:], m.Shares[i*n+j])
	}
	return out
}

// Node is the node that holds share j.
func (m *Manifest) Node(j int) []byte { return m.Nodes[m.Where[j]] }

// Validate checks that m is consistent and within bounds.
func (m *Manifest) Validate() error {
	if m.Version != 1 {
		return fmt.Errorf("files: manifest version %d", m.Version)
	}
	if err := m.Params.Validate(); err != nil {
		return err
	}
	if m.Size < 0 || m.Size > MaxFileSize {
		return ErrTooLarge
	}
	if len(m.Key) != KeySize {
		return errors.New("files: manifest key is not 32 bytes")
	}
	want := m.Params.Stripes(m.Size) * m.Params.N
	if want > MaxShares {
		return fmt.Errorf("files: manifest has more than %d shares", MaxShares)
	}
	if len(m.Shares) != want || len(m.Where) != want {
		return fmt.Errorf("files: manifest lists %d shares and %d places, want %d", len(m.Shares), len(m.Where), want)
	}
	for _, a := range m.Shares {
		if len(a) != len(Address{}) {
			return errors.New("files: manifest share address is not 32 bytes")
		}
	}
	if len(m.Nodes) == 0 || len(m.Nodes) > MaxShares {
		return fmt.Errorf("files: manifest lists %d nodes", len(m.Nodes))
	}
	for _, n := range m.Nodes {
		if len(n) == 0 || len(n) > MaxNodeID {
			return errors.New("files: manifest node ID of a bad length")
		}
	}
	for _, w := range m.Where {
		if int(w) >= len(m.Nodes) {
			return errors.New("files: manifest places a share on a node it does not list")
		}
	}
	return nil
}

// Marshal encodes a valid m.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := wire.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxManifest {
		return nil, fmt.Errorf("files: manifest of %d KiB (at most %d)", len(b)>>10, MaxManifest>>10)
	}
	return b, nil
}

// ParseManifest decodes and checks a manifest a peer sent.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifest {
		return nil, errors.New("files: manifest too large")
	}
	var m Manifest
	if err := wire.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("files: manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}
