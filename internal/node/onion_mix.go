package node

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// Why a packet was not held for its mix delay.
var (
	errMixFull   = errors.New("onion relay busy: its mix pool is full")
	errMixClosed = errors.New("onion relay closing")
)

// mixLimits bound what packets held for their mix delay may cost a relay
// (OnionLimits.Mix*).
type mixLimits struct {
	maxDelay             time.Duration
	packets, peerPackets int
	bytes, peerBytes     int64
}

// heldPacket is one request waiting out its mix delay.
type heldPacket struct {
	due   time.Time
	from  peer.ID
	bytes int64
	done  chan struct{} // closed when released (err says why)
	err   error         // nil: the delay is over
	index int           // in the heap; -1 once out of it
}

// mixHeap orders held packets by due time.
type mixHeap []*heldPacket

func (h mixHeap) Len() int           { return len(h) }
func (h mixHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h mixHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *mixHeap) Push(x any) {
	p := x.(*heldPacket)
	p.index = len(*h)
	*h = append(*h, p)
}
func (h *mixHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	p.index = -1
	return p
}

// mixUse is what one previous hop holds in the pool.
type mixUse struct {
	packets int
	bytes   int64
}

// mixPool holds onion requests for the mix delay their layer asks for
// (Loopix): a heap ordered by due time, released by one scheduler (run)
// with one timer, so a held packet costs a heap entry and a channel, not
// a goroutine or a timer of its own. The request's handler, which already
// waits for the request's answer, waits on the channel. What held packets
// may cost is bounded in count and bytes, in all and per previous hop;
// beyond the bounds a packet is dropped (answered 429) and counted. The
// bytes are the packet's onion budget charge: a held packet stays charged
// to the onion budget too, and the pool's bound (half the budget by
// default) keeps room there for undelayed traffic.
type mixPool struct {
	lim mixLimits
	now func() time.Time

	mu     sync.Mutex
	heap   mixHeap
	byPeer map[peer.ID]mixUse
	bytes  int64
	closed bool
	wake   chan struct{} // the earliest due time changed

	heldGauge prometheus.Gauge
	delayed   prometheus.Counter
	dropped   prometheus.Counter
	nDropped  int64 // dropped, for tests (under mu)
}

func newMixPool(lim mixLimits, now func() time.Time, reg prometheus.Registerer) *mixPool {
	if now == nil {
		now = time.Now
	}
	m := &mixPool{lim: lim, now: now, byPeer: make(map[peer.ID]mixUse), wake: make(chan struct{}, 1),
		heldGauge: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "umbra", Name: "onion_mix_held",
			Help: "Onion requests held for their mix delay."}),
		delayed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "umbra", Name: "onion_mix_delayed_total",
			Help: "Onion requests held for a mix delay."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "umbra", Name: "onion_mix_dropped_total",
			Help: "Onion requests dropped because the mix pool was full."}),
	}
	if reg != nil {
		reg.MustRegister(m.heldGauge, m.delayed, m.dropped)
	}
	return m
}

// capDelay is d within the relay's cap (never above the protocol's
// onion.MaxDelay: OnionLimits.setDefaults sees to it).
func (m *mixPool) capDelay(d time.Duration) time.Duration { return min(d, m.lim.maxDelay) }

// add puts a packet of n bytes from p in the pool for d (already capped),
// or refuses it over the bounds or after close.
func (m *mixPool) add(p peer.ID, n int64, d time.Duration) (*heldPacket, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errMixClosed
	}
	u := m.byPeer[p]
	if len(m.heap)+1 > m.lim.packets || m.bytes+n > m.lim.bytes ||
		u.packets+1 > m.lim.peerPackets || u.bytes+n > m.lim.peerBytes {
		m.dropped.Inc()
		m.nDropped++
		return nil, errMixFull
	}
	h := &heldPacket{due: m.now().Add(d), from: p, bytes: n, done: make(chan struct{})}
	heap.Push(&m.heap, h)
	m.byPeer[p] = mixUse{u.packets + 1, u.bytes + n}
	m.bytes += n
	m.heldGauge.Set(float64(len(m.heap)))
	m.delayed.Inc()
	if h.index == 0 {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
	return h, nil
}

// removeLocked takes h out of the pool's accounting (and the heap, if it
// is still there).
func (m *mixPool) removeLocked(h *heldPacket) {
	if h.index >= 0 {
		heap.Remove(&m.heap, h.index)
	}
	u := m.byPeer[h.from]
	u.packets--
	u.bytes -= h.bytes
	if u.packets <= 0 {
		delete(m.byPeer, h.from)
	} else {
		m.byPeer[h.from] = u
	}
	m.bytes -= h.bytes
	m.heldGauge.Set(float64(len(m.heap)))
}

// hold holds a request of n bytes from p for its mix delay d (capped):
// it returns nil once the delay is over, errMixFull at once over the
// pool's bounds, errMixClosed when the node closes, or ctx's error if the
// request is abandoned first (its place is freed at once).
func (m *mixPool) hold(ctx context.Context, p peer.ID, n int64, d time.Duration) error {
	d = m.capDelay(d)
	if d <= 0 {
		return nil
	}
	h, err := m.add(p, n, d)
	if err != nil {
		return err
	}
	select {
	case <-h.done:
		return h.err
	case <-ctx.Done():
		m.mu.Lock()
		defer m.mu.Unlock()
		select {
		case <-h.done: // released meanwhile: already accounted for
			return h.err
		default:
		}
		m.removeLocked(h)
		h.index = -1
		return ctx.Err()
	}
}

// releaseDue releases every packet due at or before now and returns the
// earliest due time left (zero if none).
func (m *mixPool) releaseDue(now time.Time) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.heap) > 0 && !m.heap[0].due.After(now) {
		h := heap.Pop(&m.heap).(*heldPacket)
		m.removeLocked(h)
		close(h.done)
	}
	if len(m.heap) == 0 {
		return time.Time{}
	}
	return m.heap[0].due
}

// close releases every held packet with errMixClosed and refuses new ones.
func (m *mixPool) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for len(m.heap) > 0 {
		h := heap.Pop(&m.heap).(*heldPacket)
		m.removeLocked(h)
		h.err = errMixClosed
		close(h.done)
	}
}

// run is the pool's scheduler: one timer, set for the earliest due time,
// releases what is due; it stops the timer and releases every held packet
// (errMixClosed) when ctx ends (the node closing).
func (m *mixPool) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	defer m.close()
	for {
		next := m.releaseDue(m.now())
		wait := time.Hour
		if !next.IsZero() {
			wait = max(0, next.Sub(m.now()))
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-t.C:
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
	}
}

// stats is the pool's state: packets and bytes held, and packets dropped.
func (m *mixPool) stats() (held int, bytes, dropped int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.heap), m.bytes, m.nDropped
}

// OnionMixStats is what this node's mix pool holds now (packets, bytes of
// onion budget charge) and how many packets it has dropped over its
// bounds (tests and the admin view).
func (n *Node) OnionMixStats() (held int, bytes, dropped int64) { return n.obudget.mix.stats() }

// onionMixLoop runs the mix pool's scheduler until the node closes.
func (n *Node) onionMixLoop(ctx context.Context) { n.obudget.mix.run(ctx) }
