package client_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/trafficstat"
	"github.com/umbra-im/umbra/internal/wire"
)

// seen is one onion event and when the node saw it.
type seen struct {
	at time.Time
	ev node.OnionEvent
}

// wiretap records what every node's onion relay saw.
type wiretap struct {
	mu  sync.Mutex
	evs []seen
}

func (w *wiretap) add(ev node.OnionEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.evs = append(w.evs, seen{time.Now(), ev})
}

func (w *wiretap) between(from, to time.Time) []seen {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []seen
	for _, s := range w.evs {
		if !s.at.Before(from) && s.at.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// guardTrace is what a client's guards saw of it: the arrival times of
// its request packets, and the sizes of its requests and of the replies.
func guardTrace(evs []seen, client peer.ID) (times []time.Time, sizes map[string]int) {
	sizes = map[string]int{}
	for _, s := range evs {
		if s.ev.From != client {
			continue
		}
		times = append(times, s.ev.Received)
		sizes[fmt.Sprintf("request %d", len(s.ev.In))]++
		sizes[fmt.Sprintf("reply %d", len(s.ev.ReplyOut))]++
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	return times, sizes
}

// guardsAlike asserts that the guards saw the same of clients a and b
// during [start, start+window): one request size and one reply size, the
// same ones, request rates within Poisson bounds of each other and
// inter-arrival times a two-sample KS test cannot tell apart (p > 0.01,
// the criteria). With burst > 0, packets less than burst apart
// count as one request (one read goes to several swarm members at once).
func guardsAlike(t *testing.T, evs []seen, a, b *user, la, lb string, start time.Time, window, burst time.Duration) {
	t.Helper()
	ta, sa := guardTrace(evs, a.e.Network().Host().ID())
	tb, sb := guardTrace(evs, b.e.Network().Host().ID())
	t.Logf("%s: %d packets %v; %s: %d packets %v", la, len(ta), sa, lb, len(tb), sb)
	if len(sa) != 2 || len(sb) != 2 {
		t.Errorf("requests and replies use more than one packet size each: %v / %v", sa, sb)
	}
	for k := range sa {
		if sb[k] == 0 {
			t.Errorf("packet size %q appears for %s but not for %s", k, la, lb)
		}
	}
	if burst > 0 {
		ta, tb = bursts(ta, burst), bursts(tb, burst)
	}
	cmp := trafficstat.CompareTraces(trafficstat.Trace{Times: ta, Start: start, Span: window},
		trafficstat.Trace{Times: tb, Start: start, Span: window}, 10*time.Second)
	t.Logf("requests %d vs %d; per-10s: %v vs %v; rate p=%.3f; inter-arrival KS D=%.3f p=%.3f",
		len(ta), len(tb), cmp.CountsA, cmp.CountsB, cmp.RateP, cmp.KSD, cmp.KSP)
	if !(cmp.RateP > 0.01) {
		t.Errorf("the request rates of %s and %s differ (p=%.3g)", la, lb, cmp.RateP)
	}
	if !(cmp.KSP > 0.01) {
		t.Errorf("the inter-arrival times of %s and %s differ (KS p=%.3g)", la, lb, cmp.KSP)
	}
}

// bursts collapses packets less than gap after the previous one into one
// event: what a guard counts as one request fanned out to several nodes.
func bursts(times []time.Time, gap time.Duration) []time.Time {
	var out []time.Time
	for i, t := range times {
		if i == 0 || t.Sub(times[i-1]) >= gap {
			out = append(out, t)
		}
	}
	return out
}

// peersWithCards makes n accounts that have published their cards and
// gone offline: contacts to hold sessions with.
func peersWithCards(t *testing.T, net []string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			home := filepath.Join(t.TempDir(), fmt.Sprintf("peer%d", i))
			acct, err := client.Init(home, "", net, "")
			if err != nil {
				errs <- err
				return
			}
			ids[i] = acct.ID().String()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			e, err := client.Open(ctx, client.Config{Home: home, Schedule: testSchedule, Logger: quiet()})
			if err != nil {
				errs <- err
				return
			}
			defer e.Close()
			if err := e.PublishPrekeys(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

// TestGuardTraceIndependent: what a client's guards see of it (how many
// packets, when, and their sizes) is the same whether it holds sessions
// with 0 or 50 contacts, also while a stranger's first message arrives.
// Standard mode: the activity of chatting itself is not hidden (strict
// mode does that).
func TestGuardTraceIndependent(t *testing.T) {
	if testing.Short() {
		t.Skip("a two-minute recording; run without -short")
	}
	tap := &wiretap{}
	net := startNodesCfg(t, 7, func(c *node.Config) { c.OnionObserver = tap.add })
	time.Sleep(time.Second)
	lonely, busy := newUser(t, net, "lonely"), newUser(t, net, "busy")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, id := range peersWithCards(t, net, 50) {
		if _, err := busy.e.AddContact(id, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := busy.e.Queue(ctx, id, "hello"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 2*time.Minute, "busy's 50 first messages to leave", func() bool { return busy.e.OutboxLen() == 0 })
	if n := len(busy.e.SessionPeers()); n != 50 {
		t.Fatalf("busy holds sessions with %d contacts, want 50", n)
	}
	stranger := newUser(t, net, "stranger")
	if _, err := stranger.e.AddContact(lonely.id, ""); err != nil {
		t.Fatal(err)
	}

	const window = 90 * time.Second
	start := time.Now()
	time.Sleep(window / 3)
	if _, err := stranger.e.Send(ctx, lonely.id, "hi, we have not met"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(start.Add(window)))
	evs := tap.between(start, start.Add(window))
	if countFrom(lonely, stranger, "hi") != 1 {
		t.Fatal("the stranger's first message did not arrive")
	}

	guardsAlike(t, evs, lonely, busy, "0 contacts", "50 contacts", start, window, 0)
}

// TestExitsCannotLinkMailboxes: clients with up to 10 contacts each chat
// while their inboxes rotate; an attacker that sees every request at every
// exit (mailbox, time, size, which exit) clusters the mailboxes into
// clients no better than chance. Both privacy modes: 20 standard clients
// and 10 strict ones (fewer under the race detector, race_on_test.go).
func TestExitsCannotLinkMailboxes(t *testing.T) {
	if testing.Short() {
		t.Skip("many clients for minutes; run without -short")
	}
	t.Run("standard", func(t *testing.T) { exitsCannotLink(t, client.PrivacyStandard, linkClients) })
	t.Run("strict", func(t *testing.T) { exitsCannotLink(t, client.PrivacyStrict, strictLinkClients) })
}

func exitsCannotLink(t *testing.T, mode string, clients int) {
	tap := &wiretap{}
	net := startNodesCfg(t, 7, func(c *node.Config) { c.OnionObserver = tap.add })
	time.Sleep(time.Second)
	const period = 30 * time.Second
	users := make([]*user, clients)
	for i := range users {
		home := filepath.Join(t.TempDir(), fmt.Sprintf("u%d", i))
		acct, err := client.Init(home, "", net, "")
		if err != nil {
			t.Fatal(err)
		}
		u := &user{home: home, id: acct.ID().String()}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		e, err := client.Open(ctx, client.Config{Home: home, Logger: quiet(), EpochPeriod: period,
			MessageTTL: 3 * time.Minute, Schedule: testSchedule, ReceiptDelay: client.DefaultReceiptDelay.ScaledTo(10 * time.Second),
			Privacy: mode})
		if err == nil && mode == client.PrivacyStrict {
			err = e.PublishPrekeys(ctx) // at once, not at a cover tick (startStrict)
		}
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		e.Start()
		u.e = e
		t.Cleanup(u.stop)
		users[i] = u
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Each client befriends the next five (so everyone has ten contacts)
	// and they greet each other both ways.
	type pair struct{ a, b *user }
	var pairs []pair
	for i := range clients {
		for d := 1; d <= min(5, (clients-1)/2); d++ {
			pairs = append(pairs, pair{users[i], users[(i+d)%clients]})
		}
	}
	for _, p := range pairs {
		befriend(t, p.a, p.b)
		// A first message reads the recipient's card first; on a loaded
		// machine that read can fail for a while (the path manager backs
		// off hops that time out): try again, as a user would.
		var err error
		waitFor(t, 2*time.Minute, "a greeting to be queued", func() bool {
			_, err = p.a.e.Queue(ctx, p.b.id, "hello "+p.b.id[:8])
			return err == nil
		}, func() string { return fmt.Sprint(err) })
	}
	arrived := func() int {
		n := 0
		for _, p := range pairs {
			if countFrom(p.b, p.a, "hello "+p.b.id[:8]) == 1 {
				n++
			}
		}
		return n
	}
	waitFor(t, 4*time.Minute, "every greeting to arrive", func() bool { return arrived() == len(pairs) },
		func() string { return fmt.Sprintf("%d of %d arrived", arrived(), len(pairs)) })
	for _, p := range pairs {
		if _, err := p.b.e.Queue(ctx, p.a.id, "hello back"); err != nil {
			t.Fatal(err)
		}
	}

	// The recording: everyone chats with random contacts.
	const window = 2 * time.Minute
	start := time.Now()
	for time.Since(start) < window {
		p := pairs[int(time.Now().UnixNano())%len(pairs)]
		if _, err := p.a.e.Queue(ctx, p.b.id, "chat"); err != nil {
			t.Logf("queue a chat message: %v", err) // a card read failed; the next one goes on
		}
		time.Sleep(500 * time.Millisecond)
	}
	end := time.Now()

	// Ground truth: whose inbox each ID is. (Request buckets are shared
	// by several accounts by design: a bucket read is no one's in
	// particular, so they are left out.)
	truth := map[string]int{}
	for i, u := range users {
		for at := start.Add(-2 * period); at.Before(end.Add(period)); at = at.Add(period) {
			if id, ok := u.e.InboxID(at); ok {
				truth[string(id[:])] = i
			}
		}
	}
	var obs []trafficstat.Observation
	kinds := map[string]int{}
	for _, s := range tap.between(start, end) {
		if s.ev.Next != "" || len(s.ev.Request) == 0 {
			continue
		}
		mb, kind := exitMailbox(s.ev.Request)
		kinds[kind]++
		if _, ok := truth[string(mb[:])]; !ok {
			continue // a card or a request bucket
		}
		obs = append(obs, trafficstat.Observation{Mailbox: string(mb[:]), At: s.at, Node: s.ev.Node.String(), Size: len(s.ev.ReplyOut)})
	}
	mailboxes := map[string]bool{}
	for _, o := range obs {
		mailboxes[o.Mailbox] = true
	}
	t.Logf("%d requests at exits (%v), %d of them to %d client mailboxes", len(tap.between(start, end)), kinds, len(obs), len(mailboxes))
	name, ari, err := trafficstat.BestAttack(obs, truth)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("best attacker %q: adjusted Rand index %.4f", name, ari)
	if ari > 0.05 {
		t.Fatalf("an attacker at the exits links mailboxes to clients: ARI %.3f > 0.05", ari)
	}
}

// exitMailbox is the mailbox a request at an exit is about, and its kind.
func exitMailbox(req []byte) (mailbox.ID, string) {
	var mb mailbox.ID
	if len(req) == 0 {
		return mb, "empty"
	}
	// Every client request names its mailbox under key 1 (wire.StoreReq,
	// RetrieveReq, DeleteReq, PublicReq, DropReq); other keys are skipped.
	var r struct {
		Mailbox []byte `cbor:"1,keyasint"`
	}
	if wire.Unmarshal(req[1:], &r) == nil {
		copy(mb[:], r.Mailbox)
	}
	return mb, wire.Kind(req[0]).String()
}
