package adversary_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/files"
	"github.com/umbra-im/umbra/internal/wire"
)

// memWriter is an io.WriterAt in memory.
type memWriter struct{ b []byte }

func (w *memWriter) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(w.b) {
		w.b = append(w.b, make([]byte, end-len(w.b))...)
	}
	return copy(w.b[off:], p), nil
}

// TestHostileShareNodes: among 12 real nodes, two hostile nodes join the
// network. One acknowledges every share with a valid signed receipt but
// keeps nothing, and serves altered bytes for every share asked; the other
// asks 30 bits of proof-of-work for every share (to make uploaders burn
// CPU). A 3 MiB file goes up and comes back whole: the greedy node gets no
// share and costs the uploader no more than MaxExtraWork over the base
// price, the liar's shares are dropped as not matching their addresses
// and its node is taken as down.
func TestHostileShareNodes(t *testing.T) {
	an := startNet(t, 12)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	liar, greedy := an.adversary(ctx, "127.0.201.1"), an.adversary(ctx, "127.0.201.2")
	c := an.client(ctx, true)
	waitListed(t, ctx, c, time.Minute, liar.ID(), greedy.ID())

	var puts, gets, asked atomic.Int64
	liar.Serve(wire.ProtoStoreSession, func(_ context.Context, _ peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
		switch kind {
		case wire.KindSharePutReq:
			var req wire.SharePutReq
			if wire.Unmarshal(body, &req) != nil || len(req.Addr) != 32 {
				return wire.KindError, wire.Errorf(wire.CodeBadRequest, "no")
			}
			puts.Add(1)
			sig, _ := liar.Priv.Sign(files.ReceiptMessage(files.Address(req.Addr), req.Expiry))
			return wire.KindSharePutResp, &wire.SharePutResp{Expiry: req.Expiry, Sig: sig} // and keeps nothing
		case wire.KindShareGetReq:
			gets.Add(1)
			junk := make([]byte, files.MaxShareSize)
			rand.Read(junk)
			return wire.KindShareGetResp, &wire.ShareGetResp{Data: junk}
		}
		return wire.KindError, wire.Errorf(wire.CodeBadRequest, "no")
	})
	greedy.Serve(wire.ProtoStoreSession, func(_ context.Context, _ peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
		asked.Add(1)
		return wire.KindError, &wire.Error{Code: wire.CodeRateLimited, Msg: "pay up", WorkBits: files.MaxShareWork}
	})

	data := make([]byte, 3<<20)
	rand.Read(data)
	nodes := c.ShareNodes()
	u, err := files.NewUpload(int64(len(data)), nodes, time.Now().Add(time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := u.Run(ctx, bytes.NewReader(data), &files.Transfer{Net: c}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	t.Logf("uploaded 3 MiB to %d nodes (%d of %d a stripe) in %s; the liar took %d shares, the greedy node was asked %d times",
		len(nodes), u.Params.K, u.Params.N, time.Since(start).Round(time.Millisecond), puts.Load(), asked.Load())
	if puts.Load() == 0 || asked.Load() == 0 {
		t.Fatalf("the hostile nodes were not asked (%d puts, %d asks): the attack did not run", puts.Load(), asked.Load())
	}
	m, err := u.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for j := range m.Shares {
		if peer.ID(m.Node(j)) == greedy.ID() {
			t.Fatalf("share %d is recorded on the greedy node", j)
		}
	}
	var got memWriter
	if err := files.Download(ctx, m, &got, nil, &files.Transfer{Net: c}); err != nil {
		t.Fatalf("download: %v", err)
	}
	if !bytes.Equal(got.b, data) {
		t.Fatal("the file came back altered")
	}
	if gets.Load() == 0 {
		t.Fatal("the downloader never asked the liar: the attack did not run")
	}
	t.Logf("downloaded whole; the liar was asked %d times and its shares dropped", gets.Load())
}
