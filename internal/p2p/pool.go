package p2p

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/wire"
)

// ErrPoolClosed is returned by calls on a closed pool.
var ErrPoolClosed = errors.New("p2p: pool closed")

// PoolOptions configure a Pool; zero values take the defaults.
type PoolOptions struct {
	MaxInflight int           // calls in flight per session (DefaultMaxInflight)
	MaxSessions int           // sessions per peer and protocol (DefaultMaxSessions)
	IdleTimeout time.Duration // a session unused this long is closed (DefaultIdleTimeout)
	// BeforeOpen, if set, runs before a session is opened to a peer: the
	// node teaches the peerstore the peer's addresses there, once per
	// session rather than once per call.
	BeforeOpen func(peer.ID)
}

type poolKey struct {
	peer  peer.ID
	proto string
}

type peerSessions struct {
	list    []*Session
	opening *openAttempt // a session being opened, nil if none
}

type openAttempt struct {
	done chan struct{}
	err  error
}

// Pool keeps sessions to peers, keyed by (peer, protocol), opened lazily on
// the first call and closed after IdleTimeout without calls. A session that
// fails is dropped and the next call opens a new one. A second session to
// the same peer is opened only when every open one has MaxInflight calls in
// flight (long-polls, say), up to MaxSessions; beyond that calls wait for
// a slot: so at most MaxSessions × MaxInflight calls are in flight to one
// peer on one protocol (the server's per-peer cap, DefaultMaxPeerInflight,
// with the defaults). The pool owns no goroutine of its own besides each session's
// reader (and a timer while sessions exist); Close ends them all, and so
// does closing the host.
type Pool struct {
	h    host.Host
	opts PoolOptions

	mu       sync.Mutex
	closed   bool
	sessions map[poolKey]*peerSessions
	reaper   *time.Timer // armed while sessions exist
}

// NewPool makes a pool of sessions from h.
func NewPool(h host.Host, opts PoolOptions) *Pool {
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = DefaultMaxInflight
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	return &Pool{h: h, opts: opts, sessions: make(map[poolKey]*peerSessions)}
}

// Call sends a request to p on proto's session and decodes the answer of
// kind respKind into resp; an error frame from the peer is returned as
// *wire.Error. Without a deadline on ctx the call is bounded by
// DefaultCallTimeout.
func (p *Pool) Call(ctx context.Context, to peer.ID, proto Proto, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	body, err := encodeRequest(proto, reqKind, req)
	if err != nil {
		return err
	}
	key := poolKey{to, proto.ID}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return ErrPoolClosed
		}
		ps := p.sessions[key]
		if ps == nil {
			ps = &peerSessions{}
			p.sessions[key] = ps
		}
		var best *Session
		live := 0
		for _, s := range ps.list {
			if s.dead() {
				continue // being removed by its onDead hook
			}
			live++
			if best == nil || s.Inflight() < best.Inflight() {
				best = s
			}
		}
		if best != nil && best.tryAcquire() {
			p.mu.Unlock()
			return best.callAcquired(ctx, reqKind, body, respKind, resp)
		}
		if a := ps.opening; a != nil {
			// Another call is opening a session: wait for it.
			p.mu.Unlock()
			select {
			case <-a.done:
			case <-ctx.Done():
				return fmt.Errorf("%s to %s: %w", reqKind, ShortID(to), ctx.Err())
			}
			if a.err != nil && !errors.Is(a.err, context.Canceled) && !errors.Is(a.err, context.DeadlineExceeded) {
				return a.err
			}
			continue // opened, or the opener's own context ended: try again
		}
		if live < p.opts.MaxSessions {
			a := &openAttempt{done: make(chan struct{})}
			ps.opening = a
			p.mu.Unlock()
			s, err := p.open(ctx, to, proto)
			p.mu.Lock()
			ps.opening = nil
			a.err = err
			closed := p.closed
			if s != nil && !closed {
				ps.list = append(ps.list, s)
				p.armReaper()
			}
			close(a.done)
			p.mu.Unlock()
			if closed {
				if s != nil {
					s.Close()
				}
				return ErrPoolClosed
			}
			if err != nil {
				return err
			}
			continue
		}
		p.mu.Unlock()
		// Every session is full and there are as many as allowed: wait
		// for a slot on the least loaded.
		if err := best.acquire(ctx); err != nil {
			if ctx.Err() != nil {
				return best.wrap(reqKind, err)
			}
			continue // it ended; try again
		}
		return best.callAcquired(ctx, reqKind, body, respKind, resp)
	}
}

// open opens a session to p for proto.ID.
func (p *Pool) open(ctx context.Context, to peer.ID, proto Proto) (*Session, error) {
	if p.opts.BeforeOpen != nil {
		p.opts.BeforeOpen(to)
	}
	s, err := openStream(ctx, p.h, to, proto.ID)
	if err != nil {
		return nil, err
	}
	key := poolKey{to, proto.ID}
	return newSession(s, proto, p.opts.MaxInflight, func(s *Session) { p.remove(key, s) }), nil
}

// remove drops a session that ended.
func (p *Pool) remove(key poolKey, s *Session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.sessions[key]
	if ps == nil {
		return
	}
	for i, x := range ps.list {
		if x == s {
			ps.list = append(ps.list[:i:i], ps.list[i+1:]...)
			break
		}
	}
	if len(ps.list) == 0 && ps.opening == nil {
		delete(p.sessions, key)
	}
}

// armReaper schedules an idle sweep if none is scheduled. p.mu is held.
func (p *Pool) armReaper() {
	if p.reaper == nil && !p.closed {
		p.reaper = time.AfterFunc(p.opts.IdleTimeout/2, p.reap)
	}
}

// reap closes sessions without calls for IdleTimeout.
func (p *Pool) reap() {
	cutoff := time.Now().Add(-p.opts.IdleTimeout).UnixNano()
	var idle []*Session
	p.mu.Lock()
	p.reaper = nil
	for key, ps := range p.sessions {
		kept := ps.list[:0]
		for _, s := range ps.list {
			if s.Inflight() == 0 && s.lastUsed.Load() < cutoff {
				idle = append(idle, s)
			} else {
				kept = append(kept, s)
			}
		}
		clear(ps.list[len(kept):])
		ps.list = kept
		if len(ps.list) == 0 && ps.opening == nil {
			delete(p.sessions, key)
		}
	}
	if len(p.sessions) > 0 {
		p.armReaper()
	}
	p.mu.Unlock()
	for _, s := range idle {
		s.Close()
	}
}

// Sessions is the number of open sessions (tests and metrics).
func (p *Pool) Sessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, ps := range p.sessions {
		n += len(ps.list)
	}
	return n
}

// Close closes every session, failing calls in flight, and makes later
// calls fail with ErrPoolClosed. It waits for the sessions' goroutines.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	if p.reaper != nil {
		p.reaper.Stop()
		p.reaper = nil
	}
	var all []*Session
	for _, ps := range p.sessions {
		all = append(all, ps.list...)
	}
	p.sessions = make(map[poolKey]*peerSessions)
	p.mu.Unlock()
	for _, s := range all {
		s.Close()
	}
	return nil
}
