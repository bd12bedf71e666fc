// Package wire is Umbra's versioned binary wire format: length-prefixed frames
// holding a one-byte kind and a CBOR body with integer keys. Unknown fields in
// a body are skipped, so newer peers can add fields; an unknown kind is an
// error the caller answers, never a crash. Every read is bounded.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// MaxFrame bounds any single frame a peer can make us read.
const MaxFrame = 4 << 20

// ErrFrameTooLarge is returned when a peer announces a frame above the limit.
var ErrFrameTooLarge = errors.New("wire: frame too large")

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		MaxNestedLevels:  8,
		MaxArrayElements: 131072,
		MaxMapPairs:      64,
		IndefLength:      cbor.IndefLengthForbidden,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		TagsMd:           cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v deterministically.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes b into v with the package's allocation limits.
func Unmarshal(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("wire: decode: %w", err)
	}
	return nil
}

// WriteFrame writes one frame: uvarint(len) | kind | CBOR(v).
func WriteFrame(w io.Writer, kind Kind, v any) error {
	body, err := encMode.Marshal(v)
	if err != nil {
		return fmt.Errorf("wire: encode %s: %w", kind, err)
	}
	if len(body)+1 > MaxFrame {
		return ErrFrameTooLarge
	}
	buf := make([]byte, 0, binary.MaxVarintLen32+1+len(body))
	buf = binary.AppendUvarint(buf, uint64(len(body)+1))
	buf = append(buf, byte(kind))
	buf = append(buf, body...)
	_, err = w.Write(buf)
	return err
}

// ReadFrame reads one frame of at most max bytes (kind included). It
// allocates as the frame's bytes arrive, never the announced length up
// front.
func ReadFrame(r *bufio.Reader, max int) (Kind, []byte, error) {
	return ReadFrameReserve(r, max, nil)
}

// ReadFrameReserve is ReadFrame asking reserve before the frame's buffer
// grows (see ReadBody).
func ReadFrameReserve(r *bufio.Reader, max int, reserve Reserve) (Kind, []byte, error) {
	if max <= 0 || max > MaxFrame {
		max = MaxFrame
	}
	buf, err := ReadRawReserve(r, uint64(max), reserve)
	if err != nil {
		return 0, nil, err
	}
	return Kind(buf[0]), buf[1:], nil
}

// ReadRaw reads one length-prefixed frame of 1 to limit bytes and returns
// its content. It refuses a length above limit before reading on, and
// allocates as the bytes arrive (see ReadBody).
func ReadRaw(r *bufio.Reader, limit uint64) ([]byte, error) {
	return ReadRawReserve(r, limit, nil)
}

// ReadRawReserve is ReadRaw asking reserve before the frame's buffer grows.
func ReadRawReserve(r *bufio.Reader, limit uint64, reserve Reserve) ([]byte, error) {
	n, err := ReadLength(r, limit)
	if err != nil {
		return nil, err
	}
	buf, err := ReadBody(r, int(n), reserve)
	if err != nil {
		return nil, err
	}
	return buf, nil
}

// ReadLength reads a frame's length prefix: 1 to limit.
func ReadLength(r io.ByteReader, limit uint64) (uint64, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, errors.New("wire: empty frame")
	}
	if n > limit {
		return 0, fmt.Errorf("%w: %d bytes (limit %d)", ErrFrameTooLarge, n, limit)
	}
	return n, nil
}

// FirstChunk is the most a frame reader allocates before the frame's
// bytes arrive; the buffer then doubles as it fills, up to the announced
// length. A peer that announces 4 MiB and sends 5 bytes pins 32 KiB.
const FirstChunk = 32 << 10

// Reserve is asked for n more bytes before a frame buffer grows by n (the
// caller accounts for them, e.g. in the libp2p resource manager, and
// releases them when done with the frame). An error refuses the frame:
// the read stops with an error wrapping ErrReserve.
type Reserve func(n int) error

// ErrReserve wraps a refusal of Reserve.
var ErrReserve = errors.New("wire: memory reservation refused")

// ReadBody reads exactly n bytes from r. It does not allocate n up front:
// it allocates min(n, FirstChunk), and doubles the buffer (up to n) only
// once it is full, so what it holds is at most twice what arrived plus
// FirstChunk. reserve, if not nil, is asked before each allocation for
// the bytes it adds (FirstChunk, then each growth), so what it is asked
// in all is the final buffer's size.
//
// On an error the bytes read so far are returned, so a caller that must
// keep the stream's framing can discard the n-len(buf) left. A stream
// that ends early gives io.ErrUnexpectedEOF.
func ReadBody(r io.Reader, n int, reserve Reserve) ([]byte, error) {
	if n < 0 {
		return nil, errors.New("wire: negative frame length")
	}
	size := min(n, FirstChunk)
	if reserve != nil {
		if err := reserve(size); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrReserve, err)
		}
	}
	buf := make([]byte, size)
	filled := 0
	for {
		k, err := io.ReadFull(r, buf[filled:])
		filled += k
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // a length without its frame is a cut, not a clean close
			}
			return buf[:filled], err
		}
		if filled == n {
			return buf, nil
		}
		grow := min(2*len(buf), n) - len(buf)
		if reserve != nil {
			if err := reserve(grow); err != nil {
				return buf[:filled], fmt.Errorf("%w: %w", ErrReserve, err)
			}
		}
		nb := make([]byte, len(buf)+grow)
		copy(nb, buf)
		buf = nb
	}
}

// Read reads one frame and decodes it into v, checking its kind.
func Read(r *bufio.Reader, max int, want Kind, v any) error {
	k, body, err := ReadFrame(r, max)
	if err != nil {
		return err
	}
	if k == KindError && want != KindError {
		var e Error
		if err := Unmarshal(body, &e); err != nil {
			return err
		}
		return &e
	}
	if k != want {
		return fmt.Errorf("wire: got %s, want %s", k, want)
	}
	return Unmarshal(body, v)
}

// EncodeMsg encodes a message as kind ‖ CBOR body: the payload of an onion
// request or reply.
func EncodeMsg(kind Kind, v any) ([]byte, error) {
	body, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %s: %w", kind, err)
	}
	return append([]byte{byte(kind)}, body...), nil
}

// DecodeMsg decodes kind ‖ CBOR body into v, which must be of kind want; an
// error message is returned as *Error.
func DecodeMsg(b []byte, want Kind, v any) error {
	if len(b) == 0 {
		return errors.New("wire: empty message")
	}
	return DecodeBody(Kind(b[0]), b[1:], want, v)
}

// DecodeBody decodes a message of kind k into v, which must be of kind
// want; an error message is returned as *Error.
func DecodeBody(k Kind, body []byte, want Kind, v any) error {
	if k == KindError && want != KindError {
		var e Error
		if err := Unmarshal(body, &e); err != nil {
			return err
		}
		return &e
	}
	if k != want {
		return fmt.Errorf("wire: got %s, want %s", k, want)
	}
	return Unmarshal(body, v)
}
