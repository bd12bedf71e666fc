package files

import (
	"context"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Download fetches the stripes of m that done does not report as done
// (nil: all), writing each stripe's plaintext at its place in dst, and
// returns when all are written or one cannot be rebuilt. For each stripe
// it asks K shares (the data shares first: no decoding when all come),
// and one more for each that fails; a node that fails, or serves a share
// that does not match its address, is treated as down for the rest of the
// download. Several stripes are fetched at once (t.Parallel requests in
// all); writes, Progress and Checkpoint are serialized.
func Download(ctx context.Context, m *Manifest, dst io.WriterAt, done func(stripe int) bool, t *Transfer) error {
	if err := m.Validate(); err != nil {
		return err
	}
	c, err := NewCoder(m.Key, m.Params, m.Size)
	if err != nil {
		return err
	}
	down := newNodeSet()
	var (
		mu      sync.Mutex // serializes writes, Progress and Checkpoint
		written int64
	)
	g, gctx := errgroup.WithContext(ctx) // the first error stops the rest
	g.SetLimit(max(1, t.parallel()/m.Params.K))
	for i := range c.Stripes() {
		off, n := c.Span(i)
		if done != nil && done(i) {
			mu.Lock()
			written += n
			mu.Unlock()
			continue
		}
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			plain, err := fetchStripe(gctx, c, m, i, down, t)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if err := gctx.Err(); err != nil { // another stripe failed
				return err
			}
			if _, err := dst.WriteAt(plain, off); err != nil {
				return fmt.Errorf("files: write stripe %d: %w", i, err)
			}
			written += n
			if t.Progress != nil {
				t.Progress(written, m.Size)
			}
			if t.Checkpoint != nil {
				return t.Checkpoint(i)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// fetchStripe gathers K good shares of stripe i and rebuilds it.
func fetchStripe(ctx context.Context, c *Coder, m *Manifest, i int, down *nodeSet, t *Transfer) ([]byte, error) {
	p := m.Params
	addrs := m.Stripe(i)
	shares := make([][]byte, p.N)
	// Order: shares on nodes not known down first, data shares first.
	var order []int
	for _, pass := range []bool{false, true} {
		for j := range p.N {
			if down.has(int(m.Where[i*p.N+j])) == pass {
				order = append(order, j)
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		j    int
		data []byte
	}
	results := make(chan result)
	next, inFlight, good := 0, 0, 0
	start := func() {
		j := order[next]
		next++
		inFlight++
		go func() {
			node := int(m.Where[i*p.N+j])
			data, err := t.Net.GetShare(ctx, m.Nodes[node], addrs[j])
			if err != nil || len(data) != p.ShareSize || AddressOf(data) != addrs[j] {
				if ctx.Err() == nil {
					down.add(node)
				}
				data = nil
			}
			select {
			case results <- result{j, data}:
			case <-ctx.Done():
			}
		}()
	}
	for good < p.K {
		// Keep K - good requests in flight (at most t.Parallel).
		for next < len(order) && inFlight < min(p.K-good, t.parallel()) {
			start()
		}
		if inFlight == 0 {
			return nil, fmt.Errorf("%w: stripe %d has %d of the %d needed", ErrNotEnough, i, good, p.K)
		}
		select {
		case r := <-results:
			inFlight--
			if r.data != nil {
				shares[r.j] = r.data
				good++
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	cancel() // the rest are not needed
	plain, _, err := c.Open(i, shares, addrs)
	return plain, err
}
