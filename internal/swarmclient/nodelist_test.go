package swarmclient

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/wire"
)

var testParams = wire.Params{Network: "test", Replication: 5, PoWBits: 4}

// signedRecord makes node i's signed record on network, valid at fetched.
func signedRecord(t *testing.T, network string, i int, fetched time.Time) []byte {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := member.SolvePoW(network, []byte(id), testParams.PoWBits, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := ma.StringCast(fmt.Sprintf("/ip4/127.0.%d.1/tcp/4001", i+1))
	okey := make([]byte, 32)
	rand.Read(okey)
	raw, err := member.Sign(member.Record{Network: network, Node: []byte(id), OnionKey: okey, Addrs: [][]byte{a.Bytes()},
		Seq: 1, Expires: fetched.Add(5 * time.Minute).UnixMilli(), PoW: nonce}, priv)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestStoredNodeList: a stored list is re-verified record by record (a
// forged or foreign record is dropped), survives a JSON round trip, and
// is usable only while younger than MaxListAge and large enough for a
// path and a swarm.
func TestStoredNodeList(t *testing.T) {
	now := time.Now()
	fetched := now.Add(-10 * time.Minute) // every record has expired since
	l := NodeList{Fetched: fetched, Params: testParams}
	for i := 0; i < 6; i++ {
		l.Records = append(l.Records, signedRecord(t, "test", i, fetched))
		l.Aged = append(l.Aged, i%2 == 0)
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var back NodeList
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	c := &Client{}
	c.restore(back, now)
	if got := len(c.Nodes()); got != 6 {
		t.Fatalf("restored %d nodes, want 6", got)
	}
	if !c.Usable(now) || !back.Usable(now) {
		t.Fatal("a 10-minute-old list of 6 nodes (R=5) is not usable")
	}
	kept := c.NodeList()
	if !kept.Fetched.Equal(fetched) || len(kept.Records) != 6 || kept.Params != testParams {
		t.Fatalf("NodeList after restore: fetched %v, %d records, %+v", kept.Fetched, len(kept.Records), kept.Params)
	}
	aged := 0
	for _, a := range kept.Aged {
		if a {
			aged++
		}
	}
	if aged != 3 {
		t.Fatalf("%d aged nodes after restore, want 3", aged)
	}

	// Forged records are dropped: a flipped byte (signature or body), a
	// record of another network; with 4 left the list is too small.
	forged := back
	forged.Records = append([][]byte(nil), back.Records...)
	x := append([]byte(nil), forged.Records[0]...)
	x[len(x)-1] ^= 1
	forged.Records[0] = x
	forged.Records[1] = signedRecord(t, "other", 1, fetched)
	c = &Client{}
	c.restore(forged, now)
	if got := len(c.Nodes()); got != 4 {
		t.Fatalf("restored %d nodes from a list with 2 forged records, want 4", got)
	}
	if c.Usable(now) {
		t.Fatalf("a list of 4 nodes is usable; a path and a swarm need %d", MinListNodes(testParams))
	}

	// Age: usable up to MaxListAge, not beyond; not from the future.
	if !l.Usable(fetched.Add(MaxListAge - time.Second)) {
		t.Fatal("a list just younger than MaxListAge is not usable")
	}
	if l.Usable(fetched.Add(MaxListAge + time.Second)) {
		t.Fatal("a list older than MaxListAge is usable")
	}
	if l.Usable(fetched.Add(-time.Hour)) {
		t.Fatal("a list fetched an hour in the future is usable")
	}
	c = &Client{}
	c.restore(l, fetched.Add(-time.Hour))
	if len(c.Nodes()) != 0 {
		t.Fatal("a list from the future was restored")
	}
	// A record whose expiry is far past the list's time (the time moved
	// forward to make an old list look fresh) does not verify.
	moved := l
	moved.Fetched = now.Add(-time.Minute)
	moved.Records = [][]byte{signedRecord(t, "test", 0, now.Add(-2*time.Hour))}
	c = &Client{}
	c.restore(moved, now)
	if len(c.Nodes()) != 0 {
		t.Fatal("a record expired at the list's time was restored")
	}
}
