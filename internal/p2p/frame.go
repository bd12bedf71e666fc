package p2p

import (
	"bufio"
	"encoding/binary"
	"errors"
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

// readFrame reads one session frame whose kind and body take at most max
// bytes. It allocates only after checking the announced length.
func readFrame(r *bufio.Reader, max int) (uint32, wire.Kind, []byte, error) {
	if max <= 0 || max > wire.MaxFrame {
		max = wire.MaxFrame
	}
	buf, err := wire.ReadRaw(r, uint64(max)+idLen)
	if err != nil {
		return 0, 0, nil, err
	}
	if len(buf) < idLen+1 {
		return 0, 0, nil, errBadFrame
	}
	return binary.BigEndian.Uint32(buf), wire.Kind(buf[idLen]), buf[idLen+1:], nil
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
	buf      []byte // frames waiting for the active writer
	spare    []byte
	busy     bool      // a goroutine is writing
	err      error     // the stream failed, or the writer was closed
	broken   bool      // a write failed: queued frames are dropped
	closing  bool      // close the write side once the queue is written
	deadline time.Time // current write deadline (written by the active writer only)
}

// errWriterClosed is returned by writes after closeWrite.
var errWriterClosed = errors.New("p2p: session closing")

// write queues one frame and, unless another goroutine is writing, writes
// everything queued. An error means the stream is unusable; a nil return
// means the frame was written or handed to the active writer (whose error,
// if any, breaks the session for everyone).
func (w *frameWriter) write(id uint32, kind wire.Kind, body []byte) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.buf = appendFrame(w.buf, id, kind, body)
	if w.busy {
		w.mu.Unlock()
		return nil
	}
	w.busy = true
	for len(w.buf) > 0 && !w.broken {
		out := w.buf
		w.buf, w.spare = w.spare[:0], nil
		w.mu.Unlock()
		w.armDeadline()
		_, err := w.s.Write(out)
		w.mu.Lock()
		if cap(out) <= maxSpare {
			w.spare = out[:0]
		}
		if err != nil {
			w.err, w.broken = err, true
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
