package swarmclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/privnet"
	"github.com/umbra-im/umbra/internal/wire"
)

// The node list: fetched from bootstrap nodes on a first run, refreshed
// through the transport, and placement by it.

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

// NoAnswerError: no node asked for the node list answered. Err joins
// each one's error (libp2p dial errors run to several lines each).
type NoAnswerError struct {
	Asked int // nodes asked
	Err   error
}

func (e *NoAnswerError) Error() string {
	return fmt.Sprintf("no node answered for the node list: %v", e.Err)
}

func (e *NoAnswerError) Unwrap() error { return e.Err }

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
		return &NoAnswerError{Asked: asked, Err: errors.Join(errs...)}
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
