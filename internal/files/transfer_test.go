package files

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"
)

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

func upload(t *testing.T, net *MemNet, ids [][]byte, data []byte) *Upload {
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
	net, ids := NewMemNet(12)
	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	u := upload(t, net, ids, data)
	m, err := u.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if ratio := float64(net.Stored()) / float64(len(data)); ratio > StorageFactor {
		t.Errorf("stored %.2f× the file", ratio)
	}
	for round := range 3 {
		for _, i := range mrand.Perm(12)[:4] {
			net.Down[string(ids[i])] = true
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
		clear(net.Down)
	}
	for _, i := range mrand.Perm(12)[:5] {
		net.Down[string(ids[i])] = true
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
	net, ids := NewMemNet(12)
	net.Down[string(ids[0])] = true
	net.Forger[string(ids[1])] = true
	net.Busy[string(ids[2])] = 3
	net.Busy[string(ids[6])] = MaxExtraWork + 1 // too dear: skipped
	data := make([]byte, 2<<20)
	rand.Read(data)
	u := upload(t, net, ids, data)
	m, _ := u.Manifest()
	for j := range m.Shares {
		if w := m.Where[j]; w == 0 || w == 1 || w == 6 {
			t.Fatalf("share %d recorded on node %d, which did not (truly) store it", j, w)
		}
	}
	clear(net.Down)
	// Three nodes took no shares, so some hold two of a stripe: one liar
	// and one node down cost at most 4 shares of a stripe.
	net.Liar[string(ids[3])] = true
	net.Down[string(ids[5])] = true
	var got writerAt
	if err := Download(context.Background(), m, &got, nil, &Transfer{Net: net}); err != nil || !bytes.Equal(got.buf, data) {
		t.Fatalf("download with a liar and a node down: %v", err)
	}
}

// TestTransferResumes: an upload that stops after a stripe (a crash)
// goes on from its saved state without storing those stripes again, and
// a download skips the stripes it already wrote.
func TestTransferResumes(t *testing.T) {
	t.Parallel()
	net, ids := NewMemNet(12)
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
	before := net.Puts
	if err := again.Run(context.Background(), bytes.NewReader(data), &Transfer{Net: net}); err != nil {
		t.Fatal(err)
	}
	rest := again.Params.Stripes(again.Size) - 2
	if puts := net.Puts - before; puts != rest*again.Params.N {
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
	before = net.Gets
	if err := Download(context.Background(), m, &got, func(i int) bool { return i == 0 }, &Transfer{Net: net}); err != nil || !bytes.Equal(got.buf, data) {
		t.Fatalf("resumed download: %v", err)
	}
	if gets := net.Gets - before; gets != (c.Stripes()-1)*m.Params.K {
		t.Errorf("resumed download made %d gets, want %d", gets, (c.Stripes()-1)*m.Params.K)
	}
}
