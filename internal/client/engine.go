package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/umbra-im/umbra/internal/cover"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/ratchet"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

// Config configures an engine. Zero values are the defaults.
type Config struct {
	Home       string
	Passphrase string
	Direct     bool // talk to swarms directly instead of through onion paths (debugging)
	Offline    bool // do not join the network: local operations only (no Start)
	Logger     *slog.Logger
	Now        func() time.Time
	// EpochPeriod is how often the inbox and the request bucket move to
	// new addresses (24h; whole seconds).
	EpochPeriod time.Duration
	// Schedule spaces the engine's reads (DefaultSchedule when zero).
	Schedule Schedule
	// RequestBuckets is how many request buckets this account's card
	// spreads first contacts over (DefaultRequestBuckets when zero).
	RequestBuckets uint32
	// Privacy is PrivacyStandard (when empty) or PrivacyStrict.
	Privacy string
	// Cover is the strict mode's schedule (DefaultStrictCover when zero;
	// its callbacks are the engine's).
	Cover cover.Config
	// MessageTTL is how long the network keeps a message for an offline
	// recipient (14 days).
	MessageTTL time.Duration
	// ReceiptDelay is how long a receipt waits, batched with the others
	// owed to the same peer, before it is sent (DefaultReceiptDelay).
	ReceiptDelay ReceiptDelay
	// Network, if set, is the network the engine uses instead of dialling
	// the nodes of the home's network file (tests give an in-memory swarm,
	// internal/memswarm). The engine closes it on Close. Offline wins.
	Network Network
}

// Engine is a running client for one account.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	lock    *os.File
	kv      KV
	closeKV func() error
	d       db
	acct    *identity.Account
	net     Network // nil when offline
	bus     bus

	mu       sync.Mutex                // guards sessions, prekeys and the read-modify-write of stored records
	sessions map[string]*sessionRecord // by peer account ID, loaded on use
	st       *strictState              // the strict mode's schedule; nil in the standard mode
	prekeys  *ratchet.Prekeys

	clockMu   sync.Mutex
	lastClock time.Time

	kick      chan struct{} // wakes the outbox
	republish chan struct{} // wakes the prekey publisher
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	receipts     *receiptScheduler // see receipts.go; made on first use
	receiptsOnce sync.Once

	// Groups (groups.go): gmu guards the loaded groups and is taken
	// before mu, never while holding it.
	gmu      sync.Mutex
	groups   map[string]*groupState
	gcursors map[[32]byte]*swarmclient.DropCursor
	gkick    chan struct{}
	goutMu   sync.Mutex // serializes drainGroupOut
	// gfastUntil: the replaced mailboxes are read often until then.
	gfastUntil time.Time

	fkick    [2]chan struct{} // wake the file runners, uploads and downloads (files.go)
	fsending sync.Map         // IDs of files SendFile is reading in

	exp        expirer      // disappearing messages, see timer.go
	search     *searchIndex // see search.go; made on first use
	searchOnce sync.Once
}

func (c *Config) defaults() {
	if c.Home == "" {
		c.Home = DefaultHome()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.EpochPeriod == 0 {
		c.EpochPeriod = 24 * time.Hour
	}
	if c.MessageTTL == 0 {
		c.MessageTTL = 14 * 24 * time.Hour
	}
	if c.Schedule == (Schedule{}) {
		c.Schedule = DefaultSchedule()
	}
	if c.RequestBuckets == 0 {
		c.RequestBuckets = DefaultRequestBuckets
	}
	if c.Privacy == "" {
		c.Privacy = PrivacyStandard
	}
}

// validate checks a configuration after defaults.
func (c *Config) validate() error {
	if c.Privacy != PrivacyStandard && c.Privacy != PrivacyStrict {
		return fmt.Errorf("client: privacy mode %q: want %q or %q", c.Privacy, PrivacyStandard, PrivacyStrict)
	}
	if c.EpochPeriod < time.Second || c.EpochPeriod%time.Second != 0 {
		return fmt.Errorf("client: epoch period %v is not a whole number of seconds", c.EpochPeriod)
	}
	return c.Schedule.Validate()
}

// Open locks the home, opens its database and joins the network. Call Start
// to begin sending and receiving, and Close when done.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if !Exists(cfg.Home) {
		return nil, ErrNoAccount
	}
	lock, err := lockHome(cfg.Home)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, lock: lock, sessions: map[string]*sessionRecord{},
		kick: make(chan struct{}, 1), republish: make(chan struct{}, 1), gkick: make(chan struct{}, 1), fkick: [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}}
	e.bus.hook = e.searchHook
	ok := false
	defer func() {
		if !ok {
			e.closeLocal()
		}
	}()
	if e.kv, e.closeKV, err = openKV(cfg.Home, cfg.Passphrase); err != nil {
		return nil, err
	}
	e.d = db{e.kv}
	if e.acct, err = loadAccount(e.kv); err != nil {
		return nil, err
	}
	if e.prekeys, err = loadPrekeys(e.kv, e.acct); err != nil {
		return nil, err
	}
	switch {
	case cfg.Offline:
	case cfg.Network != nil:
		e.net = cfg.Network
	default:
		nf, err := ReadNetwork(cfg.Home)
		if err != nil {
			return nil, err
		}
		e.forgetOtherNetwork(nf)
		o := e.netOptions()
		o.Operator = nf.Operator // a private network: only nodes on its signed allow-list
		c, err := swarmclient.Dial(ctx, nf.Addrs, o)
		if err != nil {
			return nil, e.dialError(nf, err)
		}
		e.net = c
		e.keepGuards()
	}
	ok = true
	return e, nil
}

// Start begins the engine's loops: outbox, inbox, prekey publication.
// An offline engine does not start.
func (e *Engine) Start() {
	if e.net == nil {
		return
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if e.strict() {
		e.startStrict() // reads happen at its fetch ticks
	} else {
		e.goLoop(e.inboxLoop)
	}
	e.goLoop(e.outboxLoop)
	e.goLoop(e.catchUpLoop)
	e.goLoop(e.prekeyLoop)
	e.goLoop(e.refreshLoop)
	e.goLoop(e.receiptLoop)
	e.goLoop(e.expireLoop)
	e.goLoop(e.groupLoop)
	e.goLoop(e.fileLoop)
}

func (e *Engine) goLoop(f func(context.Context)) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f(e.ctx)
	}()
}

// Close stops the loops and releases the home.
func (e *Engine) Close() error {
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	if e.net != nil {
		e.net.Close()
	}
	return e.closeLocal()
}

func (e *Engine) closeLocal() error {
	var err error
	if e.closeKV != nil {
		err = e.closeKV()
		e.closeKV = nil
	}
	if e.lock != nil {
		e.lock.Close()
		e.lock = nil
	}
	return err
}

// AccountID is the user's account ID.
func (e *Engine) AccountID() string { return e.acct.ID().String() }

// Network is the engine's client of real nodes (paths, node list), nil
// when it is offline or runs on an injected Config.Network.
func (e *Engine) Network() *swarmclient.Client {
	c, _ := e.net.(*swarmclient.Client)
	return c
}

// Subscribe returns a channel of events and a function to stop.
func (e *Engine) Subscribe() (<-chan Event, func()) { return e.bus.subscribe() }

func (e *Engine) now() time.Time { return e.cfg.Now() }

func newMessageID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// refreshLoop refreshes the node list every few minutes, through onion
// paths while the list is fresh (swarmclient.Client.Refresh); each new
// list is kept in the database (netOptions).
func (e *Engine) refreshLoop(ctx context.Context) {
	t := time.NewTicker(3 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.do(ctx, cover.Fetch, e.net.Refresh); err != nil {
				e.log.Warn("refresh node list", "err", err)
			}
		}
	}
}

// ErrUnknownContact is returned when sending to someone not in contacts.
var ErrUnknownContact = errors.New("not in your contacts: add them first with 'umbra contacts add ID'")
