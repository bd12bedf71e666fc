package node

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/files"
	"github.com/umbra-im/umbra/internal/wire"
)

// FuzzShareRequest: a share put or get (reachable by anyone, directly or
// from an onion exit) is decoded and answered without a panic; a put is
// accepted only for data that hashes to its address, of an aligned size
// within bounds, with the work the node asks, and is then served; a get
// answers only the data that hashes to the address asked, never more than
// a share.
func FuzzShareRequest(f *testing.F) {
	n := startLoneNode(f)
	data := bytes.Repeat([]byte{0x5a}, 128)
	a := files.AddressOf(data)
	exp := time.Now().Add(time.Hour).UnixMilli()
	nonce, err := files.SolveWork(a, exp, files.ShareWork(len(data), 0, n.shares.Quota()), nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct {
		kind wire.Kind
		v    any
	}{
		{wire.KindSharePutReq, &wire.SharePutReq{Addr: a[:], Expiry: exp, Work: nonce, Data: data}},
		{wire.KindSharePutReq, &wire.SharePutReq{Addr: a[:], Expiry: exp, Work: nonce + 1, Data: data}},
		{wire.KindSharePutReq, &wire.SharePutReq{Addr: a[:31], Expiry: exp, Data: data[:100]}},
		{wire.KindShareGetReq, &wire.ShareGetReq{Addr: a[:]}},
		{wire.KindShareGetReq, &wire.ShareGetReq{Addr: make([]byte, 33)}},
	} {
		b, err := wire.Marshal(s.v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(s.kind), b)
	}
	f.Add(byte(wire.KindSharePutReq), []byte{0xa1, 0x04, 0x5a, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, kind byte, body []byte) {
		k := wire.KindSharePutReq
		if kind%2 == 1 {
			k = wire.KindShareGetReq
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		rk, resp := n.handleClient(ctx, k, body, maxOnionRetrieveBytes)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("answered after %s", d)
		}
		switch r := resp.(type) {
		case *wire.SharePutResp:
			var req wire.SharePutReq
			if err := wire.Unmarshal(body, &req); err != nil {
				t.Fatalf("a put that does not decode was accepted: %v", err)
			}
			if len(req.Addr) != 32 || files.AddressOf(req.Data) != files.Address(req.Addr) ||
				len(req.Data)%files.ShareAlign != 0 || len(req.Data) > files.MaxShareSize {
				t.Fatalf("accepted a put of %d bytes at a %d-byte address not matching it", len(req.Data), len(req.Addr))
			}
			if !files.CheckWork(files.Address(req.Addr), req.Expiry, req.Work, files.MinShareWork) {
				t.Fatal("accepted a put without work")
			}
			if got, err := n.shares.Get(ctx, files.Address(req.Addr)); err != nil || !bytes.Equal(got, req.Data) {
				t.Fatalf("an accepted share is not served: %v", err)
			}
			if r.Expiry != req.Expiry {
				t.Fatalf("receipt for expiry %d, asked %d", r.Expiry, req.Expiry)
			}
		case *wire.ShareGetResp:
			var req wire.ShareGetReq
			if err := wire.Unmarshal(body, &req); err != nil || len(req.Addr) != 32 {
				t.Fatalf("answered a get that does not decode to a 32-byte address: %v", err)
			}
			if len(r.Data) > files.MaxShareSize || files.AddressOf(r.Data) != files.Address(req.Addr) {
				t.Fatalf("get answered %d bytes not matching the address", len(r.Data))
			}
		case *wire.Error:
			if rk != wire.KindError || r.Code == 0 {
				t.Fatalf("error answer %v of kind %s", r, rk)
			}
		default:
			t.Fatalf("unexpected answer %T of kind %s", resp, rk)
		}
	})
}
