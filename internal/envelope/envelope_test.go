package envelope

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/ratchet"
)

func TestRoundTrip(t *testing.T) {
	alice, bob := newParty(t, 1), newParty(t, 2)
	as := start(t, alice, bob)

	c := text(t, "hello Bob")
	env := seal(t, alice, as, c)
	o, err := open(t, bob, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.Type != TypeInitial || !o.NewSession {
		t.Fatalf("first message: type %s, new %v", o.Type, o.NewSession)
	}
	if !o.Sender.Equal(alice.acct.Public()) || o.Sender.ID() != alice.acct.ID() {
		t.Fatal("wrong sender")
	}
	checkContent(t, o.Content, c)
	bs := o.Session

	// Bob replies with a receipt and a text; Alice's session stops being
	// pending, and everything after is TypeRatchet.
	r, err := NewReceipt(nil, KindReceiptDelivered, []MessageID{c.MessageID()}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	env = seal(t, bob, bs, r)
	o, err = open(t, alice, as, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.Type != TypeRatchet || o.Content.Kind != KindReceiptDelivered || o.Content.RefIDs()[0] != c.MessageID() {
		t.Fatalf("receipt: %+v", o.Content)
	}
	if len(env) != 256 {
		t.Fatalf("a receipt takes %d bytes, want the 256-byte bucket", len(env))
	}
	for i := range 10 {
		for _, d := range []struct {
			from, to *party
			fs, ts   *ratchetSession
		}{{alice, bob, as, bs}, {bob, alice, bs, as}} {
			c := text(t, strings.Repeat("x", i*300))
			e := seal(t, d.from, d.fs, c)
			if typ := mustParse(t, e).Type; typ != TypeRatchet {
				t.Fatalf("type %s after the first reply", typ)
			}
			o, err := open(t, d.to, d.ts, e)
			if err != nil {
				t.Fatal(err)
			}
			checkContent(t, o.Content, c)
			if !o.Sender.Equal(d.from.acct.Public()) {
				t.Fatal("wrong sender")
			}
		}
	}
}

type ratchetSession = ratchet.Session

func mustParse(t testing.TB, env []byte) *Envelope {
	t.Helper()
	e, err := Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func checkContent(t *testing.T, got, want *Content) {
	t.Helper()
	g, _ := got.Encode()
	w, _ := want.Encode()
	if !bytes.Equal(g, w) {
		t.Fatalf("content %+v, want %+v", got, want)
	}
}

func TestSeveralInitialEnvelopes(t *testing.T) {
	alice, bob := newParty(t, 1), newParty(t, 2)
	as := start(t, alice, bob)
	var envs [][]byte
	for i := range 3 {
		envs = append(envs, seal(t, alice, as, text(t, string(rune('a'+i)))))
	}
	for _, e := range envs {
		if mustParse(t, e).Type != TypeInitial {
			t.Fatal("pending session sent a ratchet envelope")
		}
	}
	news := 0
	for _, i := range []int{1, 2, 0} {
		o, err := open(t, bob, nil, envs[i])
		if err != nil {
			t.Fatal(err)
		}
		if string(o.Content.Body) != string(rune('a'+i)) {
			t.Fatal("wrong body")
		}
		if o.NewSession {
			news++
		}
	}
	if news != 1 || len(bob.sessions) != 1 {
		t.Fatalf("%d new sessions for one initiator", news)
	}
	// Replays of initial envelopes are rejected by the existing session.
	_, err := open(t, bob, nil, envs[1])
	if !errors.Is(err, ratchet.ErrDuplicate) {
		t.Fatalf("replay: %v", err)
	}
}

// The outer bytes of every envelope contain neither party's keys nor
// account IDs: the sender is learned only after decryption.
func TestSealedSenderHidesIdentities(t *testing.T) {
	alice, bob := newParty(t, 1), newParty(t, 2)
	as := start(t, alice, bob)
	secrets := map[string][]byte{}
	for name, p := range map[string]*party{"alice": alice, "bob": bob} {
		pub := p.acct.Public()
		secrets[name+" signing key"] = pub.SigningKey
		secrets[name+" agreement key"] = pub.AgreementKey
		secrets[name+" binding"] = pub.Binding[:32]
		secrets[name+" account ID"] = []byte(p.acct.ID().String())
	}
	c := text(t, "findme-plaintext")
	secrets["plaintext"] = []byte("findme-plaintext")
	secrets["message ID"] = c.ID
	check := func(env []byte) {
		t.Helper()
		for name, s := range secrets {
			if bytes.Contains(env, s) {
				t.Fatalf("envelope contains the %s", name)
			}
		}
	}
	env := seal(t, alice, as, c)
	if mustParse(t, env).Type != TypeInitial {
		t.Fatal("not an initial envelope")
	}
	check(env)
	o, err := open(t, bob, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	env = seal(t, bob, o.Session, c)
	check(env)
	if _, err := open(t, alice, as, env); err != nil {
		t.Fatal(err)
	}
	env = seal(t, alice, as, c)
	check(env)
}

// Envelope lengths come only from WireSizes and padded plaintexts only
// from PaddedSizes, whatever the content size.
func TestSizesOnlyFromBuckets(t *testing.T) {
	alice, bob := newParty(t, 1), newParty(t, 2)
	as := start(t, alice, bob)
	var bs *ratchet.Session
	seen := map[Type]map[int]bool{TypeInitial: {}, TypeRatchet: {}}
	lengths := []int{0, 1, 10, 30, 31, 32, 33, 100, 500, 900, 1000, 3000, 3900, 4000, 10000, 16000, 16300,
		40000, 65000, 65400, 100000, 200000, MaxBodySize - 1, MaxBodySize}
	for round := range 2 {
		for _, n := range lengths {
			from, to, fs, ts := alice, bob, as, bs
			if round == 1 && n%2 == 1 {
				from, to, fs, ts = bob, alice, bs, as
			}
			c := text(t, strings.Repeat("z", n))
			env := seal(t, from, fs, c)
			if !slices.Contains(WireSizes, len(env)) {
				t.Fatalf("body %d: envelope of %d bytes", n, len(env))
			}
			e := mustParse(t, env)
			seen[e.Type][len(env)] = true
			o, err := open(t, to, ts, env)
			if err != nil {
				t.Fatalf("body %d: %v", n, err)
			}
			checkContent(t, o.Content, c)
			if o.NewSession {
				bs = o.Session
			}
			if round == 0 && n == lengths[len(lengths)-1] {
				// Bob replies so round 1 runs in TypeRatchet.
				r := seal(t, bob, bs, text(t, "ok"))
				if _, err := open(t, alice, as, r); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if len(seen[TypeInitial]) < 4 || len(seen[TypeRatchet]) < 6 {
		t.Fatalf("buckets used: %v", seen)
	}
	// The padded sizes.
	for _, typ := range []Type{TypeInitial, TypeRatchet} {
		sizes := PaddedSizes(typ)
		for n := range 5000 {
			p, err := Pad(make([]byte, n), sizes)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(sizes, len(p)) {
				t.Fatalf("padded %d to %d", n, len(p))
			}
		}
	}
}

func TestTooLarge(t *testing.T) {
	alice, bob := newParty(t, 1), newParty(t, 2)
	as := start(t, alice, bob)
	if _, err := NewContent(nil, KindText, make([]byte, MaxBodySize+1), testNow); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized body: %v", err)
	}
	// The largest content (max body and refs) fits both envelope types.
	c := text(t, strings.Repeat("m", MaxBodySize))
	for range MaxRefs {
		c.Refs = append(c.Refs, make([]byte, 16))
	}
	env := seal(t, alice, as, c)
	if len(env) != WireSizes[len(WireSizes)-1] {
		t.Fatalf("%d bytes", len(env))
	}
	o, err := open(t, bob, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	env = seal(t, bob, o.Session, c)
	if _, err := open(t, alice, as, env); err != nil {
		t.Fatal(err)
	}
}

func TestTamperAndReplay(t *testing.T) {
	alice, bob := newParty(t, 1), newParty(t, 2)
	as := start(t, alice, bob)
	first := seal(t, alice, as, text(t, "first"))
	// Tampered initial envelopes fail without creating a session or
	// consuming prekeys.
	e := mustParse(t, first)
	for _, i := range []int{0, 20, 40, len(e.Body) / 2, len(e.Body) - 1} {
		bad := bytes.Clone(e.Body)
		bad[i] ^= 1
		if _, err := OpenInitial(nil, bob.acct, bob.pk, bob.lookup, &Envelope{Type: TypeInitial, Body: bad}); err == nil {
			t.Fatalf("tampered initial body byte %d accepted", i)
		}
	}
	if x, _ := bob.pk.OneTimeCount(); x != 3 {
		t.Fatal("failed opens consumed prekeys")
	}
	// Addressed to Carol: she cannot open it.
	carol := newParty(t, 3)
	if _, err := OpenInitial(nil, carol.acct, carol.pk, nil, e); !errors.Is(err, ErrWork) {
		t.Fatalf("Carol, with work bound to Bob: %v", err)
	}
	forCarol := &Envelope{Type: TypeInitial, Body: e.Body, Work: solveWork(carol.acct.Public().SigningKey, e.Body, RequestWorkBits)}
	if _, err := OpenInitial(nil, carol.acct, carol.pk, nil, forCarol); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Carol, with work of her own: %v", err)
	}
	o, err := open(t, bob, nil, first)
	if err != nil {
		t.Fatal(err)
	}
	bs := o.Session
	reply := seal(t, bob, bs, text(t, "reply"))
	if _, err := open(t, alice, as, reply); err != nil {
		t.Fatal(err)
	}
	// Replay.
	if _, err := open(t, alice, as, reply); !errors.Is(err, ratchet.ErrDuplicate) {
		t.Fatalf("replay: %v", err)
	}
	// Bit flips anywhere in a ratchet envelope's body.
	env := seal(t, alice, as, text(t, "tamper me"))
	re := mustParse(t, env)
	for i := 0; i < len(re.Body); i += 7 {
		bad := bytes.Clone(re.Body)
		bad[i] ^= 0x10
		if _, err := OpenRatchet(bob.acct, bs, &Envelope{Type: TypeRatchet, Body: bad}); err == nil {
			t.Fatalf("tampered byte %d accepted", i)
		}
	}
	// The pad field is ignored, so changing it does nothing.
	o, err = open(t, bob, bs, env)
	if err != nil || string(o.Content.Body) != "tamper me" {
		t.Fatal(err)
	}
	// Wrong API for the type.
	if _, err := OpenRatchet(bob.acct, bs, e); err == nil {
		t.Fatal("initial envelope opened as ratchet")
	}
	if _, err := OpenInitial(nil, bob.acct, bob.pk, nil, re); err == nil {
		t.Fatal("ratchet envelope opened as initial")
	}
}

// The sealed payload must name the session's peer as sender, carry its
// valid signature, and be addressed to the recipient.
func TestSealedSenderChecks(t *testing.T) {
	alice, bob, mallory := newParty(t, 1), newParty(t, 2), newParty(t, 3)
	as := start(t, alice, bob)
	o, err := open(t, bob, nil, seal(t, alice, as, text(t, "hi")))
	if err != nil {
		t.Fatal(err)
	}
	bs := o.Session
	if _, err := open(t, alice, as, seal(t, bob, bs, text(t, "hi"))); err != nil {
		t.Fatal(err)
	}
	cb, _ := text(t, "forged").Encode()
	bobKey := bob.acct.Public().SigningKey
	cases := map[string]func() []byte{
		// Alice's session, but the payload claims Mallory (signed by her).
		"other sender": func() []byte {
			p, _ := sealPayload(mallory.acct, bobKey, cb)
			return p
		},
		// Signed for another recipient (Carol): not transferable to Bob.
		"other recipient": func() []byte {
			p, _ := sealPayload(alice.acct, mallory.acct.Public().SigningKey, cb)
			return p
		},
		"bad signature": func() []byte {
			p, _ := sealPayload(alice.acct, bobKey, cb)
			p[len(p)-1] ^= 1
			return p
		},
	}
	for name, mk := range cases {
		env, err := sealInner(as, mk())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := open(t, bob, bs, env); !errors.Is(err, ErrSender) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := fillTo(&envelopeWire{Version: Version, Type: TypeRatchet, Body: []byte{1}}, 256)
	if _, err := Parse(good); err != nil {
		t.Fatal(err)
	}
	unknownType, _ := fillTo(&envelopeWire{Version: Version, Type: 9, Body: []byte{1}}, 256)
	if _, err := Parse(unknownType); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
	newer, _ := fillTo(&envelopeWire{Version: 2, Type: TypeRatchet, Body: []byte{1}}, 256)
	if _, err := Parse(newer); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("newer version: %v", err)
	}
	for _, in := range [][]byte{nil, {0xa0}, {0xff, 0x00}, make([]byte, WireSizes[len(WireSizes)-1]+1)} {
		if _, err := Parse(in); err == nil {
			t.Fatalf("accepted %x", in[:min(len(in), 4)])
		}
	}
}

// TestRequestWork: a first-contact envelope carries proof-of-work bound to
// the recipient and the body; without it, or with work for another body,
// it is refused before any decryption.
func TestRequestWork(t *testing.T) {
	alice, bob := newParty(t, 1), newParty(t, 2)
	as := start(t, alice, bob)
	e := mustParse(t, seal(t, alice, as, text(t, "hello")))
	if len(e.Work) != 8 {
		t.Fatalf("initial envelope work is %d bytes, want 8", len(e.Work))
	}
	if !checkWork(bob.acct.Public().SigningKey, e.Body, e.Work, RequestWorkBits) {
		t.Fatal("sealed work does not check")
	}
	other := mustParse(t, seal(t, alice, as, text(t, "second")))
	for name, env := range map[string]*Envelope{
		"no work":             {Type: TypeInitial, Body: e.Body},
		"short work":          {Type: TypeInitial, Body: e.Body, Work: e.Work[:4]},
		"another body's work": {Type: TypeInitial, Body: e.Body, Work: other.Work},
	} {
		if bytes.Equal(env.Work, e.Work) {
			continue
		}
		if _, err := OpenInitial(nil, bob.acct, bob.pk, bob.lookup, env); !errors.Is(err, ErrWork) {
			t.Errorf("%s: %v, want ErrWork", name, err)
		}
	}
	if x, _ := bob.pk.OneTimeCount(); x != 3 {
		t.Fatal("refused envelopes consumed prekeys")
	}
	o, err := OpenInitial(nil, bob.acct, bob.pk, bob.lookup, e)
	if err != nil {
		t.Fatalf("the envelope with its work: %v", err)
	}
	// Ratchet envelopes (pairwise mailboxes) carry none.
	if r := mustParse(t, seal(t, bob, o.Session, text(t, "reply"))); r.Type != TypeRatchet || len(r.Work) != 0 {
		t.Fatalf("reply: type %s with %d bytes of work", r.Type, len(r.Work))
	}
}

func BenchmarkRequestWork(b *testing.B) {
	key := make([]byte, 32)
	body := make([]byte, 1500)
	for i := 0; b.Loop(); i++ {
		body[0] = byte(i)
		solveWork(key, body, RequestWorkBits)
	}
}
