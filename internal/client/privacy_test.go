package client_test

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

// observer is a direct client of the test network: what any node, or
// anyone who reads public data, can see.
func observer(t *testing.T, net []string) *swarmclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := swarmclient.Dial(ctx, net, swarmclient.Options{Direct: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func accountMailbox(id string) mailbox.ID {
	aid, _ := identity.ParseAccountID(id)
	var mb mailbox.ID
	copy(mb[:], aid.PublicKey())
	return mb
}

// publicView is what a public reader sees of an account: every entry of
// its card mailbox's public namespace, with the times nodes keep.
func publicView(t *testing.T, c interface {
	ReadPublic(context.Context, mailbox.ID) ([]swarmclient.Message, error)
}, id string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, err := c.ReadPublic(ctx, accountMailbox(id))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		sum := sha256.Sum256(m.Data)
		out = append(out, m.Timestamp.UTC().Format(time.RFC3339Nano)+" "+m.Expiry.UTC().Format(time.RFC3339Nano)+" "+string(sum[:8]))
	}
	slices.Sort(out)
	return out
}

// TestRequestMailboxNotAccountKey: first contact reaches an account
// through a request mailbox that is not its account key and changes every
// epoch; the mailbox its account key names holds only its card.
func TestRequestMailboxNotAccountKey(t *testing.T) {
	t.Parallel()
	net := startNodes(t, 5)
	time.Sleep(time.Second)
	home := filepath.Join(t.TempDir(), "alice")
	acct, err := client.Init(home, "", net, "")
	if err != nil {
		t.Fatal(err)
	}
	alice := &user{home: home, id: acct.ID().String()}
	alice.start(t)
	bob := newUser(t, net, "bob")
	obs := observer(t, net)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := bob.e.AddContact(alice.id, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "bob's first message to be sent", func() bool {
		_, err := bob.e.Send(ctx, alice.id, "hello")
		return err == nil
	})
	waitFor(t, 30*time.Second, "alice to get it", func() bool { return countFrom(alice, bob, "hello") == 1 })

	// The card lists request mailboxes that are neither the account key
	// nor each other, and are alice's.
	var card *envelope.Card
	aid := acct.ID()
	msgs, err := obs.ReadPublic(ctx, accountMailbox(alice.id))
	if err != nil || len(msgs) == 0 {
		t.Fatalf("alice's card: %v (%d entries)", err, len(msgs))
	}
	if card, err = envelope.ParseCard(msgs[len(msgs)-1].Data, aid); err != nil {
		t.Fatal(err)
	}
	seen := map[[32]byte]bool{accountMailbox(alice.id): true}
	for i := range card.Requests {
		id, _ := card.Request(card.FirstEpoch + uint64(i))
		if seen[id] {
			t.Fatalf("request mailbox %d repeats the account key or an earlier epoch's", i)
		}
		if id != client.RequestKey(acct, card.FirstEpoch+uint64(i)).ID() {
			t.Fatalf("request mailbox %d is not alice's", i)
		}
		seen[id] = true
	}
	// The account-key mailbox holds nothing but the card: read it with
	// alice's own key, as its owner could.
	key, _ := mailbox.KeyFromSeed(acct.SigningKey().Seed())
	all, err := obs.Get(ctx, key, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.Namespace != wire.PublicNamespace {
			t.Fatalf("the account-key mailbox holds a message in namespace %d", m.Namespace)
		}
	}
	if len(all) == 0 {
		t.Fatal("the account-key mailbox holds no card")
	}
}
