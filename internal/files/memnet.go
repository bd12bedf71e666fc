package files

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"sync"

	"github.com/umbra-im/umbra/internal/wire"
)

// MemNet is the in-memory twin of the nodes that store shares (for tests
// of the client): each holds shares, checks them as a node does, and
// signs receipts; some may be down or hostile. Change the exported maps
// only while no transfer runs; SetDown may be called at any time.
type MemNet struct {
	mu     sync.Mutex
	keys   map[string]ed25519.PrivateKey
	held   map[string]map[Address][]byte
	Down   map[string]bool
	Liar   map[string]bool // serves other bytes than it stored
	Forger map[string]bool // signs receipts for the wrong expiry
	Busy   map[string]int  // asks this many more bits once
	Puts   int
	Gets   int
	ids    [][]byte
}

// SetDown takes node down (or back up).
func (m *MemNet) SetDown(node []byte, down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Down[string(node)] = down
}

// ShareNodes is the nodes' IDs (Ed25519 public keys).
func (m *MemNet) ShareNodes() [][]byte { return m.ids }

// NewMemNet makes n nodes and returns them with their IDs.
func NewMemNet(n int) (*MemNet, [][]byte) {
	m := &MemNet{keys: map[string]ed25519.PrivateKey{}, held: map[string]map[Address][]byte{},
		Down: map[string]bool{}, Liar: map[string]bool{}, Forger: map[string]bool{}, Busy: map[string]int{}}
	var ids [][]byte
	for range n {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		m.keys[string(pub)], m.held[string(pub)] = priv, map[Address][]byte{}
		ids = append(ids, pub)
	}
	m.ids = ids
	return m, ids
}

// PutShare checks and stores a share as a node does.
func (m *MemNet) PutShare(ctx context.Context, node []byte, req *wire.SharePutReq) (*wire.SharePutResp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := string(node)
	m.Puts++
	if m.Down[id] {
		return nil, errors.New("unreachable")
	}
	var a Address
	copy(a[:], req.Addr)
	bits := ShareWork(len(req.Data), 0, 0) + m.Busy[id]
	if AddressOf(req.Data) != a {
		return nil, wire.Errorf(wire.CodeBadRequest, "address")
	}
	if !CheckWork(a, req.Expiry, req.Work, bits) {
		return nil, &wire.Error{Code: wire.CodeRateLimited, WorkBits: bits}
	}
	m.Busy[id] = 0
	m.held[id][a] = bytes.Clone(req.Data)
	exp := req.Expiry
	if m.Forger[id] {
		exp++
	}
	return &wire.SharePutResp{Expiry: req.Expiry, Sig: ed25519.Sign(m.keys[id], ReceiptMessage(a, exp))}, nil
}

// GetShare serves a share (altered, by a liar).
func (m *MemNet) GetShare(ctx context.Context, node []byte, a Address) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := string(node)
	m.Gets++
	if m.Down[id] {
		return nil, errors.New("unreachable")
	}
	d, ok := m.held[id][a]
	if !ok {
		return nil, &wire.Error{Code: wire.CodeGone}
	}
	if m.Liar[id] {
		d = bytes.Clone(d)
		d[0] ^= 1
	}
	return bytes.Clone(d), nil
}

// VerifyReceipt checks an Ed25519 receipt.
func (m *MemNet) VerifyReceipt(node []byte, a Address, expiry int64, sig []byte) bool {
	return len(node) == ed25519.PublicKeySize && ed25519.Verify(node, ReceiptMessage(a, expiry), sig)
}

// Stored is the bytes of shares the nodes hold.
func (m *MemNet) Stored() (n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.held {
		for _, d := range h {
			n += int64(len(d))
		}
	}
	return n
}
