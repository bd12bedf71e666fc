package p2p

import (
	"bufio"
	"bytes"
	"encoding/binary"
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
