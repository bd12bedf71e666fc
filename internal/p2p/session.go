package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/umbra-im/umbra/internal/wire"
)

// Proto describes a session protocol: its ID and the frame limits of each
// direction.
type Proto struct {
	ID      string // session protocol, e.g. wire.ProtoReplicateSession
	MaxReq  int    // largest request the server takes (kind + body)
	MaxResp int    // largest answer the client takes (kind + body)
}

func limit(n int) int {
	if n <= 0 || n > wire.MaxFrame {
		return wire.MaxFrame
	}
	return n
}

// Session limits.
const (
	// DefaultMaxInflight bounds the requests in flight on one session, at
	// the client (calls beyond it use another session or wait) and at the
	// server (it stops reading the stream: backpressure).
	DefaultMaxInflight = 128
	// DefaultMaxSessions bounds the sessions a pool opens to one peer on
	// one protocol; it opens a second only when the first is full. With
	// DefaultMaxInflight it makes the pool's calls in flight to one peer
	// on one protocol DefaultMaxPeerInflight, the server's cap: calls
	// beyond it wait in the pool rather than being refused.
	DefaultMaxSessions = 2
	// DefaultIdleTimeout closes a client session unused this long.
	DefaultIdleTimeout = 60 * time.Second
	// writeTimeout bounds one write to a session stream.
	writeTimeout = 30 * time.Second
)

// ErrSessionClosed is returned for calls on a session that was closed.
var ErrSessionClosed = errors.New("p2p: session closed")

type response struct {
	kind wire.Kind
	body []byte
	held int // bytes of body reserved in the stream's scope, released once decoded
	err  error
}

// respChans recycles the one-slot channels that carry answers to callers.
var respChans = sync.Pool{New: func() any { return make(chan response, 1) }}

// Session is the client side of one long-lived stream to a peer carrying
// pipelined requests: each request frame has an id, and the peer answers
// in any order with the same id. One goroutine reads the answers and hands
// each to its caller. Any stream error fails every pending call and the
// session; the pool then opens a new one. Safe for concurrent use.
type Session struct {
	stream   network.Stream
	peer     peer.ID
	proto    Proto
	w        frameWriter
	slots    chan struct{} // one per call in flight
	lastUsed atomic.Int64  // unix nanoseconds of the last call's end

	mu      sync.Mutex
	pending map[uint32]chan response
	nextID  uint32
	err     error         // why the session ended; nil while it works
	done    chan struct{} // closed when the session ends

	readerDone chan struct{}
	onDead     func(*Session) // the pool's hook, called once when the session ends
}

func newSession(s network.Stream, proto Proto, maxInflight int, onDead func(*Session)) *Session {
	if maxInflight <= 0 {
		maxInflight = DefaultMaxInflight
	}
	ss := &Session{
		stream:     s,
		peer:       s.Conn().RemotePeer(),
		proto:      proto,
		w:          frameWriter{s: s, timeout: writeTimeout},
		slots:      make(chan struct{}, maxInflight),
		pending:    make(map[uint32]chan response),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		onDead:     onDead,
	}
	ss.lastUsed.Store(time.Now().UnixNano())
	go ss.readLoop()
	return ss
}

// OpenSession opens a stream to p for proto.ID and starts a session on it.
func OpenSession(ctx context.Context, h host.Host, p peer.ID, proto Proto, maxInflight int) (*Session, error) {
	s, err := openStream(ctx, h, p, proto.ID)
	if err != nil {
		return nil, err
	}
	return newSession(s, proto, maxInflight, nil), nil
}

// openStream opens a stream to p for proto and puts it in the Umbra
// service scope of the resource manager.
func openStream(ctx context.Context, h host.Host, p peer.ID, proto string) (network.Stream, error) {
	s, err := h.NewStream(ctx, p, protocol.ID(proto))
	if err != nil {
		return nil, fmt.Errorf("open %s to %s: %w", proto, ShortID(p), err)
	}
	if err := s.Scope().SetService(ServiceName); err != nil {
		s.Reset()
		return nil, fmt.Errorf("open %s to %s: %w", proto, ShortID(p), err)
	}
	return s, nil
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err says why the session ended (nil while it works).
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Inflight is the number of calls in flight.
func (s *Session) Inflight() int { return len(s.slots) }

func (s *Session) dead() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Session) tryAcquire() bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *Session) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-s.done:
		return s.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Call sends one request and waits for its answer, decoded into resp (an
// error frame comes back as *wire.Error). If ctx ends first the call is
// abandoned and a late answer dropped; the session goes on.
func (s *Session) Call(ctx context.Context, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error {
	body, err := encodeRequest(s.proto, reqKind, req)
	if err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return s.wrap(reqKind, err)
	}
	return s.callAcquired(ctx, reqKind, body, respKind, resp)
}

func encodeRequest(proto Proto, kind wire.Kind, req any) ([]byte, error) {
	body, err := wire.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %s: %w", kind, err)
	}
	// Refuse here what the peer would refuse: an oversized frame breaks
	// the framing and would end the session for every other call.
	if max := limit(proto.MaxReq); len(body)+1 > max {
		return nil, wire.Errorf(wire.CodeTooLarge, "%s request is %d bytes; the limit is %d", kind, len(body)+1, max)
	}
	return body, nil
}

func (s *Session) wrap(kind wire.Kind, err error) error {
	return fmt.Errorf("%s to %s: %w", kind, ShortID(s.peer), err)
}

// callAcquired runs a call for which a slot is held, and releases it.
func (s *Session) callAcquired(ctx context.Context, reqKind wire.Kind, body []byte, respKind wire.Kind, resp any) error {
	defer func() {
		s.lastUsed.Store(time.Now().UnixNano())
		<-s.slots
	}()
	ch := respChans.Get().(chan response)
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		respChans.Put(ch)
		return s.wrap(reqKind, err)
	}
	s.nextID++
	if s.nextID == 0 {
		s.nextID = 1
	}
	id := s.nextID
	s.pending[id] = ch
	s.mu.Unlock()
	if err := s.w.write(id, reqKind, body, false); err != nil {
		s.close(fmt.Errorf("send: %w", err), false)
	}
	select {
	case r := <-ch:
		respChans.Put(ch)
		if r.err != nil {
			return s.wrap(reqKind, r.err)
		}
		err := wire.DecodeBody(r.kind, r.body, respKind, resp)
		s.releaseAnswer(r.held)
		if err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				return err
			}
			return fmt.Errorf("%s from %s: %w", respKind, ShortID(s.peer), err)
		}
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		_, waiting := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if !waiting {
			// An answer or a failure is being delivered: take it so the
			// channel can be reused, and give back its memory.
			s.releaseAnswer((<-ch).held)
		}
		respChans.Put(ch)
		return s.wrap(reqKind, ctx.Err())
	}
}

// releaseAnswer gives back the memory an answer held in the stream's scope.
func (s *Session) releaseAnswer(n int) {
	if n > 0 {
		s.stream.Scope().ReleaseMemory(n)
	}
}

// maxSessionError bounds a session-level error frame (id 0) the client
// reads: it is a short message, not worth a reservation.
const maxSessionError = 4 << 10

// readLoop hands each answer to its caller until the stream fails. An
// answer's memory is reserved in the stream's scope as it arrives and
// released once its caller has decoded it; an answer to a call no longer
// waiting is skipped without being buffered.
func (s *Session) readLoop() {
	defer close(s.readerDone)
	r := bufio.NewReader(s.stream)
	max := limit(s.proto.MaxResp)
	for {
		h, err := readHeader(r, max)
		if err != nil {
			if err == io.EOF {
				err = errors.New("session closed by peer")
			}
			s.close(err, false)
			return
		}
		if h.id == 0 {
			// A session-level error: the peer found our framing broken
			// and closes the session. Not a refusal of any one call.
			err := errors.New("session ended by peer")
			if h.size <= maxSessionError {
				var e wire.Error
				if body, rerr := wire.ReadBody(r, h.size, nil); rerr == nil && h.kind == wire.KindError && wire.Unmarshal(body, &e) == nil {
					err = fmt.Errorf("session ended by peer: %v", e.Error())
				}
			}
			s.close(err, false)
			return
		}
		s.mu.Lock()
		_, waiting := s.pending[h.id]
		s.mu.Unlock()
		if !waiting {
			// A late answer to an abandoned call (or a bogus id).
			if err := discard(r, h.size); err != nil {
				s.close(err, false)
				return
			}
			continue
		}
		b := budget{scope: s.stream.Scope(), prio: network.ReservationPriorityHigh}
		body, err := wire.ReadBody(r, h.size, b.reserve)
		var res response
		switch {
		case err == nil:
			res = response{kind: h.kind, body: body, held: b.n}
		case errors.Is(err, wire.ErrReserve):
			// Over this host's memory limits: fail this call, keep the
			// session (the rest of the answer is skipped).
			b.release()
			if derr := discard(r, h.size-len(body)); derr != nil {
				s.close(derr, false)
				return
			}
			res = response{err: fmt.Errorf("answer of %d bytes: %w", h.size+1, err)}
		default:
			b.release()
			s.close(err, false)
			return
		}
		s.mu.Lock()
		ch, ok := s.pending[h.id]
		if ok {
			delete(s.pending, h.id)
		}
		s.mu.Unlock()
		if ok {
			ch <- res
		} else {
			s.releaseAnswer(res.held) // abandoned while its answer arrived
		}
	}
}

// close ends the session: pending calls fail with err. graceful closes the
// stream (the peer sees EOF) rather than resetting it.
func (s *Session) close(err error, graceful bool) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	pending := s.pending
	s.pending = nil
	close(s.done)
	s.mu.Unlock()
	s.w.fail(err)
	if graceful {
		_ = s.stream.Close()
	} else {
		_ = s.stream.Reset()
	}
	for _, ch := range pending {
		ch <- response{err: err}
	}
	if s.onDead != nil {
		s.onDead(s)
	}
}

// Close ends the session, failing calls still pending, and waits for its
// reader goroutine to exit.
func (s *Session) Close() error {
	s.close(ErrSessionClosed, s.Inflight() == 0)
	<-s.readerDone
	return nil
}
