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
// allocates only after checking the announced length.
func ReadFrame(r *bufio.Reader, max int) (Kind, []byte, error) {
	if max <= 0 || max > MaxFrame {
		max = MaxFrame
	}
	buf, err := ReadRaw(r, uint64(max))
	if err != nil {
		return 0, nil, err
	}
	return Kind(buf[0]), buf[1:], nil
}

// ReadRaw reads one length-prefixed frame of 1 to limit bytes and returns
// its content. It allocates only after checking the announced length.
func ReadRaw(r *bufio.Reader, limit uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errors.New("wire: empty frame")
	}
	if n > limit {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrFrameTooLarge, n, limit)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // a length without its frame is a cut, not a clean close
		}
		return nil, err
	}
	return buf, nil
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
