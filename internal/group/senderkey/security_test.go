package senderkey

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

// After decrypting iteration i, the receiver's stored state holds neither
// i's message key nor any chain key that derives it: a copy of the state
// cannot decrypt i again, nor anything earlier it already received.
func TestForwardSecrecyReceiver(t *testing.T) {
	own, peer := newChains(t, 20)
	var msgs [][]byte
	var mks, cks [][]byte // message and chain keys of iterations 0..4
	ck := bytes.Clone(own.Distribution().ChainKey)
	for i := range 5 {
		next, mk := kdfCK(ck)
		mks, cks = append(mks, mk), append(cks, ck)
		ck = next
		msgs = append(msgs, mustEncrypt(t, own, msgText(i), groupA))
	}
	for i := range 5 {
		mustDecrypt(t, peer, msgs[i], groupA, msgText(i))
	}
	state := peerState(t, peer)
	for i := range 5 {
		if bytes.Contains(state, mks[i]) || bytes.Contains(state, cks[i]) {
			t.Fatalf("state holds a key of received iteration %d", i)
		}
	}
	later, err := UnmarshalPeerChain(state)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		refuses(t, later, msgs[i], groupA, ErrDuplicate)
	}

	// Out of order: a skipped key is stored until used, then gone.
	m5 := mustEncrypt(t, own, msgText(5), groupA)
	_, mk5 := kdfCK(ck)
	m6 := mustEncrypt(t, own, msgText(6), groupA)
	mustDecrypt(t, peer, m6, groupA, msgText(6))
	if !bytes.Contains(peerState(t, peer), mk5) {
		t.Fatal("test is wrong: the skipped key should be stored")
	}
	mustDecrypt(t, peer, m5, groupA, msgText(5))
	state = peerState(t, peer)
	if bytes.Contains(state, mk5) || bytes.Contains(state, ck) {
		t.Fatal("state holds iteration 5's keys after it was received")
	}
	later, _ = UnmarshalPeerChain(state)
	refuses(t, later, m5, groupA, ErrDuplicate)
	refuses(t, later, m6, groupA, ErrDuplicate)
}

// The sender's stored state holds no key of a message already sent.
func TestForwardSecrecySender(t *testing.T) {
	own, _ := newChains(t, 21)
	ck0 := bytes.Clone(own.Distribution().ChainKey)
	_, mk0 := kdfCK(ck0)
	mustEncrypt(t, own, msgText(0), groupA)
	state := ownState(t, own)
	if bytes.Contains(state, ck0) || bytes.Contains(state, mk0) {
		t.Fatal("own state holds the keys of a sent message")
	}
	if bytes.Equal(own.ck, ck0) {
		t.Fatal("chain key did not move")
	}
}

// A member holding a peer's chain key (from its distribution) but not its
// signing key cannot make a message the peer's chain accepts at any
// receiver.
func TestMembersCannotForge(t *testing.T) {
	alice, dist, err := NewSenderChain(detRand(22))
	if err != nil {
		t.Fatal(err)
	}
	// Bob, the forger, received dist too; Carol is the victim.
	carolView := receiverFromWire(t, dist)

	// Bob derives Alice's next message key and encrypts correctly...
	_, mk := kdfCK(dist.ChainKey)
	ct, err := seal(mk, groupA, dist.ChainID, 0, []byte("forged by bob"))
	if err != nil {
		t.Fatal(err)
	}
	// ...but can only sign with a key of his own.
	_, bobPriv, _ := ed25519.GenerateKey(detRand(23))
	refuses(t, carolView, signedBy(t, bobPriv, dist.ChainID, 0, ct, groupA), groupA, ErrDecrypt)

	// He also cannot reuse a genuine signature on other content.
	genuine := mustEncrypt(t, alice, []byte("from alice"), groupA)
	m, _ := ParseMessage(genuine)
	forged := signedBy(t, bobPriv, dist.ChainID, 0, ct, groupA)
	fm, _ := ParseMessage(forged)
	fm.Signature = m.Signature // genuine signature, Bob's body
	enc, _ := fm.Encode()
	refuses(t, carolView, enc, groupA, ErrDecrypt)

	// Alice's real message still decrypts.
	mustDecrypt(t, carolView, genuine, groupA, []byte("from alice"))
}

// A message for one group does not decrypt with another group's associated
// data, even on a chain with the same keys.
func TestWrongAssociatedData(t *testing.T) {
	own, peer := newChains(t, 24)
	m := mustEncrypt(t, own, msgText(0), groupA)
	refuses(t, peer, m, []byte("group-B-id"), ErrDecrypt)
	refuses(t, peer, m, nil, ErrDecrypt)
	refuses(t, peer, m, append(bytes.Clone(groupA), 0), ErrDecrypt)
	mustDecrypt(t, peer, m, groupA, msgText(0))

	// The AEAD binds the associated data and the header on its own: even
	// the chain's owner cannot move a ciphertext to another group, chain
	// or iteration by re-signing it.
	_, mk := kdfCK(own.ck)
	for name, ct := range map[string][]byte{
		"group":     mustSeal(t, mk, []byte("group-B-id"), own.id, 1),
		"chain":     mustSeal(t, mk, groupA, ChainID{1}, 1),
		"iteration": mustSeal(t, mk, groupA, own.id, 2),
	} {
		t.Run(name, func(t *testing.T) {
			refuses(t, peer, signedAt(t, own, 1, ct, groupA), groupA, ErrDecrypt)
		})
	}
	mustDecrypt(t, peer, signedAt(t, own, 1, mustSeal(t, mk, groupA, own.id, 1), groupA), groupA, []byte("x"))
}

func mustSeal(t *testing.T, mk, ad []byte, id ChainID, it uint32) []byte {
	ct, err := seal(mk, ad, id, it, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func TestWrongChain(t *testing.T) {
	own, _ := newChains(t, 25)
	_, other := newChains(t, 26)
	refuses(t, other, mustEncrypt(t, own, msgText(0), groupA), groupA, ErrWrongChain)
}

// Every single-byte change of a message is refused and leaves the chain
// as it was.
func TestTampering(t *testing.T) {
	own, peer := newChains(t, 27)
	m := mustEncrypt(t, own, bytes.Repeat([]byte("t"), 100), groupA)
	for i := range m {
		for _, x := range []byte{0x01, 0x80} {
			c := bytes.Clone(m)
			c[i] ^= x
			refuses(t, peer, c, groupA, nil)
		}
	}
	refuses(t, peer, m[:len(m)-1], groupA, ErrMalformed)
	refuses(t, peer, append(bytes.Clone(m), 0), groupA, ErrMalformed)
	mustDecrypt(t, peer, m, groupA, bytes.Repeat([]byte("t"), 100))
}

// A removed member keeps the old chain; once the sender makes a new chain
// (the engine's duty after a removal), the old chain cannot read it.
func TestNewChainLocksOutOldHolders(t *testing.T) {
	old, removed := newChains(t, 28)
	mustDecrypt(t, removed, mustEncrypt(t, old, msgText(0), groupA), groupA, msgText(0))
	fresh, dist, err := NewSenderChain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(dist.ChainKey, old.Distribution().ChainKey) || fresh.ChainID() == old.ChainID() {
		t.Fatal("new chain reuses the old chain's keys")
	}
	remaining := receiverFromWire(t, dist)
	m := mustEncrypt(t, fresh, msgText(1), groupA)
	refuses(t, removed, m, groupA, ErrWrongChain)
	// Even relabelled with the old chain ID it fails the old signature key.
	pm, _ := ParseMessage(m)
	relabelled := signedBy(t, fresh.priv, old.ChainID(), 1, pm.Ciphertext, groupA)
	refuses(t, removed, relabelled, groupA, ErrDecrypt)
	mustDecrypt(t, remaining, m, groupA, msgText(1))
}
