package member_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/wire"
)

// fixedIdent is a deterministic identity, so fuzz seeds are stable.
func fixedIdent(f *testing.F, seed byte) ident {
	priv, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	if err != nil {
		f.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		f.Fatal(err)
	}
	return ident{priv, id}
}

// FuzzOpen feeds arbitrary bytes to Open (and Peek) as a signed record. It
// must never panic, must wrap every refusal in ErrInvalid, whatever it
// accepts must satisfy the record limits, and Peek must agree with it.
func FuzzOpen(f *testing.F) {
	id := fixedIdent(f, 1)
	r := record(f, id, 7)
	r.Addrs = append(r.Addrs, addr(f, "/ip4/10.0.0.1/udp/4001/quic-v1"), addr(f, "/ip6/::1/tcp/9"))
	valid := sign(f, r, id.priv)
	f.Add(valid)
	for _, n := range []int{0, 1, 2, 10, len(valid) / 2, len(valid) - 65, len(valid) - 1} {
		f.Add(valid[:n])
	}
	f.Add(append(append([]byte{}, valid...), 0))
	flipped := append([]byte{}, valid...)
	flipped[len(flipped)/3] ^= 0x40
	f.Add(flipped)
	bad := r
	bad.Addrs = [][]byte{{0x04, 127, 0, 0}} // truncated ip4 multiaddr
	f.Add(sign(f, bad, id.priv))
	noKey := r
	noKey.OnionKey = nil
	f.Add(sign(f, noKey, id.priv))
	f.Add(marshal(f, envelope{Record: []byte{0xa0}, Sig: nil}))
	f.Add([]byte{0xa1, 0x01, 0x58, 0xff})

	params := testParams
	f.Fuzz(func(t *testing.T, raw []byte) {
		pid, pseq, perr := member.Peek(raw)
		if perr != nil && !errors.Is(perr, member.ErrInvalid) {
			t.Fatalf("Peek refusal %v does not wrap ErrInvalid", perr)
		}
		n, err := member.Open(raw, params, t0)
		if err == nil && (perr != nil || pid != n.ID || pseq != n.Record.Seq) {
			t.Fatalf("Peek disagrees with Open: %s/%d/%v vs %s/%d", pid, pseq, perr, n.ID, n.Record.Seq)
		}
		if err != nil {
			if n != nil {
				t.Fatal("Open returned a node with an error")
			}
			if !errors.Is(err, member.ErrInvalid) {
				t.Fatalf("refusal %v does not wrap ErrInvalid", err)
			}
			return
		}
		if len(raw) > member.MaxRecordBytes {
			t.Fatalf("accepted a %d-byte record", len(raw))
		}
		if !bytes.Equal(n.Raw, raw) {
			t.Fatal("Raw is not the input")
		}
		if n.Record.Network != params.Network || string(n.Record.Node) != string(n.ID) {
			t.Fatalf("accepted record %+v for %s", n.Record, n.ID)
		}
		if len(n.Record.OnionKey) != 32 || len(n.Addrs) == 0 || len(n.Addrs) > member.MaxAddrs ||
			len(n.Addrs) != len(n.Record.Addrs) || len(n.Record.Version) > member.MaxVersionLen {
			t.Fatalf("accepted record outside the limits: %+v", n.Record)
		}
		exp := time.UnixMilli(n.Record.Expires)
		if !exp.After(t0) || exp.Sub(t0) > member.MaxRecordTTL {
			t.Fatalf("accepted expiry %v at %v", exp, t0)
		}
		// Opening again is deterministic, and a table takes it.
		if _, err := member.Open(raw, params, t0); err != nil {
			t.Fatalf("second Open: %v", err)
		}
		tb := member.NewTable(params, func() time.Time { return t0 })
		if ok, err := tb.Upsert(raw); !ok || err != nil {
			t.Fatalf("table refused an opened record: %v %v", ok, err)
		}
		if _, err := member.Open(raw, wire.Params{Network: params.Network + "x"}, t0); err == nil {
			t.Fatal("record accepted on another network")
		}
	})
}

// FuzzDiffer feeds arbitrary bytes to Differ as a peer's digest sums (what
// a gossip peer sends). It must never panic, must refuse anything but a
// power of two of 8-byte sums up to MaxBuckets, and what it returns must
// name only buckets of that count and versions of the table's nodes in
// them.
func FuzzDiffer(f *testing.F) {
	tb := member.NewTable(testParams, newClock().Now)
	var ids []peer.ID
	for i := byte(1); i <= 20; i++ {
		id := fixedIdent(f, i)
		raw := signedAt(f, id, uint64(i), time.Minute, spreadAddr(int(i)))
		if _, err := tb.Upsert(raw); err != nil {
			f.Fatal(err)
		}
		ids = append(ids, id.id)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 8))
	f.Add(make([]byte, 7))
	f.Add(tb.Sums(4))
	f.Add(make([]byte, 8*256))
	f.Fuzz(func(t *testing.T, sums []byte) {
		buckets, versions, err := tb.Differ(sums)
		n := len(sums) / member.SumSize
		valid := n > 0 && len(sums)%member.SumSize == 0 && n <= member.MaxBuckets && n&(n-1) == 0
		if err != nil {
			if valid || !errors.Is(err, member.ErrBadSums) {
				t.Fatalf("Differ(%d bytes) = %v", len(sums), err)
			}
			return
		}
		if !valid {
			t.Fatalf("Differ accepted %d bytes", len(sums))
		}
		in := member.InBuckets(n, buckets)
		for _, b := range buckets {
			if int(b) >= n {
				t.Fatalf("bucket %d of %d", b, n)
			}
		}
		if len(versions) > len(ids) {
			t.Fatalf("%d versions from a table of %d", len(versions), len(ids))
		}
		for _, v := range versions {
			if !in(peer.ID(v.Node)) {
				t.Fatal("a version outside the differing buckets")
			}
		}
	})
}
