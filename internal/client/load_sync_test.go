package client_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/memswarm"
	"github.com/umbra-im/umbra/internal/ratchet"
	"github.com/umbra-im/umbra/internal/trafficstat"
)

// publishCards makes n accounts that exist only as cards in the swarm
// (their owners offline): contacts to hold sessions with.
func publishCards(t *testing.T, s *memswarm.Swarm, n int) []string {
	t.Helper()
	c := s.Client("publisher")
	ids := make([]string, n)
	for i := range n {
		acct, err := identity.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		pk, err := ratchet.GeneratePrekeys(nil, acct, 2, 1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pk.Bundle(acct)
		bb, _ := b.Encode()
		card, err := (&envelope.Card{Bundle: bb, PeriodSec: 86400, Buckets: client.DefaultRequestBuckets}).Encode(acct)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := mailbox.KeyFromSeed(acct.SigningKey().Seed())
		if _, err := c.Publish(context.Background(), key, 14*24*time.Hour, card); err != nil {
			t.Fatal(err)
		}
		ids[i] = acct.ID().String()
	}
	return ids
}

// TestRequestsFlatInContacts is the node-side load of one online, idle
// client: the requests per second it makes across the network, with the
// production receive schedule, over an hour (virtual time), with 1, 50
// and 500 contacts. It must not grow with contacts: every count is within
// Poisson bounds of the 1-contact one. The figures are printed as
// benchmark lines.
func TestRequestsFlatInContacts(t *testing.T) {
	if testing.Short() {
		t.Skip("500 sessions take a while to set up; run without -short")
	}
	const hour = time.Hour
	type result struct {
		contacts int
		calls    map[memswarm.Op]int
		total    int
	}
	var results []result
	for _, contacts := range []int{1, 50, 500} {
		synctest.Test(t, func(t *testing.T) {
			n := newMemNet(t)
			u := n.account("client")
			c := n.start(u, client.Config{Schedule: client.DefaultSchedule()})
			ctx, cancel := context.WithTimeout(context.Background(), 24*time.Hour)
			defer cancel()
			for _, id := range publishCards(t, n.s, contacts) {
				if _, err := u.e.AddContact(id, ""); err != nil {
					t.Fatal(err)
				}
				if _, err := u.e.Queue(ctx, id, "hello"); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, time.Hour, "the first messages to leave", func() bool { return u.e.OutboxLen() == 0 })
			if k := len(u.e.SessionPeers()); k != contacts {
				t.Fatalf("%d sessions, want %d", k, contacts)
			}
			time.Sleep(10 * time.Minute) // settle: the outbox and card publication are done
			before := map[memswarm.Op]int{}
			ops := []memswarm.Op{memswarm.OpGet, memswarm.OpReadDrop, memswarm.OpPut, memswarm.OpDelete, memswarm.OpReadPublic, memswarm.OpRefresh}
			for _, op := range ops {
				before[op] = c.Calls(op)
			}
			time.Sleep(hour)
			r := result{contacts: contacts, calls: map[memswarm.Op]int{}}
			for _, op := range ops {
				r.calls[op] = c.Calls(op) - before[op]
				r.total += r.calls[op]
			}
			results = append(results, r)
		})
	}
	for _, r := range results {
		fmt.Printf("BenchmarkIdleClientRequests/contacts=%d\t1\t%.4f req/s\t%d gets\t%d bucket-reads\t%d puts\t%d other\n",
			r.contacts, float64(r.total)/hour.Seconds(), r.calls[memswarm.OpGet], r.calls[memswarm.OpReadDrop], r.calls[memswarm.OpPut],
			r.total-r.calls[memswarm.OpGet]-r.calls[memswarm.OpReadDrop]-r.calls[memswarm.OpPut])
	}
	base := results[0]
	for _, r := range results[1:] {
		if p := trafficstat.SameRateP([]int{base.total}, []int{r.total}); p < 0.01 {
			t.Errorf("an idle client with %d contacts makes %d requests an hour, with 1 contact %d (p=%.3g): load grows with contacts",
				r.contacts, r.total, base.total, p)
		}
	}
}
