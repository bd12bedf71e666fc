package client_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
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
func publicView(t *testing.T, c *swarmclient.Client, id string) []string {
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

// TestPublicReadTimeless: restarting a client, as a daemon or as CLI
// commands, changes nothing a public reader sees of the account.
func TestPublicReadTimeless(t *testing.T) {
	t.Parallel()
	net := startNodes(t, 5)
	time.Sleep(time.Second)
	alice := newUser(t, net, "alice")
	obs := observer(t, net)
	var before []string
	waitFor(t, 30*time.Second, "alice's card to be published", func() bool {
		before = publicView(t, obs, alice.id)
		return len(before) > 0
	})
	for i := range 3 {
		alice.stop()
		time.Sleep(time.Duration(500+i*700) * time.Millisecond)
		if i == 1 { // a CLI command: open, publish if due, sync, close
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			e, err := client.Open(ctx, client.Config{Home: alice.home, Schedule: testSchedule, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.PublishPrekeys(ctx); err != nil {
				t.Fatal(err)
			}
			if err := e.SyncOnce(ctx); err != nil {
				t.Fatal(err)
			}
			e.Close()
			cancel()
			continue
		}
		alice.start(t)
		time.Sleep(3 * time.Second)
	}
	after := publicView(t, obs, alice.id)
	if !slices.Equal(before, after) {
		t.Fatalf("restarts changed what a public reader sees:\nbefore %q\nafter  %q", before, after)
	}
}

// TestMailboxHealsAfterCompromise: someone copies bob's home (all his
// keys and inbox roots). Bob and alice go on chatting; a couple of
// generations later, bob's inbox is one the copy cannot compute, while
// alice writes there.
func TestMailboxHealsAfterCompromise(t *testing.T) {
	t.Parallel()
	net := startNodes(t, 5)
	time.Sleep(time.Second)
	const period = 2 * time.Second // a generation is 7 epochs: 14 s
	sched := client.Schedule{
		PollWait:   [2]time.Duration{500 * time.Millisecond, time.Second},
		PollGap:    [2]time.Duration{10 * time.Millisecond, 50 * time.Millisecond},
		CatchUpGap: [2]time.Duration{5 * time.Millisecond, 20 * time.Millisecond},
	}
	open := func(u *user) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		e, err := client.Open(ctx, client.Config{Home: u.home, Logger: testLogger(t, u.home), EpochPeriod: period,
			MessageTTL: 5 * time.Minute, Schedule: sched})
		if err != nil {
			t.Fatal(err)
		}
		e.Start()
		u.e = e
		t.Cleanup(u.stop)
	}
	mk := func(name string) *user {
		home := filepath.Join(t.TempDir(), name)
		acct, err := client.Init(home, "", net, "")
		if err != nil {
			t.Fatal(err)
		}
		u := &user{home: home, id: acct.ID().String()}
		open(u)
		return u
	}
	alice, bob := mk("alice"), mk("bob")
	befriend(t, alice, bob)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	exchange := func(i int) {
		t.Helper()
		tag := fmt.Sprintf("%d.", i)
		waitFor(t, 30*time.Second, "alice's "+tag, func() bool {
			_, err := alice.e.Send(ctx, bob.id, "a-"+tag)
			return err == nil
		})
		waitFor(t, 30*time.Second, "bob to get "+tag, func() bool { return countFrom(bob, alice, "a-"+tag) == 1 })
		if _, err := bob.e.Send(ctx, alice.id, "b-"+tag); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "alice to get "+tag, func() bool { return countFrom(alice, bob, "b-"+tag) == 1 })
	}
	exchange(0)

	// The compromise: a copy of bob's whole home.
	bob.stop()
	stolen := filepath.Join(t.TempDir(), "stolen")
	if out, err := exec.Command("cp", "-a", bob.home, stolen).CombinedOutput(); err != nil {
		t.Fatalf("copy the home: %v %s", err, out)
	}
	os.Remove(filepath.Join(stolen, "lock"))
	compromised := time.Now()
	open(bob)

	// Chat on for more than two generations.
	for i := 1; time.Since(compromised) < 2*7*period+6*time.Second; i++ {
		exchange(i)
		time.Sleep(period)
	}
	now := time.Now()
	cur, ok := bob.e.InboxID(now)
	if !ok {
		t.Fatal("bob has no inbox now")
	}
	// alice writes to bob's current inbox (or the next, at a boundary).
	aliceWrites, ok := alice.e.PeerInbox(bob.id, now)
	if !ok {
		t.Fatal("alice knows no current inbox of bob's")
	}
	next, _ := bob.e.InboxID(now.Add(period))
	if aliceWrites != cur && aliceWrites != next {
		t.Fatal("alice does not write to bob's current inbox")
	}
	thief, err := client.Open(ctx, client.Config{Home: stolen, Offline: true, EpochPeriod: period, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Close()
	derivable := thief.DerivableInboxes(compromised.Add(-time.Minute), now.Add(time.Minute))
	then, _ := bob.e.InboxID(compromised)
	if !derivable[then] {
		t.Fatal("the copy does not even give bob's inbox at the time of the copy: the test proves nothing")
	}
	if derivable[aliceWrites] || derivable[cur] {
		t.Fatal("the copy still gives the inbox bob reads and alice writes to, two generations later")
	}
	t.Logf("the copy gives %d inboxes; none of them after %s", len(derivable), time.Since(compromised).Round(time.Second))
}
