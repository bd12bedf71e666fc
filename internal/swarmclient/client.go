// Package swarmclient talks to the swarms of the node network: it learns
// the node list from bootstrap nodes on a first run (or from a list kept
// by the caller, refreshed through onion paths), stores messages with
// verified quorum receipts, and reads mailboxes from their swarms. Requests
// travel onion paths; a direct mode stays for debugging and tests.
package swarmclient

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/privnet"
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
	f, err := OpenNetworkFile(path)
	if err != nil {
		return nil, err
	}
	return f.Addrs, nil
}

// OpenNetworkFile reads a network file a client joins through: its
// addresses (at least one) and, for a private network, its name and
// operator key, the bootstrap signature checked (privnet.ReadFile).
func OpenNetworkFile(path string) (*privnet.File, error) {
	f, err := privnet.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(f.Addrs) == 0 {
		return nil, fmt.Errorf("network file %s lists no node addresses", path)
	}
	return f, nil
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
