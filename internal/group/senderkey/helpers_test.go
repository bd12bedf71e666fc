package senderkey

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

var groupA = []byte("group-A-id")

// detRand is a deterministic random source for reproducible chains.
func detRand(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// newChains makes a sending chain and a receiving chain from its
// distribution.
func newChains(tb testing.TB, seed byte) (*OwnChain, *PeerChain) {
	tb.Helper()
	own, dist, err := NewSenderChain(detRand(seed))
	if err != nil {
		tb.Fatal(err)
	}
	peer := receiverFromWire(tb, dist)
	return own, peer
}

// receiverFromWire sends the distribution through its encoding, as the
// engine will.
func receiverFromWire(tb testing.TB, d *Distribution) *PeerChain {
	tb.Helper()
	enc, err := d.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	parsed, err := ParseDistribution(enc)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := NewReceiverChain(parsed)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func msgText(i int) []byte { return fmt.Appendf(nil, "message %d", i) }

func mustEncrypt(tb testing.TB, c *OwnChain, pt, ad []byte) []byte {
	tb.Helper()
	m, err := c.Encrypt(pt, ad)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustDecrypt(tb testing.TB, p *PeerChain, m, ad, want []byte) {
	tb.Helper()
	got, err := p.Decrypt(m, ad)
	if err != nil {
		tb.Fatalf("decrypt: %v", err)
	}
	if !bytes.Equal(got, want) {
		tb.Fatalf("decrypt: got %q, want %q", got, want)
	}
}

func wantErr(tb testing.TB, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("got error %v, want %v", err, target)
	}
}

func peerState(tb testing.TB, p *PeerChain) []byte {
	tb.Helper()
	b, err := p.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func ownState(tb testing.TB, c *OwnChain) []byte {
	tb.Helper()
	b, err := c.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// clonePeer copies a chain through its serialized state.
func clonePeer(tb testing.TB, p *PeerChain) *PeerChain {
	tb.Helper()
	c, err := UnmarshalPeerChain(peerState(tb, p))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// refuses checks that m fails with target and leaves p unchanged.
func refuses(tb testing.TB, p *PeerChain, m, ad []byte, target error) {
	tb.Helper()
	before := peerState(tb, p)
	_, err := p.Decrypt(m, ad)
	if target == nil {
		if err == nil {
			tb.Fatal("decrypt succeeded")
		}
	} else {
		wantErr(tb, err, target)
	}
	if !bytes.Equal(before, peerState(tb, p)) {
		tb.Fatal("a refused message changed the chain")
	}
}

// signedAt makes a message of c's chain at any iteration with any
// ciphertext, signed with c's genuine signing key: what a hostile (or
// buggy) chain owner can send.
func signedAt(tb testing.TB, c *OwnChain, iteration uint32, ct, ad []byte) []byte {
	tb.Helper()
	m, err := encodeMessage(c.priv, ad, c.id, iteration, ct)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// signedBy makes a message of chain id signed with an arbitrary key.
func signedBy(tb testing.TB, priv ed25519.PrivateKey, id ChainID, iteration uint32, ct, ad []byte) []byte {
	tb.Helper()
	m, err := encodeMessage(priv, ad, id, iteration, ct)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
