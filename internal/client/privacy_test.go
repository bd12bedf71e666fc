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
	"github.com/umbra-im/umbra/internal/ratchet"
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
// through a request bucket that is not its account key, changes every
// epoch and is read without any key; the mailbox its account key names
// holds only its card.
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

	// The card names no mailbox: it gives the bucket count, from which
	// anyone computes the bucket of an account and epoch.
	aid := acct.ID()
	msgs, err := obs.ReadPublic(ctx, accountMailbox(alice.id))
	if err != nil || len(msgs) == 0 {
		t.Fatalf("alice's card: %v (%d entries)", err, len(msgs))
	}
	card, err := envelope.ParseCard(msgs[len(msgs)-1].Data, aid)
	if err != nil {
		t.Fatal(err)
	}
	now := ratchet.Epoch(time.Now(), time.Duration(card.PeriodSec)*time.Second)
	buckets := map[mailbox.ID]bool{}
	for ep := now - 30; ep <= now; ep++ {
		b := client.RequestBucket(aid, ep, card.Buckets)
		if b == accountMailbox(alice.id) {
			t.Fatal("a request bucket is the account key")
		}
		buckets[b] = true
	}
	if len(buckets) < 20 {
		t.Fatalf("alice's request bucket took only %d values over 31 epochs", len(buckets))
	}
	// bob's first message is in this epoch's bucket (or the last's, at a
	// boundary), which anyone reads without a key, and alice's client
	// left it there (nobody can delete from a bucket).
	found := 0
	for _, ep := range []uint64{now, now - 1} {
		entries, err := obs.ReadDrop(ctx, client.RequestBucket(aid, ep, card.Buckets), 0)
		if err != nil {
			t.Fatal(err)
		}
		found += len(entries)
	}
	if found == 0 {
		t.Fatal("bob's first message is not in alice's request bucket")
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
