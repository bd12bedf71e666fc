package onion

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/wire"
)

const (
	// Guards is how many persistent guards a client keeps.
	Guards = 2
	// badFor is how long a node that failed on a path is avoided.
	badFor = 30 * time.Second
	// attempts is how many paths one request may try.
	attempts = 3
)

// Subnets are the diversity keys of a node: the /24 (IPv4) or /48 (IPv6)
// of every public address its record lists. Two nodes that share any key
// never share a path, so a record cannot escape the rule by listing a decoy
// address first. Private addresses (10/8, 192.168/16, a docker bridge...)
// count only when a node lists no public one, since unrelated hosts share
// them; loopback addresses count only when there is nothing else, and then
// key by the full IP, so a devnet on 127.0.1.x has distinct "hosts". (A
// record can claim up to member.MaxAddrs subnets and so keep those off the
// paths it is on; capping the keys would instead let decoys listed first
// hide a shared /24, which is the worse trade.)
func Subnets(n *member.Node) []string {
	var public, private, loop []string
	for _, a := range n.Addrs {
		ip, err := manet.ToIP(a)
		if err != nil {
			continue
		}
		var key string
		if ip.To4() != nil {
			key = ip.Mask(net.CIDRMask(24, 32)).String() + "/24"
		} else {
			key = ip.Mask(net.CIDRMask(48, 128)).String() + "/48"
		}
		switch {
		case ip.IsLoopback():
			loop = append(loop, ip.String())
		case ip.IsPrivate() || ip.IsLinkLocalUnicast() || !ip.IsGlobalUnicast():
			private = append(private, key)
		default:
			public = append(public, key)
		}
	}
	for _, keys := range [][]string{public, private, loop} {
		if len(keys) > 0 {
			return keys
		}
	}
	return []string{"unknown:" + n.ID.String()}
}

// Subnet is a node's first diversity key (for display).
func Subnet(n *member.Node) string { return Subnets(n)[0] }

// subnetSet is a set of diversity keys in use on a path.
type subnetSet map[string]bool

func (u subnetSet) has(n *member.Node) bool {
	for _, k := range Subnets(n) {
		if u[k] {
			return true
		}
	}
	return false
}

func (u subnetSet) add(n *member.Node) {
	for _, k := range Subnets(n) {
		u[k] = true
	}
}

// shareSubnet reports whether a and b have a diversity key in common.
func shareSubnet(a, b *member.Node) bool {
	u := subnetSet{}
	u.add(a)
	return u.has(b)
}

// PathManager picks 3-hop paths: one of two persistent guards, then a
// random middle, then the exit the request needs, no two in one subnet.
// Nodes that fail are avoided for a while and a failed guard is replaced.
type PathManager struct {
	nodes func() []*member.Node

	mu       sync.Mutex
	guards   []peer.ID
	bad      map[peer.ID]time.Time
	now      func() time.Time
	onChange func([]peer.ID) // called, unlocked, when the guard set changes
	changed  bool            // guards changed since onChange last saw them

	notifyMu sync.Mutex // serialises onChange calls, so the last one holds the newest set
}

// OnGuardsChange registers f to be called with the new guards whenever the
// set changes (a guard picked or replaced), so the client can keep its
// guards across restarts. f runs on the caller's goroutine, unlocked.
func (pm *PathManager) OnGuardsChange(f func([]peer.ID)) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	pm.onChange = f
}

// notify calls the change hook if the guards changed since it last ran.
func (pm *PathManager) notify() {
	pm.notifyMu.Lock()
	defer pm.notifyMu.Unlock()
	pm.mu.Lock()
	if !pm.changed || pm.onChange == nil {
		pm.mu.Unlock()
		return
	}
	pm.changed = false
	f, now := pm.onChange, append([]peer.ID(nil), pm.guards...)
	pm.mu.Unlock()
	f(now)
}

// NewPathManager makes a path manager over a node list source.
func NewPathManager(nodes func() []*member.Node) *PathManager {
	return &PathManager{nodes: nodes, bad: make(map[peer.ID]time.Time), now: time.Now}
}

// Guards returns the current guards.
func (pm *PathManager) Guards() []peer.ID {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return append([]peer.ID(nil), pm.guards...)
}

// SetGuards restores guards kept from an earlier run.
func (pm *PathManager) SetGuards(g []peer.ID) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	pm.guards = append([]peer.ID(nil), g...)
}

// Failed marks a node as failing: it is avoided for a while and, if it was
// a guard, replaced.
func (pm *PathManager) Failed(id peer.ID) {
	defer pm.notify()
	pm.mu.Lock()
	defer pm.mu.Unlock()
	pm.bad[id] = pm.now()
	for i, g := range pm.guards {
		if g == id {
			pm.guards = append(pm.guards[:i:i], pm.guards[i+1:]...)
			pm.changed = true
			break
		}
	}
}

func (pm *PathManager) isBad(id peer.ID, now time.Time) bool {
	t, ok := pm.bad[id]
	if ok && now.Sub(t) > badFor {
		delete(pm.bad, id)
		return false
	}
	return ok
}

// ErrNoPath is returned when the network has too few usable nodes.
var ErrNoPath = errors.New("onion: not enough reachable nodes in distinct subnets for a 3-hop path")

// Path returns guard, middle and exit for a request that must leave at exit.
func (pm *PathManager) Path(exit *member.Node) ([]*member.Node, error) {
	defer pm.notify()
	return pm.path(exit)
}

func (pm *PathManager) path(exit *member.Node) ([]*member.Node, error) {
	nodes := pm.nodes()
	pm.mu.Lock()
	defer pm.mu.Unlock()
	now := pm.now()
	byID := make(map[peer.ID]*member.Node, len(nodes))
	for _, n := range nodes {
		byID[n.ID] = n
	}
	// Keep guards that are still listed and healthy; top up to Guards.
	kept := pm.guards[:0]
	used := subnetSet{}
	for _, g := range pm.guards {
		if n, ok := byID[g]; ok && !pm.isBad(g, now) {
			kept = append(kept, g)
			used.add(n)
		}
	}
	if len(kept) < len(pm.guards) {
		pm.changed = true
	}
	pm.guards = kept
	for _, i := range rand.Perm(len(nodes)) {
		if len(pm.guards) >= Guards {
			break
		}
		n := nodes[i]
		if !pm.isBad(n.ID, now) && !used.has(n) {
			pm.guards = append(pm.guards, n.ID)
			used.add(n)
			pm.changed = true
		}
	}
	var guard *member.Node
	for _, i := range rand.Perm(len(pm.guards)) {
		if g := byID[pm.guards[i]]; g != nil && g.ID != exit.ID && !shareSubnet(g, exit) {
			guard = g
			break
		}
	}
	if guard == nil {
		// Both guards share the exit's subnet (the exit is a guard): use
		// any other healthy node as guard for this request only.
		for _, i := range rand.Perm(len(nodes)) {
			if n := nodes[i]; n.ID != exit.ID && !shareSubnet(n, exit) && !pm.isBad(n.ID, now) {
				guard = n
				break
			}
		}
	}
	if guard == nil {
		return nil, ErrNoPath
	}
	onPath := subnetSet{}
	onPath.add(guard)
	onPath.add(exit)
	for _, i := range rand.Perm(len(nodes)) {
		n := nodes[i]
		if !onPath.has(n) && !pm.isBad(n.ID, now) {
			return []*member.Node{guard, n, exit}, nil
		}
	}
	return nil, ErrNoPath
}

// Transport sends client requests through 3-hop onion paths. Its libp2p
// host must have a throwaway identity, never an account key.
type Transport struct {
	H     host.Host
	Paths *PathManager

	poolOnce sync.Once
	pool     *p2p.Pool // sessions to guards, made on first use
}

// guardProto is the session protocol to a guard.
var guardProto = p2p.Proto{ID: wire.ProtoOnionSession, MaxReq: MaxPacket + 64, MaxResp: MaxPacket + 64}

// sessions is the pool of sessions to guards: every request to a guard
// rides one long-lived stream instead of opening its own. Closing the host
// ends them (or Close).
func (t *Transport) sessions() *p2p.Pool {
	t.poolOnce.Do(func() { t.pool = p2p.NewPool(t.H, p2p.PoolOptions{}) })
	return t.pool
}

// Close closes the sessions to guards (closing the host does too).
func (t *Transport) Close() error { return t.sessions().Close() }

// Call sends a request whose exit is target and decodes the answer into
// resp. A failed path is replaced and the request retried (at most three
// paths); if the exit itself cannot be reached the error says so, and the
// caller picks another swarm node.
func (t *Transport) Call(ctx context.Context, target *member.Node, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error {
	payload, err := wire.EncodeMsg(reqKind, req)
	if err != nil {
		return err
	}
	var errs []error
	for a := 0; a < attempts; a++ {
		path, err := t.Paths.Path(target)
		if err != nil {
			return err
		}
		answer, err := t.send(ctx, path, payload)
		if err == nil {
			return wire.DecodeMsg(answer, respKind, resp)
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			return fmt.Errorf("onion request: %w", ctx.Err())
		}
		bad, stop := judge(path, target.ID, err)
		if bad != "" {
			t.Paths.Failed(bad)
		}
		if stop != nil {
			return stop
		}
	}
	return fmt.Errorf("onion request failed on %d paths: %w", attempts, errors.Join(errs...))
}

// judge reads a failed attempt on path to target: the node to avoid from
// now on ("" for none), and the error to stop with (nil: try another
// path). It blames only the hop the failure points at: a bad answer from
// the middle or the exit must not cost the client its guard, or a
// malicious exit could rotate the guards until it holds one.
func judge(path []*member.Node, target peer.ID, err error) (peer.ID, error) {
	var he *HopError
	var le *LayerError
	last := len(path) - 1
	switch {
	case errors.As(err, &he) && he.Hop < last:
		failed := path[he.Hop+1].ID // hop he.Hop could not reach the next
		if failed == target {
			return failed, fmt.Errorf("onion request: exit %s unreachable: %w", p2p.ShortID(target), err)
		}
		return failed, nil
	case errors.As(err, &he), errors.As(err, &le) && le.Layer == last:
		// The exit itself answered with an error or garbage: the caller
		// picks another swarm node.
		return "", fmt.Errorf("onion request: exit %s failed: %w", p2p.ShortID(target), err)
	case errors.As(err, &le):
		return path[le.Layer].ID, nil
	case isRemote(err):
		return "", err // the guard refused the packet itself
	default:
		return path[0].ID, nil // the guard did not answer
	}
}

func isRemote(err error) bool {
	var we *wire.Error
	return errors.As(err, &we)
}

func (t *Transport) send(ctx context.Context, path []*member.Node, payload []byte) ([]byte, error) {
	hops := make([]Hop, len(path))
	for i, n := range path {
		hops[i] = Hop{ID: []byte(n.ID), OnionKey: n.Record.OnionKey}
	}
	pkt, circ, err := Build(hops, payload)
	if err != nil {
		return nil, err
	}
	guard := path[0]
	if t.H.Network().Connectedness(guard.ID) != network.Connected {
		t.H.Peerstore().AddAddrs(guard.ID, guard.Addrs, time.Hour)
	}
	var out wire.OnionPacket
	if err := t.sessions().Call(ctx, guard.ID, guardProto, wire.KindOnion, &wire.OnionPacket{Data: pkt}, wire.KindOnion, &out); err != nil {
		return nil, err
	}
	return circ.Open(out.Data)
}
