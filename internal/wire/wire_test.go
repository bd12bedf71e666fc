package wire_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/wire"
)

func b32(c byte) []byte { return bytes.Repeat([]byte{c}, 32) }

// sample is one example body of every frame kind, every field set to a
// non-zero value, and a constructor for an empty value of the same type.
type sample struct {
	kind wire.Kind
	v    any
	zero func() any
}

func samples() []sample {
	msg := wire.Message{Hash: b32(1), Mailbox: b32(2), Namespace: -7, Timestamp: 1700000000000, Expiry: 1700000060000, Data: []byte("hello")}
	params := wire.Params{Network: "test", Replication: 5, PoWBits: 12, MinAgeMs: 86400000}
	tomb := wire.Tomb{Mailbox: b32(13), Hashes: [][]byte{b32(14), b32(23)}, Timestamp: 1700000000123, Sig: bytes.Repeat([]byte{3}, 64)}
	return []sample{
		{wire.KindError, &wire.Error{Code: wire.CodeRateLimited, Msg: "more work", WorkBits: 17}, func() any { return new(wire.Error) }},
		{wire.KindStoreReq, &wire.StoreReq{Mailbox: b32(3), Namespace: 42, Timestamp: 1, TTL: 60000, Data: []byte{0, 1, 2}}, func() any { return new(wire.StoreReq) }},
		{wire.KindStoreResp, &wire.StoreResp{Hash: b32(4), Expiry: 99, Receipts: []wire.Receipt{{Node: []byte("node-a"), Sig: b32(5)}, {Node: []byte("node-b"), Sig: b32(6)}}, Deleted: &tomb}, func() any { return new(wire.StoreResp) }},
		{wire.KindRetrieveReq, &wire.RetrieveReq{Mailbox: b32(7), After: b32(8), Limit: 10, WaitMs: 2500, Auth: wire.Auth{Timestamp: 123, Sig: bytes.Repeat([]byte{9}, 64)}}, func() any { return new(wire.RetrieveReq) }},
		{wire.KindRetrieveResp, &wire.RetrieveResp{Messages: []wire.Message{msg, msg}, More: true}, func() any { return new(wire.RetrieveResp) }},
		{wire.KindDeleteReq, &wire.DeleteReq{Mailbox: b32(10), Hashes: [][]byte{b32(11), b32(12)}, Auth: wire.Auth{Timestamp: -5, Sig: []byte{1}}}, func() any { return new(wire.DeleteReq) }},
		{wire.KindDeleteResp, &wire.DeleteResp{Deleted: 3}, func() any { return new(wire.DeleteResp) }},
		{wire.KindNodesReq, &wire.NodesReq{}, func() any { return new(wire.NodesReq) }},
		{wire.KindNodesResp, &wire.NodesResp{Params: params, Records: [][]byte{[]byte("r1"), []byte("r2")}, Ages: []uint64{0, 90000}}, func() any { return new(wire.NodesResp) }},
		{wire.KindReplicateReq, &wire.ReplicateReq{Messages: []wire.Message{msg}, Deletes: []wire.Tomb{tomb}}, func() any { return new(wire.ReplicateReq) }},
		{wire.KindReplicateResp, &wire.ReplicateResp{Results: []wire.ReplicaResult{{Receipt: b32(15)}, {Code: wire.CodeMailboxFull}}}, func() any { return new(wire.ReplicateResp) }},
		{wire.KindFetchReq, &wire.FetchReq{Hashes: [][]byte{b32(16), b32(17)}, Tombs: [][]byte{b32(24)}, TombsOf: b32(25)}, func() any { return new(wire.FetchReq) }},
		{wire.KindFetchResp, &wire.FetchResp{Messages: []wire.Message{msg}, Tombs: []wire.Tomb{tomb}}, func() any { return new(wire.FetchResp) }},
		{wire.KindMembersDigest, &wire.MembersDigest{Params: params, Versions: []wire.MemberVersion{{Node: []byte("n1"), Seq: 1 << 62}}}, func() any { return new(wire.MembersDigest) }},
		{wire.KindMembersDelta, &wire.MembersDelta{Records: [][]byte{[]byte("rec")}, Want: [][]byte{[]byte("want")}}, func() any { return new(wire.MembersDelta) }},
		{wire.KindMembersPush, &wire.MembersPush{Records: [][]byte{[]byte("rec1"), []byte("rec2")}}, func() any { return new(wire.MembersPush) }},
		{wire.KindSyncReq, &wire.SyncReq{Digests: []wire.MailboxDigest{{Mailbox: b32(18), Count: 4, XOR: b32(19)}}, Pages: []wire.SyncPage{{Mailbox: b32(26), After: b32(27)}}}, func() any { return new(wire.SyncReq) }},
		{wire.KindSyncResp, &wire.SyncResp{Diffs: []wire.MailboxEntries{{Mailbox: b32(20), Entries: []wire.SyncEntry{{Hash: b32(21)}, {Hash: b32(22), Deleted: true}}, More: true, After: b32(28)}}}, func() any { return new(wire.SyncResp) }},
		{wire.KindOnion, &wire.OnionPacket{Data: []byte("packet")}, func() any { return new(wire.OnionPacket) }},
		{wire.KindPublicReq, &wire.PublicReq{Mailbox: b32(29), Limit: 4}, func() any { return new(wire.PublicReq) }},
		{wire.KindPublicResp, &wire.PublicResp{Messages: []wire.Message{msg}}, func() any { return new(wire.PublicResp) }},
		{wire.KindDropReq, &wire.DropReq{Mailbox: b32(30), After: b32(31), Limit: 100, WaitMs: 20000}, func() any { return new(wire.DropReq) }},
		{wire.KindDropResp, &wire.DropResp{Messages: []wire.Message{msg, msg}, More: true}, func() any { return new(wire.DropResp) }},
		{wire.KindSharePutReq, &wire.SharePutReq{Addr: b32(32), Expiry: 1700000060000, Work: 1 << 40, Data: bytes.Repeat([]byte{7}, 64)}, func() any { return new(wire.SharePutReq) }},
		{wire.KindSharePutResp, &wire.SharePutResp{Expiry: 1700000060000, Sig: bytes.Repeat([]byte{8}, 64)}, func() any { return new(wire.SharePutResp) }},
		{wire.KindShareGetReq, &wire.ShareGetReq{Addr: b32(33)}, func() any { return new(wire.ShareGetReq) }},
		{wire.KindShareGetResp, &wire.ShareGetResp{Data: bytes.Repeat([]byte{9}, 128)}, func() any { return new(wire.ShareGetResp) }},
	}
}

func TestSamplesCoverEveryKind(t *testing.T) {
	seen := map[wire.Kind]bool{}
	for _, s := range samples() {
		seen[s.kind] = true
	}
	for k := wire.KindError; k <= wire.KindShareGetResp; k++ {
		if !seen[k] {
			t.Errorf("no round-trip sample for %s", k)
		}
		if strings.HasPrefix(k.String(), "kind(") {
			t.Errorf("kind %d has no name", k)
		}
	}
	if got := wire.Kind(200).String(); got != "kind(200)" {
		t.Errorf("unknown kind String = %q", got)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.kind.String(), func(t *testing.T) {
			var buf bytes.Buffer
			if err := wire.WriteFrame(&buf, s.kind, s.v); err != nil {
				t.Fatalf("WriteFrame: %v", err)
			}
			// Two frames back to back: reading must not over-consume.
			if err := wire.WriteFrame(&buf, s.kind, s.v); err != nil {
				t.Fatalf("WriteFrame: %v", err)
			}
			r := bufio.NewReader(&buf)
			for i := 0; i < 2; i++ {
				got := s.zero()
				// (An error frame is decoded into v when KindError is asked for.)
				if err := wire.Read(r, 0, s.kind, got); err != nil {
					t.Fatalf("Read #%d: %v", i, err)
				}
				if !reflect.DeepEqual(got, s.v) {
					t.Fatalf("round trip #%d:\n got %#v\nwant %#v", i, got, s.v)
				}
			}
			if _, _, err := wire.ReadFrame(r, 0); err != io.EOF {
				t.Fatalf("after two frames: err = %v, want io.EOF", err)
			}
		})
	}
}

func TestMarshalDeterministic(t *testing.T) {
	for _, s := range samples() {
		a, err := wire.Marshal(s.v)
		if err != nil {
			t.Fatal(err)
		}
		b, err := wire.Marshal(s.v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: encoding not deterministic", s.kind)
		}
	}
}

func frameBytes(t *testing.T, kind wire.Kind, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := wire.WriteFrame(&buf, kind, v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadFrameRejects(t *testing.T) {
	valid := frameBytes(t, wire.KindStoreReq, &wire.StoreReq{Mailbox: b32(1), Data: []byte("data")})
	uv := func(n uint64, rest ...byte) []byte { return append(binary.AppendUvarint(nil, n), rest...) }
	tests := []struct {
		name    string
		in      []byte
		max     int
		wantErr error // checked with errors.Is when set
		substr  string
	}{
		{name: "empty input", in: nil, wantErr: io.EOF},
		{name: "zero length", in: uv(0), substr: "empty frame"},
		{name: "zero length with trailing bytes", in: uv(0, 1, 2, 3), substr: "empty frame"},
		{name: "announce 1<<40", in: uv(1 << 40), wantErr: wire.ErrFrameTooLarge},
		{name: "announce max uint64", in: uv(^uint64(0)), wantErr: wire.ErrFrameTooLarge},
		{name: "announce MaxFrame+1, default max", in: uv(wire.MaxFrame + 1), max: 0, wantErr: wire.ErrFrameTooLarge},
		{name: "announce MaxFrame+1, max above MaxFrame", in: uv(wire.MaxFrame + 1), max: 1 << 30, wantErr: wire.ErrFrameTooLarge},
		{name: "announce max+1", in: uv(1025), max: 1024, wantErr: wire.ErrFrameTooLarge},
		{name: "negative max means MaxFrame", in: uv(wire.MaxFrame + 1), max: -1, wantErr: wire.ErrFrameTooLarge},
		{name: "truncated varint", in: []byte{0x80}, wantErr: io.ErrUnexpectedEOF},
		{name: "varint overflow", in: bytes.Repeat([]byte{0xff}, 11), substr: "overflow"},
		{name: "truncated body", in: valid[:len(valid)-1], wantErr: io.ErrUnexpectedEOF},
		// The length prefix alone is a cut frame, not a clean close.
		{name: "only length", in: valid[:1], wantErr: io.ErrUnexpectedEOF},
		{name: "length 10, 5 bytes", in: uv(10, 1, 2, 3, 4, 5), wantErr: io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, body, err := wire.ReadFrame(bufio.NewReader(bytes.NewReader(tc.in)), tc.max)
			if err == nil {
				t.Fatalf("ReadFrame accepted %x (body %x)", tc.in, body)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.substr != "" && !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.substr)
			}
		})
	}
}

func TestReadFrameAccepts(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		max      int
		wantKind wire.Kind
		wantBody []byte
	}{
		{"kind only", []byte{1, 7}, 0, 7, []byte{}},
		{"exactly max", []byte{4, 9, 'a', 'b', 'c'}, 4, 9, []byte("abc")},
		{"unknown kind is returned, not refused", []byte{2, 0xee, 0xa0}, 0, 0xee, []byte{0xa0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, body, err := wire.ReadFrame(bufio.NewReader(bytes.NewReader(tc.in)), tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if k != tc.wantKind || !bytes.Equal(body, tc.wantBody) {
				t.Fatalf("got (%s, %x), want (%s, %x)", k, body, tc.wantKind, tc.wantBody)
			}
		})
	}
}

// An over-limit announcement must be refused before the buffer is made.
func TestReadFrameNoAllocBeforeCheck(t *testing.T) {
	in := binary.AppendUvarint(nil, wire.MaxFrame) // 4 MiB announced
	in = append(in, make([]byte, 16)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 10; i++ {
		if _, _, err := wire.ReadFrame(bufio.NewReaderSize(bytes.NewReader(in), 16), 1024); !errors.Is(err, wire.ErrFrameTooLarge) {
			t.Fatalf("err = %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("refusing 10 over-limit frames allocated %d bytes", d)
	}
}

func TestWriteFrameTooLarge(t *testing.T) {
	var buf bytes.Buffer
	err := wire.WriteFrame(&buf, wire.KindStoreReq, &wire.StoreReq{Data: make([]byte, wire.MaxFrame)})
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("%d bytes written for a refused frame", buf.Len())
	}
}

func TestReadErrorFrame(t *testing.T) {
	in := frameBytes(t, wire.KindError, wire.Errorf(wire.CodeUnauthorized, "no %s", "way"))
	var resp wire.StoreResp
	err := wire.Read(bufio.NewReader(bytes.NewReader(in)), 0, wire.KindStoreResp, &resp)
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("err = %#v, want *wire.Error", err)
	}
	if we.Code != wire.CodeUnauthorized || we.Msg != "no way" {
		t.Fatalf("got %+v", we)
	}
	if !strings.Contains(we.Error(), "401") || !strings.Contains(we.Error(), "no way") {
		t.Fatalf("Error() = %q", we.Error())
	}

	// An undecodable error body is a decode error, not a *wire.Error.
	bad := []byte{2, byte(wire.KindError), 0xff}
	err = wire.Read(bufio.NewReader(bytes.NewReader(bad)), 0, wire.KindStoreResp, &resp)
	if err == nil || errors.As(err, &we) {
		t.Fatalf("err = %v, want a decode error", err)
	}
}

func TestReadWrongKind(t *testing.T) {
	in := frameBytes(t, wire.KindStoreResp, &wire.StoreResp{Hash: b32(1)})
	var v wire.RetrieveResp
	err := wire.Read(bufio.NewReader(bytes.NewReader(in)), 0, wire.KindRetrieveResp, &v)
	if err == nil || !strings.Contains(err.Error(), "store-resp") {
		t.Fatalf("err = %v, want a kind mismatch", err)
	}
	var we *wire.Error
	if errors.As(err, &we) {
		t.Fatalf("kind mismatch reported as a peer error: %v", err)
	}
}

func TestReadFrameLimitPassedThrough(t *testing.T) {
	in := frameBytes(t, wire.KindStoreReq, &wire.StoreReq{Data: make([]byte, 100)})
	var v wire.StoreReq
	if err := wire.Read(bufio.NewReader(bytes.NewReader(in)), 50, wire.KindStoreReq, &v); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
}

// storeReqV2 is a StoreReq from a newer peer with extra fields.
type storeReqV2 struct {
	Mailbox   []byte            `cbor:"1,keyasint"`
	Namespace int32             `cbor:"2,keyasint"`
	Timestamp int64             `cbor:"3,keyasint"`
	TTL       int64             `cbor:"4,keyasint"`
	Data      []byte            `cbor:"5,keyasint"`
	Extra     string            `cbor:"99,keyasint"`
	Nested    map[string][]int  `cbor:"100,keyasint"`
	Big       uint64            `cbor:"101,keyasint"`
	Tagless   map[int64][]byte  `cbor:"102,keyasint"`
	Opt       *storeReqV2Nested `cbor:"103,keyasint"`
}

type storeReqV2Nested struct {
	A int `cbor:"1,keyasint"`
}

type messageV2 struct {
	Hash      []byte `cbor:"1,keyasint"`
	Mailbox   []byte `cbor:"2,keyasint"`
	Namespace int32  `cbor:"3,keyasint"`
	Timestamp int64  `cbor:"4,keyasint"`
	Expiry    int64  `cbor:"5,keyasint"`
	Data      []byte `cbor:"6,keyasint"`
	Extra     []byte `cbor:"99,keyasint"`
}

type retrieveRespV2 struct {
	Messages []messageV2 `cbor:"1,keyasint"`
	More     bool        `cbor:"2,keyasint"`
	Extra    string      `cbor:"99,keyasint"`
}

func TestUnknownFieldsSkipped(t *testing.T) {
	t.Run("top level", func(t *testing.T) {
		v2 := storeReqV2{Mailbox: b32(1), Namespace: 3, Timestamp: 4, TTL: 5, Data: []byte("d"),
			Extra: "from the future", Nested: map[string][]int{"a": {1, 2, 3}}, Big: 1 << 63,
			Tagless: map[int64][]byte{-1: []byte("x")}, Opt: &storeReqV2Nested{A: 9}}
		b, err := wire.Marshal(&v2)
		if err != nil {
			t.Fatal(err)
		}
		var got wire.StoreReq
		if err := wire.Unmarshal(b, &got); err != nil {
			t.Fatalf("decode v2 body: %v", err)
		}
		want := wire.StoreReq{Mailbox: b32(1), Namespace: 3, Timestamp: 4, TTL: 5, Data: []byte("d")}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
	t.Run("nested", func(t *testing.T) {
		v2 := retrieveRespV2{Messages: []messageV2{{Hash: b32(1), Mailbox: b32(2), Data: []byte("x"), Extra: []byte("new")}}, More: true, Extra: "e"}
		b, err := wire.Marshal(&v2)
		if err != nil {
			t.Fatal(err)
		}
		var got wire.RetrieveResp
		if err := wire.Unmarshal(b, &got); err != nil {
			t.Fatalf("decode v2 body: %v", err)
		}
		if len(got.Messages) != 1 || !got.More || !bytes.Equal(got.Messages[0].Data, []byte("x")) {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("through a frame", func(t *testing.T) {
		in := frameBytes(t, wire.KindStoreReq, &storeReqV2{Mailbox: b32(1), Data: []byte("d"), Extra: "x"})
		var got wire.StoreReq
		if err := wire.Read(bufio.NewReader(bytes.NewReader(in)), 0, wire.KindStoreReq, &got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, []byte("d")) {
			t.Fatalf("got %+v", got)
		}
	})
}

// Hand-written CBOR for the decoder's hard limits.
func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		into func() any
	}{
		// {1: h'61', 1: h'62'}
		{"duplicate known key", []byte{0xa2, 0x01, 0x41, 0x61, 0x01, 0x41, 0x62}, func() any { return new(wire.StoreReq) }},
		// {5: h'61', 1: h'00', 5: h'62'}
		{"duplicate key not adjacent", []byte{0xa3, 0x05, 0x41, 0x61, 0x01, 0x41, 0x00, 0x05, 0x41, 0x62}, func() any { return new(wire.StoreReq) }},
		// {99: 1, 99: 2}
		{"duplicate unknown key", []byte{0xa2, 0x18, 0x63, 0x01, 0x18, 0x63, 0x02}, func() any { return new(wire.StoreReq) }},
		// {1: [{1: h'', 1: h''}]} — duplicate inside a nested message
		{"duplicate nested key", []byte{0xa1, 0x01, 0x81, 0xa2, 0x01, 0x40, 0x01, 0x40}, func() any { return new(wire.RetrieveResp) }},
		// {1: 1, 2: "a", 1: 2} into Error
		{"duplicate in error body", []byte{0xa3, 0x01, 0x01, 0x02, 0x61, 'a', 0x01, 0x02}, func() any { return new(wire.Error) }},
		// indefinite-length map
		{"indefinite map", []byte{0xbf, 0x01, 0x41, 0x61, 0xff}, func() any { return new(wire.StoreReq) }},
		// indefinite-length byte string
		{"indefinite bytes", []byte{0xa1, 0x05, 0x5f, 0x41, 0x61, 0xff}, func() any { return new(wire.StoreReq) }},
		// tag 1 (epoch time) on a field
		{"tag", []byte{0xa1, 0x03, 0xc1, 0x01}, func() any { return new(wire.StoreReq) }},
		{"truncated", []byte{0xa1, 0x05, 0x45, 0x61}, func() any { return new(wire.StoreReq) }},
		{"trailing bytes", []byte{0xa0, 0x00}, func() any { return new(wire.StoreReq) }},
		{"wrong type", []byte{0xa1, 0x05, 0x01}, func() any { return new(wire.StoreReq) }},
		{"int overflow int32", []byte{0xa1, 0x02, 0x1a, 0xff, 0xff, 0xff, 0xff}, func() any { return new(wire.StoreReq) }},
		{"negative into uint64", []byte{0xa1, 0x02, 0x20}, func() any { return new(wire.MemberVersion) }},
		{"array header beyond data", []byte{0xa1, 0x01, 0x9a, 0x00, 0x01, 0xff, 0xff}, func() any { return new(wire.RetrieveResp) }},
		{"array above MaxArrayElements", append([]byte{0xa1, 0x01, 0x9a, 0x00, 0x02, 0x00, 0x01}, make([]byte, 131073)...), func() any { return new(wire.FetchReq) }},
		{"too deep", deepArrays(20), func() any { return new(any) }},
		{"map above MaxMapPairs", bigMap(65), func() any { return new(wire.StoreReq) }},
		{"empty input", nil, func() any { return new(wire.StoreReq) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.into()
			if err := wire.Unmarshal(tc.in, v); err == nil {
				t.Fatalf("accepted %x as %#v", tc.in, v)
			}
		})
	}
}

func deepArrays(n int) []byte {
	b := bytes.Repeat([]byte{0x81}, n)
	return append(b, 0x00)
}

// bigMap is a map of n distinct unknown integer keys (>= 1000) to 0.
func bigMap(n int) []byte {
	b := []byte{0xb8, byte(n)}
	for i := 0; i < n; i++ {
		b = append(b, 0x19, byte((1000+i)>>8), byte(1000+i), 0x00)
	}
	return b
}

func TestDecodeAcceptsLimits(t *testing.T) {
	// 64 pairs is the limit, not above it.
	var v wire.StoreReq
	if err := wire.Unmarshal(bigMap(64), &v); err != nil {
		t.Fatalf("64-pair map refused: %v", err)
	}
	// null for slices decodes to nil
	if err := wire.Unmarshal([]byte{0xa1, 0x05, 0xf6}, &v); err != nil || v.Data != nil {
		t.Fatalf("null data: %v %v", err, v.Data)
	}
}

func TestAuthFields(t *testing.T) {
	base := wire.RetrieveReq{Mailbox: b32(1), After: b32(2), Limit: 10, WaitMs: 1000}
	variants := []wire.RetrieveReq{
		{Mailbox: b32(1), After: b32(3), Limit: 10, WaitMs: 1000},
		{Mailbox: b32(1), After: nil, Limit: 10, WaitMs: 1000},
		{Mailbox: b32(1), After: b32(2), Limit: 11, WaitMs: 1000},
		{Mailbox: b32(1), After: b32(2), Limit: 10, WaitMs: 1001},
	}
	for i, v := range variants {
		if bytes.Equal(base.AuthFields(), v.AuthFields()) {
			t.Errorf("retrieve variant %d signs the same bytes as the base", i)
		}
	}
	d1 := wire.DeleteReq{Hashes: [][]byte{b32(1), b32(2)}}
	d2 := wire.DeleteReq{Hashes: [][]byte{b32(2), b32(1)}}
	if bytes.Equal(d1.AuthFields(), d2.AuthFields()) {
		t.Error("delete AuthFields ignores hash order")
	}
	if got := len(d1.AuthFields()); got != 64 {
		t.Errorf("delete AuthFields length %d", got)
	}
}

// A peer that announces 4 MiB and sends 5 bytes makes the reader allocate
// its first chunk, not the announced length.
func TestReadFrameAllocatesAsBytesArrive(t *testing.T) {
	in := binary.AppendUvarint(nil, wire.MaxFrame)
	in = append(in, 1, 2, 3, 4, 5)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const reads = 10
	for i := 0; i < reads; i++ {
		if _, _, err := wire.ReadFrame(bufio.NewReaderSize(bytes.NewReader(in), 16), wire.MaxFrame); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / reads; per > 2*wire.FirstChunk {
		t.Fatalf("a 4 MiB announcement with 5 bytes allocated %d bytes per read; want at most %d", per, 2*wire.FirstChunk)
	}
}

// ReadBody asks for every byte it allocates before allocating it, in all
// the final size; a refusal stops it with ErrReserve and the bytes read.
func TestReadBodyReserve(t *testing.T) {
	data := make([]byte, 100<<10)
	for i := range data {
		data[i] = byte(i)
	}
	var asked []int
	body, err := wire.ReadBody(bytes.NewReader(data), len(data), func(n int) error {
		asked = append(asked, n)
		return nil
	})
	if err != nil || !bytes.Equal(body, data) {
		t.Fatalf("ReadBody: %v", err)
	}
	want := []int{wire.FirstChunk, wire.FirstChunk, len(data) - 2*wire.FirstChunk}
	if fmt.Sprint(asked) != fmt.Sprint(want) {
		t.Fatalf("reservations %v, want %v (the buffer doubling up to the length)", asked, want)
	}

	refuse := errors.New("over budget")
	calls := 0
	body, err = wire.ReadBody(bytes.NewReader(data), len(data), func(n int) error {
		if calls++; calls == 2 {
			return refuse
		}
		return nil
	})
	if !errors.Is(err, wire.ErrReserve) || !errors.Is(err, refuse) {
		t.Fatalf("refused growth: err = %v, want ErrReserve wrapping the refusal", err)
	}
	if len(body) != wire.FirstChunk || !bytes.Equal(body, data[:wire.FirstChunk]) {
		t.Fatalf("refused growth returned %d bytes, want the %d read", len(body), wire.FirstChunk)
	}

	// A refusal of the first chunk reads nothing.
	body, err = wire.ReadBody(bytes.NewReader(data), len(data), func(int) error { return refuse })
	if !errors.Is(err, wire.ErrReserve) || len(body) != 0 {
		t.Fatalf("refused first chunk: %d bytes, %v", len(body), err)
	}
}

// What ReadBody holds is at most twice what arrived, plus the first chunk.
func TestReadBodyGrowsWithArrivals(t *testing.T) {
	for _, arrived := range []int{0, 5, wire.FirstChunk - 1, wire.FirstChunk, wire.FirstChunk + 1, 100 << 10, 1 << 20} {
		held := 0
		body, err := wire.ReadBody(bytes.NewReader(make([]byte, arrived)), wire.MaxFrame, func(n int) error {
			held += n
			return nil
		})
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(body) != arrived {
			t.Fatalf("%d of %d bytes: %d bytes, %v", arrived, wire.MaxFrame, len(body), err)
		}
		if bound := max(wire.FirstChunk, 2*arrived); held > bound {
			t.Errorf("%d bytes arrived: %d held, bound %d", arrived, held, bound)
		}
	}
}

func TestCoarseTime(t *testing.T) {
	const m = int64(60_000)
	if wire.TimeGranularity != time.Minute {
		t.Fatalf("TimeGranularity = %v", wire.TimeGranularity)
	}
	for _, c := range []struct{ in, down, up int64 }{
		{0, 0, 0},
		{1, 0, m},
		{m - 1, 0, m},
		{m, m, m},
		{m + 1, m, 2 * m},
		{1_700_000_000_000, 1_699_999_980_000, 1_700_000_040_000},
		{1_699_999_980_000, 1_699_999_980_000, 1_699_999_980_000},
		{-1, -m, 0},
		{-m, -m, -m},
		{-m - 1, -2 * m, -m},
		{math.MaxInt64, math.MaxInt64 - math.MaxInt64%m, math.MaxInt64 - math.MaxInt64%m},
	} {
		if got := wire.CoarseTime(c.in); got != c.down {
			t.Errorf("CoarseTime(%d) = %d, want %d", c.in, got, c.down)
		}
		if got := wire.CoarseTTL(c.in); got != c.up {
			t.Errorf("CoarseTTL(%d) = %d, want %d", c.in, got, c.up)
		}
	}
	// Extremes neither overflow nor leave the minute grid.
	for _, ms := range []int64{math.MinInt64, math.MinInt64 + 1, math.MaxInt64, math.MaxInt64 - 1} {
		for name, got := range map[string]int64{"CoarseTime": wire.CoarseTime(ms), "CoarseTTL": wire.CoarseTTL(ms)} {
			if !wire.IsCoarse(got) {
				t.Errorf("%s(%d) = %d is not a whole minute", name, ms, got)
			}
			if d := got - ms; d >= m || d <= -m {
				t.Errorf("%s(%d) = %d: off by %d ms", name, ms, got, d)
			}
		}
	}
	// Every time in a minute rounds to its start, and nothing is lost
	// twice: rounding is idempotent.
	start := time.Date(2026, 12, 2, 16, 5, 0, 0, time.UTC).UnixMilli()
	for ms := start; ms < start+m; ms += 997 {
		if got := wire.CoarseTime(ms); got != start || wire.CoarseTime(got) != got {
			t.Fatalf("CoarseTime(%d) = %d, want %d", ms, got, start)
		}
		if !wire.IsCoarse(wire.CoarseTime(ms)) || (ms != start && wire.IsCoarse(ms)) {
			t.Fatalf("IsCoarse wrong around %d", ms)
		}
	}
	// A coarse timestamp plus a coarse TTL is a coarse expiry no earlier
	// than asked for, measured from the coarse timestamp.
	ttl := (14*24*time.Hour + 1234*time.Millisecond).Milliseconds()
	if e := wire.CoarseTime(start+5) + wire.CoarseTTL(ttl); !wire.IsCoarse(e) || e < start+ttl {
		t.Fatalf("expiry %d", e)
	}
}
