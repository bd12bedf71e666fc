package envelope_test

import (
	"fmt"
	"time"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/ratchet"
)

// The whole path of a first contact and a reply: Bob publishes a bundle,
// Alice starts a session and seals a text, Bob opens it (creating his
// session), replies, and both derive the same pairwise mailboxes.
func Example() {
	alice, _ := identity.New(nil)
	bob, _ := identity.New(nil)

	// Bob: prekeys (persist pk) and the bundle he publishes.
	pk, _ := ratchet.GeneratePrekeys(nil, bob, 20, 2)
	bundle, _ := pk.Bundle(bob)
	published, _ := bundle.Encode()

	// Alice: fetch, verify and start; seal the first message.
	b, _ := ratchet.ParseBundle(published)
	as, err := ratchet.Initiate(nil, alice, bob.ID(), b)
	if err != nil {
		panic(err)
	}
	c, _ := envelope.NewContent(nil, envelope.KindText, []byte("hi Bob"), time.Now())
	wire1, _ := envelope.Seal(alice, as, c)

	// Bob: parse and open by type.
	env, _ := envelope.Parse(wire1)
	sessions := map[ratchet.SessionID]*ratchet.Session{}
	got, err := envelope.OpenInitial(nil, bob, pk, func(id ratchet.SessionID) *ratchet.Session { return sessions[id] }, env)
	if err != nil {
		panic(err)
	}
	sessions[got.Session.ID()] = got.Session
	fmt.Println(env.Type, got.NewSession, string(got.Content.Body), got.Sender.ID() == alice.ID())

	// Bob replies; Alice opens with her session.
	r, _ := envelope.NewReceipt(nil, envelope.KindReceiptRead, []envelope.MessageID{c.MessageID()}, time.Now())
	wire2, _ := envelope.Seal(bob, got.Session, r)
	env, _ = envelope.Parse(wire2)
	back, _ := envelope.OpenRatchet(alice, as, env)
	fmt.Println(env.Type, back.Content.Kind, back.Content.RefIDs()[0] == c.MessageID())

	// Both sides agree on today's pairwise mailboxes.
	epoch := ratchet.Epoch(time.Now(), ratchet.DefaultMailboxPeriod)
	fmt.Println(as.SendMailboxSeed(epoch) == got.Session.ReceiveMailboxSeed(epoch))
	// Output:
	// initial true hi Bob true
	// ratchet receipt-read true
	// true
}
