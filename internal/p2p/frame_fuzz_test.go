package p2p

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/umbra-im/umbra/internal/wire"
)

const fuzzMax = 64 << 10

// FuzzReadFrame feeds arbitrary bytes to the session frame reader (64 KiB
// limit), up to four frames. It must never panic, never return a frame
// above the limit, and what it returns must re-encode to the bytes read.
func FuzzReadFrame(f *testing.F) {
	body, _ := wire.Marshal(&wire.NodesResp{})
	good := appendFrame(nil, 7, wire.KindNodesResp, body)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(append(appendFrame(nil, 0, wire.KindError, []byte{0xa0}), good...))
	f.Add([]byte{})
	f.Add([]byte{4, 0, 0, 0, 1})
	f.Add(binary.AppendUvarint(nil, 1<<40))
	f.Add(binary.AppendUvarint(nil, fuzzMax+idLen+1))
	f.Add(bytes.Repeat([]byte{0xff}, 12))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		type frame struct {
			id   uint32
			kind wire.Kind
			body []byte
		}
		var out []byte
		var frames []frame
		for range 4 {
			id, kind, b, err := readFrame(r, fuzzMax)
			if err != nil {
				break
			}
			if len(b)+1 > fuzzMax {
				t.Fatalf("frame of %d bytes above the %d limit", len(b)+1, fuzzMax)
			}
			out = appendFrame(out, id, kind, b)
			frames = append(frames, frame{id, kind, b})
		}
		if len(out) > len(in) {
			t.Fatalf("%d frames re-encode to %d bytes from %d read", len(frames), len(out), len(in))
		}
		// What was read re-encodes to frames that read back the same.
		r = bufio.NewReader(bytes.NewReader(out))
		for i, want := range frames {
			id, kind, b, err := readFrame(r, fuzzMax)
			if err != nil || id != want.id || kind != want.kind || !bytes.Equal(b, want.body) {
				t.Fatalf("frame %d does not round-trip: %v", i, err)
			}
		}
	})
}

// FuzzSessionReader reads up to four session frames the way a session
// reader does: the header first, then the body under a memory budget
// (budget bytes per frame), skipping the body of a refused frame to keep
// the framing. It must never panic, never reserve past the budget nor more
// than the input could fill twice over plus the first chunk, and what it
// keeps must be the wire bytes.
func FuzzSessionReader(f *testing.F) {
	body, _ := wire.Marshal(&wire.OnionPacket{Data: bytes.Repeat([]byte("x"), 40000)})
	big := appendFrame(nil, 3, wire.KindOnion, body)
	small := appendFrame(nil, 4, wire.KindNodesReq, []byte{0xa0})
	f.Add(append(append([]byte{}, big...), small...), uint32(1<<20))
	f.Add(append(append([]byte{}, big...), small...), uint32(32<<10))
	f.Add(append(append([]byte{}, big...), small...), uint32(0))
	f.Add(big[:100], uint32(1<<20))
	f.Add(binary.AppendUvarint(nil, fuzzMax+idLen), uint32(1<<20))
	f.Fuzz(func(t *testing.T, in []byte, budget uint32) {
		r := bufio.NewReader(bytes.NewReader(in))
		for range 4 {
			h, err := readHeader(r, fuzzMax)
			if err != nil {
				return
			}
			if h.size < 0 || h.size+1 > fuzzMax {
				t.Fatalf("header announces a body of %d bytes; the limit is %d with the kind", h.size, fuzzMax)
			}
			reserved := 0
			body, err := wire.ReadBody(r, h.size, func(n int) error {
				if reserved+n > int(budget) {
					return errors.New("over budget")
				}
				reserved += n
				return nil
			})
			if reserved > int(budget) || reserved > max(wire.FirstChunk, 2*len(in)) {
				t.Fatalf("reserved %d (budget %d, %d input bytes)", reserved, budget, len(in))
			}
			if !bytes.Contains(in, body) {
				t.Fatal("kept bytes that are not the input's")
			}
			switch {
			case err == nil:
				if len(body) != h.size || reserved != h.size {
					t.Fatalf("body of %d bytes, %d reserved; want %d", len(body), reserved, h.size)
				}
			case errors.Is(err, wire.ErrReserve):
				if discard(r, h.size-len(body)) != nil {
					return
				}
			default:
				return
			}
		}
	})
}
