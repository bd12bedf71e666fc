package ratchet

import (
	"bytes"
	"testing"
)

// After a message is decrypted, neither its key nor anything it derives
// from stays in the receiver's state.
func TestForwardSecrecy(t *testing.T) {
	p := setup(t, 1, 0)
	mustDecrypt(t, p.a, mustEncrypt(t, p.b, []byte("start")), []byte("start"))

	// In-order message: record the key the receiver will use and the
	// chain key it derives from.
	ckBefore := bytes.Clone(p.b.ckr)
	_, mk := kdfCK(p.b.ckr)
	m := mustEncrypt(t, p.a, []byte("in order"))
	mustDecrypt(t, p.b, m, []byte("in order"))
	state, _ := p.b.Marshal()
	if bytes.Contains(state, mk) {
		t.Fatal("used message key still in the state")
	}
	if bytes.Contains(state, ckBefore) {
		t.Fatal("the chain key that derives the used message key is still in the state")
	}
	later := clone(t, p.b)
	_, err := later.Decrypt(m)
	wantErr(t, err, ErrDuplicate)

	// Out of order: m1 is skipped (its key stored), then decrypted.
	ck1, _ := kdfCK(p.b.ckr)
	_, mk1 := kdfCK(ck1)
	m0 := mustEncrypt(t, p.a, []byte("zero"))
	m1 := mustEncrypt(t, p.a, []byte("one"))
	m2 := mustEncrypt(t, p.a, []byte("two"))
	mustDecrypt(t, p.b, m2, []byte("two"))
	state, _ = p.b.Marshal()
	if !bytes.Contains(state, mk1) {
		t.Fatal("test is wrong: the skipped key should be stored now")
	}
	mustDecrypt(t, p.b, m1, []byte("one"))
	state, _ = p.b.Marshal()
	if bytes.Contains(state, mk1) {
		t.Fatal("skipped key still in the state after use")
	}
	later = clone(t, p.b)
	_, err = later.Decrypt(m1)
	wantErr(t, err, ErrDuplicate)
	mustDecrypt(t, later, m0, []byte("zero")) // the copy still has m0's key

	// Chain keys only move forward: a state copied after m2 has nothing
	// that derives m2's key again.
	for _, k := range [][]byte{later.rk, later.ckr, later.cks} {
		if bytes.Equal(k, mk1) {
			t.Fatal("message key equals a chain key")
		}
	}
}

// An attacker who copies Alice's whole state at time t can read traffic
// until both sides have completed a DH ratchet step with fresh keys; after
// that, nothing.
func TestPostCompromiseSecurity(t *testing.T) {
	p := setup(t, 1, 0)
	mustDecrypt(t, p.a, mustEncrypt(t, p.b, []byte("hi")), []byte("hi"))
	mustDecrypt(t, p.b, mustEncrypt(t, p.a, []byte("hello")), []byte("hello"))

	eve := clone(t, p.a) // compromise at time t

	// Before healing, the stolen state works: Bob's next message is to
	// Alice's compromised ratchet key.
	m := mustEncrypt(t, p.b, []byte("before healing"))
	mustDecrypt(t, eve, m, []byte("before healing"))
	mustDecrypt(t, p.a, m, []byte("before healing"))

	// Alice answers with a fresh ratchet key (generated after t), Bob
	// receives it and answers with his own fresh key: both sides have
	// stepped.
	a1 := mustEncrypt(t, p.a, []byte("alice after t"))
	mustDecrypt(t, p.b, a1, []byte("alice after t"))
	if _, err := eve.Decrypt(a1); err == nil {
		t.Fatal("attacker decrypted Alice's message sent under her fresh ratchet key")
	}
	b1 := mustEncrypt(t, p.b, []byte("healed"))
	if _, err := eve.Decrypt(b1); err == nil {
		t.Fatal("attacker decrypted Bob's message after healing")
	}
	mustDecrypt(t, p.a, b1, []byte("healed"))
	for i := range 5 {
		for _, dir := range []struct{ from, to *Session }{{p.a, p.b}, {p.b, p.a}} {
			m := mustEncrypt(t, dir.from, msgText(i))
			if _, err := eve.Decrypt(m); err == nil {
				t.Fatal("attacker decrypted a message after healing")
			}
			mustDecrypt(t, dir.to, m, msgText(i))
		}
	}
	// The attacker cannot inject either: a message from the stolen state
	// is on a chain Bob has left.
	forged, err := eve.Encrypt([]byte("from eve"))
	if err == nil {
		if _, err := p.b.Decrypt(forged); err == nil {
			t.Fatal("Bob accepted a message from the stolen state after healing")
		}
	}
}

// A message encrypted for one session fails in another between the same
// people (different SK) and in a session with someone else.
func TestCrossSessionRejected(t *testing.T) {
	p1 := setup(t, 1, 0)
	p2 := setup(t, 1, 0)
	m := mustEncrypt(t, p1.a, []byte("for session 1"))
	if _, err := p2.b.Decrypt(m); err == nil {
		t.Fatal("message decrypted by another session")
	}
	mustDecrypt(t, p1.b, m, []byte("for session 1"))
}
