// Package swarmclient talks to the swarms of the node network: it learns
// the node list from bootstrap nodes on a first run (or from a list kept
// by the caller, refreshed through onion paths), stores messages with
// verified quorum receipts, and reads mailboxes from their swarms. Requests
// travel onion paths; a direct mode stays for debugging and tests.
package swarmclient

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/privnet"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// Transport carries one request to a node and its answer back: directly,
// or through an onion path whose exit is that node.
type Transport interface {
	Call(ctx context.Context, target *member.Node, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error
}

// Options configure a client.
type Options struct {
	// Direct sends requests straight to swarm nodes instead of through
	// 3-hop onion paths (for debugging and tests: the node then sees the
	// client's address).
	Direct bool
	// Operator, if set (a private network's file names it), keeps only
	// records of nodes on the newest allow-list, signed by this key, that
	// the answering nodes return with the node list.
	Operator ed25519.PublicKey
	// Mix, if set, asks the middle and exit of every onion path to hold
	// each request for a random delay (Loopix; the strict privacy mode).
	Mix *onion.MixDelays
	// Stored is the node list kept from an earlier run (NodeList). When
	// it is fresh and large enough (Usable), the client starts from it
	// and refreshes it through onion paths: no bootstrap node is dialled
	// directly. Every record is verified again (signature, admission
	// proof-of-work, network); records that fail are dropped.
	Stored *NodeList
	// Guards are the onion guards kept from an earlier run, set before
	// the first request so that the first refresh already uses them.
	Guards []peer.ID
	// OnRefresh, if set, is called with the new list after every
	// successful refresh, and when a node is found unreachable or answers
	// again (unreachable.go), to keep it for the next run. It must not
	// call back into the client's refresh, and may be called concurrently.
	OnRefresh func(NodeList)
	// Now is the clock a node list's age is judged by (default
	// time.Now; tests move it).
	Now func() time.Time
}

// Freshness of a node list.
const (
	// MaxListAge is the age beyond which a node list can no longer build
	// onion paths: nodes rotate their onion key every hour and accept the
	// previous one for an hour more, so a key in a list fetched an hour
	// ago may be retired any moment. An older list is refreshed from the
	// bootstrap nodes directly.
	MaxListAge = time.Hour
	// PathHops is the number of nodes on an onion path (guard, middle,
	// exit).
	PathHops = 3
	// maxClockSkew is how far in the future a stored list's time may lie
	// (a clock set back); further, it is not trusted to be fresh.
	maxClockSkew = time.Minute
)

// MinListNodes is how many nodes a list must hold to be used without the
// bootstrap nodes: enough for a 3-hop path and for a whole swarm.
func MinListNodes(p wire.Params) int { return max(PathHops, p.Replication) }

// NodeList is the verified node list as a client keeps it between runs:
// the signed records as the nodes gossip them (re-verified when loaded,
// never trusted as stored), the network's parameters, the nodes a
// majority said are old enough for placements, and when it was fetched.
type NodeList struct {
	Fetched time.Time   `json:"fetched"`
	Params  wire.Params `json:"params"`
	Records [][]byte    `json:"records"`
	Aged    []bool      `json:"aged"` // parallel to Records
	// Unreachable are the nodes found unreachable lately (peer ID to unix
	// ms), asked last by the next run too (unreachable.go).
	Unreachable map[string]int64 `json:"unreachable,omitempty"`
}

// Usable reports whether l is fresh enough at now, and large enough, to
// build onion paths and find swarms without asking a bootstrap node.
func (l *NodeList) Usable(now time.Time) bool {
	return usable(l.Fetched, len(l.Records), l.Params, now)
}

func usable(fetched time.Time, n int, p wire.Params, now time.Time) bool {
	if fetched.IsZero() || fetched.After(now.Add(maxClockSkew)) || now.Sub(fetched) > MaxListAge {
		return false
	}
	return p.Replication > 0 && n >= MinListNodes(p)
}

// Client is a swarm client. It is safe for concurrent use.
type Client struct {
	h         host.Host
	bootstrap []peer.AddrInfo
	tr        Transport
	paths     *onion.PathManager // nil in direct mode

	refreshMu sync.Mutex // one freshView refresh at a time
	onRefresh func(NodeList)
	now       func() time.Time  // judges the list's age
	operator  ed25519.PublicKey // private network: keep only allow-listed nodes

	bootstrapFetches atomic.Int64 // direct node-list fetches from bootstrap nodes

	down unreachable // nodes found unreachable lately

	mu          sync.RWMutex
	lastRefresh time.Time // of the node list
	params      wire.Params
	nodes       map[peer.ID]*member.Node
	list        []*member.Node   // nodes, sorted by peer ID
	aged        map[peer.ID]bool // reachable for the network's minimum age, say most answers
}

// ReadNetworkFile reads a bootstrap file: one multiaddr per line; blank
// lines and lines starting with # are skipped.
func ReadNetworkFile(path string) ([]string, error) {
	f, err := privnet.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(f.Addrs) == 0 {
		return nil, fmt.Errorf("network file %s lists no node addresses", path)
	}
	return f.Addrs, nil
}

// ParseBootstrap turns multiaddrs with /p2p/<id> into dial information.
func ParseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap address %q: %w", s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, fmt.Errorf("bootstrap address %q must end in /p2p/<peer id>", s)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// Dial makes a client with a fresh random libp2p identity (never an
// account key) and loads the node list. Requests then travel 3-hop onion
// paths unless opts.Direct is set. With a usable stored list
// (Options.Stored) the list is refreshed through an onion path; only on a
// first run, with a stale or too small list, or when no node answers
// through the paths, is it fetched from the bootstrap nodes directly.
func Dial(ctx context.Context, bootstrap []string, opts ...Options) (*Client, error) {
	boot, err := ParseBootstrap(bootstrap)
	if err != nil {
		return nil, err
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	h, err := p2p.NewClientHost()
	if err != nil {
		return nil, err
	}
	c := &Client{h: h, bootstrap: boot, onRefresh: o.OnRefresh, now: o.Now, operator: o.Operator}
	if c.now == nil {
		c.now = time.Now
	}
	if o.Direct {
		c.tr = newDirectTransport(h)
	} else {
		c.paths = onion.NewPathManager(c.Nodes)
		c.tr = &onion.Transport{H: h, Paths: c.paths, Mix: o.Mix}
		if len(o.Guards) > 0 {
			c.paths.SetGuards(o.Guards)
		}
	}
	if o.Stored != nil {
		c.restore(*o.Stored, c.now())
	}
	if err := c.refresh(ctx, true); err != nil {
		h.Close()
		return nil, err
	}
	return c, nil
}

// restore installs a stored list, keeping only the records that verify
// (signature, proof-of-work, network and format, with the expiry judged
// at the time the list was fetched). A list from the future is ignored.
func (c *Client) restore(l NodeList, now time.Time) {
	if l.Fetched.After(now.Add(maxClockSkew)) || l.Params.Replication <= 0 {
		return
	}
	nodes := map[peer.ID]*member.Node{}
	aged := map[peer.ID]bool{}
	var list []*member.Node
	for i, raw := range l.Records {
		n, err := member.Open(raw, l.Params, l.Fetched)
		if err != nil || nodes[n.ID] != nil {
			continue
		}
		nodes[n.ID] = n
		list = append(list, n)
		aged[n.ID] = i < len(l.Aged) && l.Aged[i]
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	c.mu.Lock()
	c.params, c.nodes, c.list, c.aged = l.Params, nodes, list, aged
	c.lastRefresh = l.Fetched
	c.mu.Unlock()
	c.down.restore(l.Unreachable, now)
}

// NodeList returns the client's current node list, to keep for the next
// run (see Options.Stored).
func (c *Client) NodeList() NodeList {
	c.mu.RLock()
	defer c.mu.RUnlock()
	l := NodeList{Fetched: c.lastRefresh, Params: c.params,
		Records: make([][]byte, len(c.list)), Aged: make([]bool, len(c.list))}
	for i, n := range c.list {
		l.Records[i] = n.Raw
		l.Aged[i] = c.aged[n.ID]
	}
	if m := c.down.snapshot(c.clock()); len(m) > 0 {
		l.Unreachable = m
	}
	return l
}

// BootstrapFetches counts the node-list fetches this client made directly
// from bootstrap nodes (each one shows the bootstrap node this client's
// address at that moment).
func (c *Client) BootstrapFetches() int { return int(c.bootstrapFetches.Load()) }

// Close releases the client's host.
func (c *Client) Close() error { return c.h.Close() }

// Host is the client's libp2p host.
func (c *Client) Host() host.Host { return c.h }

// Params are the network's parameters as agreed by the bootstrap nodes.
func (c *Client) Params() wire.Params {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.params
}

// Nodes returns the verified live node list, sorted by peer ID.
func (c *Client) Nodes() []*member.Node {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]*member.Node(nil), c.list...)
}

// Paths is the onion path manager (nil in direct mode).
func (c *Client) Paths() *onion.PathManager { return c.paths }

// Refresh asks up to three nodes for the node list and keeps the records
// that a majority of the answers carry (like Session, so one lying node
// cannot steer the client). Each record's signature and proof-of-work are
// checked. While the list is usable (see NodeList.Usable) the nodes are
// asked through the transport (an onion path whose exit is the node
// asked); if none answers, the list is kept and the error returned, unless
// it has gone stale meanwhile. A stale or too small list (a first run) is
// fetched directly from the bootstrap nodes, whose onion keys are not
// known yet.
func (c *Client) Refresh(ctx context.Context) error { return c.refresh(ctx, false) }

// refresh is Refresh; with fallback, a failure through the transport also
// falls back to the bootstrap nodes (at start, when the client cannot go
// on without a fresh list).
func (c *Client) refresh(ctx context.Context, fallback bool) error {
	var viaNodes error
	if c.Usable(c.now()) {
		known := c.Nodes()
		sources := make([]source, 0, len(known))
		for _, n := range known {
			sources = append(sources, source{id: n.ID, node: n})
		}
		if viaNodes = c.refreshFrom(ctx, sources); viaNodes == nil {
			return nil
		}
		if !fallback && c.Usable(c.now()) {
			return viaNodes
		}
	}
	sources := make([]source, 0, len(c.bootstrap))
	for _, b := range c.bootstrap {
		sources = append(sources, source{id: b.ID, boot: b})
	}
	if err := c.refreshFrom(ctx, sources); err != nil {
		if viaNodes != nil {
			return fmt.Errorf("%w; through known nodes: %w", err, viaNodes)
		}
		return err
	}
	return nil
}

// Usable reports whether the client's node list is fresh and large enough
// at now to be refreshed through onion paths (NodeList.Usable).
func (c *Client) Usable(now time.Time) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return usable(c.lastRefresh, len(c.list), c.params, now)
}

// maxListAsks bounds the nodes one refresh asks (answering or not), so a
// list of mostly departed nodes fails in bounded time.
const maxListAsks = 8

// refreshFrom asks three of sources at once (in random order; one that
// fails is replaced by the next, up to maxListAsks in all) for the node
// list and installs the majority's. Asked one after another, each
// unreachable source cost its whole timeout before the next was tried.
func (c *Client) refreshFrom(ctx context.Context, sources []source) error {
	rand.Shuffle(len(sources), func(i, j int) { sources[i], sources[j] = sources[j], sources[i] })
	type answer struct {
		resp wire.NodesResp
	}
	type result struct {
		resp wire.NodesResp
		err  error
	}
	ctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	results := make(chan result, maxListAsks)
	seen := map[peer.ID]bool{}
	next, inflight, asked := 0, 0, 0
	launch := func() bool {
		for ; next < len(sources); next++ {
			s := sources[next]
			if seen[s.id] {
				continue
			}
			seen[s.id] = true
			next++
			inflight++
			asked++
			if s.node == nil {
				c.bootstrapFetches.Add(1)
			}
			go func() {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				var r result
				if s.node != nil {
					r.err = c.tr.Call(cctx, s.node, wire.KindNodesReq, &wire.NodesReq{}, wire.KindNodesResp, &r.resp)
				} else {
					r.err = bootstrapCall(cctx, s.boot, &r.resp)
				}
				results <- r
			}()
			return true
		}
		return false
	}
	for inflight < 3 && asked < maxListAsks && launch() {
	}
	var answers []answer
	var errs []error
	for inflight > 0 {
		r := <-results
		inflight--
		if r.err != nil {
			errs = append(errs, r.err)
			if len(answers)+inflight < 3 && asked < maxListAsks {
				launch()
			}
			continue
		}
		if answers = append(answers, answer{r.resp}); len(answers) == 3 {
			break
		}
	}
	cancelAll()
	if len(answers) == 0 {
		return fmt.Errorf("no node answered for the node list: %w", errors.Join(errs...))
	}
	// Parameters: the majority's.
	pcount := map[wire.Params]int{}
	for _, a := range answers {
		pcount[a.resp.Params]++
	}
	var params wire.Params
	best := 0
	for p, k := range pcount {
		if k > best {
			params, best = p, k
		}
	}
	need := len(answers)/2 + 1
	votes := map[peer.ID]int{}
	agedVotes := map[peer.ID]int{}
	newest := map[peer.ID]*member.Node{}
	now := time.Now()
	minAge := uint64(params.MinAgeMs / 1000)
	var allow *privnet.AllowList
	if len(c.operator) != 0 {
		for _, a := range answers {
			if l, err := privnet.OpenAllowList(a.resp.Allow, c.operator, params.Network); err == nil && (allow == nil || l.Version > allow.Version) {
				allow = l
			}
		}
	}
	for _, a := range answers {
		if a.resp.Params != params {
			continue
		}
		for i, raw := range a.resp.Records {
			n, err := member.Open(raw, params, now)
			if err != nil {
				continue
			}
			if len(c.operator) != 0 && !allow.Allowed(n.ID) {
				continue // not on the operator's list: not a node of this network
			}
			votes[n.ID]++
			if i < len(a.resp.Ages) && a.resp.Ages[i] >= minAge {
				agedVotes[n.ID]++
			}
			if o, ok := newest[n.ID]; !ok || o.Record.Seq < n.Record.Seq {
				newest[n.ID] = n
			}
		}
	}
	nodes := map[peer.ID]*member.Node{}
	aged := map[peer.ID]bool{}
	var list []*member.Node
	for id, k := range votes {
		if k >= need {
			nodes[id] = newest[id]
			list = append(list, newest[id])
			aged[id] = agedVotes[id] >= need
		}
	}
	if len(nodes) == 0 {
		return errors.New("the nodes asked agree on no live node")
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	c.mu.Lock()
	c.params, c.nodes, c.list, c.aged = params, nodes, list, aged
	c.lastRefresh = time.Now()
	c.mu.Unlock()
	if c.onRefresh != nil {
		c.onRefresh(c.NodeList())
	}
	return nil
}

// ranked returns the node list in placement order for mb, by the rule the
// nodes use (member.Place), with the ages most of the nodes asked agree on.
func (c *Client) ranked(mb mailbox.ID) []*member.Node {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return member.Place(mb, c.list, func(id peer.ID) bool { return c.aged[id] }, c.params.Replication)
}

// Ranked returns the node list ordered by placement for mb, as the client
// sees it: the first R are the swarm, the rest fallbacks.
func (c *Client) Ranked(mb mailbox.ID) []*member.Node { return c.ranked(mb) }

// Swarm returns the mailbox's swarm as the client sees it.
func (c *Client) Swarm(mb mailbox.ID) []*member.Node {
	r := c.ranked(mb)
	if rr := c.Params().Replication; len(r) > rr {
		r = r[:rr]
	}
	return r
}

type source struct {
	id   peer.ID
	node *member.Node  // a known node: asked through the transport
	boot peer.AddrInfo // a bootstrap address: asked directly
}

// Call sends one request to node n through the client's transport.
func (c *Client) Call(ctx context.Context, n *member.Node, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error {
	return c.call(ctx, n, reqKind, req, respKind, resp)
}

func (c *Client) call(ctx context.Context, n *member.Node, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error {
	err := c.tr.Call(ctx, n, reqKind, req, respKind, resp)
	c.noted(n, err)
	return err
}

// bootstrapCall asks a bootstrap node for the node list directly, on a
// store session from a throwaway host of its own, so the bootstrap node
// cannot tie this fetch to the client's later onion traffic by peer ID.
func bootstrapCall(ctx context.Context, b peer.AddrInfo, resp *wire.NodesResp) error {
	h, err := p2p.NewClientHost()
	if err != nil {
		return err
	}
	defer h.Close()
	h.Peerstore().AddAddrs(b.ID, b.Addrs, time.Minute)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p2p.DefaultCallTimeout)
		defer cancel()
	}
	s, err := p2p.OpenSession(ctx, h, b.ID, storeProto, 1)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Call(ctx, wire.KindNodesReq, &wire.NodesReq{}, wire.KindNodesResp, resp)
}

// directTransport sends requests straight to the node, each node's on one
// session (a long-lived stream carrying pipelined requests) that the pool
// opens on first use; closing the host ends them.
type directTransport struct {
	h    host.Host
	pool *p2p.Pool
}

// storeProto is the client protocol on sessions.
var storeProto = p2p.Proto{ID: wire.ProtoStoreSession, MaxReq: wire.MaxClientRequest, MaxResp: wire.MaxFrame}

func newDirectTransport(h host.Host) *directTransport {
	return &directTransport{h: h, pool: p2p.NewPool(h, p2p.PoolOptions{})}
}

func (d *directTransport) Call(ctx context.Context, n *member.Node, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error {
	if d.h.Network().Connectedness(n.ID) != network.Connected {
		d.h.Peerstore().AddAddrs(n.ID, n.Addrs, time.Hour)
	}
	return d.pool.Call(ctx, n.ID, storeProto, reqKind, req, respKind, resp)
}

// PutResult is the outcome of an acknowledged store.
type PutResult struct {
	Hash     [32]byte
	Expiry   time.Time
	Receipts int  // verified receipts from distinct nodes of the swarm
	Deleted  bool // stored before, and since read and deleted by the mailbox owner (signed)
}

// Put stores data in mb's swarm and returns once a write quorum holds it,
// having checked the nodes' signed receipts. It tries swarm members in
// random order and fails over to the next on errors.
func (c *Client) Put(ctx context.Context, mb mailbox.ID, namespace int32, ttl time.Duration, data []byte) (*PutResult, error) {
	req := &wire.StoreReq{Mailbox: mb[:], Namespace: namespace, Timestamp: wire.CoarseTime(time.Now().UnixMilli()), TTL: wire.CoarseTTL(ttl.Milliseconds()), Data: data}
	return c.PutReq(ctx, req)
}

// Publish stores data in the public namespace of key's mailbox (where
// anyone can read it), signed by the mailbox key as nodes require there
// (mailbox.SignPublic).
func (c *Client) Publish(ctx context.Context, key *mailbox.Key, ttl time.Duration, data []byte) (*PutResult, error) {
	id := key.ID()
	ts, ttlMs := wire.CoarseTime(time.Now().UnixMilli()), wire.CoarseTTL(ttl.Milliseconds()) // nodes see minutes only
	req := &wire.StoreReq{Mailbox: id[:], Namespace: wire.PublicNamespace, Timestamp: ts, TTL: ttlMs,
		Data: key.SignPublic(ts, ts+ttlMs, data)}
	return c.PutReq(ctx, req)
}

// DefaultTTL is how long a message lives when a store request names no
// TTL (the nodes' default).
const DefaultTTL = 14 * 24 * time.Hour

// PutReq is Put with a prepared request (a fixed timestamp makes retries
// idempotent: the same message gets the same hash). It fills in a missing
// timestamp and TTL, and makes them coarse where nothing binds them (see
// below). It asks the swarm's members in random order and
// moves on to the next when one fails, refuses for a reason another node
// may not share, or answers with an acknowledgement that does not hold
// (see checkAck); a refusal of the message itself (too large, mailbox
// full, not enough first-contact work...) ends it.
func (c *Client) PutReq(ctx context.Context, req *wire.StoreReq) (*PutResult, error) {
	if len(req.Mailbox) != len(mailbox.ID{}) {
		return nil, errors.New("mailbox must be 32 bytes")
	}
	if len(req.Data) == 0 || len(req.Data) > wire.MaxMessageSize {
		return nil, fmt.Errorf("message must be 1 byte to %d KiB, got %d bytes", wire.MaxMessageSize>>10, len(req.Data))
	}
	if req.Timestamp == 0 {
		req.Timestamp = wire.CoarseTime(time.Now().UnixMilli())
	}
	if req.TTL == 0 {
		req.TTL = DefaultTTL.Milliseconds()
	}
	if req.Namespace != wire.PublicNamespace && req.Namespace != wire.RequestNamespace && req.Namespace != wire.DropNamespace {
		// Nodes see times only to the minute (wire.TimeGranularity). Here
		// nothing in the data binds them, so they are rounded here (the
		// same way on every retry). In the public, request and drop
		// namespaces the owner's signature or the first-contact work
		// covers them: the caller must have made them coarse
		// (wire.CoarseTime, CoarseTTL).
		req.Timestamp, req.TTL = wire.CoarseTime(req.Timestamp), wire.CoarseTTL(req.TTL)
	}
	mb := mailbox.ID(req.Mailbox)
	// The acknowledgement must be for this message: its hash is computed
	// here, from what is sent, never taken from the answer.
	want := expectedAck{hash: swarm.MessageHash(mb, req.Namespace, req.Timestamp, req.Timestamp+req.TTL, req.Data), expiry: req.Timestamp + req.TTL}
	members := c.Swarm(mb)
	if len(members) == 0 {
		return nil, errors.New("no live nodes known")
	}
	order := make([]*member.Node, len(members))
	for i, j := range rand.Perm(len(members)) {
		order[i] = members[j]
	}
	c.lastIfUnreachable(order)
	var errs []error
	for _, n := range order {
		var resp wire.StoreResp
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := c.call(cctx, n, wire.KindStoreReq, req, wire.KindStoreResp, &resp)
		cancel()
		if err == nil {
			var res *PutResult
			res, err = c.checkAck(mb, want, &resp)
			if errors.Is(err, errOutOfView) && c.freshView(ctx) {
				// The swarm may have changed (a node came of age, joined
				// or left) since this client's view: look again, then
				// judge the same answer.
				res, err = c.checkAck(mb, want, &resp)
			}
			if err == nil {
				return res, nil
			}
			err = fmt.Errorf("node %s: %w", n.ID.ShortString(), err)
		} else if final(err) {
			return nil, err
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("store failed on every swarm node: %w", errors.Join(errs...))
}

// final reports whether a node's refusal is of the message itself, which
// every node would repeat, rather than a failure of that node.
func final(err error) bool {
	var we *wire.Error
	if !errors.As(err, &we) {
		return false
	}
	switch we.Code {
	case wire.CodeUnavailable, wire.CodeInternal, wire.CodeForbidden, wire.CodeGone:
		return false
	case wire.CodeRateLimited:
		return we.WorkBits > 0 // more first-contact work: the caller must pay it
	}
	return true
}

// expectedAck is what an acknowledgement must be about.
type expectedAck struct {
	hash   [32]byte
	expiry int64
}

// checkAck checks a store answer against the message sent: the hash and
// expiry must be the message's, and it needs W valid receipts from
// distinct nodes that rank within the mailbox's first R+k in this client's
// own view (a node outside the swarm cannot vouch for it). An answer that
// the message was deleted must carry the mailbox owner's signed deletion
// naming it: then it was stored and the recipient has read it.
func (c *Client) checkAck(mb mailbox.ID, want expectedAck, resp *wire.StoreResp) (*PutResult, error) {
	if len(resp.Hash) != 32 || [32]byte(resp.Hash) != want.hash || resp.Expiry != want.expiry {
		return nil, errors.New("the store answer is not about this message")
	}
	res := &PutResult{Hash: want.hash, Expiry: time.UnixMilli(want.expiry)}
	if resp.Deleted != nil {
		if err := checkDeleted(mb, want.hash, resp.Deleted); err != nil {
			return nil, err
		}
		res.Deleted = true
		return res, nil
	}
	placed := c.Ranked(mb)
	r := c.Params().Replication
	msg := swarm.ReceiptBytes(res.Hash, mb, want.expiry)
	seen := map[peer.ID]bool{}
	outside := 0 // valid receipts of nodes outside the scope in this view
	for _, rc := range resp.Receipts {
		id, err := peer.IDFromBytes(rc.Node)
		if err != nil || seen[id] {
			continue
		}
		pub, err := id.ExtractPublicKey()
		if err != nil {
			continue
		}
		if ok, err := pub.Verify(msg, rc.Sig); err != nil || !ok {
			continue
		}
		seen[id] = true
		if !member.InScope(placed, id, r) {
			outside++
			continue
		}
		res.Receipts++
	}
	if w := swarm.Quorum(r); res.Receipts < w {
		err := fmt.Errorf("store answer carries %d valid receipts from the mailbox's swarm; %d needed", res.Receipts, w)
		if outside > 0 {
			err = fmt.Errorf("%w (%d more from nodes outside it in this client's view): %w", err, outside, errOutOfView)
		}
		return nil, err
	}
	return res, nil
}

// errOutOfView marks an acknowledgement short only of receipts from nodes
// this client's node list places outside the mailbox's scope: the list may
// be out of date.
var errOutOfView = errors.New("node list may be stale")

// freshView makes sure the node list is at most 10 seconds old,
// refreshing it if not, and reports whether it is.
func (c *Client) freshView(ctx context.Context) bool {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	c.mu.RLock()
	age := time.Since(c.lastRefresh)
	c.mu.RUnlock()
	if age < 10*time.Second {
		return true
	}
	return c.Refresh(ctx) == nil
}

// checkDeleted checks that t is mb's owner's signed deletion of hash h.
func checkDeleted(mb mailbox.ID, h [32]byte, t *wire.Tomb) error {
	if !bytes.Equal(t.Mailbox, mb[:]) {
		return errors.New("a deletion of another mailbox")
	}
	named := false
	for _, x := range t.Hashes {
		named = named || bytes.Equal(x, h[:])
	}
	if !named {
		return errors.New("a deletion that does not name this message")
	}
	if err := mailbox.VerifySig(mailbox.MethodDelete, mb, t.Timestamp, t.AuthFields(), t.Sig); err != nil {
		return errors.New("a deletion not signed by the mailbox owner")
	}
	return nil
}

// Message is a retrieved message.
type Message struct {
	Hash      [32]byte
	Namespace int32
	Timestamp time.Time
	Expiry    time.Time
	Data      []byte
}

// Get reads every message of the mailbox from its swarm, merging the
// answers of all reachable members (a replica that is behind cannot hide a
// message). If there is none and wait > 0, it long-polls the members until
// one has a message or wait passes. Messages come sorted by sender
// timestamp, then hash.
func (c *Client) Get(ctx context.Context, key *mailbox.Key, wait time.Duration) ([]Message, error) {
	msgs, err := c.gather(ctx, key, 0)
	if err != nil || len(msgs) > 0 || wait <= 0 {
		return msgs, err
	}
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		msgs, err := c.gather(ctx, key, min(left, 25*time.Second))
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// gather asks up to R reachable swarm members in parallel. With wait > 0 it
// returns as soon as one answers with messages.
func (c *Client) gather(ctx context.Context, key *mailbox.Key, wait time.Duration) ([]Message, error) {
	return c.fanOut(ctx, key.ID(), wait, func(ctx context.Context, n *member.Node) ([]wire.Message, error) {
		return c.retrieveAll(ctx, n, key, wait)
	}, func(m *wire.Message) (Message, bool) {
		if len(m.Hash) != 32 {
			return Message{}, false
		}
		return Message{Hash: [32]byte(m.Hash), Namespace: m.Namespace,
			Timestamp: time.UnixMilli(m.Timestamp), Expiry: time.UnixMilli(m.Expiry), Data: m.Data}, true
	})
}

// fanOut asks up to R reachable swarm members of mb in parallel with read
// (the next in rank when one fails), keeps what keep accepts, merged by
// hash, and returns it sorted by sender timestamp, then hash. With
// wait > 0 it returns as soon as one member answers with something kept;
// the others are cancelled.
func (c *Client) fanOut(ctx context.Context, mb mailbox.ID, wait time.Duration,
	read func(context.Context, *member.Node) ([]wire.Message, error), keep func(*wire.Message) (Message, bool)) ([]Message, error) {
	ranked := c.ranked(mb)
	r := c.Params().Replication
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		msgs []wire.Message
		err  error
	}
	results := make(chan result, len(ranked))
	next, inflight, answered := 0, 0, 0
	launch := func() {
		n := ranked[next]
		next++
		inflight++
		go func() {
			msgs, err := read(ctx, n)
			results <- result{msgs, err}
		}()
	}
	for next < len(ranked) && next < r {
		launch()
	}
	byHash := map[[32]byte]Message{}
	var errs []error
	for inflight > 0 {
		res := <-results
		inflight--
		if res.err != nil {
			errs = append(errs, res.err)
			if ctx.Err() == nil && next < len(ranked) && answered+inflight < r {
				launch() // a member is down: ask the next in rank
			}
			continue
		}
		answered++
		for i := range res.msgs {
			if m, ok := keep(&res.msgs[i]); ok {
				byHash[m.Hash] = m
			}
		}
		if wait > 0 && len(byHash) > 0 {
			break
		}
	}
	if answered == 0 {
		return nil, fmt.Errorf("no swarm node answered: %w", errors.Join(errs...))
	}
	out := make([]Message, 0, len(byHash))
	for _, m := range byHash {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Timestamp.Equal(out[j].Timestamp) {
			return out[i].Timestamp.Before(out[j].Timestamp)
		}
		return string(out[i].Hash[:]) < string(out[j].Hash[:])
	})
	return out, nil
}

// retrieveAll pages through one node's copy of the mailbox, ReadBytes a
// page.
func (c *Client) retrieveAll(ctx context.Context, n *member.Node, key *mailbox.Key, wait time.Duration) ([]wire.Message, error) {
	return pages(nil, wait, func(after []byte, wait time.Duration) ([]wire.Message, bool, error) {
		resp, err := c.Retrieve(ctx, n, key, after, wait)
		if err != nil {
			return nil, false, err
		}
		return resp.Messages, resp.More, nil
	})
}

// maxPages bounds the pages one read takes from one node.
const maxPages = 1000

// pages reads page after page from the cursor after (waiting up to wait
// on the first only) until a page says there is no more.
func pages(after []byte, wait time.Duration, page func(after []byte, wait time.Duration) ([]wire.Message, bool, error)) ([]wire.Message, error) {
	var all []wire.Message
	for range maxPages {
		msgs, more, err := page(after, wait)
		if err != nil {
			return nil, err
		}
		all = append(all, msgs...)
		if !more || len(msgs) == 0 {
			return all, nil
		}
		after = msgs[len(msgs)-1].Hash
		wait = 0
	}
	return all, nil
}

// ReadBytes is the byte cap of every read (RetrieveReq.MaxBytes,
// PublicReq.MaxBytes): the answer fits the everyday onion reply
// (onion.Everyday), whatever the mailbox holds; retrieveAll pages for the
// rest. A single message larger than that still comes, alone, in the next
// packet class.
var ReadBytes = onion.ReplyRoom(onion.Everyday) - readAnswerOverhead

// readAnswerOverhead bounds the encoding of a retrieve or public-read
// answer besides its messages: the kind byte, map and array heads, More.
const readAnswerOverhead = 16

// Retrieve sends one signed retrieve request to node n, asking at most
// ReadBytes of messages.
func (c *Client) Retrieve(ctx context.Context, n *member.Node, key *mailbox.Key, after []byte, wait time.Duration) (*wire.RetrieveResp, error) {
	id := key.ID()
	req := &wire.RetrieveReq{Mailbox: id[:], After: after, WaitMs: wait.Milliseconds(), MaxBytes: ReadBytes}
	req.Auth.Timestamp, req.Auth.Sig = key.Sign(mailbox.MethodRetrieve, time.Now(), req.AuthFields())
	cctx, cancel := context.WithTimeout(ctx, wait+15*time.Second)
	defer cancel()
	var resp wire.RetrieveResp
	if err := c.call(cctx, n, wire.KindRetrieveReq, req, wire.KindRetrieveResp, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// MaxDeleteHashes is how many hashes one delete request may name (the
// nodes' limit); Delete sends longer lists in chunks.
const MaxDeleteHashes = 1000

// Delete removes messages from the mailbox's swarm, in requests of at most
// MaxDeleteHashes hashes, each signed by the mailbox key (every replica
// checks that signature before it deletes). It returns how many live
// messages the answering nodes removed.
func (c *Client) Delete(ctx context.Context, key *mailbox.Key, hashes [][32]byte) (int, error) {
	total := 0
	for len(hashes) > 0 {
		part := hashes[:min(len(hashes), MaxDeleteHashes)]
		hashes = hashes[len(part):]
		n, err := c.deleteChunk(ctx, key, part)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (c *Client) deleteChunk(ctx context.Context, key *mailbox.Key, hashes [][32]byte) (int, error) {
	id := key.ID()
	req := &wire.DeleteReq{Mailbox: id[:]}
	for _, h := range hashes {
		req.Hashes = append(req.Hashes, h[:])
	}
	var errs []error
	for _, n := range c.Swarm(id) {
		req.Auth.Timestamp, req.Auth.Sig = key.Sign(mailbox.MethodDelete, time.Now(), req.AuthFields())
		var resp wire.DeleteResp
		if err := c.call(ctx, n, wire.KindDeleteReq, req, wire.KindDeleteResp, &resp); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		return resp.Deleted, nil
	}
	return 0, fmt.Errorf("delete failed on every swarm node: %w", errors.Join(errs...))
}

// ReadPublic reads the public namespace of a mailbox (prekey bundles) from
// its swarm, merging the answers of up to R reachable members. It keeps
// only messages signed by the mailbox key and returns their payloads;
// callers still verify what the payload claims.
func (c *Client) ReadPublic(ctx context.Context, mb mailbox.ID) ([]Message, error) {
	byHash := map[[32]byte]Message{}
	var errs []error
	answered := 0
	for _, n := range c.Swarm(mb) {
		var resp wire.PublicResp
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := c.call(cctx, n, wire.KindPublicReq, &wire.PublicReq{Mailbox: mb[:], MaxBytes: ReadBytes}, wire.KindPublicResp, &resp)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		answered++
		for _, m := range resp.Messages {
			if len(m.Hash) != 32 {
				continue
			}
			payload, err := mailbox.OpenPublic(mb, m.Timestamp, m.Expiry, m.Data)
			if err != nil {
				continue // not the owner's: a node should have refused it
			}
			byHash[[32]byte(m.Hash)] = Message{Hash: [32]byte(m.Hash), Namespace: m.Namespace,
				Timestamp: time.UnixMilli(m.Timestamp), Expiry: time.UnixMilli(m.Expiry), Data: payload}
		}
		if answered >= 2 {
			break
		}
	}
	if answered == 0 {
		return nil, fmt.Errorf("no swarm node answered: %w", errors.Join(errs...))
	}
	out := make([]Message, 0, len(byHash))
	for _, m := range byHash {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Timestamp.Before(out[j].Timestamp) })
	return out, nil
}
