package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/umbra-im/umbra/internal/wire"
)

// DefaultCallTimeout bounds a request/response exchange unless the context
// says otherwise.
const DefaultCallTimeout = 10 * time.Second

// Call opens a stream to p, sends one request frame and reads one response
// frame of kind respKind into resp (at most max bytes). A wire.Error frame
// from the peer is returned as *wire.Error.
func Call(ctx context.Context, h host.Host, p peer.ID, proto string, reqKind wire.Kind, req any, respKind wire.Kind, resp any, max int) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	s, err := h.NewStream(ctx, p, protocol.ID(proto))
	if err != nil {
		return fmt.Errorf("open %s to %s: %w", proto, ShortID(p), err)
	}
	return callOnStream(ctx, s, reqKind, req, respKind, resp, max)
}

// callOnStream runs a one-shot exchange on a fresh stream and closes it.
func callOnStream(ctx context.Context, s network.Stream, reqKind wire.Kind, req any, respKind wire.Kind, resp any, max int) error {
	p := s.Conn().RemotePeer()
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := wire.WriteFrame(s, reqKind, req); err != nil {
		s.Reset()
		return fmt.Errorf("send %s to %s: %w", reqKind, ShortID(p), err)
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return fmt.Errorf("send %s to %s: %w", reqKind, ShortID(p), err)
	}
	if err := wire.Read(bufio.NewReader(s), max, respKind, resp); err != nil {
		s.Reset()
		if ctx.Err() != nil {
			return fmt.Errorf("%s from %s: %w", respKind, ShortID(p), ctx.Err())
		}
		return fmt.Errorf("%s from %s: %w", respKind, ShortID(p), err)
	}
	return nil
}

// ShortID is a peer ID shortened for logs and errors.
func ShortID(p peer.ID) string {
	s := p.String()
	if len(s) > 12 {
		return s[len(s)-8:]
	}
	return s
}

// Stream is the server side of one exchange.
type Stream struct {
	network.Stream
	R *bufio.Reader
}

// Reply writes a response frame.
func (s *Stream) Reply(kind wire.Kind, v any) error { return wire.WriteFrame(s, kind, v) }

// Fail writes an error frame.
func (s *Stream) Fail(e *wire.Error) error { return wire.WriteFrame(s, wire.KindError, e) }

// Handle registers a handler that gets a deadline-bounded stream and the
// first frame; the stream is closed (or reset on error) when f returns.
func Handle(h host.Host, proto string, timeout time.Duration, maxReq int, f func(s *Stream, kind wire.Kind, body []byte) error) {
	h.SetStreamHandler(protocol.ID(proto), func(ns network.Stream) {
		serveOneShot(ns, timeout, maxReq, f)
	})
}

func serveOneShot(ns network.Stream, timeout time.Duration, maxReq int, f func(s *Stream, kind wire.Kind, body []byte) error) {
	_ = ns.SetDeadline(time.Now().Add(timeout))
	s := &Stream{Stream: ns, R: bufio.NewReader(ns)}
	kind, body, err := wire.ReadFrame(s.R, maxReq)
	if err != nil {
		code := wire.CodeBadRequest
		if errors.Is(err, wire.ErrFrameTooLarge) {
			code = wire.CodeTooLarge
		}
		// Answer and close our side (the answer stays readable), then
		// reset: the peer may still be sending a frame we will not take.
		_ = s.Fail(wire.Errorf(code, "bad request frame: %v", err))
		_ = ns.CloseWrite()
		ns.Reset()
		return
	}
	if err := f(s, kind, body); err != nil {
		_ = ns.CloseWrite()
		ns.Reset()
		return
	}
	ns.Close()
}
