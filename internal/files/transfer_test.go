package files

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/wire"
)

// memNet is the in-memory twin of the nodes: each holds shares, checks
// them as a node does, and signs receipts; some may be down or hostile.
type memNet struct {
	mu     sync.Mutex
	keys   map[string]ed25519.PrivateKey
	held   map[string]map[Address][]byte
	down   map[string]bool
	liar   map[string]bool // serves other bytes than it stored
	forger map[string]bool // signs receipts for the wrong expiry
	busy   map[string]int  // asks this many more bits once
	puts   int
	gets   int
}

func newMemNet(n int) (*memNet, [][]byte) {
	m := &memNet{keys: map[string]ed25519.PrivateKey{}, held: map[string]map[Address][]byte{},
		down: map[string]bool{}, liar: map[string]bool{}, forger: map[string]bool{}, busy: map[string]int{}}
	var ids [][]byte
	for range n {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		m.keys[string(pub)], m.held[string(pub)] = priv, map[Address][]byte{}
		ids = append(ids, pub)
	}
	return m, ids
}

func (m *memNet) PutShare(ctx context.Context, node []byte, req *wire.SharePutReq) (*wire.SharePutResp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := string(node)
	m.puts++
	if m.down[id] {
		return nil, errors.New("unreachable")
	}
	var a Address
	copy(a[:], req.Addr)
	bits := ShareWork(len(req.Data), 0, 0) + m.busy[id]
	if AddressOf(req.Data) != a {
		return nil, wire.Errorf(wire.CodeBadRequest, "address")
	}
	if !CheckWork(a, req.Expiry, req.Work, bits) {
		return nil, &wire.Error{Code: wire.CodeRateLimited, WorkBits: bits}
	}
	m.busy[id] = 0
	m.held[id][a] = bytes.Clone(req.Data)
	exp := req.Expiry
	if m.forger[id] {
		exp++
	}
	return &wire.SharePutResp{Expiry: req.Expiry, Sig: ed25519.Sign(m.keys[id], ReceiptMessage(a, exp))}, nil
}

func (m *memNet) GetShare(ctx context.Context, node []byte, a Address) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := string(node)
	m.gets++
	if m.down[id] {
		return nil, errors.New("unreachable")
	}
	d, ok := m.held[id][a]
	if !ok {
		return nil, &wire.Error{Code: wire.CodeGone}
	}
	if m.liar[id] {
		d = bytes.Clone(d)
		d[0] ^= 1
	}
	return bytes.Clone(d), nil
}

func (m *memNet) VerifyReceipt(node []byte, a Address, expiry int64, sig []byte) bool {
	return len(node) == ed25519.PublicKeySize && ed25519.Verify(node, ReceiptMessage(a, expiry), sig)
}

func (m *memNet) stored() (n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.held {
		for _, d := range h {
			n += int64(len(d))
		}
	}
	return n
}

// writerAt is an in-memory io.WriterAt.
type writerAt struct {
	mu  sync.Mutex
	buf []byte
}

func (w *writerAt) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if end := int(off) + len(p); end > len(w.buf) {
		w.buf = append(w.buf, make([]byte, end-len(w.buf))...)
	}
	return copy(w.buf[off:], p), nil
}

func upload(t *testing.T, net *memNet, ids [][]byte, data []byte) *Upload {
	t.Helper()
	u, err := NewUpload(int64(len(data)), ids, time.Now().Add(time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Run(context.Background(), bytes.NewReader(data), &Transfer{Net: net}); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestTransferSurvivesDeadNodes: a 3 MiB file goes to 12 nodes at
// ≤ 1.6× its size, and comes back whole with any 4 of them down.
func TestTransferSurvivesDeadNodes(t *testing.T) {
	t.Parallel()
	net, ids := newMemNet(12)
	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	u := upload(t, net, ids, data)
	m, err := u.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if ratio := float64(net.stored()) / float64(len(data)); ratio > StorageFactor {
		t.Errorf("stored %.2f× the file", ratio)
	}
	for round := range 3 {
		for _, i := range mrand.Perm(12)[:4] {
			net.down[string(ids[i])] = true
		}
		var got writerAt
		var last int64
		tr := &Transfer{Net: net, Progress: func(done, total int64) { last = done }}
		if err := Download(context.Background(), m, &got, nil, tr); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !bytes.Equal(got.buf, data) || last != int64(len(data)) {
			t.Fatalf("round %d: got %d bytes (progress %d), want %d", round, len(got.buf), last, len(data))
		}
		clear(net.down)
	}
	for _, i := range mrand.Perm(12)[:5] {
		net.down[string(ids[i])] = true
	}
	if err := Download(context.Background(), m, &writerAt{}, nil, &Transfer{Net: net}); !errors.Is(err, ErrNotEnough) {
		t.Fatalf("5 of 12 down: %v, want ErrNotEnough", err)
	}
}

// TestTransferHostileNodes: nodes that are down at upload, that forge
// receipts, that ask more work, or that serve altered shares cost
// retries, never the file.
func TestTransferHostileNodes(t *testing.T) {
	t.Parallel()
	net, ids := newMemNet(12)
	net.down[string(ids[0])] = true
	net.forger[string(ids[1])] = true
	net.busy[string(ids[2])] = 3
	data := make([]byte, 2<<20)
	rand.Read(data)
	u := upload(t, net, ids, data)
	m, _ := u.Manifest()
	for j := range m.Shares {
		if w := m.Where[j]; w == 0 || w == 1 {
			t.Fatalf("share %d recorded on node %d, which did not (truly) store it", j, w)
		}
	}
	clear(net.down)
	net.liar[string(ids[3])], net.liar[string(ids[4])] = true, true
	net.down[string(ids[5])] = true
	var got writerAt
	if err := Download(context.Background(), m, &got, nil, &Transfer{Net: net}); err != nil || !bytes.Equal(got.buf, data) {
		t.Fatalf("download with 2 liars and 1 down: %v", err)
	}
}

// TestTransferResumes: an upload that stops after a stripe (a crash)
// goes on from its saved state without storing those stripes again, and
// a download skips the stripes it already wrote.
func TestTransferResumes(t *testing.T) {
	t.Parallel()
	net, ids := newMemNet(12)
	data := make([]byte, 4<<20)
	rand.Read(data)
	u, err := NewUpload(int64(len(data)), ids, time.Now().Add(time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	var saved []byte
	crash := errors.New("crash")
	tr := &Transfer{Net: net, Checkpoint: func(stripe int) error {
		saved, _ = json.Marshal(u)
		if stripe == 1 {
			return crash
		}
		return nil
	}}
	if err := u.Run(context.Background(), bytes.NewReader(data), tr); !errors.Is(err, crash) {
		t.Fatalf("first run: %v", err)
	}
	var again Upload
	if err := json.Unmarshal(saved, &again); err != nil || again.Stripes() != 2 {
		t.Fatalf("saved state: %v, %d stripes", err, again.Stripes())
	}
	before := net.puts
	if err := again.Run(context.Background(), bytes.NewReader(data), &Transfer{Net: net}); err != nil {
		t.Fatal(err)
	}
	rest := again.Params.Stripes(again.Size) - 2
	if puts := net.puts - before; puts != rest*again.Params.N {
		t.Errorf("resumed upload made %d puts, want %d", puts, rest*again.Params.N)
	}
	m, err := again.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	got := writerAt{buf: make([]byte, len(data))}
	c, _ := NewCoder(m.Key, m.Params, m.Size)
	_, n0 := c.Span(0)
	copy(got.buf, data[:n0]) // as if a first run wrote stripe 0
	before = net.gets
	if err := Download(context.Background(), m, &got, func(i int) bool { return i == 0 }, &Transfer{Net: net}); err != nil || !bytes.Equal(got.buf, data) {
		t.Fatalf("resumed download: %v", err)
	}
	if gets := net.gets - before; gets != (c.Stripes()-1)*m.Params.K {
		t.Errorf("resumed download made %d gets, want %d", gets, (c.Stripes()-1)*m.Params.K)
	}
}
