package envelope

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/ratchet"
)

var testNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func detRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return rand.NewChaCha8(s)
}

type party struct {
	acct *identity.Account
	pk   *ratchet.Prekeys
	// sessions by ID, as a client would keep them
	sessions map[ratchet.SessionID]*ratchet.Session
}

func newParty(t testing.TB, seed uint64) *party {
	t.Helper()
	a, err := identity.New(detRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ratchet.GeneratePrekeys(nil, a, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &party{acct: a, pk: pk, sessions: map[ratchet.SessionID]*ratchet.Session{}}
}

func (p *party) lookup(id ratchet.SessionID) *ratchet.Session { return p.sessions[id] }

// start makes from's session with to, from to's published bundle.
func start(t testing.TB, from, to *party) *ratchet.Session {
	t.Helper()
	b, err := to.pk.Bundle(to.acct)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := b.Encode()
	parsed, err := ratchet.ParseBundle(enc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ratchet.Initiate(nil, from.acct, to.acct.ID(), parsed)
	if err != nil {
		t.Fatal(err)
	}
	from.sessions[s.ID()] = s
	return s
}

func text(t testing.TB, body string) *Content {
	t.Helper()
	c, err := NewContent(nil, KindText, []byte(body), testNow)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func seal(t testing.TB, from *party, s *ratchet.Session, c *Content) []byte {
	t.Helper()
	env, err := Seal(from.acct, s, c)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// open opens env as a client would: by type, with the session for
// ratchet envelopes.
func open(t testing.TB, to *party, s *ratchet.Session, env []byte) (*Opened, error) {
	t.Helper()
	e, err := Parse(env)
	if err != nil {
		return nil, err
	}
	switch e.Type {
	case TypeInitial:
		o, err := OpenInitial(nil, to.acct, to.pk, to.lookup, e)
		if err == nil && o.NewSession {
			to.sessions[o.Session.ID()] = o.Session
		}
		return o, err
	default:
		return OpenRatchet(to.acct, s, e)
	}
}
