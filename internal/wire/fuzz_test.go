package wire_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/umbra-im/umbra/internal/wire"
)

const fuzzMaxFrame = 64 << 10

// FuzzReadFrame feeds arbitrary bytes to ReadFrame (64 KiB limit), up to
// four frames. It must never panic, never return a frame above the limit, and
// every body it returns must be the bytes that were on the wire; what it
// reserves for a frame is the frame's size, and never more than the input
// could fill twice over plus the first chunk.
func FuzzReadFrame(f *testing.F) {
	for _, s := range samples() {
		var buf bytes.Buffer
		if err := wire.WriteFrame(&buf, s.kind, s.v); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		f.Add(buf.Bytes()[:buf.Len()/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{1, 1, 1, 1, 1, 1})
	f.Add(binary.AppendUvarint(nil, 1<<40))
	f.Add(binary.AppendUvarint(nil, fuzzMaxFrame+1))
	f.Add(append(binary.AppendUvarint(nil, fuzzMaxFrame), 1, 2, 3))
	f.Add(bytes.Repeat([]byte{0xff}, 12))
	f.Add([]byte{0x81, 0x00, 0x05}) // non-minimal varint for 1

	f.Fuzz(func(t *testing.T, in []byte) {
		src := bytes.NewReader(in)
		r := bufio.NewReader(src)
		// A few frames per input are enough; reading on would only teach
		// the fuzzer to grow inputs (by loop-count coverage) that are slow
		// to minimize.
		for i := 0; i < 4; i++ {
			reserved := 0
			k, body, err := wire.ReadFrameReserve(r, fuzzMaxFrame, func(n int) error {
				reserved += n
				return nil
			})
			if bound := max(wire.FirstChunk, 2*len(in)); reserved > bound {
				t.Fatalf("frame %d: reserved %d from %d input bytes", i, reserved, len(in))
			}
			if err != nil {
				if body != nil {
					t.Fatalf("error %v with a body", err)
				}
				return
			}
			if reserved != len(body)+1 {
				t.Fatalf("frame %d: reserved %d for a frame of %d bytes", i, reserved, len(body)+1)
			}
			if len(body)+1 > fuzzMaxFrame {
				t.Fatalf("frame of %d bytes above the %d limit", len(body)+1, fuzzMaxFrame)
			}
			consumed := len(in) - src.Len() - r.Buffered()
			if consumed < len(body)+2 {
				t.Fatalf("frame %d: consumed %d bytes for a %d-byte body", i, consumed, len(body))
			}
			if !bytes.Equal(in[consumed-len(body):consumed], body) {
				t.Fatalf("frame %d: body is not the wire bytes", i)
			}
			if in[consumed-len(body)-1] != byte(k) {
				t.Fatalf("frame %d: kind %d is not the wire byte", i, k)
			}
		}
	})
}

// FuzzDecode decodes arbitrary bytes into the body type of every frame kind
// (kind selects the type). Decoding must never panic; a body that decodes
// must re-encode, decode to the same value, and re-encode identically.
func FuzzDecode(f *testing.F) {
	ss := samples()
	for i, s := range ss {
		b, err := wire.Marshal(s.v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(i), b)
		f.Add(byte(i), b[:len(b)/2])
		f.Add(byte(i), append(append([]byte{}, b...), 0))
	}
	f.Add(byte(0), []byte{0xa2, 0x01, 0x41, 0x61, 0x01, 0x41, 0x62})
	f.Add(byte(1), []byte{0xbf, 0x01, 0x41, 0x61, 0xff})
	f.Add(byte(2), []byte{0xa1, 0x18, 0x63, 0xa1, 0x01, 0x81, 0x81, 0x81, 0x00})
	f.Add(byte(3), []byte{0xa1, 0x01, 0x9a, 0x00, 0x01, 0xff, 0xff})
	f.Add(byte(4), []byte{0xf6})
	f.Add(byte(5), []byte{})

	f.Fuzz(func(t *testing.T, kind byte, body []byte) {
		s := ss[int(kind)%len(ss)]
		v := s.zero()
		if err := wire.Unmarshal(body, v); err != nil {
			return
		}
		enc, err := wire.Marshal(v)
		if err != nil {
			t.Fatalf("%s: decoded value does not encode: %v", s.kind, err)
		}
		v2 := s.zero()
		if err := wire.Unmarshal(enc, v2); err != nil {
			t.Fatalf("%s: re-encoded body %x does not decode: %v", s.kind, enc, err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("%s: value changed through re-encoding:\n%#v\n%#v", s.kind, v, v2)
		}
		enc2, err := wire.Marshal(v2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("%s: encoding not stable: %x vs %x (%v)", s.kind, enc, enc2, err)
		}
		// The same body through a frame and Read.
		var buf bytes.Buffer
		buf.Write(binary.AppendUvarint(nil, uint64(len(body)+1)))
		buf.WriteByte(byte(s.kind))
		buf.Write(body)
		v3 := s.zero()
		if err := wire.Read(bufio.NewReader(&buf), wire.MaxFrame, s.kind, v3); err != nil {
			t.Fatalf("%s: Read refused a body Unmarshal accepts: %v", s.kind, err)
		}
		if !reflect.DeepEqual(v, v3) {
			t.Fatalf("%s: Read and Unmarshal disagree", s.kind)
		}
	})
}

// FuzzReadBody reads a body of n bytes from data with a memory budget. It
// must never panic nor reserve more than the budget; what it reserves is
// at most twice what arrived plus the first chunk (never the announced
// length up front); on success the body is data's first n bytes and the
// reservations add up to n; on a refusal it returns what it read.
func FuzzReadBody(f *testing.F) {
	f.Add([]byte("hello"), uint32(5), uint32(1<<20))
	f.Add([]byte("hello"), uint32(wire.MaxFrame), uint32(1<<30))
	f.Add(make([]byte, 70000), uint32(70000), uint32(40000))
	f.Add(make([]byte, 70000), uint32(70000), uint32(0))
	f.Add([]byte{}, uint32(0), uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, n, budget uint32) {
		size := int(n % (wire.MaxFrame + 1))
		reserved := 0
		body, err := wire.ReadBody(bytes.NewReader(data), size, func(k int) error {
			if k < 0 {
				t.Fatalf("negative reservation %d", k)
			}
			if reserved+k > int(budget) {
				return errors.New("over budget")
			}
			reserved += k
			return nil
		})
		if reserved > int(budget) {
			t.Fatalf("reserved %d over a budget of %d", reserved, budget)
		}
		if bound := min(size, max(wire.FirstChunk, 2*len(data))); reserved > bound {
			t.Fatalf("reserved %d for %d bytes arrived of %d announced; bound %d", reserved, len(data), size, bound)
		}
		if len(body) > reserved || len(body) > len(data) || !bytes.Equal(body, data[:len(body)]) {
			t.Fatalf("returned %d bytes (reserved %d, %d arrived) that are not the input's", len(body), reserved, len(data))
		}
		switch {
		case err == nil:
			if len(body) != size || reserved != size {
				t.Fatalf("success with %d bytes and %d reserved; want %d", len(body), reserved, size)
			}
		case errors.Is(err, wire.ErrReserve):
		case errors.Is(err, io.ErrUnexpectedEOF):
			if len(data) >= size {
				t.Fatalf("unexpected EOF with %d of %d bytes there", len(data), size)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}
