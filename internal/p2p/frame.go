package p2p

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/umbra-im/umbra/internal/wire"
)

// A session frame is uvarint(n) | id (4 bytes, big endian) | kind | CBOR
// body, where n counts the id, the kind and the body. Requests carry a
// non-zero id chosen by the client; the answer carries the same id. Id 0
// is a session-level error from the server (broken framing), after which
// the server closes the session.
const idLen = 4

// errBadFrame is returned for a frame too short to hold an id and a kind.
var errBadFrame = errors.New("p2p: session frame too short")

// appendFrame appends one session frame to buf.
func appendFrame(buf []byte, id uint32, kind wire.Kind, body []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(idLen+1+len(body)))
	buf = binary.BigEndian.AppendUint32(buf, id)
	buf = append(buf, byte(kind))
	return append(buf, body...)
}

// header is the start of a session frame: its id, its kind and the length
// of the body that follows.
type header struct {
	id   uint32
	kind wire.Kind
	size int // body bytes still to read
}

// readHeader reads a session frame's length, id and kind, refusing a frame
// whose kind and body take more than max bytes before reading on. Nothing
// is allocated for the body.
func readHeader(r *bufio.Reader, max int) (header, error) {
	n, err := wire.ReadLength(r, uint64(limit(max))+idLen)
	if err != nil {
		return header{}, err
	}
	if n < idLen+1 {
		return header{}, errBadFrame
	}
	b, err := r.Peek(idLen + 1)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return header{}, err
	}
	h := header{id: binary.BigEndian.Uint32(b), kind: wire.Kind(b[idLen]), size: int(n) - idLen - 1}
	_, _ = r.Discard(idLen + 1)
	return h, nil
}

// readFrame reads one session frame whose kind and body take at most max
// bytes, allocating as the body arrives (wire.ReadBody) without reserving
// memory: for tests and fuzzing; sessions reserve through a budget.
func readFrame(r *bufio.Reader, max int) (uint32, wire.Kind, []byte, error) {
	h, err := readHeader(r, max)
	if err != nil {
		return 0, 0, nil, err
	}
	body, err := wire.ReadBody(r, h.size, nil)
	if err != nil {
		return 0, 0, nil, err
	}
	return h.id, h.kind, body, nil
}

// discard skips n bytes of a frame body that will not be kept, without
// allocating a buffer for them.
func discard(r *bufio.Reader, n int) error {
	_, err := r.Discard(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// budget is the memory one frame holds in a stream's resource scope: the
// libp2p resource manager counts it against the stream, its peer, its
// protocol, the Umbra service and the system, and refuses a reservation
// above any of their limits. Not safe for concurrent use; release once the
// frame is handled.
type budget struct {
	scope network.ResourceScope
	prio  uint8
	n     int
}

// reserve is a wire.Reserve.
func (b *budget) reserve(n int) error {
	if err := b.scope.ReserveMemory(n, b.prio); err != nil {
		return err
	}
	b.n += n
	return nil
}

// release gives back everything reserved.
func (b *budget) release() {
	if b.n > 0 {
		b.scope.ReleaseMemory(b.n)
		b.n = 0
	}
}

// maxSpare is the largest write buffer a frameWriter keeps between writes.
const maxSpare = 256 << 10

// frameWriter writes frames from many goroutines to one stream. Writers
// combine: a frame queued while another goroutine is writing leaves with
// the next write, so a busy session sends many frames per stream write
// (one yamux frame, one Noise record) without a writer goroutine.
type frameWriter struct {
	s       network.Stream
	timeout time.Duration // per write; 0 for none

	mu       sync.Mutex
	cond     sync.Cond // on mu: a batch was written, or the writer broke
	buf      []byte    // frames waiting for the active writer
	spare    []byte
	queued   uint64    // number of the batch that frames queued now leave in
	written  uint64    // batches written so far
	busy     bool      // a goroutine is writing
	err      error     // the stream failed, or the writer was closed
	broken   bool      // a write failed: queued frames are dropped
	closing  bool      // close the write side once the queue is written
	deadline time.Time // current write deadline (written by the active writer only)
}

// errWriterClosed is returned by writes after closeWrite.
var errWriterClosed = errors.New("p2p: session closing")

// write queues one frame and, unless another goroutine is writing, writes
// everything queued. An error means the stream is unusable. Without wait,
// a nil return means the frame was written or handed to the active writer
// (whose error, if any, breaks the session for everyone). With wait, write
// returns only once the frame has been written: a server holds a request's
// slot and memory until its answer has left, so a peer that does not read
// its answers cannot make the server queue them without bound.
func (w *frameWriter) write(id uint32, kind wire.Kind, body []byte, wait bool) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.buf = appendFrame(w.buf, id, kind, body)
	if w.busy {
		if !wait {
			w.mu.Unlock()
			return nil
		}
		if w.cond.L == nil {
			w.cond.L = &w.mu
		}
		batch := w.queued
		for w.written <= batch && !w.broken {
			w.cond.Wait()
		}
		var err error
		if w.written <= batch {
			err = w.err
		}
		w.mu.Unlock()
		return err
	}
	w.busy = true
	for len(w.buf) > 0 && !w.broken {
		out := w.buf
		w.buf, w.spare = w.spare[:0], nil
		w.queued++
		w.mu.Unlock()
		w.armDeadline()
		_, err := w.s.Write(out)
		w.mu.Lock()
		if cap(out) <= maxSpare {
			w.spare = out[:0]
		}
		if err != nil {
			w.err, w.broken = err, true
		} else {
			w.written++
		}
		if w.cond.L != nil {
			w.cond.Broadcast()
		}
	}
	w.busy = false
	closing := w.closing && !w.broken
	err := w.err
	if !w.broken {
		err = nil // this frame was written (the writer may be closing since)
	}
	w.mu.Unlock()
	if closing {
		_ = w.s.CloseWrite()
	}
	return err
}

// armDeadline keeps the write deadline at least timeout/2 ahead, moving it
// only when needed: setting a deadline costs a timer.
func (w *frameWriter) armDeadline() {
	if w.timeout <= 0 {
		return
	}
	now := time.Now()
	if w.deadline.Sub(now) < w.timeout/2 {
		w.deadline = now.Add(w.timeout)
		_ = w.s.SetWriteDeadline(w.deadline)
	}
}

// fail makes later writes return err; queued frames are dropped.
func (w *frameWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.broken = true
	if w.cond.L != nil {
		w.cond.Broadcast()
	}
	w.mu.Unlock()
}

// closeWrite refuses later frames and closes the stream's write side once
// the frames already queued are written.
func (w *frameWriter) closeWrite() {
	w.mu.Lock()
	if w.err == nil {
		w.err = errWriterClosed
	}
	if w.broken || w.closing {
		w.mu.Unlock()
		return
	}
	w.closing = true
	busy := w.busy
	w.mu.Unlock()
	if !busy {
		_ = w.s.CloseWrite()
	}
}
