package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/umbra-im/umbra/internal/wire"
)

// Handler answers one request: the answer's kind and body, or wire.KindError
// and a *wire.Error. ctx ends when the server closes or, on a session, when
// the session breaks. from is the requesting peer.
type Handler func(ctx context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any)

// SessionOptions bound what one peer can make the server hold; zero values
// take the defaults.
type SessionOptions struct {
	MaxReq      int // largest request frame, kind + body (wire.MaxFrame)
	MaxInflight int // requests served at once per session (DefaultMaxInflight)
	MaxPerPeer  int // sessions per peer on this protocol (DefaultMaxPerPeer)
	// MaxPeerInflight bounds a peer's requests in flight over all its
	// sessions of this protocol (DefaultMaxPeerInflight); beyond it a
	// request is answered 429 at once.
	MaxPeerInflight int
	IdleTimeout     time.Duration // a session with no request for this long is closed (DefaultServerIdle)
	// Accept, if set, vets the peer when a session opens (node-to-node
	// protocols take only nodes of the table); a refused peer's stream is
	// reset before anything is read. Handlers still check every request.
	Accept func(peer.ID) bool
}

// Server-side defaults.
const (
	// DefaultMaxPerPeer is twice the pool's DefaultMaxSessions, so a
	// client replacing sessions does not hit it.
	DefaultMaxPerPeer = 2 * DefaultMaxSessions
	// DefaultMaxPeerInflight is what a pool with the defaults holds in
	// flight to one peer on one protocol: DefaultMaxSessions sessions of
	// DefaultMaxInflight calls.
	DefaultMaxPeerInflight = DefaultMaxSessions * DefaultMaxInflight
	// DefaultServerIdle is longer than the pool's DefaultIdleTimeout, so
	// the client closes idle sessions first (an answer cannot be lost to a
	// close racing a new request).
	DefaultServerIdle = 2 * time.Minute
	// drainTimeout is how long a session whose framing broke waits for the
	// peer to read the error frame and close before it is reset.
	drainTimeout = 2 * time.Second
)

func (o *SessionOptions) setDefaults() {
	o.MaxReq = limit(o.MaxReq)
	if o.MaxInflight <= 0 {
		o.MaxInflight = DefaultMaxInflight
	}
	if o.MaxPerPeer <= 0 {
		o.MaxPerPeer = DefaultMaxPerPeer
	}
	if o.MaxPeerInflight <= 0 {
		o.MaxPeerInflight = DefaultMaxPeerInflight
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultServerIdle
	}
}

// Server serves request handlers on sessions (HandleSession) and tracks
// every stream it serves so that Close cuts them and waits for their
// handlers. It shares its request slots fairly between sources: see
// DefaultMaxInflightTotal and the shares after it.
type Server struct {
	h      host.Host
	ctx    context.Context
	cancel context.CancelFunc

	slots *slots // requests being served on any session

	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	streams map[network.Stream]struct{}
	perPeer map[poolKey]int
}

// NewServer makes a server on h.
func NewServer(h host.Host) *Server {
	return newServer(h, defaultSlotLimits)
}

func newServer(h host.Host, lim slotLimits) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{h: h, ctx: ctx, cancel: cancel, slots: newSlots(lim),
		streams: make(map[network.Stream]struct{}), perPeer: make(map[poolKey]int)}
}

// enter registers a stream being served; false if the server is closed or
// the peer has maxPerPeer sessions on this protocol already.
func (srv *Server) enter(s network.Stream, key poolKey, maxPerPeer int) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed || srv.perPeer[key] >= maxPerPeer {
		return false
	}
	srv.perPeer[key]++
	srv.streams[s] = struct{}{}
	srv.wg.Add(1)
	return true
}

func (srv *Server) leave(s network.Stream, key poolKey) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.perPeer[key]--; srv.perPeer[key] <= 0 {
		delete(srv.perPeer, key)
	}
	delete(srv.streams, s)
	srv.wg.Done()
}

// HandleSession serves proto on sessions: each stream carries pipelined
// requests with ids (see Session). The peer is vetted (o.Accept) and its
// stream put in the resource manager's Umbra service scope before anything
// is read. Every request is served in its own goroutine, at most
// o.MaxInflight at once per session (beyond that the server stops reading
// the stream: backpressure); answers go back as they are ready, in any
// order. A request over the peer's, its address's or its subnet's share
// of the server's slots is answered 429 at once, over the server's total
// 503, without reading its body into memory. A request's body is reserved
// in the stream's resource scope as it arrives (refused: 503), and held
// with its slot until the answer has been written. A bad request gets an
// error answer and the session goes on; broken framing (an oversized or
// malformed frame) gets a session-level error frame and ends the session.
// A session without requests for o.IdleTimeout is closed.
func (srv *Server) HandleSession(proto string, o SessionOptions, f Handler) {
	o.setDefaults()
	srv.h.SetStreamHandler(protocol.ID(proto), func(ns network.Stream) {
		key := poolKey{ns.Conn().RemotePeer(), proto}
		if o.Accept != nil && !o.Accept(key.peer) {
			ns.Reset()
			return
		}
		if !srv.enter(ns, key, o.MaxPerPeer) {
			ns.Reset()
			return
		}
		defer srv.leave(ns, key)
		if err := ns.Scope().SetService(ServiceName); err != nil {
			ns.Reset()
			return
		}
		srv.serveSession(ns, key, sourceOf(ns.Conn()), &o, f)
	})
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// errorFrame encodes an error answer.
func errorFrame(e *wire.Error) []byte {
	b, err := wire.Marshal(e)
	if err != nil {
		panic(err) // a wire.Error always encodes
	}
	return b
}

func (srv *Server) serveSession(ns network.Stream, key poolKey, src source, o *SessionOptions, f Handler) {
	ctx, cancel := context.WithCancel(srv.ctx)
	defer cancel()
	w := &frameWriter{s: ns, timeout: writeTimeout}
	r := bufio.NewReader(ns)
	sem := make(chan struct{}, o.MaxInflight)
	var wg sync.WaitGroup
	var deadline time.Time
	graceful := false
	// refuse answers a request without serving it; false if the session
	// is broken.
	refuse := func(id uint32, e *wire.Error) bool {
		// Wait for the answer to be written: a peer that does not read
		// its refusals stalls only its own session.
		err := w.write(id, wire.KindError, errorFrame(e), true)
		return err == nil || errors.Is(err, errWriterClosed)
	}
loop:
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		// Keep the read deadline about IdleTimeout ahead, moving it only
		// every tenth of it (a deadline costs a timer).
		if now := time.Now(); deadline.Sub(now) < o.IdleTimeout-o.IdleTimeout/10 {
			deadline = now.Add(o.IdleTimeout)
			_ = ns.SetReadDeadline(deadline)
		}
		if _, err := r.Peek(1); err != nil {
			<-sem
			if isTimeout(err) && len(sem) > 0 {
				deadline = time.Time{} // idle reader, busy handlers: not idle
				continue
			}
			graceful = err == io.EOF || isTimeout(err)
			break
		}
		// A request is arriving: give it time to arrive whole.
		if now := time.Now(); deadline.Sub(now) < o.IdleTimeout/2 {
			deadline = now.Add(o.IdleTimeout)
			_ = ns.SetReadDeadline(deadline)
		}
		h, err := readHeader(r, o.MaxReq)
		if err == nil && h.id == 0 {
			err = errors.New("request id 0")
		}
		if err != nil {
			<-sem
			_ = w.write(0, wire.KindError, errorFrame(frameError("session", err)), false)
			w.closeWrite()
			cancel()
			wg.Wait()
			// Let the peer read the error frame and close; then reset.
			_ = ns.SetReadDeadline(time.Now().Add(drainTimeout))
			_, _ = io.Copy(io.Discard, io.LimitReader(r, wire.MaxFrame))
			ns.Reset()
			return
		}
		// Take a slot before reading the body: over a share, the body
		// is skipped, never buffered.
		if e := srv.slots.take(key, src, o.MaxPeerInflight); e != nil {
			err := discard(r, h.size)
			<-sem
			if err != nil || !refuse(h.id, e) {
				break
			}
			continue
		}
		b := &budget{scope: ns.Scope(), prio: network.ReservationPriorityMedium}
		body, err := wire.ReadBody(r, h.size, b.reserve)
		if err != nil {
			b.release()
			srv.slots.give(key, src)
			<-sem
			if !errors.Is(err, wire.ErrReserve) {
				break // the stream broke mid-frame
			}
			// Over the resource manager's limits: refuse this request,
			// keep the session.
			if derr := discard(r, h.size-len(body)); derr != nil || !refuse(h.id, frameError("request", err)) {
				break
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				b.release()
				srv.slots.give(key, src)
				<-sem
			}()
			k, v := f(ctx, key.peer, h.kind, body)
			body = nil // the handler is done with it; only the reservation waits for the answer
			out, err := wire.Marshal(v)
			if err == nil && len(out)+1 > wire.MaxFrame {
				err = wire.ErrFrameTooLarge
			}
			if err == nil {
				// The answer waits in the writer's queue until written:
				// reserve it too.
				err = b.reserve(len(out) + idLen + 1 + binary.MaxVarintLen32)
				if err != nil {
					err = fmt.Errorf("%w: %w", wire.ErrReserve, err)
				}
			}
			if err != nil {
				k, out = wire.KindError, errorFrame(answerError(err))
			}
			if err := w.write(h.id, k, out, true); err != nil && !errors.Is(err, errWriterClosed) {
				// The stream is broken: end the session.
				cancel()
				ns.Reset()
			}
		}()
	}
	if graceful {
		// The peer closed its side (or went idle): finish what it asked,
		// then close ours.
		wg.Wait()
		_ = ns.Close()
		return
	}
	cancel()
	ns.Reset()
	wg.Wait()
}

// answerError is the error answer sent instead of an answer that could
// not be sent.
func answerError(err error) *wire.Error {
	if errors.Is(err, wire.ErrReserve) {
		return wire.Errorf(wire.CodeUnavailable, "answer refused: %v", err)
	}
	return wire.Errorf(wire.CodeInternal, "encode answer: %v", err)
}

// Close stops serving: handlers' contexts end, every stream being served
// is reset, and Close waits for the handlers to return.
func (srv *Server) Close() error {
	srv.mu.Lock()
	srv.closed = true
	streams := make([]network.Stream, 0, len(srv.streams))
	for s := range srv.streams {
		streams = append(streams, s)
	}
	srv.mu.Unlock()
	srv.cancel()
	for _, s := range streams {
		s.Reset()
	}
	srv.wg.Wait()
	return nil
}
