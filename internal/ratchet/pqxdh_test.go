package ratchet

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

func TestPQXDHWithOneTimePrekey(t *testing.T) {
	p := setup(t, 5, 2)
	checkAgreement(t, p)
	im, _ := ParseInitialMessage(p.initial)
	if im.OneTimeID == 0 {
		t.Fatal("initiator did not use a one-time prekey")
	}
	// The one-time prekey and one-time KEM key are consumed.
	if x, k := p.pk.OneTimeCount(); x != 4 || k != 1 {
		t.Fatalf("after respond: %d X25519 and %d KEM one-time prekeys left, want 4 and 1", x, k)
	}
	nb, _ := p.pk.Bundle(p.bob)
	for _, k := range nb.OneTimePrekeys {
		if k.ID == im.OneTimeID {
			t.Fatal("consumed one-time prekey still published")
		}
	}
	// Within SpentGrace the spent keys still open a first message of
	// another sender who raced for them, or a replay (which recreates the
	// same session: callers find it by its ID).
	again, _, err := Respond(nil, p.bob, p.pk, im)
	if err != nil || again.ID() != p.b.ID() {
		t.Fatalf("within the grace: %v", err)
	}
	// After it, they are erased.
	p.pk.PruneSpent(time.Now().Add(SpentGrace + time.Second))
	if _, _, _, _, err := p.pk.lookup(im.SignedPrekeyID, im.OneTimeID, im.KEMPrekeyID); err == nil {
		t.Fatal("consumed prekeys still present after the grace")
	}
	_, _, err = Respond(nil, p.bob, p.pk, im)
	wantErr(t, err, ErrUnknownPrekey)
	// The spent lists survive a save.
	b, _ := p.pk.Marshal()
	if _, err := UnmarshalPrekeys(b); err != nil {
		t.Fatal(err)
	}
}

// TestRacingSendersShareOneTimePrekeys: two senders read the same bundle
// and happen to pick the same one-time prekeys; both first messages open.
func TestRacingSendersShareOneTimePrekeys(t *testing.T) {
	bob := newAccount(t, 2)
	pk, err := GeneratePrekeys(nil, bob, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pk.Bundle(bob)
	for i := range 2 {
		alice := newAccount(t, uint64(10+i))
		s, err := Initiate(nil, alice, bob.ID(), b)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := s.Encrypt([]byte("hi"))
		im, _ := s.InitialMessage(msg)
		if im.OneTimeID == 0 {
			t.Fatal("no one-time prekey used")
		}
		enc, _ := im.Encode()
		parsed, _ := ParseInitialMessage(enc)
		if _, pt, err := Respond(nil, bob, pk, parsed); err != nil || string(pt) != "hi" {
			t.Fatalf("sender %d: %v", i, err)
		}
		// Saved and restored between the two, as a client does.
		raw, _ := pk.Marshal()
		if pk, err = UnmarshalPrekeys(raw); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPQXDHWithoutOneTimePrekey(t *testing.T) {
	p := setup(t, 0, 0)
	checkAgreement(t, p)
	im, _ := ParseInitialMessage(p.initial)
	if im.OneTimeID != 0 {
		t.Fatal("one-time prekey ID without one-time prekeys")
	}
	if im.KEMPrekeyID != p.bundle.LastResortKEM.ID {
		t.Fatal("last-resort KEM prekey not used")
	}
	// The last-resort key is not consumed; a replay recreates the same
	// session, which callers detect by its ID (see Respond).
	if im.SessionID(p.bob) != p.b.ID() {
		t.Fatal("SessionID does not name the existing session")
	}
	again, pt, err := Respond(nil, p.bob, p.pk, im)
	if err != nil || !bytes.Equal(pt, p.first) || again.ID() != p.b.ID() {
		t.Fatalf("replay: %v", err)
	}
}

// checkAgreement: both sides hold the same SK-derived material, the same
// AD, IDs and identities, and can talk both ways.
func checkAgreement(t *testing.T, p *pair) {
	t.Helper()
	if !bytes.Equal(p.a.mbox, p.b.mbox) {
		t.Fatal("sides derived different secrets from SK")
	}
	if !bytes.Equal(p.a.AssociatedData(), p.b.AssociatedData()) {
		t.Fatal("AD differs")
	}
	if p.a.ID() != p.b.ID() {
		t.Fatal("session IDs differ")
	}
	if !p.a.RemoteIdentity().Equal(p.bob.Public()) || !p.b.RemoteIdentity().Equal(p.alice.Public()) {
		t.Fatal("remote identities wrong")
	}
	if p.a.Role() != Initiator || p.b.Role() != Responder {
		t.Fatal("roles")
	}
	if !p.a.Pending() || p.b.Pending() {
		t.Fatal("pending flags")
	}
	m := mustEncrypt(t, p.b, []byte("hi Alice"))
	mustDecrypt(t, p.a, m, []byte("hi Alice"))
	if p.a.Pending() {
		t.Fatal("initiator still pending after a reply")
	}
	m = mustEncrypt(t, p.a, []byte("how are you"))
	mustDecrypt(t, p.b, m, []byte("how are you"))
}

func TestPQXDHSeveralInitialMessages(t *testing.T) {
	// Alice sends three messages before Bob answers; the third arrives
	// first and sets up the session, the others decrypt with it.
	alice, bob := newAccount(t, 1), newAccount(t, 2)
	pk, _ := GeneratePrekeys(nil, bob, 3, 1)
	bundle, _ := pk.Bundle(bob)
	a, err := Initiate(nil, alice, bob.ID(), bundle)
	if err != nil {
		t.Fatal(err)
	}
	var ims []*InitialMessage
	for i := range 3 {
		im, err := a.InitialMessage(mustEncrypt(t, a, []byte{byte(i)}))
		if err != nil {
			t.Fatal(err)
		}
		ims = append(ims, im)
	}
	b, pt, err := Respond(nil, bob, pk, ims[2])
	if err != nil || !bytes.Equal(pt, []byte{2}) {
		t.Fatalf("respond: %v", err)
	}
	for _, i := range []int{0, 1} {
		if ims[i].SessionID(bob) != b.ID() {
			t.Fatal("session ID differs between initial messages")
		}
		mustDecrypt(t, b, ims[i].Message, []byte{byte(i)})
	}
}

func TestRespondRejects(t *testing.T) {
	alice, bob, mallory := newAccount(t, 1), newAccount(t, 2), newAccount(t, 3)
	pk, _ := GeneratePrekeys(nil, bob, 2, 0)
	bundle, _ := pk.Bundle(bob)
	a, _ := Initiate(nil, alice, bob.ID(), bundle)
	im, _ := a.InitialMessage(mustEncrypt(t, a, []byte("x")))

	// Claiming to be Mallory with Alice's agreement key: binding fails.
	forged := im.clone()
	forged.Initiator.SigningKey = mallory.Public().SigningKey
	if _, _, err := Respond(nil, bob, pk, forged); err == nil {
		t.Fatal("forged initiator identity accepted")
	}
	// Mallory's full (valid) identity but Alice's key material: the AD and
	// DH1 change, so the first message fails, and nothing is consumed.
	forged = im.clone()
	forged.Initiator = mallory.Public()
	_, _, err := Respond(nil, bob, pk, forged)
	wantErr(t, err, ErrDecrypt)
	// Tampered KEM ciphertext or base key: authentication fails.
	forged = im.clone()
	forged.KEMCiphertext[100] ^= 1
	_, _, err = Respond(nil, bob, pk, forged)
	wantErr(t, err, ErrDecrypt)
	forged = im.clone()
	forged.BaseKey[3] ^= 1
	_, _, err = Respond(nil, bob, pk, forged)
	wantErr(t, err, ErrDecrypt)
	// Unknown prekey IDs.
	for _, mut := range []func(*InitialMessage){
		func(m *InitialMessage) { m.SignedPrekeyID = 999 },
		func(m *InitialMessage) { m.OneTimeID = 999 },
		func(m *InitialMessage) { m.KEMPrekeyID = 999 },
	} {
		forged = im.clone()
		mut(forged)
		_, _, err = Respond(nil, bob, pk, forged)
		wantErr(t, err, ErrUnknownPrekey)
	}
	// Sent to someone else.
	carol := newAccount(t, 4)
	cpk, _ := GeneratePrekeys(nil, carol, 2, 0)
	if _, _, err := Respond(nil, carol, cpk, im); err == nil {
		t.Fatal("initial message for Bob accepted by Carol")
	}
	if x, _ := pk.OneTimeCount(); x != 2 {
		t.Fatalf("failed attempts consumed prekeys: %d left", x)
	}
	// The genuine message still works.
	if _, _, err := Respond(nil, bob, pk, im); err != nil {
		t.Fatal(err)
	}
	if x, _ := pk.OneTimeCount(); x != 1 {
		t.Fatal("one-time prekey not consumed")
	}
}

func TestBundleRoundTripAndUnknownFields(t *testing.T) {
	p := setup(t, 3, 2)
	enc, _ := p.bundle.Encode()
	for _, in := range [][]byte{enc, withUnknownField(t, enc)} {
		b, err := ParseBundle(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Verify(p.bob.ID()); err != nil {
			t.Fatal(err)
		}
		re, _ := b.Encode()
		if !bytes.Equal(re, enc) {
			t.Fatal("re-encoding differs")
		}
	}
	if len(enc) > MaxBundleSize {
		t.Fatal("bundle too large")
	}
}

func TestBundleBadSignatureRejected(t *testing.T) {
	alice, bob, mallory := newAccount(t, 1), newAccount(t, 2), newAccount(t, 3)
	pk, _ := GeneratePrekeys(nil, bob, 2, 2)
	good, _ := pk.Bundle(bob)
	mpk, _ := GeneratePrekeys(nil, mallory, 1, 1)
	mb, _ := mpk.Bundle(mallory)
	cases := map[string]func(b *Bundle){
		"signed prekey signature":   func(b *Bundle) { b.SignedPrekey.Signature[0] ^= 1 },
		"signed prekey key":         func(b *Bundle) { b.SignedPrekey.Key[0] ^= 1 },
		"signed prekey ID":          func(b *Bundle) { b.SignedPrekey.ID += 100 },
		"last-resort KEM signature": func(b *Bundle) { b.LastResortKEM.Signature[5] ^= 1 },
		"last-resort KEM key":       func(b *Bundle) { b.LastResortKEM.Key[7] ^= 1 },
		"one-time KEM signature":    func(b *Bundle) { b.OneTimeKEMs[1].Signature[0] ^= 1 },
		"one-time KEM as last resort": func(b *Bundle) {
			b.LastResortKEM = b.OneTimeKEMs[0]
			b.OneTimeKEMs = b.OneTimeKEMs[1:]
		},
		"identity binding":       func(b *Bundle) { b.Identity.Binding[0] ^= 1 },
		"agreement key swapped":  func(b *Bundle) { b.Identity.AgreementKey = mallory.Public().AgreementKey },
		"Mallory's prekeys":      func(b *Bundle) { b.SignedPrekey = mb.SignedPrekey },
		"Mallory's bundle":       func(b *Bundle) { *b = *mb },
		"version":                func(b *Bundle) { b.Version = 2 },
		"duplicate IDs":          func(b *Bundle) { b.OneTimePrekeys[1].ID = b.OneTimePrekeys[0].ID },
		"zero ID":                func(b *Bundle) { b.OneTimePrekeys[0].ID = 0 },
		"short one-time key":     func(b *Bundle) { b.OneTimePrekeys[0].Key = b.OneTimePrekeys[0].Key[:31] },
		"truncated KEM key":      func(b *Bundle) { b.LastResortKEM.Key = b.LastResortKEM.Key[:100] },
		"too many one-time keys": func(b *Bundle) { b.OneTimePrekeys = slices.Repeat(b.OneTimePrekeys[:1], MaxOneTimePrekeys+1) },
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			enc, _ := good.Encode()
			b, err := ParseBundle(enc) // a deep copy
			if err != nil {
				t.Fatal(err)
			}
			mut(b)
			if err := b.Verify(bob.ID()); err == nil {
				t.Fatal("Verify accepted the bundle")
			}
			_, err = Initiate(nil, alice, bob.ID(), b)
			wantErr(t, err, ErrBadBundle)
		})
	}
	// The good bundle passes, but not for another account ID.
	if err := good.Verify(bob.ID()); err != nil {
		t.Fatal(err)
	}
	_, err := Initiate(nil, alice, mallory.ID(), good)
	wantErr(t, err, ErrBadBundle)
}

func TestParseBundleRejects(t *testing.T) {
	for _, in := range [][]byte{nil, {0xa0}, {0xff}, make([]byte, MaxBundleSize+1), {0xa1, 0x01, 0x02}} {
		if _, err := ParseBundle(in); err == nil {
			t.Fatalf("%x accepted", in[:min(len(in), 8)])
		}
	}
}

func TestPrekeysMarshalAndRotate(t *testing.T) {
	bob := newAccount(t, 2)
	pk, _ := GeneratePrekeys(nil, bob, 4, 2)
	old, _ := pk.Bundle(bob)
	for range 5 {
		if err := pk.RotateSignedPrekey(nil, bob); err != nil {
			t.Fatal(err)
		}
		if err := pk.RotateLastResortKEM(nil, bob); err != nil {
			t.Fatal(err)
		}
	}
	if len(pk.signed) != retainRotated || len(pk.lastResort) != retainRotated {
		t.Fatal("rotation does not bound retained keys")
	}
	b, _ := pk.Bundle(bob)
	if b.SignedPrekey.ID <= old.SignedPrekey.ID {
		t.Fatal("signed prekey ID did not grow")
	}
	if err := b.Verify(bob.ID()); err != nil {
		t.Fatal(err)
	}
	data, err := pk.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	pk2, err := UnmarshalPrekeys(withUnknownField(t, data))
	if err != nil {
		t.Fatal(err)
	}
	data2, _ := pk2.Marshal()
	if !bytes.Equal(data, data2) {
		t.Fatal("prekeys round trip differs")
	}
	// A session against the restored prekeys works.
	alice := newAccount(t, 1)
	a, _ := Initiate(nil, alice, bob.ID(), b)
	im, _ := a.InitialMessage(mustEncrypt(t, a, []byte("x")))
	if _, _, err := Respond(nil, bob, pk2, im); err != nil {
		t.Fatal(err)
	}
	// Initial messages against the rotated-out bundle fail cleanly.
	a, _ = Initiate(nil, alice, bob.ID(), old)
	im, _ = a.InitialMessage(mustEncrypt(t, a, []byte("x")))
	_, _, err = Respond(nil, bob, pk2, im)
	wantErr(t, err, ErrUnknownPrekey)

	for _, in := range [][]byte{nil, {0xa0}, data[:len(data)/2]} {
		if _, err := UnmarshalPrekeys(in); err == nil {
			t.Fatal("bad prekeys accepted")
		}
	}
	if err := pk.AddOneTime(nil, maxOneTimeHeld); err == nil {
		t.Fatal("unbounded one-time prekeys")
	}
}
