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
