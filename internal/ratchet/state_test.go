package ratchet

import (
	"bytes"
	"testing"
)

func TestStateRoundTripMidConversation(t *testing.T) {
	p := setup(t, 1, 0)
	var held [][]byte
	for i := range 10 {
		m := mustEncrypt(t, p.a, msgText(i))
		if i%3 == 0 {
			held = append(held, m)
			continue
		}
		mustDecrypt(t, p.b, m, msgText(i))
	}
	// Persist both sides and continue with the restored copies only.
	a, b := clone(t, p.a), clone(t, p.b)
	if a.Pending() != p.a.Pending() || a.ID() != p.a.ID() || a.Role() != Initiator || b.Role() != Responder {
		t.Fatal("metadata lost")
	}
	if b.SkippedKeys() != len(held)-1 { // the last held one was never skipped
		t.Fatalf("%d skipped keys after restore", b.SkippedKeys())
	}
	for i, m := range held {
		mustDecrypt(t, b, m, msgText(i*3))
	}
	for i := range 10 {
		mustDecrypt(t, a, mustEncrypt(t, b, msgText(i)), msgText(i))
		mustDecrypt(t, b, mustEncrypt(t, a, msgText(i)), msgText(i))
	}
	if a.MailboxSeeds(7) != p.a.MailboxSeeds(7) {
		t.Fatal("mailbox secret lost")
	}
	// Marshal is deterministic and stable through a round trip, and
	// unknown fields are skipped.
	s1, _ := a.Marshal()
	a2, err := UnmarshalSession(withUnknownField(t, s1))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := a2.Marshal()
	if !bytes.Equal(s1, s2) {
		t.Fatal("state round trip not stable")
	}
}

func TestStatePendingSurvives(t *testing.T) {
	alice, bob := newAccount(t, 1), newAccount(t, 2)
	pk, _ := GeneratePrekeys(nil, bob, 1, 0)
	bundle, _ := pk.Bundle(bob)
	a, _ := Initiate(nil, alice, bob.ID(), bundle)
	a = clone(t, a)
	if !a.Pending() {
		t.Fatal("pending lost")
	}
	im, err := a.InitialMessage(mustEncrypt(t, a, []byte("after restore")))
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := im.Encode()
	im, _ = ParseInitialMessage(enc)
	b, pt, err := Respond(nil, bob, pk, im)
	if err != nil || string(pt) != "after restore" {
		t.Fatal(err)
	}
	b = clone(t, b)
	mustDecrypt(t, a, mustEncrypt(t, b, []byte("reply")), []byte("reply"))
	if a.Pending() {
		t.Fatal("still pending")
	}
	if _, err := a.InitialMessage([]byte("x")); err == nil {
		t.Fatal("InitialMessage on a non-pending session")
	}
}

func TestUnmarshalSessionRejects(t *testing.T) {
	p := setup(t, 1, 0)
	good, _ := p.b.Marshal()
	cases := [][]byte{nil, {0xa0}, {0xf6}, good[:len(good)-1], make([]byte, MaxStateSize+1)}
	for _, c := range cases {
		if _, err := UnmarshalSession(c); err == nil {
			t.Fatalf("accepted %x", c[:min(8, len(c))])
		}
	}
}
