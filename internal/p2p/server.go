package p2p

import (
	"bufio"
	"context"
	"errors"
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
	MaxReq      int           // largest request frame, kind + body (wire.MaxFrame)
	MaxInflight int           // requests served at once per session (DefaultMaxInflight)
	MaxPerPeer  int           // sessions per peer on this protocol (DefaultMaxPerPeer)
	IdleTimeout time.Duration // a session with no request for this long is closed (DefaultServerIdle)
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
	// DefaultMaxInflightTotal bounds the requests served at once on all
	// sessions of a server together, as the resource manager's system
	// stream limit bounded one-shot requests.
	DefaultMaxInflightTotal = 4096
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
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultServerIdle
	}
}

// Server serves request handlers on a host, one-shot (Handle) or on
// sessions (HandleSession), and tracks every stream it serves so that
// Close cuts them and waits for their handlers.
type Server struct {
	h      host.Host
	ctx    context.Context
	cancel context.CancelFunc

	total chan struct{} // one per request being served on any session

	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	streams map[network.Stream]struct{}
	perPeer map[poolKey]int
}

// NewServer makes a server on h.
func NewServer(h host.Host) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{h: h, ctx: ctx, cancel: cancel, total: make(chan struct{}, DefaultMaxInflightTotal),
		streams: make(map[network.Stream]struct{}), perPeer: make(map[poolKey]int)}
}

// enter registers a stream being served; false if the server is closed or
// the peer has maxPerPeer sessions on this protocol already (0: no bound).
func (srv *Server) enter(s network.Stream, key poolKey, maxPerPeer int) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed || (maxPerPeer > 0 && srv.perPeer[key] >= maxPerPeer) {
		return false
	}
	if maxPerPeer > 0 {
		srv.perPeer[key]++
	}
	srv.streams[s] = struct{}{}
	srv.wg.Add(1)
	return true
}

func (srv *Server) leave(s network.Stream, key poolKey, counted bool) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if counted {
		if srv.perPeer[key]--; srv.perPeer[key] <= 0 {
			delete(srv.perPeer, key)
		}
	}
	delete(srv.streams, s)
	srv.wg.Done()
}

// Handle serves proto one-shot: one request frame per stream, one answer,
// as p2p.Handle does, with a deadline of timeout on the stream.
func (srv *Server) Handle(proto string, timeout time.Duration, maxReq int, f Handler) {
	srv.h.SetStreamHandler(protocol.ID(proto), func(ns network.Stream) {
		if !srv.enter(ns, poolKey{}, 0) {
			ns.Reset()
			return
		}
		defer srv.leave(ns, poolKey{}, false)
		serveOneShot(ns, timeout, maxReq, func(s *Stream, kind wire.Kind, body []byte) error {
			k, v := f(srv.ctx, s.Conn().RemotePeer(), kind, body)
			return wire.WriteFrame(s, k, v)
		})
	})
}

// HandleSession serves proto on sessions: each stream carries pipelined
// requests with ids (see Session). Every request is served in its own
// goroutine, at most o.MaxInflight at once per session (beyond that the
// server stops reading the stream: backpressure); answers go back as they
// are ready, in any order. A bad request gets an error answer and the
// session goes on; broken framing (an oversized or malformed frame) gets a
// session-level error frame and ends the session. A session without
// requests for o.IdleTimeout is closed.
func (srv *Server) HandleSession(proto string, o SessionOptions, f Handler) {
	o.setDefaults()
	srv.h.SetStreamHandler(protocol.ID(proto), func(ns network.Stream) {
		key := poolKey{ns.Conn().RemotePeer(), proto}
		if (o.Accept != nil && !o.Accept(key.peer)) || !srv.enter(ns, key, o.MaxPerPeer) {
			ns.Reset()
			return
		}
		defer srv.leave(ns, key, true)
		srv.serveSession(ns, &o, f)
	})
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func (srv *Server) serveSession(ns network.Stream, o *SessionOptions, f Handler) {
	from := ns.Conn().RemotePeer()
	ctx, cancel := context.WithCancel(srv.ctx)
	defer cancel()
	w := &frameWriter{s: ns, timeout: writeTimeout}
	r := bufio.NewReader(ns)
	sem := make(chan struct{}, o.MaxInflight)
	var wg sync.WaitGroup
	var deadline time.Time
	graceful := false
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
		// A request is arriving: give it time to arrive whole, and take a
		// server-wide slot before reading it.
		if now := time.Now(); deadline.Sub(now) < o.IdleTimeout/2 {
			deadline = now.Add(o.IdleTimeout)
			_ = ns.SetReadDeadline(deadline)
		}
		select {
		case srv.total <- struct{}{}:
		case <-ctx.Done():
			<-sem
			break loop
		}
		id, kind, body, err := readFrame(r, o.MaxReq)
		if err == nil && id == 0 {
			err = errors.New("request id 0")
		}
		if err != nil {
			<-sem
			<-srv.total
			code := wire.CodeBadRequest
			if errors.Is(err, wire.ErrFrameTooLarge) {
				code = wire.CodeTooLarge
			}
			if b, merr := wire.Marshal(wire.Errorf(code, "bad session frame: %v", err)); merr == nil {
				_ = w.write(0, wire.KindError, b)
			}
			w.closeWrite()
			cancel()
			wg.Wait()
			// Let the peer read the error frame and close; then reset.
			_ = ns.SetReadDeadline(time.Now().Add(drainTimeout))
			_, _ = io.Copy(io.Discard, io.LimitReader(r, wire.MaxFrame))
			ns.Reset()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-srv.total; <-sem }()
			k, v := f(ctx, from, kind, body)
			b, err := wire.Marshal(v)
			if err == nil && len(b)+1 > wire.MaxFrame {
				err = wire.ErrFrameTooLarge
			}
			if err != nil {
				k = wire.KindError
				b, _ = wire.Marshal(wire.Errorf(wire.CodeInternal, "encode answer: %v", err))
			}
			if err := w.write(id, k, b); err != nil && !errors.Is(err, errWriterClosed) {
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
