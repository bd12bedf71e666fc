package p2p

import (
	"bufio"
	"errors"
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

// ShortID is a peer ID shortened for logs and errors.
func ShortID(p peer.ID) string {
	s := p.String()
	if len(s) > 12 {
		return s[len(s)-8:]
	}
	return s
}

// Stream is the server side of a one-shot exchange (gossip).
type Stream struct {
	network.Stream
	R *bufio.Reader
}

// Reply writes a response frame.
func (s *Stream) Reply(kind wire.Kind, v any) error { return wire.WriteFrame(s, kind, v) }

// Fail writes an error frame.
func (s *Stream) Fail(e *wire.Error) error { return wire.WriteFrame(s, wire.KindError, e) }

// Read reads one frame of at most max bytes from s.R and decodes it into
// v, which must be of kind want (an error frame comes back as *wire.Error).
// The frame's buffer grows as its bytes arrive and is reserved in the
// stream's resource scope until it is decoded.
func (s *Stream) Read(max int, want wire.Kind, v any) error {
	b := budget{scope: s.Scope(), prio: network.ReservationPriorityMedium}
	defer b.release()
	k, body, err := wire.ReadFrameReserve(s.R, max, b.reserve)
	if err != nil {
		return err
	}
	return wire.DecodeBody(k, body, want, v)
}

// Handle registers a one-shot handler: it gets a deadline-bounded stream
// and the first frame; the stream is closed (or reset on error) when f
// returns. The first frame grows as its bytes arrive and is reserved in
// the stream's resource scope (Umbra service) until f returns.
func Handle(h host.Host, proto string, timeout time.Duration, maxReq int, f func(s *Stream, kind wire.Kind, body []byte) error) {
	h.SetStreamHandler(protocol.ID(proto), func(ns network.Stream) {
		serveOneShot(ns, timeout, maxReq, f)
	})
}

func serveOneShot(ns network.Stream, timeout time.Duration, maxReq int, f func(s *Stream, kind wire.Kind, body []byte) error) {
	_ = ns.SetDeadline(time.Now().Add(timeout))
	if err := ns.Scope().SetService(ServiceName); err != nil {
		ns.Reset()
		return
	}
	s := &Stream{Stream: ns, R: bufio.NewReader(ns)}
	b := budget{scope: ns.Scope(), prio: network.ReservationPriorityMedium}
	defer b.release()
	kind, body, err := wire.ReadFrameReserve(s.R, maxReq, b.reserve)
	if err != nil {
		// Answer and close our side (the answer stays readable), then
		// reset: the peer may still be sending a frame we will not take.
		_ = s.Fail(frameError("request", err))
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

// frameError is the error answer to a frame that could not be read: too
// large (413), over the memory limits (503), or malformed (400).
func frameError(what string, err error) *wire.Error {
	switch {
	case errors.Is(err, wire.ErrFrameTooLarge):
		return wire.Errorf(wire.CodeTooLarge, "bad %s frame: %v", what, err)
	case errors.Is(err, wire.ErrReserve):
		return wire.Errorf(wire.CodeUnavailable, "%s refused: %v", what, err)
	default:
		return wire.Errorf(wire.CodeBadRequest, "bad %s frame: %v", what, err)
	}
}
