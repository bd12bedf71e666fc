package onion

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/umbra-im/umbra/internal/member"
)

// testRelay is one node of a test path: its identity, its onion key and the
// Hop a client would build from its record.
type testRelay struct {
	id  peer.ID
	key *ecdh.PrivateKey
	hop Hop
}

// newRelay makes a relay with a fresh libp2p identity and X25519 onion key.
func newRelay(t testing.TB) testRelay {
	t.Helper()
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testRelay{id: id, key: k, hop: Hop{ID: []byte(id), OnionKey: k.PublicKey().Bytes()}}
}

// detKey derives a deterministic X25519 key from a label (fuzz targets need
// stable keys so seeds stay meaningful across runs).
func detKey(t testing.TB, label string) *ecdh.PrivateKey {
	t.Helper()
	seed := sha256.Sum256([]byte("umbra onion test key " + label))
	k, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newRelays(t testing.TB, n int) []testRelay {
	t.Helper()
	rs := make([]testRelay, n)
	for i := range rs {
		rs[i] = newRelay(t)
	}
	return rs
}

func hopsOf(rs []testRelay) []Hop {
	hs := make([]Hop, len(rs))
	for i, r := range rs {
		hs[i] = r.hop
	}
	return hs
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func inSizes(n int) bool {
	for _, s := range Sizes {
		if s == n {
			return true
		}
	}
	return false
}

// maxRequest is the largest request Build accepts for a path of the given
// length that still lands in a packet of at most size bytes.
func maxRequest(t testing.TB, hops []Hop, size int) int {
	t.Helper()
	fits := func(n int) bool {
		p, _, err := Build(hops, make([]byte, n))
		return err == nil && len(p) <= size
	}
	// Each layer adds 32+16 bytes and a few CBOR header bytes, so the
	// answer is within a few hundred bytes of size.
	lo, hi := size-lenPrefix-100*len(hops), size // fits(lo) holds, fits(hi) does not
	if lo < 0 || !fits(lo) {
		lo = 0
	}
	if !fits(lo) {
		t.Fatalf("an empty request does not fit %d bytes", size)
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// testNode makes a member.Node with a fresh ID and the given addresses
// (no signed record: Subnet and PathManager only read ID and Addrs).
func testNode(t testing.TB, addrs ...string) *member.Node {
	t.Helper()
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	n := &member.Node{ID: id}
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			t.Fatalf("multiaddr %q: %v", a, err)
		}
		n.Addrs = append(n.Addrs, m)
	}
	return n
}

// loopbackNodes makes n nodes on 127.0.1.1 .. 127.0.n.1, a /24 each.
func loopbackNodes(t testing.TB, n int) []*member.Node {
	t.Helper()
	ns := make([]*member.Node, n)
	for i := range ns {
		ns[i] = testNode(t, fmt.Sprintf("/ip4/127.0.%d.1/tcp/4001", i+1))
	}
	return ns
}

// sharesWindow reports whether a and b have a common substring of w bytes.
func sharesWindow(a, b []byte, w int) bool {
	if len(a) < w || len(b) < w {
		return false
	}
	seen := make(map[string]struct{}, len(a)-w+1)
	for i := 0; i+w <= len(a); i++ {
		seen[string(a[i:i+w])] = struct{}{}
	}
	for i := 0; i+w <= len(b); i++ {
		if _, ok := seen[string(b[i:i+w])]; ok {
			return true
		}
	}
	return false
}

// boxBytes seals typ ‖ data as one reply box for a packet of size bytes
// (the nested boxes of a reply are these, each inside the next).
func boxBytes(t testing.TB, key []byte, typ byte, data []byte, size int) []byte {
	t.Helper()
	return rawBox(t, key, append([]byte{typ}, data...), size)
}

// rawBox seals pt (type byte included, or not) as a reply box for a packet
// of size bytes.
func rawBox(t testing.TB, key, pt []byte, size int) []byte {
	t.Helper()
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		t.Fatal(err)
	}
	nonce := randBytes(t, nonceSize)
	return a.Seal(nonce, nonce, pt, replyAAD(size))
}
