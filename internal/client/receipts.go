package client

// Receipts without echoes.
//
// A receipt sent the moment a message lands links the two mailboxes of a
// conversation (and sender to recipient) for anyone who sees both: the
// message is read from one mailbox, and a packet goes to the other a few
// milliseconds later. So receipts are owed, not sent: the receipts owed to
// a peer accumulate in one batch per peer and kind, and the batch leaves
// after a random delay drawn once for it (one timer per batch, never one
// per message). Owed receipts are kept in the encrypted database until the
// outbox holds them, so a crash or a short CLI command does not lose them:
// they are scheduled again at the next Start, at the time they were due.
//
// Read receipts can be turned off (Settings.ReadReceipts): reading a
// conversation then marks it read locally and tells no one. Typing
// indicators (msgops.go) are off whenever read receipts are.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
)

// The production receipt delay: ReceiptDelayFloor plus an exponentially
// distributed time of mean ReceiptDelayScale, truncated at ReceiptDelayMax.
// Its mean is about 29 s, its median about 22 s; 1% of receipts wait more
// than about 1 m 43 s and none more than 2 min.
//
// The exponential is memoryless: that no receipt has come yet tells an
// observer nothing about when it will. The floor keeps even the quickest
// receipt well apart from the message it acknowledges; the cap keeps
// "delivered" meaningful to the sender.
const (
	ReceiptDelayFloor = 5 * time.Second
	ReceiptDelayScale = 25 * time.Second
	ReceiptDelayMax   = 2 * time.Minute
)

// ReceiptDelay is the distribution of the time between a receipt being
// owed and its batch being sent: Floor plus an exponential of mean Scale,
// truncated to [Floor, Max] (drawn by inverting the truncated CDF, so there
// is no point mass at Max). Scale 0 means always Floor.
type ReceiptDelay struct {
	Floor time.Duration
	Scale time.Duration
	Max   time.Duration
}

// DefaultReceiptDelay is the production distribution (see the constants).
var DefaultReceiptDelay = ReceiptDelay{Floor: ReceiptDelayFloor, Scale: ReceiptDelayScale, Max: ReceiptDelayMax}

// defaultReceiptDelay is what a zero Config.ReceiptDelay means (this
// package's tests lower it, so that waiting for "delivered" stays quick).
var defaultReceiptDelay = DefaultReceiptDelay

// maxBatchIDs bounds the message IDs one batch holds (16 receipts of
// envelope.MaxRefs); a peer sending more within one delay gets receipts for
// the first ones only, the rest stay "sent" on its side.
const maxBatchIDs = 16 * envelope.MaxRefs

// maxReceiptAttempts bounds how often a batch that could not be queued
// (no session and no bundle, a full disk) is tried again, each after a
// fresh delay.
const maxReceiptAttempts = 5

// ScaledTo is the production distribution's shape shrunk (or grown) so that
// its cap is max: for tests and devnets that cannot wait minutes.
func (d ReceiptDelay) ScaledTo(max time.Duration) ReceiptDelay {
	if d.Max <= 0 || max <= 0 {
		return d
	}
	f := float64(max) / float64(d.Max)
	return ReceiptDelay{Floor: time.Duration(float64(d.Floor) * f), Scale: time.Duration(float64(d.Scale) * f), Max: max}
}

// Validate reports a distribution that cannot be drawn from.
func (d ReceiptDelay) Validate() error {
	if d.Floor < 0 || d.Scale < 0 || d.Max < d.Floor {
		return fmt.Errorf("receipt delay: want 0 <= floor <= max and scale >= 0, have floor %v, scale %v, max %v", d.Floor, d.Scale, d.Max)
	}
	return nil
}

// span is 1 - exp(-(Max-Floor)/Scale): the untruncated exponential's mass
// below the cap.
func (d ReceiptDelay) span() float64 {
	return -math.Expm1(-float64(d.Max-d.Floor) / float64(d.Scale))
}

// Draw maps u, uniform in [0, 1), to a delay (the inverse of CDF).
func (d ReceiptDelay) Draw(u float64) time.Duration {
	if d.Scale <= 0 || d.Max <= d.Floor {
		return d.Floor
	}
	x := -float64(d.Scale) * math.Log1p(-u*d.span())
	return min(d.Floor+time.Duration(x), d.Max)
}

// CDF is the probability that a delay is at most x.
func (d ReceiptDelay) CDF(x time.Duration) float64 {
	switch {
	case x < d.Floor:
		return 0
	case x >= d.Max || d.Scale <= 0:
		return 1
	}
	return -math.Expm1(-float64(x-d.Floor)/float64(d.Scale)) / d.span()
}

// Mean is the distribution's mean.
func (d ReceiptDelay) Mean() time.Duration {
	if d.Scale <= 0 || d.Max <= d.Floor {
		return d.Floor
	}
	t, s := float64(d.Max-d.Floor), float64(d.Scale)
	// E[X | X <= t] for an exponential of mean s.
	m := s - t*math.Exp(-t/s)/d.span()
	return d.Floor + time.Duration(m)
}

// cryptoUniform is a uniform draw in [0, 1) from crypto/rand: when a
// receipt leaves must not be predictable from anything an observer knows.
func cryptoUniform() float64 {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<53))
	if err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return float64(n.Int64()) / (1 << 53)
}

// receiptBatch is the receipts of one kind owed to one peer, as stored
// under its key.
type receiptBatch struct {
	Peer     string        `json:"peer"`
	Kind     envelope.Kind `json:"kind"`
	IDs      []string      `json:"ids"`
	Due      time.Time     `json:"due"`
	Attempts int           `json:"attempts,omitempty"`

	key   string
	timer func() bool // stops the batch's timer; nil when none runs
}

const receiptPrefix = "receipts/"

// receiptKey names a batch in the KV: one per batch (not per peer), so a
// batch being sent and the next one for the same peer never share a key.
func receiptKey() string {
	var b [12]byte
	rand.Read(b[:])
	return receiptPrefix + hex.EncodeToString(b[:])
}

// receiptScheduler holds the owed receipts and their timers.
type receiptScheduler struct {
	kv        KV
	log       *slog.Logger
	now       func() time.Time
	dist      ReceiptDelay
	uniform   func() float64
	afterFunc func(time.Duration, func()) func() bool
	// send queues one receipt (up to envelope.MaxRefs IDs) durably.
	send func(ctx context.Context, peer string, kind envelope.Kind, ids []string) error

	mu      sync.Mutex
	loaded  bool
	open    map[string]*receiptBatch // by peer and kind: the batch still taking IDs
	all     map[string]*receiptBatch // by key: every batch not yet queued
	ctx     context.Context          // set while running
	running bool
	wg      sync.WaitGroup // timers firing
}

func batchSlot(peer string, kind envelope.Kind) string { return fmt.Sprintf("%d/%s", kind, peer) }

// loadLocked reads the stored batches once.
func (s *receiptScheduler) loadLocked() {
	if s.loaded {
		return
	}
	s.loaded = true
	s.open, s.all = map[string]*receiptBatch{}, map[string]*receiptBatch{}
	keys, err := s.kv.List(receiptPrefix)
	if err != nil {
		s.log.Error("load owed receipts", "err", err)
		return
	}
	for _, k := range keys {
		v, ok, err := s.kv.Get(k)
		if err != nil || !ok {
			continue
		}
		b := new(receiptBatch)
		if err := json.Unmarshal(v, b); err != nil || len(b.IDs) == 0 {
			s.kv.Delete(k)
			continue
		}
		b.key = k
		s.all[k] = b
		// A reloaded batch takes no more IDs: it keeps the time it was
		// due, and what is owed now starts a batch of its own.
	}
}

// owe adds ids to the batch owed to peer for kind, starting the batch (and
// drawing its delay) if there is none.
func (s *receiptScheduler) owe(peer string, kind envelope.Kind, ids []string) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked()
	slot := batchSlot(peer, kind)
	b := s.open[slot]
	fresh := b == nil
	if fresh {
		b = &receiptBatch{Peer: peer, Kind: kind, Due: s.now().Add(s.dist.Draw(s.uniform())), key: receiptKey()}
	}
	added := false
	for _, id := range ids {
		if len(b.IDs) >= maxBatchIDs {
			s.log.Debug("receipt batch full", "peer", peer, "kind", kind)
			break
		}
		if !slices.Contains(b.IDs, id) {
			b.IDs = append(b.IDs, id)
			added = true
		}
	}
	if !added {
		return
	}
	if err := s.saveLocked(b); err != nil {
		s.log.Error("store owed receipts", "err", err)
	}
	if fresh {
		s.open[slot] = b
		s.all[b.key] = b
		s.armLocked(b)
	}
}

func (s *receiptScheduler) saveLocked(b *receiptBatch) error {
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return s.kv.Put(b.key, v)
}

// armLocked starts b's timer if the scheduler runs.
func (s *receiptScheduler) armLocked(b *receiptBatch) {
	if !s.running || b.timer != nil {
		return
	}
	key := b.key
	b.timer = s.afterFunc(max(b.Due.Sub(s.now()), 0), func() { s.fire(key) })
}

// start schedules every stored batch and the ones owed from now on, until
// ctx ends; stop waits for the batches being sent.
func (s *receiptScheduler) start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked()
	s.ctx, s.running = ctx, true
	for _, b := range s.all {
		s.armLocked(b)
	}
}

func (s *receiptScheduler) stop() {
	s.mu.Lock()
	s.running = false
	for _, b := range s.all {
		if b.timer != nil {
			b.timer()
			b.timer = nil
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// fire sends the batch under key: it takes no more IDs, its receipts go to
// the outbox, then its stored copy goes. A batch that cannot be queued is
// tried again after a fresh delay, a few times.
func (s *receiptScheduler) fire(key string) {
	s.mu.Lock()
	b := s.all[key]
	if !s.running || b == nil {
		s.mu.Unlock()
		return
	}
	b.timer = nil
	if s.open[batchSlot(b.Peer, b.Kind)] == b {
		delete(s.open, batchSlot(b.Peer, b.Kind))
	}
	ctx := s.ctx
	ids := slices.Clone(b.IDs)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	sent := 0
	var err error
	for sent < len(ids) {
		n := min(len(ids)-sent, envelope.MaxRefs)
		if err = s.send(ctx, b.Peer, b.Kind, ids[sent:sent+n]); err != nil {
			break
		}
		sent += n
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		delete(s.all, key)
		if err := s.kv.Delete(key); err != nil {
			s.log.Error("remove queued receipts", "err", err)
		}
	case ctx.Err() != nil:
		// Shutting down: what is left waits in the database for the
		// next start.
		b.IDs = ids[sent:]
		if err := s.saveLocked(b); err != nil {
			s.log.Error("store owed receipts", "err", err)
		}
	case b.Attempts+1 >= maxReceiptAttempts:
		s.log.Warn("giving up on receipts", "peer", short(b.Peer), "kind", b.Kind, "err", err)
		delete(s.all, key)
		if err := s.kv.Delete(key); err != nil {
			s.log.Error("remove owed receipts", "err", err)
		}
	default:
		b.IDs = ids[sent:]
		b.Attempts++
		b.Due = s.now().Add(s.dist.Draw(s.uniform()))
		s.log.Info("could not queue receipts; will retry", "peer", short(b.Peer), "attempt", b.Attempts, "err", err)
		if err := s.saveLocked(b); err != nil {
			s.log.Error("store owed receipts", "err", err)
		}
		s.armLocked(b)
	}
}

// dropKind forgets every batch of kind that is not being sent (read
// receipts, when the user turns them off).
func (s *receiptScheduler) dropKind(kind envelope.Kind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked()
	for key, b := range s.all {
		if b.Kind != kind || (s.running && b.timer == nil) {
			continue // being sent right now
		}
		if b.timer != nil {
			b.timer()
		}
		delete(s.all, key)
		if s.open[batchSlot(b.Peer, b.Kind)] == b {
			delete(s.open, batchSlot(b.Peer, b.Kind))
		}
		if err := s.kv.Delete(key); err != nil {
			s.log.Error("remove owed receipts", "err", err)
		}
	}
}

// pending is the number of message IDs owed, by kind (for tests and status).
func (s *receiptScheduler) pending() map[envelope.Kind]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked()
	out := map[envelope.Kind]int{}
	for _, b := range s.all {
		out[b.Kind] += len(b.IDs)
	}
	return out
}

// receiptSched is the engine's scheduler, made on first use.
func (e *Engine) receiptSched() *receiptScheduler {
	e.receiptsOnce.Do(func() {
		dist := e.cfg.ReceiptDelay
		if dist == (ReceiptDelay{}) {
			dist = defaultReceiptDelay
		}
		if err := dist.Validate(); err != nil {
			e.log.Error("bad receipt delay; using the default", "err", err)
			dist = DefaultReceiptDelay
		}
		e.receipts = &receiptScheduler{
			kv: e.kv, log: e.log, now: e.now, dist: dist, uniform: cryptoUniform,
			afterFunc: func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop },
			send:      e.sendReceipt,
		}
	})
	return e.receipts
}

// oweReceipts owes peer receipts of kind for message IDs (hex); they leave
// batched and late (see receiptScheduler). Read receipts are dropped when
// the user turned them off.
func (e *Engine) oweReceipts(peer string, kind envelope.Kind, ids []string) {
	if len(ids) == 0 {
		return
	}
	if kind == envelope.KindReceiptRead {
		st, err := e.Settings()
		if err != nil {
			e.log.Warn("read settings", "err", err)
		}
		if err != nil || !st.ReadReceipts {
			return
		}
	}
	e.receiptSched().owe(peer, kind, ids)
}

// receiptLoop runs the receipt timers while the engine runs.
func (e *Engine) receiptLoop(ctx context.Context) {
	s := e.receiptSched()
	s.start(ctx)
	<-ctx.Done()
	s.stop()
}

// sendReceipt queues one receipt for ids (hex, at most envelope.MaxRefs).
// A receipt to an account blocked since, or to an invalid ID, is dropped.
func (e *Engine) sendReceipt(ctx context.Context, peer string, kind envelope.Kind, ids []string) error {
	if gid, ok := strings.CutPrefix(peer, groupPeerPrefix); ok {
		return e.sendGroupReceipt(gid, kind, ids)
	}
	aid, err := identity.ParseAccountID(peer)
	if err != nil {
		return nil
	}
	if c, _ := e.d.contact(peer); c != nil && c.State == ContactBlocked {
		return nil
	}
	refs := make([]envelope.MessageID, 0, len(ids))
	for _, h := range ids {
		var id envelope.MessageID
		if b, err := hex.DecodeString(h); err == nil && len(b) == len(id) {
			copy(id[:], b)
			refs = append(refs, id)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	c, err := envelope.NewReceipt(nil, kind, refs, e.now())
	if err != nil {
		return err
	}
	return e.enqueue(ctx, aid, c, nil)
}

// Settings are the user's choices kept in the account's database.
type Settings struct {
	// ReadReceipts: tell contacts when their messages were read (default
	// on). Off, reading marks messages read here only. Delivered receipts
	// are sent either way, delayed and batched.
	ReadReceipts bool `json:"read_receipts"`
	// TypingIndicators: tell contacts while you type, and show when they
	// do (default on). Off while ReadReceipts is off.
	TypingIndicators bool `json:"typing_indicators"`
}

// DefaultSettings are the settings of a new account.
func DefaultSettings() Settings { return Settings{ReadReceipts: true, TypingIndicators: true} }

const settingsKey = "settings"

// Settings returns the user's settings (the defaults for what was never
// set).
func (e *Engine) Settings() (Settings, error) {
	st := DefaultSettings()
	v, ok, err := e.kv.Get(settingsKey)
	if err != nil {
		return st, fmt.Errorf("read settings: %w", err)
	}
	if ok {
		if err := json.Unmarshal(v, &st); err != nil {
			return DefaultSettings(), fmt.Errorf("read settings: %w", err)
		}
	}
	return st, nil
}

// SetSettings stores st. Turning read receipts off also drops the read
// receipts still owed.
func (e *Engine) SetSettings(st Settings) (Settings, error) {
	v, err := json.Marshal(st)
	if err != nil {
		return Settings{}, err
	}
	if err := e.kv.Put(settingsKey, v); err != nil {
		return Settings{}, fmt.Errorf("save settings: %w", err)
	}
	if !st.ReadReceipts {
		e.receiptSched().dropKind(envelope.KindReceiptRead)
	}
	return st, nil
}
