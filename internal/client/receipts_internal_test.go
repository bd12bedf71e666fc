package client

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/envelope"
)

// This package's tests wait for "delivered" and "read": they run with the
// production distribution's shape shrunk to a 300 ms cap.
func init() { defaultReceiptDelay = DefaultReceiptDelay.ScaledTo(300 * time.Millisecond) }

// fakeTimers records the timers a scheduler starts; the test fires them.
type fakeTimers struct {
	mu     sync.Mutex
	delays []time.Duration
	funcs  []func()
	alive  []bool
}

func (f *fakeTimers) afterFunc(d time.Duration, fn func()) func() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := len(f.funcs)
	f.delays, f.funcs, f.alive = append(f.delays, d), append(f.funcs, fn), append(f.alive, true)
	return func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		was := f.alive[i]
		f.alive[i] = false
		return was
	}
}

// fireAll runs every live timer once (in start order) and returns how many.
func (f *fakeTimers) fireAll() int {
	f.mu.Lock()
	var run []func()
	for i, fn := range f.funcs {
		if f.alive[i] {
			f.alive[i] = false
			run = append(run, fn)
		}
	}
	f.mu.Unlock()
	for _, fn := range run {
		fn()
	}
	return len(run)
}

type sentReceipt struct {
	peer string
	kind envelope.Kind
	ids  []string
}

// testScheduler is a scheduler on a real (temporary) database with a fixed
// clock, seeded uniform draws and fake timers; what it sends is recorded.
func testScheduler(t *testing.T, kv KV, dist ReceiptDelay, seed uint64) (*receiptScheduler, *fakeTimers, *[]sentReceipt) {
	t.Helper()
	if kv == nil {
		var closeKV func() error
		var err error
		if kv, closeKV, err = openKV(t.TempDir(), ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeKV() })
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(seed, 7))
	ft := &fakeTimers{}
	var mu sync.Mutex
	var sent []sentReceipt
	s := &receiptScheduler{
		kv: kv, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: func() time.Time { return now }, dist: dist, uniform: rng.Float64,
		afterFunc: ft.afterFunc,
		send: func(_ context.Context, peer string, kind envelope.Kind, ids []string) error {
			if len(ids) > envelope.MaxRefs {
				t.Errorf("a receipt with %d IDs, more than %d", len(ids), envelope.MaxRefs)
			}
			mu.Lock()
			sent = append(sent, sentReceipt{peer, kind, slices.Clone(ids)})
			mu.Unlock()
			return nil
		},
	}
	return s, ft, &sent
}

// ksStatistic is the Kolmogorov–Smirnov distance between the empirical
// distribution of xs and cdf.
func ksStatistic(xs []time.Duration, cdf func(time.Duration) float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	n := float64(len(xs))
	d := 0.0
	for i, x := range xs {
		f := cdf(x)
		d = max(d, math.Abs(float64(i+1)/n-f), math.Abs(f-float64(i)/n))
	}
	return d
}

// TestNoReceiptEcho: a receipt never leaves when the message lands. Each
// batch's delay is drawn from the documented distribution (checked with a
// Kolmogorov–Smirnov test and its moments), messages landing together are
// acknowledged by one receipt per peer and kind, owed receipts survive a
// restart, and turning read receipts off drops the ones owed.
func TestNoReceiptEcho(t *testing.T) {
	d := DefaultReceiptDelay
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if m := d.Mean(); m < 20*time.Second || m > 40*time.Second {
		t.Fatalf("production mean delay %v, want tens of seconds", m)
	}

	t.Run("distribution", func(t *testing.T) {
		s, ft, _ := testScheduler(t, nil, d, 1)
		const n = 3000
		for i := range n {
			s.owe(fmt.Sprintf("peer-%d", i), envelope.KindReceiptDelivered, []string{fmt.Sprintf("%032x", i)})
		}
		s.start(context.Background())
		if len(ft.delays) != n {
			t.Fatalf("%d timers for %d peers' batches, want one each", len(ft.delays), n)
		}
		var sum float64
		for _, x := range ft.delays {
			if x < d.Floor || x > d.Max {
				t.Fatalf("a delay of %v, outside [%v, %v]", x, d.Floor, d.Max)
			}
			sum += float64(x)
		}
		mean := time.Duration(sum / n)
		var sq float64
		for _, x := range ft.delays {
			sq += (float64(x) - sum/n) * (float64(x) - sum/n)
		}
		sd := time.Duration(math.Sqrt(sq / (n - 1)))
		// The mean of n draws is within 4 standard errors of the analytic
		// mean; the spread is that of the truncated exponential (about 21 s).
		if se := sd / time.Duration(math.Sqrt(n)); mean < d.Mean()-4*se || mean > d.Mean()+4*se {
			t.Errorf("mean delay %v, want %v ± %v", mean, d.Mean(), 4*se)
		}
		if sd < 15*time.Second || sd > 30*time.Second {
			t.Errorf("delays' standard deviation %v: not spread as intended", sd)
		}
		// Kolmogorov–Smirnov against the intended CDF: 1.63/√n is the 1%
		// critical value.
		crit := 1.63 / math.Sqrt(n)
		if ks := ksStatistic(ft.delays, d.CDF); ks > crit {
			t.Errorf("KS distance %.4f to the intended distribution, critical %.4f", ks, crit)
		}
		// The test can fail: the same draws are far from an untruncated
		// exponential without a floor, and from sending at once.
		noFloor := ReceiptDelay{Scale: d.Scale, Max: 1 << 62}
		if ks := ksStatistic(ft.delays, noFloor.CDF); ks < 5*crit {
			t.Errorf("KS distance %.4f to a floorless exponential: the test cannot tell them apart", ks)
		}
		if ks := ksStatistic(ft.delays, ReceiptDelay{}.CDF); ks < 0.99 {
			t.Errorf("KS distance %.4f to sending at once", ks)
		}
		// Quantiles of the truncated exponential.
		slices.Sort(ft.delays)
		for _, q := range []float64{0.1, 0.5, 0.9} {
			got := ft.delays[int(q*n)]
			if p := d.CDF(got); math.Abs(p-q) > 0.03 {
				t.Errorf("the %.0f%% quantile %v has CDF %.3f", 100*q, got, p)
			}
		}
	})

	t.Run("crypto uniform", func(t *testing.T) {
		const n = 20000
		var sum float64
		for range n {
			u := cryptoUniform()
			if u < 0 || u >= 1 {
				t.Fatalf("uniform draw %v outside [0, 1)", u)
			}
			sum += u
		}
		if m := sum / n; math.Abs(m-0.5) > 0.015 { // 7 standard errors
			t.Fatalf("mean of %d uniform draws %.4f", n, m)
		}
	})

	t.Run("batched", func(t *testing.T) {
		s, ft, sent := testScheduler(t, nil, d, 2)
		s.start(context.Background())
		// 200 messages from alice and 3 from bob land in several reads,
		// then alice's are read: one timer per peer and kind.
		var aliceIDs []string
		for i := range 200 {
			id := fmt.Sprintf("a%031x", i)
			aliceIDs = append(aliceIDs, id)
			s.owe("alice", envelope.KindReceiptDelivered, []string{id})
		}
		s.owe("alice", envelope.KindReceiptDelivered, aliceIDs[:10]) // read again: no duplicates
		s.owe("bob", envelope.KindReceiptDelivered, []string{"b1", "b2"})
		s.owe("bob", envelope.KindReceiptDelivered, []string{"b3"})
		s.owe("alice", envelope.KindReceiptRead, aliceIDs)
		if len(ft.delays) != 3 {
			t.Fatalf("%d timers, want 3 (alice delivered, bob delivered, alice read)", len(ft.delays))
		}
		if len(*sent) != 0 {
			t.Fatalf("%d receipts left before their delay", len(*sent))
		}
		if got := s.pending(); got[envelope.KindReceiptDelivered] != 203 || got[envelope.KindReceiptRead] != 200 {
			t.Fatalf("pending %v", got)
		}
		if fired := ft.fireAll(); fired != 3 {
			t.Fatalf("%d timers fired", fired)
		}
		per := map[string][]string{}
		count := map[string]int{}
		for _, r := range *sent {
			k := fmt.Sprintf("%s/%v", r.peer, r.kind)
			per[k] = append(per[k], r.ids...)
			count[k]++
		}
		// 200 IDs need ceil(200/64) = 4 receipts; bob's 3 need one.
		if count["bob/receipt-delivered"] != 1 || !slices.Equal(per["bob/receipt-delivered"], []string{"b1", "b2", "b3"}) {
			t.Errorf("bob got %d receipts for %v, want one for b1 b2 b3", count["bob/receipt-delivered"], per["bob/receipt-delivered"])
		}
		for _, k := range []string{"alice/receipt-delivered", "alice/receipt-read"} {
			if count[k] != 4 || !slices.Equal(per[k], aliceIDs) {
				t.Errorf("%s: %d receipts for %d IDs, want 4 for the 200", k, count[k], len(per[k]))
			}
		}
		if keys, _ := s.kv.List(receiptPrefix); len(keys) != 0 {
			t.Errorf("%d batches still stored after they were queued", len(keys))
		}
		// A message landing after its batch left starts a new batch.
		s.owe("bob", envelope.KindReceiptDelivered, []string{"b4"})
		if len(ft.delays) != 4 || ft.fireAll() != 1 || len(*sent) != 10 {
			t.Fatalf("a late message: %d timers, %d receipts", len(ft.delays), len(*sent))
		}
	})

	t.Run("persisted", func(t *testing.T) {
		kv, closeKV, err := openKV(t.TempDir(), "")
		if err != nil {
			t.Fatal(err)
		}
		defer closeKV()
		// Owed while not running (a CLI command, an offline engine): stored,
		// no timer.
		s, ft, sent := testScheduler(t, kv, d, 3)
		s.owe("carol", envelope.KindReceiptDelivered, []string{"c1", "c2"})
		s.owe("carol", envelope.KindReceiptRead, []string{"c1"})
		if len(ft.delays) != 0 {
			t.Fatal("a timer started before the scheduler runs")
		}
		// A new scheduler on the same database (a restart) schedules them
		// at the time they were due, and removes them once queued.
		s2, ft2, sent2 := testScheduler(t, kv, d, 3)
		s2.start(context.Background())
		if len(ft2.delays) != 2 {
			t.Fatalf("%d batches scheduled after a restart, want 2", len(ft2.delays))
		}
		for _, x := range ft2.delays {
			if x < d.Floor || x > d.Max {
				t.Errorf("a reloaded batch is due in %v", x)
			}
		}
		// New owed IDs for carol do not join a reloaded batch.
		s2.owe("carol", envelope.KindReceiptDelivered, []string{"c3"})
		ft2.fireAll()
		if len(*sent) != 0 || len(*sent2) != 3 {
			t.Fatalf("sent %d by the first scheduler and %d by the second, want 0 and 3", len(*sent), len(*sent2))
		}
		if keys, _ := kv.List(receiptPrefix); len(keys) != 0 {
			t.Errorf("%d batches stored after they were queued", len(keys))
		}
	})

	t.Run("read receipts off", func(t *testing.T) {
		s, ft, sent := testScheduler(t, nil, d, 4)
		s.start(context.Background())
		s.owe("dave", envelope.KindReceiptRead, []string{"d1"})
		s.owe("dave", envelope.KindReceiptDelivered, []string{"d1"})
		s.dropKind(envelope.KindReceiptRead)
		ft.fireAll()
		if len(*sent) != 1 || (*sent)[0].kind != envelope.KindReceiptDelivered {
			t.Fatalf("sent %v, want the delivered receipt only", *sent)
		}
		if keys, _ := s.kv.List(receiptPrefix); len(keys) != 0 {
			t.Errorf("%d batches stored", len(keys))
		}
	})

	t.Run("retry", func(t *testing.T) {
		s, ft, _ := testScheduler(t, nil, d, 5)
		fails := 0
		s.send = func(context.Context, string, envelope.Kind, []string) error {
			fails++
			return fmt.Errorf("no session")
		}
		s.start(context.Background())
		s.owe("erin", envelope.KindReceiptDelivered, []string{"e1"})
		for ft.fireAll() > 0 {
		}
		if fails != maxReceiptAttempts {
			t.Fatalf("tried %d times, want %d", fails, maxReceiptAttempts)
		}
		if keys, _ := s.kv.List(receiptPrefix); len(keys) != 0 {
			t.Errorf("a batch given up on is still stored")
		}
	})
}

// TestReceiptDelayShape: Draw inverts CDF, ScaledTo keeps the shape.
func TestReceiptDelayShape(t *testing.T) {
	d := DefaultReceiptDelay
	for _, u := range []float64{0, 0.1, 0.5, 0.9, 0.999999} {
		x := d.Draw(u)
		if math.Abs(d.CDF(x)-u) > 1e-6 {
			t.Errorf("CDF(Draw(%v)) = %v", u, d.CDF(x))
		}
	}
	if d.Draw(0) != d.Floor {
		t.Errorf("Draw(0) = %v, want the floor", d.Draw(0))
	}
	s := d.ScaledTo(d.Max / 100)
	if s.Max != d.Max/100 || s.Floor != d.Floor/100 || s.Scale != d.Scale/100 {
		t.Errorf("scaled: %+v", s)
	}
	if got, want := s.Mean(), d.Mean()/100; got < want-time.Millisecond || got > want+time.Millisecond {
		t.Errorf("scaled mean %v, want %v", got, want)
	}
	if (ReceiptDelay{Floor: 2, Max: 1}).Validate() == nil {
		t.Error("a cap below the floor was accepted")
	}
}

// TestSettingsStored: read receipts default on; the setting is kept in
// the database across a reopen.
func TestSettingsStored(t *testing.T) {
	lightArgon2(t)
	home := t.TempDir()
	if _, err := Init(home, "", nil, ""); err != nil {
		t.Fatal(err)
	}
	e, err := openOffline(home, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.Settings()
	if err != nil || !st.ReadReceipts {
		t.Fatalf("new account's settings %+v, %v: want read receipts on", st, err)
	}
	if _, err := e.SetSettings(Settings{ReadReceipts: false}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if e, err = openOffline(home, ""); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if st, _ := e.Settings(); st.ReadReceipts {
		t.Fatal("read receipts back on after a reopen")
	}
}

// CountQueuedReceipts counts the receipts (envelopes) the engine puts in its
// outbox from now on (for tests). Call it before Start.
func (e *Engine) CountQueuedReceipts() *atomic.Int64 {
	s := e.receiptSched()
	send := s.send
	n := new(atomic.Int64)
	s.send = func(ctx context.Context, peer string, kind envelope.Kind, ids []string) error {
		err := send(ctx, peer, kind, ids)
		if err == nil {
			n.Add(1)
		}
		return err
	}
	return n
}

// OwedReceipts is the number of message IDs the engine owes delivered and
// read receipts for (for tests).
func (e *Engine) OwedReceipts() (delivered, read int) {
	p := e.receiptSched().pending()
	return p[envelope.KindReceiptDelivered], p[envelope.KindReceiptRead]
}
