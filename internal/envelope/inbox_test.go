package envelope

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/ratchet"
)

// established runs a first contact and a reply, so both sessions are past
// pending.
func established(t testing.TB) (alice, bob *party, as, bs *ratchet.Session) {
	t.Helper()
	alice, bob = newParty(t, 1), newParty(t, 2)
	as = start(t, alice, bob)
	o, err := open(t, bob, nil, seal(t, alice, as, text(t, "first")))
	if err != nil {
		t.Fatal(err)
	}
	bs = o.Session
	if _, err := open(t, alice, as, seal(t, bob, bs, text(t, "reply"))); err != nil {
		t.Fatal(err)
	}
	return alice, bob, as, bs
}

func TestInboxRoundTrip(t *testing.T) {
	alice, bob, as, bs := established(t)
	inbox, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(id ratchet.SessionID) *ratchet.Session {
		if id == bs.ID() {
			return bs
		}
		return nil
	}
	for i := range 8 {
		c := text(t, strings.Repeat("y", i*500))
		c.Inbox = []byte("announcement")
		env, err := SealInbox(alice.acct, as, c, inbox.PublicKey().Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(WireSizes, len(env)) {
			t.Fatalf("inbox envelope of %d bytes, not a wire size", len(env))
		}
		e := mustParse(t, env)
		if e.Type != TypeInbox {
			t.Fatalf("type %s", e.Type)
		}
		o, err := OpenInbox(bob.acct, inbox, lookup, e)
		if err != nil {
			t.Fatal(err)
		}
		checkContent(t, o.Content, c)
		if !o.Sender.Equal(alice.acct.Public()) || o.Session != bs {
			t.Fatal("wrong sender or session")
		}
	}
	// A receipt fits the smallest useful bucket, as before.
	r, _ := NewReceipt(nil, KindReceiptDelivered, []MessageID{{1}}, testNow)
	env, err := SealInbox(bob.acct, bs, r, inbox.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(env) != 1024 {
		t.Fatalf("a receipt takes %d bytes", len(env))
	}
}

func TestInboxRejects(t *testing.T) {
	alice, bob, as, bs := established(t)
	inbox, _ := ecdh.X25519().GenerateKey(rand.Reader)
	other, _ := ecdh.X25519().GenerateKey(rand.Reader)
	lookup := func(id ratchet.SessionID) *ratchet.Session {
		if id == bs.ID() {
			return bs
		}
		return nil
	}
	env, err := SealInbox(alice.acct, as, text(t, "x"), inbox.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenInbox(bob.acct, other, lookup, mustParse(t, env)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong inbox key: %v", err)
	}
	none := func(ratchet.SessionID) *ratchet.Session { return nil }
	if _, err := OpenInbox(bob.acct, inbox, none, mustParse(t, env)); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("unknown session: %v", err)
	}
	bad := slices.Clone(env)
	bad[len(bad)/2] ^= 1
	if e, err := Parse(bad); err == nil {
		if _, err := OpenInbox(bob.acct, inbox, lookup, e); err == nil {
			t.Fatal("a tampered envelope opened")
		}
	}
	if _, err := OpenInbox(bob.acct, inbox, lookup, mustParse(t, env)); err != nil {
		t.Fatalf("the untampered envelope: %v", err)
	}
	if _, err := OpenInbox(bob.acct, inbox, lookup, mustParse(t, env)); !errors.Is(err, ratchet.ErrDuplicate) {
		t.Fatalf("replay: %v", err)
	}
	// A pending session cannot seal to an inbox.
	carol := newParty(t, 3)
	cs := start(t, carol, bob)
	if _, err := SealInbox(carol.acct, cs, text(t, "x"), inbox.PublicKey().Bytes()); err == nil {
		t.Fatal("a pending session sealed an inbox envelope")
	}
}

// FuzzOpenInbox feeds arbitrary envelopes to the inbox path: no panics,
// nothing opens but from the session's peer.
func FuzzOpenInbox(f *testing.F) {
	alice, bob, as, bs := established(f)
	var seed [32]byte
	inbox, _ := ecdh.X25519().NewPrivateKey(seed[:])
	state, _ := bs.Marshal()
	for i := range 3 {
		env, err := SealInbox(alice.acct, as, text(f, string(rune('a'+i))), inbox.PublicKey().Bytes())
		if err != nil {
			f.Fatal(err)
		}
		addVariants(f, env)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Parse(in)
		if err != nil || e.Type != TypeInbox {
			return
		}
		s, err := ratchet.UnmarshalSession(state)
		if err != nil {
			t.Fatal(err)
		}
		lookup := func(id ratchet.SessionID) *ratchet.Session {
			if id == s.ID() {
				return s
			}
			return nil
		}
		o, err := OpenInbox(bob.acct, inbox, lookup, e)
		if err == nil && !o.Sender.Equal(alice.acct.Public()) {
			t.Fatal("opened with a wrong sender")
		}
	})
}

// TestCoverLooksReal: a cover envelope has the wire size and the body
// length of a real inbox envelope of that size, parses as one, and opens
// for nobody.
func TestCoverLooksReal(t *testing.T) {
	alice, bob, as, bs := established(t)
	inbox, _ := ecdh.X25519().GenerateKey(rand.Reader)
	r, _ := NewReceipt(nil, KindReceiptDelivered, []MessageID{{1}}, testNow)
	real, err := SealInbox(alice.acct, as, r, inbox.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	cov, err := CoverInbox(len(real))
	if err != nil {
		t.Fatal(err)
	}
	re, ce := mustParse(t, real), mustParse(t, cov)
	if len(cov) != len(real) || ce.Type != TypeInbox || len(ce.Body) != len(re.Body) {
		t.Fatalf("cover: %d bytes, type %s, body %d; real: %d bytes, body %d", len(cov), ce.Type, len(ce.Body), len(real), len(re.Body))
	}
	lookup := func(ratchet.SessionID) *ratchet.Session { return bs }
	if _, err := OpenInbox(bob.acct, inbox, lookup, ce); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a cover envelope opened: %v", err)
	}
}
