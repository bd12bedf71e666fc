package member_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/wire"
)

var (
	testParams = wire.Params{Network: "test", Replication: 5, PoWBits: 0}
	t0         = time.UnixMilli(1_700_000_000_000)
)

type ident struct {
	priv crypto.PrivKey
	id   peer.ID
}

func newIdent(t testing.TB) ident {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return ident{priv, id}
}

func addr(t testing.TB, s string) []byte {
	t.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a.Bytes()
}

// record is a valid record of id for testParams at t0.
func record(t testing.TB, id ident, seq uint64) member.Record {
	return member.Record{
		Network:  testParams.Network,
		Node:     []byte(id.id),
		OnionKey: bytes.Repeat([]byte{7}, 32),
		Addrs:    [][]byte{addr(t, "/ip4/127.0.0.1/tcp/4001")},
		Version:  "test",
		Seq:      seq,
		Expires:  t0.Add(time.Minute).UnixMilli(),
	}
}

func sign(t testing.TB, r member.Record, key crypto.PrivKey) []byte {
	t.Helper()
	raw, err := member.Sign(r, key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// envelope mirrors the package's signed record encoding.
type envelope struct {
	Record []byte `cbor:"1,keyasint"`
	Sig    []byte `cbor:"2,keyasint"`
}

func openEnvelope(t testing.TB, raw []byte) envelope {
	t.Helper()
	var e envelope
	if err := wire.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignOpenRoundTrip(t *testing.T) {
	id := newIdent(t)
	r := record(t, id, 42)
	r.Addrs = append(r.Addrs, addr(t, "/ip4/10.0.0.1/udp/4001/quic-v1"))
	raw := sign(t, r, id.priv)
	n, err := member.Open(raw, testParams, t0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if n.ID != id.id {
		t.Errorf("ID = %s, want %s", n.ID, id.id)
	}
	if n.Record.Seq != 42 || n.Record.Version != "test" || n.Record.Network != "test" {
		t.Errorf("record = %+v", n.Record)
	}
	if len(n.Addrs) != 2 || n.Addrs[0].String() != "/ip4/127.0.0.1/tcp/4001" || n.Addrs[1].String() != "/ip4/10.0.0.1/udp/4001/quic-v1" {
		t.Errorf("addrs = %v", n.Addrs)
	}
	if !bytes.Equal(n.Raw, raw) {
		t.Error("Raw is not the signed encoding")
	}
	ai := n.AddrInfo()
	if ai.ID != id.id || len(ai.Addrs) != 2 {
		t.Errorf("AddrInfo = %v", ai)
	}
	// Signing is deterministic for Ed25519 and the encoding is canonical.
	if !bytes.Equal(raw, sign(t, r, id.priv)) {
		t.Error("Sign is not deterministic")
	}
}

func TestOpenBoundaries(t *testing.T) {
	id := newIdent(t)
	tests := []struct {
		name string
		mod  func(r *member.Record)
	}{
		{"expires 1ms from now", func(r *member.Record) { r.Expires = t0.UnixMilli() + 1 }},
		{"expires exactly MaxRecordTTL ahead", func(r *member.Record) { r.Expires = t0.Add(member.MaxRecordTTL).UnixMilli() }},
		{"MaxAddrs addresses", func(r *member.Record) {
			r.Addrs = nil
			for i := 0; i < member.MaxAddrs; i++ {
				r.Addrs = append(r.Addrs, addr(t, "/ip4/127.0.0.1/tcp/4001"))
			}
		}},
		{"MaxVersionLen version", func(r *member.Record) { r.Version = strings.Repeat("v", member.MaxVersionLen) }},
		{"empty version", func(r *member.Record) { r.Version = "" }},
		{"seq zero", func(r *member.Record) { r.Seq = 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := record(t, id, 1)
			tc.mod(&r)
			if _, err := member.Open(sign(t, r, id.priv), testParams, t0); err != nil {
				t.Fatalf("Open refused: %v", err)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	id := newIdent(t)
	other := newIdent(t)
	pow8 := wire.Params{Network: "test", Replication: 5, PoWBits: 8}
	goodNonce, err := member.SolvePoW("test", []byte(id.id), 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	badNonce := goodNonce + 1
	for member.CheckPoW("test", []byte(id.id), badNonce, 8) {
		badNonce++
	}
	// The nonce must not happen to be valid for other, or on another
	// network (a 1 in 256 chance each): draw again until it is not.
	for member.CheckPoW("test", []byte(other.id), goodNonce, 8) || member.CheckPoW("test2", []byte(id.id), goodNonce, 8) {
		id, other = newIdent(t), newIdent(t)
		if goodNonce, err = member.SolvePoW("test", []byte(id.id), 8, nil); err != nil {
			t.Fatal(err)
		}
		for badNonce = goodNonce + 1; member.CheckPoW("test", []byte(id.id), badNonce, 8); badNonce++ {
		}
	}
	// Sanity: the good nonce is accepted under pow8.
	{
		r := record(t, id, 1)
		r.PoW = goodNonce
		if _, err := member.Open(sign(t, r, id.priv), pow8, t0); err != nil {
			t.Fatalf("record with solved PoW refused: %v", err)
		}
	}
	hashID := func() []byte {
		h, err := mh.Sum([]byte("not a key"), mh.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(h)
	}

	tests := []struct {
		name   string
		params wire.Params
		raw    func() []byte
		substr string
	}{
		{"wrong network", testParams, func() []byte {
			r := record(t, id, 1)
			r.Network = "other"
			return sign(t, r, id.priv)
		}, "network"},
		{"params of another network", wire.Params{Network: "main"}, func() []byte {
			return sign(t, record(t, id, 1), id.priv)
		}, "network"},
		{"tampered record body", testParams, func() []byte {
			e := openEnvelope(t, sign(t, record(t, id, 1), id.priv))
			r := record(t, id, 2) // a higher seq under the old signature
			e.Record = marshal(t, r)
			return marshal(t, e)
		}, "bad signature"},
		{"tampered address", testParams, func() []byte {
			e := openEnvelope(t, sign(t, record(t, id, 1), id.priv))
			r := record(t, id, 1)
			r.Addrs = [][]byte{addr(t, "/ip4/6.6.6.6/tcp/4001")}
			e.Record = marshal(t, r)
			return marshal(t, e)
		}, "bad signature"},
		{"flipped signature bit", testParams, func() []byte {
			e := openEnvelope(t, sign(t, record(t, id, 1), id.priv))
			e.Sig[0] ^= 1
			return marshal(t, e)
		}, "bad signature"},
		{"truncated signature", testParams, func() []byte {
			e := openEnvelope(t, sign(t, record(t, id, 1), id.priv))
			e.Sig = e.Sig[:63]
			return marshal(t, e)
		}, "bad signature"},
		{"no signature", testParams, func() []byte {
			e := openEnvelope(t, sign(t, record(t, id, 1), id.priv))
			e.Sig = nil
			return marshal(t, e)
		}, "bad signature"},
		{"signed by another key", testParams, func() []byte {
			return sign(t, record(t, id, 1), other.priv)
		}, "bad signature"},
		{"signature over another domain", testParams, func() []byte {
			body := marshal(t, record(t, id, 1))
			sig, err := id.priv.Sign(body) // no domain prefix
			if err != nil {
				t.Fatal(err)
			}
			return marshal(t, envelope{Record: body, Sig: sig})
		}, "bad signature"},
		{"insufficient PoW", pow8, func() []byte {
			r := record(t, id, 1)
			r.PoW = badNonce
			return sign(t, r, id.priv)
		}, "proof-of-work"},
		{"PoW of another node", pow8, func() []byte {
			r := record(t, other, 1)
			r.PoW = goodNonce // solved for id, not other
			return sign(t, r, other.priv)
		}, "proof-of-work"},
		{"PoW of another network", wire.Params{Network: "test2", PoWBits: 8}, func() []byte {
			r := record(t, id, 1)
			r.Network = "test2"
			r.PoW = goodNonce
			return sign(t, r, id.priv)
		}, "proof-of-work"},
		{"expired", testParams, func() []byte {
			r := record(t, id, 1)
			r.Expires = t0.UnixMilli() - 1
			return sign(t, r, id.priv)
		}, "expired"},
		{"expires exactly now", testParams, func() []byte {
			r := record(t, id, 1)
			r.Expires = t0.UnixMilli()
			return sign(t, r, id.priv)
		}, "expired"},
		{"expiry zero", testParams, func() []byte {
			r := record(t, id, 1)
			r.Expires = 0
			return sign(t, r, id.priv)
		}, "expired"},
		{"expiry beyond MaxRecordTTL", testParams, func() []byte {
			r := record(t, id, 1)
			r.Expires = t0.Add(member.MaxRecordTTL).UnixMilli() + 1
			return sign(t, r, id.priv)
		}, "too far ahead"},
		{"expiry max int64", testParams, func() []byte {
			r := record(t, id, 1)
			r.Expires = 1<<63 - 1
			return sign(t, r, id.priv)
		}, "too far ahead"},
		{"onion key 31 bytes", testParams, func() []byte {
			r := record(t, id, 1)
			r.OnionKey = make([]byte, 31)
			return sign(t, r, id.priv)
		}, "onion key"},
		{"onion key 33 bytes", testParams, func() []byte {
			r := record(t, id, 1)
			r.OnionKey = make([]byte, 33)
			return sign(t, r, id.priv)
		}, "onion key"},
		{"no onion key", testParams, func() []byte {
			r := record(t, id, 1)
			r.OnionKey = nil
			return sign(t, r, id.priv)
		}, "onion key"},
		{"version too long", testParams, func() []byte {
			r := record(t, id, 1)
			r.Version = strings.Repeat("v", member.MaxVersionLen+1)
			return sign(t, r, id.priv)
		}, "version"},
		{"too many addrs", testParams, func() []byte {
			r := record(t, id, 1)
			r.Addrs = nil
			for i := 0; i <= member.MaxAddrs; i++ {
				r.Addrs = append(r.Addrs, addr(t, "/ip4/127.0.0.1/tcp/4001"))
			}
			return sign(t, r, id.priv)
		}, "addresses"},
		{"no addrs", testParams, func() []byte {
			r := record(t, id, 1)
			r.Addrs = nil
			return sign(t, r, id.priv)
		}, "addresses"},
		{"bad addr bytes", testParams, func() []byte {
			r := record(t, id, 1)
			r.Addrs = [][]byte{{0xff, 0xff, 0xff}}
			return sign(t, r, id.priv)
		}, "address"},
		{"oversized raw", testParams, func() []byte {
			r := record(t, id, 1)
			r.Version = strings.Repeat("v", member.MaxRecordBytes)
			return sign(t, r, id.priv)
		}, "bytes"},
		{"valid record with trailing garbage", testParams, func() []byte {
			return append(sign(t, record(t, id, 1), id.priv), 0)
		}, "decode"},
		{"node is not a peer ID", testParams, func() []byte {
			r := record(t, id, 1)
			r.Node = []byte("garbage")
			return sign(t, r, id.priv)
		}, "peer ID"},
		{"peer ID without an embedded key", testParams, func() []byte {
			r := record(t, id, 1)
			r.Node = hashID()
			return sign(t, r, id.priv)
		}, "key"},
		{"record body not CBOR", testParams, func() []byte {
			return marshal(t, envelope{Record: []byte{0xff}, Sig: make([]byte, 64)})
		}, "decode"},
		{"empty", testParams, func() []byte { return nil }, "decode"},
		{"not CBOR", testParams, func() []byte { return []byte("hello") }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw()
			n, err := member.Open(raw, tc.params, t0)
			if err == nil {
				t.Fatalf("Open accepted: %+v", n.Record)
			}
			if !errors.Is(err, member.ErrInvalid) {
				t.Errorf("err = %v, does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("err = %v, want it to mention %q", err, tc.substr)
			}
		})
	}
}

func TestPoW(t *testing.T) {
	node := []byte("fixed-node-id")
	for _, bits := range []int{0, 1, 4, 8, 12} {
		nonce, err := member.SolvePoW("net", node, bits, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !member.CheckPoW("net", node, nonce, bits) {
			t.Errorf("bits %d: solved nonce %d does not check", bits, nonce)
		}
		// A nonce that proves b bits proves every b' <= b.
		for b := 0; b <= bits; b++ {
			if !member.CheckPoW("net", node, nonce, b) {
				t.Errorf("nonce for %d bits fails %d bits", bits, b)
			}
		}
		// Deterministic: the smallest nonce is found each time.
		again, _ := member.SolvePoW("net", node, bits, nil)
		if again != nonce {
			t.Errorf("bits %d: SolvePoW gave %d then %d", bits, nonce, again)
		}
		for n := uint64(0); n < nonce; n++ {
			if member.CheckPoW("net", node, n, bits) {
				t.Fatalf("bits %d: nonce %d < %d already checks", bits, n, nonce)
			}
		}
	}
	if !member.CheckPoW("net", node, 12345, 0) || !member.CheckPoW("net", node, 12345, -3) {
		t.Error("zero or negative bits must always check")
	}
	if member.CheckPoW("net", node, 0, 257) {
		t.Error("257 bits cannot be proved")
	}
	// The proof is bound to network and node: count how many of 64 nonces
	// solved for "net" also pass on "other"; at 12 bits nearly none should.
	cross := 0
	for i := 0; i < 8; i++ {
		n, _ := member.SolvePoW("net", []byte{byte(i)}, 12, nil)
		if member.CheckPoW("other", []byte{byte(i)}, n, 12) {
			cross++
		}
		if member.CheckPoW("net", []byte{byte(i), 0}, n, 12) {
			cross++
		}
	}
	if cross > 1 {
		t.Errorf("%d of 16 proofs transfer to another network or node", cross)
	}
}

func TestSolvePoWStops(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	done := make(chan error, 1)
	go func() {
		_, err := member.SolvePoW("net", []byte("n"), 200, stop)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("interrupted SolvePoW returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SolvePoW ignored a closed stop channel")
	}

	// Closed while running.
	stop2 := make(chan struct{})
	done2 := make(chan error, 1)
	go func() {
		_, err := member.SolvePoW("net", []byte("n"), 200, stop2)
		done2 <- err
	}()
	time.Sleep(20 * time.Millisecond)
	close(stop2)
	select {
	case err := <-done2:
		if err == nil {
			t.Fatal("interrupted SolvePoW returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SolvePoW did not stop")
	}
}

// clock is an injectable, concurrency-safe time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
