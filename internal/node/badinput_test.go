package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/wire"
)

// rawResult is what came back on a raw stream: one frame, or the error
// that ended the exchange (a reset, an EOF).
type rawResult struct {
	id      uint32 // request id of a session answer (0: a session-level error)
	kind    wire.Kind
	body    []byte
	readErr error
	// writeErr is the error of sending the payload, if any (the node may
	// reset the stream before a large payload is fully sent).
	writeErr error
}

func (r rawResult) String() string {
	if r.readErr != nil {
		return fmt.Sprintf("read error %v (write error %v)", r.readErr, r.writeErr)
	}
	if r.kind == wire.KindError {
		var e wire.Error
		if err := wire.Unmarshal(r.body, &e); err == nil {
			return fmt.Sprintf("error frame %d %q", e.Code, e.Msg)
		}
	}
	return fmt.Sprintf("%s frame (%d bytes)", r.kind, len(r.body))
}

// wireError decodes the result as an error frame.
func (r rawResult) wireError() (*wire.Error, bool) {
	if r.readErr != nil || r.kind != wire.KindError {
		return nil, false
	}
	var e wire.Error
	if err := wire.Unmarshal(r.body, &e); err != nil {
		return nil, false
	}
	return &e, true
}

// rawExchange opens a stream to target, sends payload as is (concurrently
// with reading, so a node that answers early is heard), half-closes, and
// reads one frame back: a session frame, except on the one-shot gossip
// protocol.
func rawExchange(ctx context.Context, t *testing.T, h host.Host, target peer.ID, proto string, payload []byte) rawResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, target, protocol.ID(proto))
	if err != nil {
		t.Fatalf("open %s: %v", proto, err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(15 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(payload)
		if err == nil {
			err = s.CloseWrite()
		}
		werr <- err
	}()
	var res rawResult
	if proto == wire.ProtoMembers {
		res.kind, res.body, res.readErr = wire.ReadFrame(bufio.NewReader(s), wire.MaxFrame)
	} else {
		res.id, res.kind, res.body, res.readErr = readSessionFrame(bufio.NewReader(s))
	}
	if res.readErr != nil {
		s.Reset()
	}
	res.writeErr = <-werr
	return res
}

// readSessionFrame reads one session frame: uvarint(n) ‖ be32(id) ‖ kind ‖ body.
func readSessionFrame(r *bufio.Reader) (uint32, wire.Kind, []byte, error) {
	b, err := wire.ReadRaw(r, wire.MaxFrame+4)
	if err != nil {
		return 0, 0, nil, err
	}
	if len(b) < 5 {
		return 0, 0, nil, fmt.Errorf("session frame of %d bytes", len(b))
	}
	return binary.BigEndian.Uint32(b), wire.Kind(b[4]), b[5:], nil
}

// sframe encodes v as request 1 of a session.
func sframe(t *testing.T, kind wire.Kind, v any) []byte {
	t.Helper()
	body, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return rawSFrame(byte(kind), body)
}

// rawSFrame builds request 1 of a session without any check.
func rawSFrame(kind byte, body []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(4+1+len(body)))
	b = binary.BigEndian.AppendUint32(b, 1)
	b = append(b, kind)
	return append(b, body...)
}

// frame encodes a one-shot (gossip) frame.
func frame(t *testing.T, kind wire.Kind, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := wire.WriteFrame(&buf, kind, v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawFrame builds a frame without WriteFrame's checks.
func rawFrame(kind byte, body []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(len(body)+1))
	b = append(b, kind)
	return append(b, body...)
}

func signedRetrieve(t *testing.T, key *mailbox.Key) *wire.RetrieveReq {
	t.Helper()
	id := key.ID()
	req := &wire.RetrieveReq{Mailbox: id[:], Limit: 10}
	req.Auth.Timestamp, req.Auth.Sig = key.Sign(mailbox.MethodRetrieve, time.Now(), req.AuthFields())
	return req
}

// A node answers malformed, oversized, unauthenticated and replayed input on
// every protocol with an error (or drops the stream when the input is not
// even a frame), and keeps serving afterwards.
func TestBadInput(t *testing.T) {
	tn := startNet(t, 3)
	nd := tn.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	h, err := p2p.NewClientHost()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.Peerstore().AddAddrs(nd.ID(), nd.Host().Addrs(), time.Hour)

	key, err := mailbox.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	mb := key.ID()

	badSig := signedRetrieve(t, key)
	badSig.Auth.Sig = bytes.Clone(badSig.Auth.Sig)
	badSig.Auth.Sig[5] ^= 0x10
	staleSig := &wire.RetrieveReq{Mailbox: mb[:]}
	staleSig.Auth.Timestamp, staleSig.Auth.Sig = key.Sign(mailbox.MethodRetrieve, time.Now().Add(-time.Hour), staleSig.AuthFields())
	replayed := sframe(t, wire.KindRetrieveReq, signedRetrieve(t, key))
	other, _ := mailbox.NewKey()
	otherSig := signedRetrieve(t, other) // signed by another mailbox's key
	otherSig.Mailbox = mb[:]

	hundredMiB := binary.AppendUvarint(nil, 100<<20)
	hundredMiB = append(hundredMiB, byte(wire.KindStoreReq), 0xa0)
	hundredMiBSession := binary.AppendUvarint(nil, 100<<20)
	hundredMiBSession = append(hundredMiBSession, 0, 0, 0, 1, byte(wire.KindStoreReq), 0xa0)

	const (
		// The input is not a frame (or too large a one): the node answers
		// 400 or 413 "bad frame" (a session-level error, id 0, on a
		// session) and resets the stream. The reset may discard the answer
		// at the peer, so a reset is accepted too.
		badFrame = -1
		// The node answered with a response frame, not an error.
		ok = 0
		// The node reset the stream without reading anything: a node
		// protocol opened by a peer that is not a node.
		refused = -2
	)
	tests := []struct {
		name    string
		proto   string
		payload []byte
		code    int    // wire error code, or badFrame / ok
		msg     string // substring of the error message
	}{
		// client protocol
		{"store: garbage", wire.ProtoStoreSession, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), badFrame, ""},
		{"store: varint overflow", wire.ProtoStoreSession, bytes.Repeat([]byte{0xff}, 16), badFrame, ""},
		{"store: empty frame", wire.ProtoStoreSession, []byte{0x00}, badFrame, ""},
		{"store: 100 MiB announced", wire.ProtoStoreSession, hundredMiBSession, badFrame, "too large"},
		{"store: unknown kind", wire.ProtoStoreSession, rawSFrame(0xee, []byte{0xa0}), wire.CodeBadRequest, "unsupported"},
		{"store: kind 0", wire.ProtoStoreSession, rawSFrame(0, nil), wire.CodeBadRequest, "unsupported"},
		{"store: response kind as request", wire.ProtoStoreSession, sframe(t, wire.KindStoreResp, &wire.StoreResp{}), wire.CodeBadRequest, "unsupported"},
		{"store: body not CBOR", wire.ProtoStoreSession, rawSFrame(byte(wire.KindStoreReq), []byte{0xff, 0xff}), wire.CodeBadRequest, "decode"},
		{"store: duplicate map key", wire.ProtoStoreSession, rawSFrame(byte(wire.KindStoreReq), []byte{0xa2, 0x01, 0x41, 0x61, 0x01, 0x41, 0x62}), wire.CodeBadRequest, "decode"},
		{"store: 31-byte mailbox", wire.ProtoStoreSession, sframe(t, wire.KindStoreReq, &wire.StoreReq{Mailbox: mb[:31], Data: []byte("x")}), wire.CodeBadRequest, "mailbox"},
		{"store: 33-byte mailbox", wire.ProtoStoreSession, sframe(t, wire.KindStoreReq, &wire.StoreReq{Mailbox: append(mb[:], 0), Data: []byte("x")}), wire.CodeBadRequest, "mailbox"},
		{"store: empty message", wire.ProtoStoreSession, sframe(t, wire.KindStoreReq, &wire.StoreReq{Mailbox: mb[:]}), wire.CodeBadRequest, "empty"},
		{"store: message one byte over the limit", wire.ProtoStoreSession, sframe(t, wire.KindStoreReq, &wire.StoreReq{Mailbox: mb[:], Data: make([]byte, node.MaxMessageSize+1)}), wire.CodeTooLarge, ""},
		{"store: TTL too long", wire.ProtoStoreSession, sframe(t, wire.KindStoreReq, &wire.StoreReq{Mailbox: mb[:], TTL: (node.MaxTTL + time.Hour).Milliseconds(), Data: []byte("x")}), wire.CodeBadRequest, "TTL"},
		{"store: negative TTL", wire.ProtoStoreSession, sframe(t, wire.KindStoreReq, &wire.StoreReq{Mailbox: mb[:], TTL: -1, Data: []byte("x")}), wire.CodeBadRequest, "TTL"},
		{"store: timestamp far ahead", wire.ProtoStoreSession, sframe(t, wire.KindStoreReq, &wire.StoreReq{Mailbox: mb[:], Timestamp: time.Now().Add(time.Hour).UnixMilli(), Data: []byte("x")}), wire.CodeBadRequest, "future"},
		{"store: already expired", wire.ProtoStoreSession, sframe(t, wire.KindStoreReq, &wire.StoreReq{Mailbox: mb[:], Timestamp: 1, TTL: 1000, Data: []byte("x")}), wire.CodeBadRequest, "expired"},
		{"retrieve: bad signature", wire.ProtoStoreSession, sframe(t, wire.KindRetrieveReq, badSig), wire.CodeUnauthorized, ""},
		{"retrieve: stale signature", wire.ProtoStoreSession, sframe(t, wire.KindRetrieveReq, staleSig), wire.CodeUnauthorized, "timestamp"},
		{"retrieve: another mailbox's key", wire.ProtoStoreSession, sframe(t, wire.KindRetrieveReq, otherSig), wire.CodeUnauthorized, ""},
		{"retrieve: no auth", wire.ProtoStoreSession, sframe(t, wire.KindRetrieveReq, &wire.RetrieveReq{Mailbox: mb[:]}), wire.CodeUnauthorized, ""},
		{"retrieve: 31-byte mailbox", wire.ProtoStoreSession, sframe(t, wire.KindRetrieveReq, &wire.RetrieveReq{Mailbox: mb[:31]}), wire.CodeBadRequest, "mailbox"},
		{"retrieve: 8-byte cursor", wire.ProtoStoreSession, sframe(t, wire.KindRetrieveReq, &wire.RetrieveReq{Mailbox: mb[:], After: make([]byte, 8)}), wire.CodeBadRequest, "cursor"},
		{"retrieve: negative byte cap", wire.ProtoStoreSession, sframe(t, wire.KindRetrieveReq, &wire.RetrieveReq{Mailbox: mb[:], MaxBytes: -1}), wire.CodeBadRequest, "byte cap"},
		{"public read: negative byte cap", wire.ProtoStoreSession, sframe(t, wire.KindPublicReq, &wire.PublicReq{Mailbox: mb[:], MaxBytes: -1}), wire.CodeBadRequest, "byte cap"},
		{"retrieve: valid", wire.ProtoStoreSession, replayed, ok, ""},
		{"retrieve: replayed", wire.ProtoStoreSession, replayed, wire.CodeUnauthorized, "replayed"},
		{"delete: no hashes", wire.ProtoStoreSession, sframe(t, wire.KindDeleteReq, &wire.DeleteReq{Mailbox: mb[:]}), wire.CodeBadRequest, "hashes"},
		{"delete: short hash", wire.ProtoStoreSession, sframe(t, wire.KindDeleteReq, &wire.DeleteReq{Mailbox: mb[:], Hashes: [][]byte{{1}}}), wire.CodeBadRequest, "32 bytes"},
		{"delete: bad signature", wire.ProtoStoreSession, sframe(t, wire.KindDeleteReq, &wire.DeleteReq{Mailbox: mb[:], Hashes: [][]byte{make([]byte, 32)}, Auth: wire.Auth{Timestamp: time.Now().UnixMilli(), Sig: make([]byte, 64)}}), wire.CodeUnauthorized, ""},
		{"drop read: body not CBOR", wire.ProtoStoreSession, rawSFrame(byte(wire.KindDropReq), []byte{0xff, 0xff}), wire.CodeBadRequest, "decode"},
		{"drop read: 31-byte mailbox", wire.ProtoStoreSession, sframe(t, wire.KindDropReq, &wire.DropReq{Mailbox: mb[:31]}), wire.CodeBadRequest, "mailbox"},
		{"drop read: short cursor", wire.ProtoStoreSession, sframe(t, wire.KindDropReq, &wire.DropReq{Mailbox: mb[:], After: []byte{1}}), wire.CodeBadRequest, "cursor"},
		{"drop read: no auth needed", wire.ProtoStoreSession, sframe(t, wire.KindDropReq, &wire.DropReq{Mailbox: mb[:], Limit: -5}), ok, ""},
		{"drop store: no work", wire.ProtoStoreSession, sframe(t, wire.KindStoreReq, &wire.StoreReq{Mailbox: mb[:], Namespace: wire.DropNamespace, Data: []byte("no nonce")}), wire.CodeRateLimited, "proof-of-work"},
		{"share put: body not CBOR", wire.ProtoStoreSession, rawSFrame(byte(wire.KindSharePutReq), []byte{0xff, 0xff}), wire.CodeBadRequest, "decode"},
		{"share put: 31-byte address", wire.ProtoStoreSession, sframe(t, wire.KindSharePutReq, &wire.SharePutReq{Addr: mb[:31], Expiry: time.Now().Add(time.Hour).UnixMilli(), Data: make([]byte, 64)}), wire.CodeBadRequest, "address"},
		{"share put: size not a multiple of 64", wire.ProtoStoreSession, sframe(t, wire.KindSharePutReq, &wire.SharePutReq{Addr: mb[:], Expiry: time.Now().Add(time.Hour).UnixMilli(), Data: make([]byte, 100)}), wire.CodeBadRequest, "multiple"},
		{"share put: expiry far ahead", wire.ProtoStoreSession, sframe(t, wire.KindSharePutReq, &wire.SharePutReq{Addr: mb[:], Expiry: time.Now().Add(40 * 24 * time.Hour).UnixMilli(), Data: make([]byte, 64)}), wire.CodeBadRequest, "ahead"},
		{"share put: data not matching its address", wire.ProtoStoreSession, sframe(t, wire.KindSharePutReq, &wire.SharePutReq{Addr: mb[:], Expiry: time.Now().Add(time.Hour).UnixMilli(), Data: make([]byte, 64)}), wire.CodeBadRequest, "address"},
		{"share get: body not CBOR", wire.ProtoStoreSession, rawSFrame(byte(wire.KindShareGetReq), []byte{0x5f}), wire.CodeBadRequest, "decode"},
		{"share get: 33-byte address", wire.ProtoStoreSession, sframe(t, wire.KindShareGetReq, &wire.ShareGetReq{Addr: append(mb[:], 0)}), wire.CodeBadRequest, "address"},
		{"share get: not held", wire.ProtoStoreSession, sframe(t, wire.KindShareGetReq, &wire.ShareGetReq{Addr: mb[:]}), wire.CodeGone, "share"},
		{"share put: response kind as request", wire.ProtoStoreSession, sframe(t, wire.KindSharePutResp, &wire.SharePutResp{}), wire.CodeBadRequest, "unsupported"},
		{"drop store: TTL above the drop cap", wire.ProtoStoreSession, sframe(t, wire.KindStoreReq, &wire.StoreReq{Mailbox: mb[:], Namespace: wire.DropNamespace, TTL: wire.MaxDropTTL + 60_000, Data: []byte("x")}), wire.CodeBadRequest, "TTL"},

		// node protocols: a peer that is not in the node table is refused
		// before anything is read, whatever it sends
		{"replicate: unknown peer", wire.ProtoReplicateSession, sframe(t, wire.KindReplicateReq, &wire.ReplicateReq{Messages: []wire.Message{{Hash: make([]byte, 32), Mailbox: mb[:], Data: []byte("x")}}}), refused, ""},
		{"replicate: tombstone from unknown peer", wire.ProtoReplicateSession, sframe(t, wire.KindReplicateReq, &wire.ReplicateReq{Deletes: []wire.Tomb{{Mailbox: mb[:], Hashes: [][]byte{make([]byte, 32)}}}}), refused, ""},
		{"replicate: fetch from unknown peer", wire.ProtoReplicateSession, sframe(t, wire.KindFetchReq, &wire.FetchReq{Hashes: [][]byte{make([]byte, 32)}}), refused, ""},
		{"replicate: garbage", wire.ProtoReplicateSession, []byte("\xffgarbage-garbage"), refused, ""},
		{"replicate: 100 MiB announced", wire.ProtoReplicateSession, hundredMiBSession, refused, ""},
		{"sync: unknown peer", wire.ProtoSyncSession, sframe(t, wire.KindSyncReq, &wire.SyncReq{Digests: []wire.MailboxDigest{{Mailbox: mb[:], Count: 1, XOR: make([]byte, 32)}}}), refused, ""},
		{"sync: 100 MiB announced", wire.ProtoSyncSession, hundredMiBSession, refused, ""},

		// gossip (one-shot)
		{"members: garbage", wire.ProtoMembers, []byte("\x03\x00\x00"), badFrame, ""},
		{"members: garbage that frames", wire.ProtoMembers, []byte("\x02\x00\x00"), wire.CodeBadRequest, "unsupported"},
		{"members: truncated frame", wire.ProtoMembers, []byte("\x40abc"), badFrame, ""},
		{"members: 100 MiB announced", wire.ProtoMembers, hundredMiB, badFrame, "too large"},
		{"members: unknown kind", wire.ProtoMembers, rawFrame(0xee, []byte{0xa0}), wire.CodeBadRequest, "unsupported"},
		{"members: push without digest", wire.ProtoMembers, frame(t, wire.KindMembersPush, &wire.MembersPush{Records: [][]byte{[]byte("junk")}}), wire.CodeBadRequest, "unsupported"},
		{"members: digest body not CBOR", wire.ProtoMembers, rawFrame(byte(wire.KindMembersDigest), []byte{0x5f}), wire.CodeBadRequest, "decode"},
		{"members: digest of another network", wire.ProtoMembers, frame(t, wire.KindMembersDigest, &wire.MembersDigest{Params: wire.Params{Network: "other", Replication: 5, PoWBits: 4}}), wire.CodeBadRequest, "network"},
		{"members: digest with bad sums", wire.ProtoMembers, frame(t, wire.KindMembersDigest, &wire.MembersDigest{Params: tn.cfgs[0].Params, Sums: make([]byte, 7)}), wire.CodeBadRequest, "sums"},
		{"members: digest with too many sums", wire.ProtoMembers, frame(t, wire.KindMembersDigest, &wire.MembersDigest{Params: tn.cfgs[0].Params, Sums: make([]byte, 8*512)}), wire.CodeBadRequest, "sums"},
		{"members: digest with other PoW bits", wire.ProtoMembers, frame(t, wire.KindMembersDigest, &wire.MembersDigest{Params: wire.Params{Network: "test", Replication: 5, PoWBits: 0}}), wire.CodeBadRequest, "network"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := rawExchange(ctx, t, h, nd.ID(), tc.proto, tc.payload)
			t.Logf("-> %v", res)
			if tc.code >= ok && tc.proto != wire.ProtoMembers && res.readErr == nil && res.id != 1 {
				t.Fatalf("answer to request 1 came with id %d", res.id)
			}
			switch tc.code {
			case refused:
				if res.readErr == nil || !(errors.Is(res.readErr, io.EOF) || isReset(res.readErr)) {
					t.Fatalf("want the stream reset unanswered, got %v", res)
				}
			case ok:
				if res.readErr != nil || res.kind == wire.KindError {
					t.Fatalf("want a response, got %v", res)
				}
			case badFrame:
				if res.readErr != nil {
					// Reset before the error frame was read: acceptable, the
					// node refused the input.
					if errors.Is(res.readErr, io.EOF) || isReset(res.readErr) {
						return
					}
					t.Fatalf("want a 400 error frame or a reset, got %v", res)
				}
				e, isErr := res.wireError()
				if !isErr || (e.Code != wire.CodeBadRequest && e.Code != wire.CodeTooLarge) || !strings.Contains(e.Msg, tc.msg) {
					t.Fatalf("want error frame 400 or 413 %q, got %v", tc.msg, res)
				}
				if res.id != 0 {
					t.Fatalf("a broken frame was answered as request %d, not with a session-level error", res.id)
				}
			default:
				e, isErr := res.wireError()
				if !isErr {
					t.Fatalf("want error frame %d, got %v", tc.code, res)
				}
				if e.Code != tc.code || !strings.Contains(e.Msg, tc.msg) {
					t.Fatalf("want error %d %q, got %d %q", tc.code, tc.msg, e.Code, e.Msg)
				}
			}
		})
	}

	// A 300 KiB message is too large: the node must say so with a 413 error
	// frame (and store nothing). The store protocol's frame limit is
	// MaxMessageSize+4096, so the request is refused while framing; the
	// answer must still reach the client.
	t.Run("store: 300 KiB message", func(t *testing.T) {
		id := key.ID()
		payload := sframe(t, wire.KindStoreReq, &wire.StoreReq{Mailbox: id[:], Data: make([]byte, 300<<10)})
		res := rawExchange(ctx, t, h, nd.ID(), wire.ProtoStoreSession, payload)
		t.Logf("-> %v", res)
		e, isErr := res.wireError()
		if !isErr {
			t.Fatalf("300 KiB message: want an error frame %d, got %v", wire.CodeTooLarge, res)
		}
		if e.Code != wire.CodeTooLarge {
			t.Fatalf("300 KiB message answered %d %q; want %d", e.Code, e.Msg, wire.CodeTooLarge)
		}
	})

	// A digest on the members protocol is answered with a delta; a client
	// that then sends junk records (or nothing) must not hurt the node.
	t.Run("members: junk push after a valid digest", func(t *testing.T) {
		s, err := h.NewStream(ctx, nd.ID(), protocol.ID(wire.ProtoMembers))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(15 * time.Second))
		if err := wire.WriteFrame(s, wire.KindMembersDigest, &wire.MembersDigest{Params: tn.cfgs[0].Params,
			Versions: []wire.MemberVersion{{Node: []byte("not a peer id"), Seq: 1 << 63}}}); err != nil {
			t.Fatal(err)
		}
		var delta wire.MembersDelta
		if err := wire.Read(bufio.NewReader(s), wire.MaxFrame, wire.KindMembersDelta, &delta); err != nil {
			t.Fatalf("delta: %v", err)
		}
		if len(delta.Records) != 3 {
			t.Errorf("delta gave %d records, want the 3 nodes'", len(delta.Records))
		}
		// A stranger may introduce itself only: the node asks for none of
		// the records it claims to have.
		if len(delta.Want) != 0 {
			t.Errorf("delta wants %q from a stranger", delta.Want)
		}
		junk := [][]byte{nil, []byte("junk"), bytes.Repeat([]byte{0xa1}, 3000), delta.Records[0][:len(delta.Records[0])/2]}
		if err := wire.WriteFrame(s, wire.KindMembersPush, &wire.MembersPush{Records: junk}); err != nil {
			t.Fatal(err)
		}
		_ = s.CloseWrite()
		_, _ = io.Copy(io.Discard, s)
		if got := nd.Table().Len(); got != 3 {
			t.Errorf("table holds %d records after a junk push, want 3", got)
		}
	})

	// The sums form of the exchange: a stranger whose sums differ gets the
	// node's versions; a push naming one node 10,000 times gets its record
	// once, and the junk it pushes is refused.
	t.Run("members: sums digest, repeated wants", func(t *testing.T) {
		s, err := h.NewStream(ctx, nd.ID(), protocol.ID(wire.ProtoMembers))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(15 * time.Second))
		r := bufio.NewReader(s)
		if err := wire.WriteFrame(s, wire.KindMembersDigest, &wire.MembersDigest{Params: tn.cfgs[0].Params, Sums: make([]byte, 8)}); err != nil {
			t.Fatal(err)
		}
		var delta wire.MembersDelta
		if err := wire.Read(r, wire.MaxFrame, wire.KindMembersDelta, &delta); err != nil {
			t.Fatalf("delta: %v", err)
		}
		if len(delta.Buckets) != 1 || len(delta.Versions) != 3 || len(delta.Records) != 0 {
			t.Fatalf("delta: buckets %v, %d versions, %d records; want bucket 0 and the 3 nodes' versions", delta.Buckets, len(delta.Versions), len(delta.Records))
		}
		want := make([][]byte, 10000)
		for i := range want {
			want[i] = delta.Versions[0].Node
		}
		if err := wire.WriteFrame(s, wire.KindMembersPush, &wire.MembersPush{Records: [][]byte{[]byte("junk")}, Want: want}); err != nil {
			t.Fatal(err)
		}
		_ = s.CloseWrite()
		var back wire.MembersPush
		if err := wire.Read(r, wire.MaxFrame, wire.KindMembersPush, &back); err != nil {
			t.Fatalf("records back: %v", err)
		}
		if len(back.Records) != 1 {
			t.Errorf("a node wanted 10000 times came back %d times, want once", len(back.Records))
		}
		if got := nd.Table().Len(); got != 3 {
			t.Errorf("table holds %d records after a junk push, want 3", got)
		}
	})

	// After all that, the node still serves a normal store and retrieve.
	t.Run("still serving", func(t *testing.T) {
		c := tn.client(ctx)
		res, err := c.Put(ctx, key.ID(), 0, time.Hour, []byte("still alive"))
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		msgs, err := c.Get(ctx, key, 0)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if len(msgs) != 1 || string(msgs[0].Data) != "still alive" || msgs[0].Hash != res.Hash {
			t.Fatalf("get = %+v", msgs)
		}
		// and the raw client can still talk to the attacked node directly
		res2 := rawExchange(ctx, t, h, nd.ID(), wire.ProtoStoreSession, sframe(t, wire.KindRetrieveReq, signedRetrieve(t, key)))
		var rr wire.RetrieveResp
		if res2.readErr != nil || res2.kind != wire.KindRetrieveResp {
			t.Fatalf("direct retrieve: %v", res2)
		}
		if err := wire.Unmarshal(res2.body, &rr); err != nil {
			t.Fatal(err)
		}
		if len(rr.Messages) != 1 || string(rr.Messages[0].Data) != "still alive" {
			t.Fatalf("direct retrieve from the attacked node: %d messages", len(rr.Messages))
		}
		if got := len(nd.Table().Live()); got != 3 {
			t.Fatalf("attacked node sees %d live nodes", got)
		}
	})
}

func isReset(err error) bool {
	return errors.Is(err, network.ErrReset) || strings.Contains(err.Error(), "reset")
}
