package files

import (
	"context"
	"fmt"
	"io"
	"sync"
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
		mu      sync.Mutex
		written int64
		fail    error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := func(err error) {
		if fail == nil {
			fail = err
			cancel()
		}
	}
	sem := make(chan struct{}, max(1, t.parallel()/m.Params.K))
	var wg sync.WaitGroup
	for i := range c.Stripes() {
		off, n := c.Span(i)
		if done != nil && done(i) {
			mu.Lock()
			written += n
			mu.Unlock()
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			plain, err := fetchStripe(ctx, c, m, i, down, t)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				stop(err)
				return
			}
			if fail != nil {
				return
			}
			if _, err := dst.WriteAt(plain, off); err != nil {
				stop(fmt.Errorf("files: write stripe %d: %w", i, err))
				return
			}
			written += n
			if t.Progress != nil {
				t.Progress(written, m.Size)
			}
			if t.Checkpoint != nil {
				if err := t.Checkpoint(i); err != nil {
					stop(err)
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if fail != nil {
		return fail
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
