package adversary_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/ratchet"
	"github.com/umbra-im/umbra/internal/wire"
)

type user struct {
	home string
	acct *identity.Account
	e    *client.Engine
}

func newUser(t *testing.T, boot []string, name string) *user {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	acct, err := client.Init(home, "", boot, "")
	if err != nil {
		t.Fatal(err)
	}
	u := &user{home: home, acct: acct}
	u.start(t)
	t.Cleanup(u.stop)
	return u
}

func (u *user) id() string { return u.acct.ID().String() }

func (u *user) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := client.Open(ctx, client.Config{Home: u.home, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	u.e = e
}

func (u *user) stop() {
	if u.e != nil {
		u.e.Close()
		u.e = nil
	}
}

// cardMailbox is where the account publishes its card: the mailbox named
// by its account key.
func (u *user) cardMailbox() mailbox.ID {
	var id mailbox.ID
	copy(id[:], u.acct.ID().PublicKey())
	return id
}

// requestBucket is the account's request bucket of epoch, where strangers
// write first: anyone who knows the account ID can write there, with
// proof-of-work.
func (u *user) requestBucket(epoch uint64, buckets uint32) mailbox.ID {
	return client.RequestBucket(u.acct.ID(), epoch, buckets)
}

// TestJamAccount is attack 6 of issue 9. An attacker who knows an account
// ID fills its request bucket of this epoch (paying the proof-of-work the
// nodes ask, which grows as the bucket fills) and the card's mailbox with
// junk as fast as it can for 90 s (10,000 messages took 29-36 s against
// the first network). Meanwhile a new contact's first message must get
// through and the owner's restarted client must still publish its changed
// card.
func TestJamAccount(t *testing.T) {
	an := startNet(t, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	alice := newUser(t, an.boot, "alice")
	c := an.client(ctx, true)
	var card []byte
	for end := time.Now().Add(30 * time.Second); card == nil && time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if pub, err := c.ReadPublic(ctx, alice.cardMailbox()); err == nil && len(pub) > 0 {
			card = pub[len(pub)-1].Data
		}
	}
	parsed, err := envelope.ParseCard(card, alice.acct.ID())
	if err != nil {
		t.Fatalf("alice's card: %v", err)
	}
	epoch := ratchet.Epoch(time.Now(), time.Duration(parsed.PeriodSec)*time.Second)
	bucket := alice.requestBucket(epoch, parsed.Buckets)
	targets := []mailbox.ID{bucket, alice.cardMailbox()}

	fctx, fstop := context.WithTimeout(ctx, 90*time.Second)
	defer fstop()
	var junk, refused atomic.Int64
	var fwg sync.WaitGroup
	for w := 0; w < 64; w++ {
		// 8 writers pay the bucket's proof-of-work (they share this
		// machine's two cores with the honest parties), 56 flood the
		// card's mailbox, which asks for none.
		mb := targets[1]
		if w < 8 {
			mb = targets[0]
		}
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			for fctx.Err() == nil {
				data := make([]byte, 1000)
				rand.Read(data)
				var err error
				if mb == bucket {
					_, err = c.PutDrop(fctx, mb, 0, time.Hour, data, 0)
				} else {
					_, err = c.PutReq(fctx, &wire.StoreReq{Mailbox: mb[:], Timestamp: time.Now().UnixMilli(), TTL: time.Hour.Milliseconds(), Data: data})
				}
				if err != nil {
					refused.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				junk.Add(1)
			}
		}()
	}
	// Wait until the mailbox is as full as the attacker can make it.
	for start := time.Now(); refused.Load() < 100 && time.Since(start) < 50*time.Second; {
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("flood under way: %d junk messages stored, %d refused", junk.Load(), refused.Load())

	// A new contact writes first, while the mailbox is full of junk.
	bob := newUser(t, an.boot, "bob")
	if _, err := bob.e.AddContact(alice.id(), "alice"); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 90*time.Second)
	_, err = bob.e.Send(sctx, alice.id(), "hello alice")
	scancel()
	if err != nil {
		t.Errorf("bob's first message to alice: %v", err)
	}
	// alice restarts; once bob's first message used one of her one-time
	// prekeys, her client publishes its changed card.
	alice.stop()
	alice.start(t)
	deadline := time.Now().Add(90 * time.Second)
	got, published := false, false
	for time.Now().Before(deadline) && !(got && published) {
		if !got {
			ms, _ := alice.e.Messages(bob.id())
			for _, m := range ms {
				if !m.Outgoing && m.Text == "hello alice" {
					got = true
					t.Logf("bob's first message arrived during the flood (%d junk stored so far)", junk.Load())
				}
			}
		}
		if !published {
			if pub, err := c.ReadPublic(ctx, alice.cardMailbox()); err == nil {
				for _, m := range pub {
					if !bytes.Equal(m.Data, card) {
						published = true
					}
				}
			}
		}
		time.Sleep(time.Second)
	}
	if !got {
		t.Errorf("bob's first message did not reach alice during the flood")
	}
	if !published {
		t.Errorf("alice's restarted client could not publish its changed card during the flood")
	}
	fwg.Wait()
	t.Logf("flood over: %d junk messages stored, %d refused", junk.Load(), refused.Load())

	// The junk stays in the bucket until it expires (nobody can delete
	// there), bounded by the nodes' drop quota.
	entries, err := c.ReadDrop(ctx, bucket, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the bucket holds %d entries after the flood", len(entries))
	if len(entries) > 10000 {
		t.Errorf("the bucket holds %d entries, more than the drop quota", len(entries))
	}
}
