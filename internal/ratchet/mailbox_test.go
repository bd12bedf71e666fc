package ratchet

import (
	"crypto/ed25519"
	"testing"
	"time"
)

func TestMailboxSeedsAgree(t *testing.T) {
	p := setup(t, 1, 0)
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	for _, period := range []time.Duration{0, time.Hour, DefaultMailboxPeriod, 7 * 24 * time.Hour} {
		e := Epoch(now, period)
		sa, sb := p.a.MailboxSeeds(e), p.b.MailboxSeeds(e)
		if sa != sb {
			t.Fatal("sides derive different mailbox seeds")
		}
		if sa.InitiatorToResponder == sa.ResponderToInitiator {
			t.Fatal("both directions share a mailbox")
		}
		if p.a.SendMailboxSeed(e) != p.b.ReceiveMailboxSeed(e) || p.b.SendMailboxSeed(e) != p.a.ReceiveMailboxSeed(e) {
			t.Fatal("send/receive seeds do not match across sides")
		}
		if p.a.SendMailboxSeed(e) != sa.InitiatorToResponder {
			t.Fatal("initiator does not write to InitiatorToResponder")
		}
		next := p.a.MailboxSeeds(e + 1)
		if next.InitiatorToResponder == sa.InitiatorToResponder || next.ResponderToInitiator == sa.ResponderToInitiator {
			t.Fatal("mailboxes do not rotate at the next epoch")
		}
		if p.b.MailboxSeeds(e+1) != next {
			t.Fatal("sides disagree at the next epoch")
		}
	}
	// Traffic and ratchet steps do not change the seeds.
	before := p.a.MailboxSeeds(100)
	for i := range 5 {
		mustDecrypt(t, p.b, mustEncrypt(t, p.a, msgText(i)), msgText(i))
		mustDecrypt(t, p.a, mustEncrypt(t, p.b, msgText(i)), msgText(i))
	}
	if p.a.MailboxSeeds(100) != before || p.b.MailboxSeeds(100) != before {
		t.Fatal("mailbox seeds changed with the ratchet")
	}
	// Another session between the same people has other mailboxes.
	q := setup(t, 1, 0)
	if q.a.MailboxSeeds(100) == before {
		t.Fatal("two sessions share mailboxes")
	}
	// The seeds are usable Ed25519 seeds and differ from the account keys.
	k := ed25519.NewKeyFromSeed(before.InitiatorToResponder[:])
	if string(k.Public().(ed25519.PublicKey)) == string(p.alice.Public().SigningKey) {
		t.Fatal("mailbox key equals the account key")
	}
}

func TestEpoch(t *testing.T) {
	day := time.Unix(86400*20000, 0)
	cases := []struct {
		t      time.Time
		period time.Duration
		want   uint64
	}{
		{time.Unix(0, 0), 0, 0},
		{time.Unix(-5, 0), 0, 0},
		{day, 0, 20000},
		{day.Add(-time.Second), 0, 19999},
		{day.Add(23*time.Hour + 59*time.Minute), DefaultMailboxPeriod, 20000},
		{day.Add(24 * time.Hour), DefaultMailboxPeriod, 20001},
		{day, time.Hour, 20000 * 24},
		{time.Unix(10, 0), time.Millisecond, 10}, // sub-second period clamps to 1 s
	}
	for _, c := range cases {
		if got := Epoch(c.t, c.period); got != c.want {
			t.Errorf("Epoch(%v, %v) = %d, want %d", c.t.Unix(), c.period, got, c.want)
		}
	}
}
