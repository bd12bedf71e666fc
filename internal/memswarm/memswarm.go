// Package memswarm is an in-memory stand-in for the Umbra network, for
// tests: one store of mailboxes that every client shares, with the checks
// a node makes on what it is given (sizes, TTLs, times, the public
// namespace's owner signature, first-contact proof-of-work, quotas), TTL
// expiry by an injectable clock, long-polls that wake when a message
// lands, deletion by the mailbox key (a deleted message stored again reads
// as delivered, as the nodes answer with the owner's signed deletion), and
// hooks to count requests, fail the next ones and see what a node sees.
//
// A Client implements client.Network, so an engine runs on it through
// client.Config.Network. Inside a testing/synctest bubble, time.Now is the
// bubble's fake clock: TTLs, long-poll waits and the engine's schedules all
// run on virtual time, so a test of minutes takes milliseconds.
//
// It is one consistent store, not a swarm of replicas: it does not model
// replication, sync between nodes, onion paths or node failures other than
// the ones a test injects.
package memswarm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/umbra-im/umbra/internal/files"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/store"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

// Op is a kind of request a client makes.
type Op string

// The requests a Client makes.
const (
	OpPut        Op = "put" // a store (PutReq or Publish)
	OpGet        Op = "get"
	OpDelete     Op = "delete"
	OpReadPublic Op = "readpublic"
	OpReadDrop   Op = "readdrop"
	OpRefresh    Op = "refresh"
	OpPutShare   Op = "putshare"
	OpGetShare   Op = "getshare"
)

// Options configures a Swarm. Zero values are the nodes' defaults.
type Options struct {
	// Now is the nodes' clock (time.Now: the fake clock inside a synctest
	// bubble).
	Now func() time.Time
	// MaxMailboxMessages and MaxMailboxBytes bound a mailbox's messages
	// outside the public and request namespaces; PublicQuota and
	// RequestQuota bound those two (node.DefaultConfig's).
	MaxMailboxMessages int
	MaxMailboxBytes    int64
	PublicQuota        store.Quota
	RequestQuota       store.Quota
	DropQuota          store.Quota
	// ShareNodes is the number of nodes that store file shares (12 if
	// zero): Swarm.Shares.
	ShareNodes int
}

// Seen is one request as a node of the mailbox's swarm sees it: what it
// is, on which mailbox, with what times and sizes, at what time. Client is
// the label of the Client that made it, for tests: through onion paths a
// node does not know it.
type Seen struct {
	At        time.Time
	Client    string
	Op        Op
	Mailbox   mailbox.ID
	Namespace int32         // OpPut
	Timestamp int64         // OpPut: unix ms, as stored
	Expiry    int64         // OpPut: unix ms, as stored
	Size      int           // OpPut: data bytes; OpDelete: hashes named
	Wait      time.Duration // OpGet: how long the read may wait
	Err       error         // the refusal, if any
}

type msg struct {
	seq       int64 // arrival order in its box
	hash      [32]byte
	namespace int32
	ts        int64
	expiry    int64
	data      []byte
}

type box struct {
	seq     int64
	msgs    map[[32]byte]*msg
	deleted map[[32]byte]int64 // hash -> expiry: deleted by the owner
	changed chan struct{}      // closed (and replaced) when a message lands
}

// Swarm is the shared in-memory store. Make it inside the synctest bubble
// that uses it.
type Swarm struct {
	opts Options

	mu       sync.Mutex
	boxes    map[mailbox.ID]*box
	counts   map[Op]int
	seen     []Seen
	watchers []func(Seen)

	// Shares are the nodes that hold file shares (tests take them down
	// or make them lie).
	Shares *files.MemNet
}

// New makes an empty swarm.
func New(opts Options) *Swarm {
	d := node.DefaultConfig()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxMailboxMessages <= 0 {
		opts.MaxMailboxMessages = d.MaxMailboxMessages
	}
	if opts.MaxMailboxBytes <= 0 {
		opts.MaxMailboxBytes = d.MaxMailboxBytes
	}
	if opts.PublicQuota.Messages <= 0 || opts.PublicQuota.Bytes <= 0 {
		opts.PublicQuota = d.PublicQuota
	}
	if opts.RequestQuota.Messages <= 0 || opts.RequestQuota.Bytes <= 0 {
		opts.RequestQuota = d.RequestQuota
	}
	if opts.DropQuota.Messages <= 0 || opts.DropQuota.Bytes <= 0 {
		opts.DropQuota = d.DropQuota
	}
	if opts.ShareNodes <= 0 {
		opts.ShareNodes = 12
	}
	shares, _ := files.NewMemNet(opts.ShareNodes)
	return &Swarm{opts: opts, boxes: map[mailbox.ID]*box{}, counts: map[Op]int{}, Shares: shares}
}

// Client is one network client on the swarm (one engine's): it implements
// client.Network. Its hooks (FailNext, Calls) are its own.
type Client struct {
	s     *Swarm
	label string

	mu     sync.Mutex
	counts map[Op]int
	fail   map[Op][]error
	closed bool
	done   chan struct{} // closed by Close: ends waiting reads
}

// Client returns a new client of the swarm, labelled (in Seen) as label.
func (s *Swarm) Client(label string) *Client {
	return &Client{s: s, label: label, counts: map[Op]int{}, fail: map[Op][]error{}, done: make(chan struct{})}
}

// ErrInjected is the failure FailNext injects when given no error.
var ErrInjected = &wire.Error{Code: wire.CodeUnavailable, Msg: "memswarm: injected failure"}

// ErrClosed is what a closed client's requests return.
var ErrClosed = errors.New("memswarm: client closed")

// FailNext makes the next n requests of op by this client fail with err
// (ErrInjected if nil) before they reach the swarm.
func (c *Client) FailNext(op Op, n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for range n {
		c.fail[op] = append(c.fail[op], err)
	}
}

// Calls is how many requests of op this client made (failed ones too).
func (c *Client) Calls(op Op) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[op]
}

// Calls is how many requests of op all clients made.
func (s *Swarm) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op]
}

// Seen returns every request the swarm has seen, in order.
func (s *Swarm) Seen() []Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// Watch calls f for every request from now on, as it is seen (under the
// swarm's lock: f must not call the swarm).
func (s *Swarm) Watch(f func(Seen)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watchers = append(s.watchers, f)
}

// begin counts a request and returns the error to fail it with, if any.
func (c *Client) begin(op Op) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[op]++
	c.s.mu.Lock()
	c.s.counts[op]++
	c.s.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if q := c.fail[op]; len(q) > 0 {
		c.fail[op] = q[1:]
		return q[0]
	}
	return nil
}

// recordLocked keeps what a node saw.
func (s *Swarm) recordLocked(v Seen) {
	s.seen = append(s.seen, v)
	for _, f := range s.watchers {
		f(v)
	}
}

func (s *Swarm) boxLocked(mb mailbox.ID) *box {
	b := s.boxes[mb]
	if b == nil {
		b = &box{msgs: map[[32]byte]*msg{}, deleted: map[[32]byte]int64{}, changed: make(chan struct{})}
		s.boxes[mb] = b
	}
	return b
}

// expireLocked drops what has expired from b, as nodes do.
func (s *Swarm) expireLocked(b *box, now int64) {
	for h, m := range b.msgs {
		if m.expiry <= now {
			delete(b.msgs, h)
		}
	}
	for h, exp := range b.deleted {
		if exp <= now {
			delete(b.deleted, h)
		}
	}
}

// Close ends the client: its waiting reads return, later requests fail.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
	return nil
}

// PutReq stores a prepared message as a node would, with the checks of
// swarmclient.Client.PutReq and node.Node.Store.
func (c *Client) PutReq(ctx context.Context, req *wire.StoreReq) (*swarmclient.PutResult, error) {
	if err := c.begin(OpPut); err != nil {
		return nil, fmt.Errorf("store failed on every swarm node: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(req.Mailbox) != len(mailbox.ID{}) {
		return nil, errors.New("mailbox must be 32 bytes")
	}
	r := *req
	s := c.s
	now := s.opts.Now()
	if r.Timestamp == 0 {
		r.Timestamp = wire.CoarseTime(now.UnixMilli())
	}
	if r.TTL == 0 {
		r.TTL = swarmclient.DefaultTTL.Milliseconds()
	}
	if r.Namespace != wire.PublicNamespace && r.Namespace != wire.RequestNamespace && r.Namespace != wire.DropNamespace {
		// As swarmclient: nothing binds the times, so they are made coarse.
		r.Timestamp, r.TTL = wire.CoarseTime(r.Timestamp), wire.CoarseTTL(r.TTL)
	}
	mb := mailbox.ID(r.Mailbox)
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.storeLocked(mb, &r, now)
	s.recordLocked(Seen{At: now, Client: c.label, Op: OpPut, Mailbox: mb, Namespace: r.Namespace,
		Timestamp: r.Timestamp, Expiry: r.Timestamp + r.TTL, Size: len(r.Data), Err: err})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// storeLocked is node.Node.Store on one consistent store.
func (s *Swarm) storeLocked(mb mailbox.ID, r *wire.StoreReq, now time.Time) (*swarmclient.PutResult, error) {
	if len(r.Data) == 0 {
		return nil, wire.Errorf(wire.CodeBadRequest, "empty message")
	}
	if len(r.Data) > node.MaxMessageSize {
		return nil, wire.Errorf(wire.CodeTooLarge, "message is %d bytes; the limit is %d", len(r.Data), node.MaxMessageSize)
	}
	ttl := time.Duration(r.TTL) * time.Millisecond
	if ttl < time.Second || ttl > node.MaxTTL {
		return nil, wire.Errorf(wire.CodeBadRequest, "TTL must be between 1s and %s", node.MaxTTL)
	}
	if time.UnixMilli(r.Timestamp).Sub(now) > node.MaxFutureSkew {
		return nil, wire.Errorf(wire.CodeBadRequest, "timestamp is in the future; check the clock")
	}
	expiry := r.Timestamp + r.TTL
	if expiry <= now.UnixMilli() {
		return nil, wire.Errorf(wire.CodeBadRequest, "message already expired")
	}
	b := s.boxLocked(mb)
	s.expireLocked(b, now.UnixMilli())
	switch r.Namespace {
	case wire.PublicNamespace:
		if _, err := mailbox.OpenPublic(mb, r.Timestamp, expiry, r.Data); err != nil {
			return nil, wire.Errorf(wire.CodeUnauthorized, "%v", err)
		}
	case wire.RequestNamespace, wire.DropNamespace:
		if r.Namespace == wire.DropNamespace && r.TTL > wire.MaxDropTTL {
			return nil, wire.Errorf(wire.CodeBadRequest, "a drop entry lives at most %s", time.Duration(wire.MaxDropTTL)*time.Millisecond)
		}
		need := mailbox.RequiredRequestWork(countNS(b, r.Namespace))
		if got, _, err := mailbox.RequestWork(mb, r.Timestamp, expiry, r.Data); err != nil || got < need {
			e := wire.Errorf(wire.CodeRateLimited, "first-contact message needs %d bits of proof-of-work, carries %d", need, got)
			e.WorkBits = need
			return nil, e
		}
	}
	h := swarm.MessageHash(mb, r.Namespace, r.Timestamp, expiry, r.Data)
	res := &swarmclient.PutResult{Hash: h, Expiry: time.UnixMilli(expiry)}
	if _, ok := b.deleted[h]; ok {
		// Stored before and since deleted by the owner: the nodes answer
		// with the owner's signed deletion, proof of delivery.
		res.Deleted = true
		return res, nil
	}
	if _, ok := b.msgs[h]; ok {
		res.Receipts = 1
		return res, nil // a duplicate: stored once
	}
	if err := s.quotaLocked(b, r.Namespace, int64(len(r.Data))); err != nil {
		return nil, err
	}
	b.seq++
	b.msgs[h] = &msg{seq: b.seq, hash: h, namespace: r.Namespace, ts: r.Timestamp, expiry: expiry, data: slices.Clone(r.Data)}
	close(b.changed)
	b.changed = make(chan struct{})
	res.Receipts = 1
	return res, nil
}

func countNS(b *box, ns int32) int {
	n := 0
	for _, m := range b.msgs {
		if m.namespace == ns {
			n++
		}
	}
	return n
}

// quotaLocked is the store's quota check: the public and request
// namespaces have their own, the others share the mailbox's.
func (s *Swarm) quotaLocked(b *box, ns int32, size int64) error {
	q := store.Quota{Messages: s.opts.MaxMailboxMessages, Bytes: s.opts.MaxMailboxBytes}
	switch ns {
	case wire.PublicNamespace:
		q = s.opts.PublicQuota
	case wire.RequestNamespace:
		q = s.opts.RequestQuota
	case wire.DropNamespace:
		q = s.opts.DropQuota
	}
	own := ns == wire.PublicNamespace || ns == wire.RequestNamespace || ns == wire.DropNamespace
	var msgs int
	var bytes int64
	for _, m := range b.msgs {
		mine := m.namespace == ns
		if !own {
			mine = m.namespace != wire.PublicNamespace && m.namespace != wire.RequestNamespace && m.namespace != wire.DropNamespace
		}
		if mine {
			msgs++
			bytes += int64(len(m.data))
		}
	}
	if msgs+1 > q.Messages || bytes+size > q.Bytes {
		return wire.Errorf(wire.CodeMailboxFull, "mailbox full: %d messages, %d bytes (limit %d, %d)", msgs, bytes, q.Messages, q.Bytes)
	}
	return nil
}

// Publish stores data in the public namespace of key's mailbox, signed by
// the key, with coarse times (as swarmclient.Client.Publish).
func (c *Client) Publish(ctx context.Context, key *mailbox.Key, ttl time.Duration, data []byte) (*swarmclient.PutResult, error) {
	id := key.ID()
	ts, ttlMs := wire.CoarseTime(c.s.opts.Now().UnixMilli()), wire.CoarseTTL(ttl.Milliseconds())
	req := &wire.StoreReq{Mailbox: id[:], Namespace: wire.PublicNamespace, Timestamp: ts, TTL: ttlMs,
		Data: key.SignPublic(ts, ts+ttlMs, data)}
	return c.PutReq(ctx, req)
}

// Get reads every live message of key's mailbox, sorted by timestamp then
// hash. With none there and wait > 0, it waits until one lands, wait
// passes, ctx ends or the client closes.
func (c *Client) Get(ctx context.Context, key *mailbox.Key, wait time.Duration) ([]swarmclient.Message, error) {
	if err := c.begin(OpGet); err != nil {
		return nil, fmt.Errorf("no swarm node answered: %w", err)
	}
	mb := key.ID()
	c.s.mu.Lock()
	c.s.recordLocked(Seen{At: c.s.opts.Now(), Client: c.label, Op: OpGet, Mailbox: mb, Wait: wait})
	c.s.mu.Unlock()
	return c.longPoll(ctx, mb, wait, func(b *box) []*msg {
		var out []*msg
		for _, m := range b.msgs {
			if m.namespace != wire.DropNamespace { // kept apart, as the nodes do
				out = append(out, m)
			}
		}
		return out
	})
}

// GetSince returns the messages of key's mailbox that arrived after cur's
// cursor (all of them for a new cursor), waiting up to wait for one when
// there is none, and moves the cursor.
func (c *Client) GetSince(ctx context.Context, key *mailbox.Key, cur *swarmclient.DropCursor, wait time.Duration) ([]swarmclient.Message, error) {
	if err := c.begin(OpGet); err != nil {
		return nil, fmt.Errorf("no swarm node answered: %w", err)
	}
	mb := key.ID()
	c.s.mu.Lock()
	c.s.recordLocked(Seen{At: c.s.opts.Now(), Client: c.label, Op: OpGet, Mailbox: mb, Wait: wait})
	c.s.mu.Unlock()
	return c.longPoll(ctx, mb, wait, func(b *box) []*msg {
		return pickSince(b, cur, func(m *msg) bool { return m.namespace != wire.DropNamespace })
	})
}

// pickSince picks the messages of b that keep accepts and that arrived
// after cur's cursor, and moves the cursor to the last of them.
func pickSince(b *box, cur *swarmclient.DropCursor, keep func(*msg) bool) []*msg {
	const key = "memswarm" // one node: one cursor
	var after int64
	if h := cur.After(key); len(h) == 32 {
		if m, ok := b.msgs[[32]byte(h)]; ok {
			after = m.seq
		}
	}
	var news []*msg
	for _, m := range b.msgs {
		if keep(m) && m.seq > after {
			news = append(news, m)
		}
	}
	if len(news) > 0 {
		last := slices.MaxFunc(news, func(x, y *msg) int { return int(x.seq - y.seq) })
		cur.Set(key, last.hash[:])
	}
	return news
}

// longPoll returns what pick chooses of mb's live messages (under the
// lock), sorted by timestamp then hash; if it chooses none and wait > 0,
// it waits that long for a message to land in mb and picks again.
func (c *Client) longPoll(ctx context.Context, mb mailbox.ID, wait time.Duration, pick func(*box) []*msg) ([]swarmclient.Message, error) {
	s := c.s
	var timer <-chan time.Time
	for {
		s.mu.Lock()
		b := s.boxLocked(mb)
		s.expireLocked(b, s.opts.Now().UnixMilli())
		picked := pick(b)
		out := make([]swarmclient.Message, 0, len(picked))
		for _, m := range picked {
			out = append(out, swarmclient.Message{Hash: m.hash, Namespace: m.namespace,
				Timestamp: time.UnixMilli(m.ts), Expiry: time.UnixMilli(m.expiry), Data: slices.Clone(m.data)})
		}
		changed := b.changed
		s.mu.Unlock()
		if len(out) > 0 || wait <= 0 {
			sortMessages(out)
			return out, nil
		}
		if timer == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-changed:
		case <-timer:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			return nil, ErrClosed
		}
	}
}

func sortMessages(ms []swarmclient.Message) {
	slices.SortFunc(ms, func(a, b swarmclient.Message) int {
		if c := a.Timestamp.Compare(b.Timestamp); c != 0 {
			return c
		}
		return slices.Compare(a.Hash[:], b.Hash[:])
	})
}

// Delete removes messages from key's mailbox and remembers them as
// deleted by the owner until they would have expired. It returns how many
// live messages it removed.
func (c *Client) Delete(ctx context.Context, key *mailbox.Key, hashes [][32]byte) (int, error) {
	if err := c.begin(OpDelete); err != nil {
		return 0, fmt.Errorf("delete failed on every swarm node: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	mb := key.ID()
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	s.recordLocked(Seen{At: now, Client: c.label, Op: OpDelete, Mailbox: mb, Size: len(hashes)})
	b := s.boxLocked(mb)
	s.expireLocked(b, now.UnixMilli())
	for _, h := range hashes {
		if m, ok := b.msgs[h]; ok && m.namespace == wire.DropNamespace {
			return 0, wire.Errorf(wire.CodeBadRequest, "drop entries cannot be deleted")
		}
	}
	n := 0
	for _, h := range hashes {
		if m, ok := b.msgs[h]; ok {
			delete(b.msgs, h)
			b.deleted[h] = m.expiry
			n++
		}
	}
	return n, nil
}

// ReadPublic returns the payloads of the newest (at most 16) owner-signed
// messages of mb's public namespace, oldest first.
func (c *Client) ReadPublic(ctx context.Context, mb mailbox.ID) ([]swarmclient.Message, error) {
	if err := c.begin(OpReadPublic); err != nil {
		return nil, fmt.Errorf("no swarm node answered: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	s.recordLocked(Seen{At: now, Client: c.label, Op: OpReadPublic, Mailbox: mb})
	b := s.boxLocked(mb)
	s.expireLocked(b, now.UnixMilli())
	var out []swarmclient.Message
	for _, m := range b.msgs {
		if m.namespace != wire.PublicNamespace {
			continue
		}
		payload, err := mailbox.OpenPublic(mb, m.ts, m.expiry, m.data)
		if err != nil {
			continue
		}
		out = append(out, swarmclient.Message{Hash: m.hash, Namespace: m.namespace,
			Timestamp: time.UnixMilli(m.ts), Expiry: time.UnixMilli(m.expiry), Data: slices.Clone(payload)})
	}
	sortMessages(out)
	if len(out) > 16 {
		out = out[len(out)-16:]
	}
	return out, nil
}

// ReadDropSince returns the drop entries of mb that arrived after cur's
// cursor (all of them for a new cursor), waiting up to wait for one when
// there is none, and moves the cursor. Nobody authenticates: anyone may
// read a drop mailbox.
func (c *Client) ReadDropSince(ctx context.Context, mb mailbox.ID, cur *swarmclient.DropCursor, wait time.Duration) ([]swarmclient.Message, error) {
	if err := c.begin(OpReadDrop); err != nil {
		return nil, fmt.Errorf("no swarm node answered: %w", err)
	}
	c.s.mu.Lock()
	c.s.recordLocked(Seen{At: c.s.opts.Now(), Client: c.label, Op: OpReadDrop, Mailbox: mb, Wait: wait})
	c.s.mu.Unlock()
	return c.longPoll(ctx, mb, wait, func(b *box) []*msg {
		return pickSince(b, cur, func(m *msg) bool { return m.namespace == wire.DropNamespace })
	})
}

// Refresh stands for a node list refresh: there is no list to refresh.
func (c *Client) Refresh(ctx context.Context) error {
	if err := c.begin(OpRefresh); err != nil {
		return err
	}
	return ctx.Err()
}

// Messages is how many live messages mb holds, by namespace (for tests).
func (s *Swarm) Messages(mb mailbox.ID) map[int32]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int32]int{}
	if b := s.boxes[mb]; b != nil {
		s.expireLocked(b, s.opts.Now().UnixMilli())
		for _, m := range b.msgs {
			out[m.namespace]++
		}
	}
	return out
}

// ShareNodes is the IDs of the share nodes.
func (c *Client) ShareNodes() [][]byte { return c.s.Shares.ShareNodes() }

// PutShare stores a share on a share node.
func (c *Client) PutShare(ctx context.Context, node []byte, req *wire.SharePutReq) (*wire.SharePutResp, error) {
	if err := c.begin(OpPutShare); err != nil {
		return nil, err
	}
	return c.s.Shares.PutShare(ctx, node, req)
}

// GetShare reads a share from a share node.
func (c *Client) GetShare(ctx context.Context, node []byte, a files.Address) ([]byte, error) {
	if err := c.begin(OpGetShare); err != nil {
		return nil, err
	}
	return c.s.Shares.GetShare(ctx, node, a)
}

// VerifyReceipt checks a share node's receipt.
func (c *Client) VerifyReceipt(node []byte, a files.Address, expiry int64, sig []byte) bool {
	return c.s.Shares.VerifyReceipt(node, a, expiry, sig)
}
