package files

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/umbra-im/umbra/internal/wire"
)

// Net is how transfers reach nodes: one request to one node (through an
// onion path whose exit is that node, in the client). Nodes are named by
// their ID bytes (libp2p peer IDs).
type Net interface {
	PutShare(ctx context.Context, node []byte, req *wire.SharePutReq) (*wire.SharePutResp, error)
	GetShare(ctx context.Context, node []byte, addr Address) ([]byte, error)
	// VerifyReceipt checks a node's signature over ReceiptMessage.
	VerifyReceipt(node []byte, addr Address, expiry int64, sig []byte) bool
}

// Upload is the state of one upload: enough to resume it after a crash
// (the caller saves it with each Checkpoint) and, once done, to make the
// file's Manifest.
type Upload struct {
	Key    []byte   `json:"key"`
	Size   int64    `json:"size"`
	Params Params   `json:"params"`
	Expiry int64    `json:"expiry"`
	Nodes  [][]byte `json:"nodes"`
	// Shares and Where grow stripe by stripe: a stripe is recorded once
	// every one of its shares is held by a node (Where: index in Nodes).
	Shares [][]byte `json:"shares"`
	Where  []uint16 `json:"where"`
}

// Stripes is how many stripes the upload has finished.
func (u *Upload) Stripes() int { return len(u.Shares) / u.Params.N }

// Done reports whether every stripe is stored.
func (u *Upload) Done() bool { return u.Stripes() == u.Params.Stripes(u.Size) }

// Manifest is the finished upload's manifest.
func (u *Upload) Manifest() (*Manifest, error) {
	if !u.Done() {
		return nil, fmt.Errorf("files: upload has %d of %d stripes", u.Stripes(), u.Params.Stripes(u.Size))
	}
	m := &Manifest{Version: 1, Size: u.Size, Key: u.Key, Params: u.Params, Shares: u.Shares, Nodes: u.Nodes, Where: u.Where, Expiry: u.Expiry}
	return m, m.Validate()
}

// NewUpload starts the upload of a file of size bytes to nodes (IDs),
// kept until expiry (Unix ms).
func NewUpload(size int64, nodes [][]byte, expiry int64) (*Upload, error) {
	p, err := ChooseParams(size, len(nodes))
	if err != nil {
		return nil, err
	}
	key := make([]byte, KeySize)
	rand.Read(key)
	return &Upload{Key: key, Size: size, Params: p, Expiry: expiry, Nodes: nodes}, nil
}

// Transfer says how an upload or download runs.
type Transfer struct {
	Net Net
	// Parallel is the number of requests in flight (default 32): several
	// onion paths, and several stripes, at once.
	Parallel int
	// Progress, if set, is told the bytes of the file done so far.
	Progress func(done, total int64)
	// Checkpoint, if set, is called after each finished stripe (an upload
	// saves its Upload; a download notes the stripe), before the next.
	Checkpoint func(stripe int) error
	// Attempts bounds the nodes tried for one share (default 6).
	Attempts int
}

func (t *Transfer) parallel() int {
	if t.Parallel > 0 {
		return t.Parallel
	}
	return 32
}

func (t *Transfer) attempts() int {
	if t.Attempts > 0 {
		return t.Attempts
	}
	return 6
}

// ErrNoNode is returned when a share found no node to hold it.
var ErrNoNode = errors.New("files: no node would store a share")

// Run stores the stripes of src not stored yet (from u.Stripes() on),
// reading each from src, and returns when all are, or on the first
// share no node would take. A node that fails or refuses a share is
// left out for the rest of the upload and the share goes to the next
// node in its rendezvous order that the stripe does not use. Several
// stripes are in flight at once (t.Parallel requests in all), so the
// upload is not bound by one request's latency; they are recorded (and
// checkpointed) in order, so a resumed upload repeats at most those that
// were in flight.
func (u *Upload) Run(ctx context.Context, src io.ReaderAt, t *Transfer) error {
	c, err := NewCoder(u.Key, u.Params, u.Size)
	if err != nil {
		return err
	}
	bad := newNodeSet()
	type stored struct {
		addrs []Address
		where []int
	}
	var (
		mu    sync.Mutex // guards ready, next and u's lists
		ready = map[int]stored{}
		next  = u.Stripes() // the next stripe to record
	)
	g, gctx := errgroup.WithContext(ctx) // the first error stops the rest
	// record appends the stripes finished in order, under mu.
	record := func() error {
		for gctx.Err() == nil {
			st, ok := ready[next]
			if !ok {
				return nil
			}
			delete(ready, next)
			for j, a := range st.addrs {
				u.Shares = append(u.Shares, a[:])
				u.Where = append(u.Where, uint16(st.where[j]))
			}
			off, n := c.Span(next)
			if t.Progress != nil {
				t.Progress(off+n, u.Size)
			}
			if t.Checkpoint != nil {
				if err := t.Checkpoint(next); err != nil {
					return err
				}
			}
			next++
		}
		return gctx.Err()
	}
	g.SetLimit(max(1, t.parallel()/u.Params.N))
	for i := u.Stripes(); i < c.Stripes() && gctx.Err() == nil; i++ {
		g.Go(func() error {
			off, n := c.Span(i)
			plain := make([]byte, n)
			if _, err := src.ReadAt(plain, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
				return fmt.Errorf("files: read stripe %d: %w", i, err)
			}
			shares, err := c.Seal(i, plain)
			if err != nil {
				return err
			}
			addrs := make([]Address, len(shares))
			for j, sh := range shares {
				addrs[j] = AddressOf(sh)
			}
			where, err := u.storeStripe(gctx, shares, addrs, bad, t)
			if err != nil {
				return fmt.Errorf("files: stripe %d: %w", i, err)
			}
			mu.Lock()
			defer mu.Unlock()
			ready[i] = stored{addrs, where}
			return record()
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// storeStripe puts one stripe's shares (with their addresses), t.Parallel
// at a time, and returns the node of each.
func (u *Upload) storeStripe(ctx context.Context, shares [][]byte, addrs []Address, bad *nodeSet, t *Transfer) ([]int, error) {
	var mu sync.Mutex // guards where
	where := Place(addrs, u.Nodes, bad.has)
	// pick is the node for share j: its placed node while that one is
	// good, else the first good node in its rendezvous order that no
	// other share of the stripe uses (any good node if all are used).
	pick := func(j int) int {
		mu.Lock()
		defer mu.Unlock()
		if w := where[j]; w >= 0 && !bad.has(w) {
			return w
		}
		taken := map[int]bool{}
		for k, w := range where {
			if k != j && w >= 0 {
				taken[w] = true
			}
		}
		fallback := -1
		for _, n := range Rank(addrs[j], u.Nodes) {
			if bad.has(n) {
				continue
			}
			if !taken[n] {
				where[j] = n
				return n
			}
			if fallback < 0 {
				fallback = n
			}
		}
		where[j] = fallback
		return fallback
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(t.parallel())
	for j := range shares {
		g.Go(func() error {
			for range t.attempts() {
				node := pick(j)
				if node < 0 {
					break
				}
				if u.put(gctx, node, addrs[j], shares[j], t.Net) == nil {
					return nil
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				bad.add(node)
			}
			return fmt.Errorf("%w (share %d of the stripe)", ErrNoNode, j)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return where, nil
}

// MaxExtraWork is the most work above the base price an uploader pays a
// node (16 times the base: a node past 5/8 of its quota): a node that
// asks more is skipped like a failing one, so a hostile node cannot make
// uploads burn minutes of CPU, and full nodes get no new shares.
const MaxExtraWork = 4

// ErrTooDear is returned when a node asks more work than MaxExtraWork.
var ErrTooDear = errors.New("files: the node asks too much work")

// put stores one share on node, paying the work it asks (within
// MaxExtraWork), and checks the node's receipt.
func (u *Upload) put(ctx context.Context, node int, a Address, share []byte, net Net) error {
	id := u.Nodes[node]
	base := ShareWork(len(share), 0, 0)
	bits := base
	for range 3 {
		nonce, err := SolveWork(a, u.Expiry, bits, ctx.Done())
		if err != nil {
			return err
		}
		resp, err := net.PutShare(ctx, id, &wire.SharePutReq{Addr: a[:], Expiry: u.Expiry, Work: nonce, Data: share})
		var we *wire.Error
		if errors.As(err, &we) && we.Code == wire.CodeRateLimited && we.WorkBits > bits {
			if we.WorkBits > base+MaxExtraWork {
				return fmt.Errorf("%w: %d bits", ErrTooDear, we.WorkBits)
			}
			bits = we.WorkBits // a busy node: pay its price
			continue
		}
		if err != nil {
			return err
		}
		if resp.Expiry < u.Expiry || !net.VerifyReceipt(id, a, resp.Expiry, resp.Sig) {
			return errors.New("files: node's receipt does not verify")
		}
		return nil
	}
	return errors.New("files: node keeps asking more work")
}

// nodeSet is a set of node indexes, safe for concurrent use.
type nodeSet struct {
	mu sync.Mutex
	m  map[int]bool
}

func newNodeSet() *nodeSet { return &nodeSet{m: map[int]bool{}} }

func (s *nodeSet) add(i int) {
	s.mu.Lock()
	s.m[i] = true
	s.mu.Unlock()
}

func (s *nodeSet) has(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[i]
}
