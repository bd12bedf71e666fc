package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/files"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

// storeProto is the client protocol on sessions, as a client opens it.
var storeProto = p2p.Proto{ID: wire.ProtoStoreSession, MaxReq: wire.MaxClientRequest, MaxResp: wire.MaxFrame}

// shareNode starts one node with the given share quota (0: the default)
// and a client session to it.
func shareNode(t *testing.T, quota int64) (*node.Node, *p2p.Session) {
	t.Helper()
	return shareNodeCfg(t, func(c *node.Config) { c.ShareQuota = quota })
}

// shareNodeCfg starts one node, its config changed by mod, and a client
// session to it.
func shareNodeCfg(t *testing.T, mod func(c *node.Config)) (*node.Node, *p2p.Session) {
	t.Helper()
	tn := startNetCfg(t, 1, func(_ int, c *node.Config) { mod(c) })
	nd := tn.nodes[0]
	h, err := p2p.NewClientHost()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.Peerstore().AddAddrs(nd.ID(), nd.Host().Addrs(), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p2p.OpenSession(ctx, h, nd.ID(), storeProto, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return nd, s
}

// testShare is a share of n bytes (a multiple of files.ShareAlign) and its
// address.
func testShare(seed byte, n int) ([]byte, files.Address) {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*13)
	}
	return b, files.AddressOf(b)
}

// sharePut is a put of data expiring in ttl, with work of bits (none if
// bits is 0).
func sharePut(t *testing.T, data []byte, ttl time.Duration, bits int) *wire.SharePutReq {
	t.Helper()
	a := files.AddressOf(data)
	req := &wire.SharePutReq{Addr: a[:], Expiry: time.Now().Add(ttl).UnixMilli(), Data: data}
	if bits > 0 {
		nonce, err := files.SolveWork(a, req.Expiry, bits, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Work = nonce
	}
	return req
}

func put(ctx context.Context, s *p2p.Session, req *wire.SharePutReq) (*wire.SharePutResp, error) {
	var resp wire.SharePutResp
	err := s.Call(ctx, wire.KindSharePutReq, req, wire.KindSharePutResp, &resp)
	return &resp, err
}

func get(ctx context.Context, s *p2p.Session, a files.Address) ([]byte, error) {
	var resp wire.ShareGetResp
	err := s.Call(ctx, wire.KindShareGetReq, &wire.ShareGetReq{Addr: a[:]}, wire.KindShareGetResp, &resp)
	return resp.Data, err
}

// workFor is the work nd asks now for a share of size bytes.
func workFor(nd *node.Node, size int) int {
	return files.ShareWork(size, nd.ShareStore().Used(), nd.ShareStore().Quota())
}

// TestSharePutGet: a share put with its work is stored, answered with a
// receipt that verifies for that share and expiry only, and read back;
// a share the node does not hold is CodeGone.
func TestSharePutGet(t *testing.T) {
	nd, s := shareNode(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, a := testShare(1, files.MaxShareSize)
	req := sharePut(t, data, time.Hour, workFor(nd, len(data)))
	resp, err := put(ctx, s, req)
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if resp.Expiry != req.Expiry {
		t.Fatalf("receipt expiry %d, want the one asked, %d", resp.Expiry, req.Expiry)
	}
	if err := swarmclient.VerifyShareReceipt(nd.ID(), a, resp.Expiry, resp.Sig); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	_, other := testShare(2, 64)
	if err := swarmclient.VerifyShareReceipt(nd.ID(), other, resp.Expiry, resp.Sig); !errors.Is(err, swarmclient.ErrBadShareReceipt) {
		t.Fatalf("receipt checked for another address: %v, want ErrBadShareReceipt", err)
	}
	if err := swarmclient.VerifyShareReceipt(nd.ID(), a, resp.Expiry+1, resp.Sig); err == nil {
		t.Fatal("receipt verified for another expiry")
	}
	stranger, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	strangerID, _ := peer.IDFromPrivateKey(stranger)
	if err := swarmclient.VerifyShareReceipt(strangerID, a, resp.Expiry, resp.Sig); err == nil {
		t.Fatal("receipt verified for another node")
	}
	got, err := get(ctx, s, a)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %d bytes, %v; want the %d put", len(got), err, len(data))
	}
	if used := nd.ShareStore().Used(); used != int64(len(data)) {
		t.Fatalf("share store holds %d bytes, want %d", used, len(data))
	}
	// The same share again (a retry, or another file's identical share)
	// is kept once.
	again := sharePut(t, data, 2*time.Hour, workFor(nd, len(data)))
	if _, err := put(ctx, s, again); err != nil {
		t.Fatalf("second put of the same share: %v", err)
	}
	if used := nd.ShareStore().Used(); used != int64(len(data)) {
		t.Fatalf("after a second put the store holds %d bytes, want %d", used, len(data))
	}
	if _, err := get(ctx, s, other); wireCode(err) != wire.CodeGone {
		t.Fatalf("get of a share never put: %v, want %d", err, wire.CodeGone)
	}
}

// TestShareExpires: a share is not served past its expiry.
func TestShareExpires(t *testing.T) {
	nd, s := shareNode(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, a := testShare(3, 256)
	if _, err := put(ctx, s, sharePut(t, data, 1500*time.Millisecond, workFor(nd, len(data)))); err != nil {
		t.Fatal(err)
	}
	if _, err := get(ctx, s, a); err != nil {
		t.Fatalf("get before the expiry: %v", err)
	}
	time.Sleep(2 * time.Second)
	if _, err := get(ctx, s, a); wireCode(err) != wire.CodeGone {
		t.Fatalf("get past the expiry: %v, want %d", err, wire.CodeGone)
	}
}

// TestShareWorkRefused: a put without work, or with less than the node
// asks, is refused with CodeRateLimited and the bits it needs, and stores
// nothing; with that work it is accepted.
func TestShareWorkRefused(t *testing.T) {
	nd, s := shareNode(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, a := testShare(4, 4096)
	want := workFor(nd, len(data))
	if want < files.MinShareWork {
		t.Fatalf("the node asks %d bits, below the minimum %d", want, files.MinShareWork)
	}
	req := sharePut(t, data, time.Hour, 0)
	// A nonce that proves fewer bits than asked (nonce 0 might prove
	// enough by chance: find one that does not).
	for files.CheckWork(a, req.Expiry, req.Work, want) {
		req.Work++
	}
	_, err := put(ctx, s, req)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeRateLimited || we.WorkBits != want {
		t.Fatalf("put without its work: %v (work bits %v), want %d asking %d bits", err, we, wire.CodeRateLimited, want)
	}
	if _, err := get(ctx, s, a); wireCode(err) != wire.CodeGone {
		t.Fatalf("a refused share is served: %v", err)
	}
	// Work for another expiry does not count (a nonce that happens to
	// prove both, 1 in 2^bits, is passed over).
	var other *wire.SharePutReq
	for i := 0; i < 16 && other == nil; i++ {
		o := sharePut(t, data, 2*time.Hour+time.Duration(i)*time.Second, want)
		if !files.CheckWork(a, req.Expiry, o.Work, want) {
			other = o
		}
	}
	if other == nil {
		t.Fatal("16 nonces for other expiries all prove this one")
	}
	other.Expiry = req.Expiry
	if _, err := put(ctx, s, other); wireCode(err) != wire.CodeRateLimited {
		t.Fatalf("work for another expiry: %v, want %d", err, wire.CodeRateLimited)
	}
	nonce, err := files.SolveWork(a, req.Expiry, we.WorkBits, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Work = nonce
	if _, err := put(ctx, s, req); err != nil {
		t.Fatalf("put with the work asked: %v", err)
	}
	if got, err := get(ctx, s, a); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %v", err)
	}
}

// TestShareQuota: a share that does not fit the quota is refused with
// CodeStoreFull; one held already is refreshed at a full node; past half
// the quota the work asked rises.
func TestShareQuota(t *testing.T) {
	const quota = 8192
	nd, s := shareNode(t, quota)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d1, a1 := testShare(5, 4096)
	if _, err := put(ctx, s, sharePut(t, d1, time.Hour, workFor(nd, len(d1)))); err != nil {
		t.Fatal(err)
	}
	d3, a3 := testShare(7, 4160)
	if _, err := put(ctx, s, sharePut(t, d3, time.Hour, workFor(nd, len(d3)))); wireCode(err) != wire.CodeStoreFull {
		t.Fatalf("a put past the quota: %v, want %d", err, wire.CodeStoreFull)
	}
	if _, err := get(ctx, s, a3); wireCode(err) != wire.CodeGone {
		t.Fatalf("the refused share is served: %v", err)
	}
	if _, err := put(ctx, s, sharePut(t, d1, 2*time.Hour, workFor(nd, len(d1)))); err != nil {
		t.Fatalf("a refresh of a share held: %v", err)
	}
	d2, a2 := testShare(6, 2048)
	if _, err := put(ctx, s, sharePut(t, d2, time.Hour, workFor(nd, len(d2)))); err != nil {
		t.Fatalf("a put that fits: %v", err)
	}
	// 6144 of 8192 used, more than half: a share costs more.
	d4, a4 := testShare(8, 1024)
	base, asked := files.ShareWork(len(d4), 0, quota), workFor(nd, len(d4))
	if asked <= base {
		t.Fatalf("past half the quota the node asks %d bits, no more than the %d of an empty node", asked, base)
	}
	req := sharePut(t, d4, time.Hour, 0)
	req.Work = weakShareWork(t, a4, req.Expiry, base, asked)
	_, err := put(ctx, s, req)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeRateLimited || we.WorkBits != asked {
		t.Fatalf("a put with an empty node's work: %v, want %d asking %d bits", err, wire.CodeRateLimited, asked)
	}
	for i, a := range []files.Address{a1, a2} {
		if _, err := get(ctx, s, a); err != nil {
			t.Fatalf("share %d: %v", i, err)
		}
	}
	if used := nd.ShareStore().Used(); used != 4096+2048 {
		t.Fatalf("used %d, want %d", used, 4096+2048)
	}
}

// weakShareWork is a nonce that proves have bits of work for a and expiry but
// not need.
func weakShareWork(t *testing.T, a files.Address, expiry int64, have, need int) uint64 {
	t.Helper()
	for nonce := uint64(0); nonce < 1<<24; nonce++ {
		if files.CheckWork(a, expiry, nonce, have) && !files.CheckWork(a, expiry, nonce, need) {
			return nonce
		}
	}
	t.Fatalf("no nonce proving %d bits but not %d", have, need)
	return 0
}

// TestShareBadInput: malformed puts get errors, and the node keeps
// serving on the same session.
func TestShareBadInput(t *testing.T) {
	nd, s := shareNode(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, a := testShare(8, 128)
	good := func() *wire.SharePutReq { return sharePut(t, data, time.Hour, workFor(nd, len(data))) }
	far := time.Now().Add(time.Duration(files.MaxShareTTL)*time.Millisecond + 2*node.MaxFutureSkew).UnixMilli()
	other, _ := testShare(9, 128)
	tests := []struct {
		name string
		mod  func(r *wire.SharePutReq)
		code int
	}{
		{"short address", func(r *wire.SharePutReq) { r.Addr = r.Addr[:31] }, wire.CodeBadRequest},
		{"no address", func(r *wire.SharePutReq) { r.Addr = nil }, wire.CodeBadRequest},
		{"empty data", func(r *wire.SharePutReq) { r.Data = nil }, wire.CodeBadRequest},
		{"odd size", func(r *wire.SharePutReq) { r.Data = r.Data[:100] }, wire.CodeBadRequest},
		{"over the share size", func(r *wire.SharePutReq) { r.Data = make([]byte, files.MaxShareSize+files.ShareAlign) }, wire.CodeBadRequest},
		{"past expiry", func(r *wire.SharePutReq) { r.Expiry = time.Now().Add(-time.Minute).UnixMilli() }, wire.CodeBadRequest},
		{"far expiry", func(r *wire.SharePutReq) { r.Expiry = far }, wire.CodeBadRequest},
		{"another share's data", func(r *wire.SharePutReq) { r.Data = other }, wire.CodeBadRequest},
	}
	for _, tc := range tests {
		req := good()
		tc.mod(req)
		if _, err := put(ctx, s, req); wireCode(err) != tc.code {
			t.Errorf("%s: %v, want %d", tc.name, err, tc.code)
		}
	}
	if nd.ShareStore().Used() != 0 {
		t.Fatalf("refused puts stored %d bytes", nd.ShareStore().Used())
	}
	if _, err := get(ctx, s, files.Address{}); wireCode(err) != wire.CodeGone {
		t.Fatalf("get of the zero address: %v", err)
	}
	if _, err := put(ctx, s, good()); err != nil {
		t.Fatalf("a good put after the bad ones: %v", err)
	}
	if got, err := get(ctx, s, a); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get after the bad puts: %v", err)
	}
}

// TestShareThroughOnion: the node stores and serves shares as an onion
// exit, as clients use it.
func TestShareThroughOnion(t *testing.T) {
	nd, _ := shareNode(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	oc := newOnionClient(t)
	path := []onion.Hop{oc.hop(t, nd)}
	data, a := testShare(10, 8192)
	req := sharePut(t, data, time.Hour, workFor(nd, len(data)))
	b, err := wire.EncodeMsg(wire.KindSharePutReq, req)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := oc.roundTrip(ctx, t, path, b)
	if err != nil {
		t.Fatalf("put through the onion: %v", err)
	}
	var resp wire.SharePutResp
	if err := wire.DecodeMsg(reply, wire.KindSharePutResp, &resp); err != nil {
		t.Fatalf("put answer: %v", err)
	}
	if err := swarmclient.VerifyShareReceipt(nd.ID(), a, req.Expiry, resp.Sig); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	b, err = wire.EncodeMsg(wire.KindShareGetReq, &wire.ShareGetReq{Addr: a[:]})
	if err != nil {
		t.Fatal(err)
	}
	reply, err = oc.roundTrip(ctx, t, path, b)
	if err != nil {
		t.Fatalf("get through the onion: %v", err)
	}
	var got wire.ShareGetResp
	if err := wire.DecodeMsg(reply, wire.KindShareGetResp, &got); err != nil || !bytes.Equal(got.Data, data) {
		t.Fatalf("get answer: %d bytes, %v", len(got.Data), err)
	}
}

// TestShareSurvivesRestart: shares are on disk when acknowledged, and the
// node serves them and counts them after a restart.
func TestShareSurvivesRestart(t *testing.T) {
	tn := startNet(t, 1)
	nd := tn.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, a := testShare(11, 2048)
	req := sharePut(t, data, time.Hour, workFor(nd, len(data)))
	if _, err := nd.PutShare(ctx, req); err != nil {
		t.Fatalf("put: %v", err)
	}
	if err := nd.Close(); err != nil {
		t.Fatal(err)
	}
	tn.nodes[0] = nil
	nd2, err := node.New(tn.cfgs[0])
	if err != nil {
		t.Fatal(err)
	}
	tn.nodes[0] = nd2
	if used := nd2.ShareStore().Used(); used != int64(len(data)) {
		t.Fatalf("after a restart the node counts %d bytes of shares, want %d", used, len(data))
	}
	resp, werr := nd2.GetShare(ctx, &wire.ShareGetReq{Addr: a[:]})
	if werr != nil || !bytes.Equal(resp.Data, data) {
		t.Fatalf("get after a restart: %v", werr)
	}
}

// TestShareMetrics: the share counters and gauges, and /status, count
// what the node did.
func TestShareMetrics(t *testing.T) {
	nd, s := shareNodeCfg(t, func(c *node.Config) {
		c.ShareQuota = 8192
		c.Admin = "127.0.0.1:0"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, a := testShare(12, 1024)
	if _, err := put(ctx, s, sharePut(t, data, time.Hour, workFor(nd, len(data)))); err != nil {
		t.Fatal(err)
	}
	bad := sharePut(t, data, time.Hour, 0)
	bad.Data = bytes.Repeat([]byte{1}, 1024)
	if _, err := put(ctx, s, bad); wireCode(err) != wire.CodeBadRequest {
		t.Fatalf("mismatched put: %v", err)
	}
	d2, a2 := testShare(13, 64)
	weak := sharePut(t, d2, time.Hour, 0)
	weak.Work = weakShareWork(t, a2, weak.Expiry, 1, workFor(nd, len(d2)))
	if _, err := put(ctx, s, weak); wireCode(err) != wire.CodeRateLimited {
		t.Fatalf("put without work: %v", err)
	}
	if _, err := get(ctx, s, a); err != nil {
		t.Fatal(err)
	}
	if _, err := get(ctx, s, a2); wireCode(err) != wire.CodeGone {
		t.Fatalf("get of a refused share: %v", err)
	}
	code, body := adminGet(t, nd, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"umbra_share_puts_total 1",
		`umbra_share_puts_refused_total{reason="address"} 1`,
		`umbra_share_puts_refused_total{reason="work"} 1`,
		`umbra_share_puts_refused_total{reason="full"} 0`,
		`umbra_share_gets_total{result="served"} 1`,
		`umbra_share_gets_total{result="missing"} 1`,
		"umbra_share_stored_bytes 1024",
		"umbra_share_quota_bytes 8192",
	} {
		if !strings.Contains(body, "\n"+want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if st := nd.Status(); st.StoredShares != 1 || st.ShareBytes != 1024 {
		t.Errorf("status: %d shares, %d bytes; want 1 and 1024", st.StoredShares, st.ShareBytes)
	}
}
