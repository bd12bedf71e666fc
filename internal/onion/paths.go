package onion

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

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
	// attemptTimeout bounds one path's attempt at a request that does not
	// wait (longer than an exit's quorum write takes at worst); a
	// long-poll gets its wait on top. A hop that takes a packet and never
	// answers then costs the request one attempt, not the whole call.
	attemptTimeout = 8 * time.Second
)

// errAttemptTimeout marks an attempt that got no answer in its time.
var errAttemptTimeout = errors.New("no answer on this path in time")

// attemptTime is how long one attempt at a request of kind may take.
func attemptTime(kind wire.Kind, req any) time.Duration {
	if r, ok := req.(*wire.RetrieveReq); ok && kind == wire.KindRetrieveReq && r.WaitMs > 0 {
		return attemptTimeout + time.Duration(r.WaitMs)*time.Millisecond
	}
	if r, ok := req.(*wire.DropReq); ok && kind == wire.KindDropReq && r.WaitMs > 0 {
		return attemptTimeout + time.Duration(r.WaitMs)*time.Millisecond
	}
	return attemptTimeout
}

// Subnets are the diversity keys of a node (member.Subnets: the /24 or /48
// of every address its record lists, loopback by /24 too): two nodes that
// share any key never share a path, so a record cannot escape the rule by
// listing a decoy address first. The same keys cap a subnet's seats in a
// swarm and its records in a node table.
func Subnets(n *member.Node) []string {
	if len(n.Subnets) > 0 {
		return n.Subnets // computed when the record was opened
	}
	if keys := member.Subnets(n.Addrs); len(keys) > 0 {
		return keys
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
// Nodes that fail are avoided for a while; a guard that fails, or whose
// circuits fail too often (path bias, pathbias.go), is replaced.
type PathManager struct {
	nodes func() []*member.Node

	mu      sync.Mutex
	guards  []peer.ID
	bad     map[peer.ID]time.Time             // failed by their own fault
	suspect map[peer.ID]time.Time             // middles that reported their next hop (reports.go)
	down    map[peer.ID]time.Time             // named by two reporters
	reports map[peer.ID]map[peer.ID]time.Time // named node -> reporter -> when
	bias    map[peer.ID]*GuardStats           // per current guard
	dropped map[peer.ID]time.Time             // guards replaced for path bias, and when
	// Silent attempts (silence.go): exits that cleared silent paths, and
	// middles implicated by one guard.
	clearedBy  map[peer.ID]time.Time
	implicated map[peer.ID]implication
	silentRuns map[peer.ID]int // per current guard: silent attempts since its last success
	now        func() time.Time
	onChange   func([]peer.ID) // called, unlocked, when the guard set changes
	changed    bool            // guards changed since onChange last saw them

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
	return &PathManager{nodes: nodes, bad: make(map[peer.ID]time.Time), suspect: make(map[peer.ID]time.Time),
		down: make(map[peer.ID]time.Time), reports: make(map[peer.ID]map[peer.ID]time.Time),
		bias: make(map[peer.ID]*GuardStats), dropped: make(map[peer.ID]time.Time),
		clearedBy: make(map[peer.ID]time.Time), implicated: make(map[peer.ID]implication),
		silentRuns: make(map[peer.ID]int), now: time.Now}
}

// SetClock replaces the clock the manager reads (tests).
func (pm *PathManager) SetClock(now func() time.Time) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	pm.now = now
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
	pm.setGuardsLocked(append([]peer.ID(nil), g...))
}

// setGuardsLocked installs a guard set and forgets the path-bias counts of
// guards no longer in it.
func (pm *PathManager) setGuardsLocked(g []peer.ID) {
	pm.guards = g
	for id := range pm.bias {
		if !slices.Contains(g, id) {
			delete(pm.bias, id)
		}
	}
	for id := range pm.silentRuns {
		if !slices.Contains(g, id) {
			delete(pm.silentRuns, id)
		}
	}
}

// Failed marks a node as failing: it is avoided for a while and, if it was
// a guard, replaced.
func (pm *PathManager) Failed(id peer.ID) {
	defer pm.notify()
	pm.mu.Lock()
	defer pm.mu.Unlock()
	pm.bad[id] = pm.now()
	pm.removeGuardLocked(id)
}

func (pm *PathManager) removeGuardLocked(id peer.ID) {
	if i := slices.Index(pm.guards, id); i >= 0 {
		pm.setGuardsLocked(append(pm.guards[:i:i], pm.guards[i+1:]...))
		pm.changed = true
	}
}

// Avoided reports whether id is currently avoided on every path.
func (pm *PathManager) Avoided(id peer.ID) bool {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return pm.isBad(id, pm.now())
}

// isBad reports whether id is avoided: failed, suspect or down.
func (pm *PathManager) isBad(id peer.ID, now time.Time) bool {
	bad, suspect, down := recent(pm.bad, id, now), recent(pm.suspect, id, now), recent(pm.down, id, now)
	return bad || suspect || down
}

// ErrExitUnreachable is in the error of a call whose exit could not be
// reached (relays said so, or it gave no answer on two paths): the caller
// should ask another node.
var ErrExitUnreachable = errors.New("unreachable")

// ErrNoPath is returned when the network has too few usable nodes.
var ErrNoPath = errors.New("onion: not enough reachable nodes in distinct subnets for a 3-hop path")

// Path returns guard, middle and exit for a request that must leave at
// exit, using none of the nodes in exclude (nodes that one request has
// found suspect: they are avoided by that request only).
func (pm *PathManager) Path(exit *member.Node, exclude ...peer.ID) ([]*member.Node, error) {
	defer pm.notify()
	return pm.path(exit, exclude)
}

func (pm *PathManager) path(exit *member.Node, exclude []peer.ID) ([]*member.Node, error) {
	nodes := pm.nodes()
	pm.mu.Lock()
	defer pm.mu.Unlock()
	now := pm.now()
	byID := make(map[peer.ID]*member.Node, len(nodes))
	for _, n := range nodes {
		byID[n.ID] = n
	}
	usable := func(id peer.ID) bool { return !pm.isBad(id, now) && !slices.Contains(exclude, id) }
	// Keep guards that are still listed and healthy; top up to Guards.
	var kept []peer.ID
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
	pm.setGuardsLocked(kept)
	for _, i := range rand.Perm(len(nodes)) {
		if len(pm.guards) >= Guards {
			break
		}
		n := nodes[i]
		if usable(n.ID) && !used.has(n) && !pm.wasDropped(n.ID, now) {
			pm.guards = append(pm.guards, n.ID)
			used.add(n)
			pm.changed = true
		}
	}
	var guard *member.Node
	for _, i := range rand.Perm(len(pm.guards)) {
		if g := byID[pm.guards[i]]; g != nil && g.ID != exit.ID && !shareSubnet(g, exit) && !slices.Contains(exclude, g.ID) {
			guard = g
			break
		}
	}
	if guard == nil {
		// Both guards share the exit's subnet (the exit is a guard), or
		// this request excluded them: use any other healthy node as guard
		// for this request only.
		for _, i := range rand.Perm(len(nodes)) {
			if n := nodes[i]; n.ID != exit.ID && !shareSubnet(n, exit) && usable(n.ID) {
				guard = n
				break
			}
		}
	}
	if guard != nil {
		if middle := pickMiddle(nodes, guard, exit, usable); middle != nil {
			return []*member.Node{guard, middle, exit}, nil
		}
	}
	// The floor: so many nodes are avoided (a loaded machine, a slow link
	// where attempts time out) that no path is left. Avoidance is a
	// preference, not a ban: rather than fail every request until the
	// marks expire, use avoided nodes too (never those this request left
	// out), first hop for this request only. The guard set is unchanged.
	unexcluded := func(id peer.ID) bool { return !slices.Contains(exclude, id) }
	for _, i := range rand.Perm(len(nodes)) {
		g := nodes[i]
		if g.ID == exit.ID || shareSubnet(g, exit) || !unexcluded(g.ID) {
			continue
		}
		if middle := pickMiddle(nodes, g, exit, unexcluded); middle != nil {
			return []*member.Node{g, middle, exit}, nil
		}
	}
	return nil, pm.noPathLocked(nodes, exclude, now)
}

// pickMiddle is a random node for which ok holds, in neither guard's nor
// exit's subnets; nil if there is none.
func pickMiddle(nodes []*member.Node, guard, exit *member.Node, ok func(peer.ID) bool) *member.Node {
	onPath := subnetSet{}
	onPath.add(guard)
	onPath.add(exit)
	for _, i := range rand.Perm(len(nodes)) {
		if n := nodes[i]; !onPath.has(n) && ok(n.ID) {
			return n
		}
	}
	return nil
}

// noPathLocked is ErrNoPath with the counts that explain it.
func (pm *PathManager) noPathLocked(nodes []*member.Node, exclude []peer.ID, now time.Time) error {
	avoided := 0
	for _, n := range nodes {
		if pm.isBad(n.ID, now) {
			avoided++
		}
	}
	return fmt.Errorf("%w (%d nodes known, %d avoided after failures, %d left out by this request)", ErrNoPath, len(nodes), avoided, len(exclude))
}

// Transport sends client requests through 3-hop onion paths. Its libp2p
// host must have a throwaway identity, never an account key.
type Transport struct {
	H     host.Host
	Paths *PathManager
	// Mix, if set, asks the middle and the exit of every path to hold the
	// request for a random delay (strict mode; MixDelays); each attempt's
	// timeout grows by the most the delays can add.
	Mix *MixDelays

	poolOnce sync.Once
	pool     *p2p.Pool // sessions to guards, made on first use

	// send, if set, replaces sending over H (tests).
	send func(ctx context.Context, path []*member.Node, payload []byte) ([]byte, error)
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
// caller picks another swarm node. Each attempt is judged (judge): the hop
// that reported a failure, not the hop it names, is the one blamed.
func (t *Transport) Call(ctx context.Context, target *member.Node, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error {
	payload, err := wire.EncodeMsg(reqKind, req)
	if err != nil {
		return err
	}
	if t.Paths.Down(target.ID) {
		return fmt.Errorf("onion request: exit %s %w (taken as down: reported by two relays, or silent on two paths)", p2p.ShortID(target.ID), ErrExitUnreachable)
	}
	var errs []error
	var exclude []peer.ID       // suspects of this call only
	var silent [][]*member.Node // attempts that timed out (silence.go)
	var quiet []peer.ID         // their guards: avoided by this call if another path remains
	for a := 0; a < attempts; a++ {
		path, err := t.Paths.Path(target, append(exclude, quiet...)...)
		if errors.Is(err, ErrNoPath) && len(quiet) > 0 {
			path, err = t.Paths.Path(target, exclude...) // a small network: the silent guard again
		}
		if err != nil {
			if len(errs) > 0 {
				return fmt.Errorf("onion request: %w (after %d failed paths: %w)", err, len(errs), errors.Join(errs...))
			}
			return err
		}
		actx, cancel := context.WithTimeout(ctx, attemptTime(reqKind, req)+t.mixAllowance(len(path)))
		answer, err := t.sendPath(actx, path, payload)
		if err != nil && actx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", errAttemptTimeout, err)
		}
		cancel()
		if err == nil {
			t.Paths.guardOutcome(path[0].ID, success)
			t.Paths.cleared(target.ID, silent)
			return wire.DecodeMsg(answer, respKind, resp)
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			return fmt.Errorf("onion request: %w", ctx.Err())
		}
		v := judge(path, target.ID, err)
		t.Paths.guardOutcome(path[0].ID, v.guard)
		if v.avoid != "" {
			t.Paths.Failed(v.avoid)
		}
		if v.report != nil {
			t.Paths.reported(*v.report)
		}
		if v.exclude != "" {
			exclude = append(exclude, v.exclude)
		}
		if v.silent {
			quiet = append(quiet, path[0].ID)
			if silent = append(silent, path); len(silent) == 2 {
				t.Paths.silentExit(target.ID)
				return fmt.Errorf("onion request: exit %s %w (no answer on two paths): %w", p2p.ShortID(target.ID), ErrExitUnreachable, errors.Join(errs...))
			}
		}
		if v.stop != nil {
			return v.stop
		}
	}
	return fmt.Errorf("onion request failed on %d paths: %w", attempts, errors.Join(errs...))
}

// verdict is what one failed attempt says about its path.
type verdict struct {
	avoid   peer.ID // at fault: avoided by every request for badFor (and replaced if a guard); "" for none
	report  *report // a hop said its next hop failed (reports.go)
	exclude peer.ID // not used again by this call; "" for none
	guard   outcome // path-bias outcome for the guard
	stop    error   // non-nil: give up the call with this error
	silent  bool    // no answer in time: see silence.go
}

// judge reads a failed attempt on path to target. A hop that reports a
// failure is the one blamed, never the hop it names: else a guard could
// push honest middles out of every path by claiming they are down and
// steer its clients towards colluders. What a guard reports counts against
// its path bias and excludes the named node for this call only; a middle
// that reports is avoided itself, unless a second reporter confirms the
// node it named is down (reports.go). A bad answer from the middle or the
// exit never costs the client its guard (else a malicious exit could
// rotate the guards until it holds one).
func judge(path []*member.Node, target peer.ID, err error) verdict {
	var he *HopError
	var le *LayerError
	var be *BadReplyError
	last := len(path) - 1
	exitDown := func(err error) error {
		return fmt.Errorf("onion request: exit %s %w: %w", p2p.ShortID(target), ErrExitUnreachable, err)
	}
	exitFailed := func(err error) error {
		return fmt.Errorf("onion request: exit %s failed: %w", p2p.ShortID(target), err)
	}
	switch {
	case errors.As(err, &he) && he.Hop == 0 && last > 0:
		// The guard says it cannot go on. Perhaps its next hop is down,
		// perhaps the guard does not like it: try other nodes for this
		// call and count a failure against the guard.
		v := verdict{exclude: path[1].ID, guard: failure, report: &report{by: path[0].ID, named: path[1].ID, guard: true}}
		if path[1].ID == target {
			v.stop = exitDown(err)
		}
		return v
	case errors.As(err, &he) && he.Hop < last:
		// A middle says it cannot go on: it is the one avoided (unless
		// confirmed). The guard carried the circuit both ways: neutral.
		v := verdict{report: &report{by: path[he.Hop].ID, named: path[he.Hop+1].ID}}
		if path[he.Hop+1].ID == target {
			v.stop = exitDown(err)
		}
		return v
	case errors.As(err, &he):
		// The exit itself answered with an error box: the caller picks
		// another swarm node. The boxes before it were intact.
		return verdict{guard: success, stop: exitFailed(err)}
	case errors.As(err, &le) && le.Layer == 0:
		// The guard's own box does not open: only the guard can have
		// sent that.
		return verdict{avoid: path[0].ID, guard: failure}
	case errors.As(err, &le):
		// Box L does not open: hop L-1 replaced it, or a hop before sent
		// the request elsewhere. With the guard's box intact and the
		// middle's not, the guard is among the suspects.
		v := verdict{exclude: path[le.Layer].ID, guard: success}
		if le.Layer == 1 {
			v.guard = failure
		}
		if le.Layer == last {
			v.stop = exitFailed(err)
		}
		return v
	case errors.As(err, &be):
		// An authenticated box that breaks the protocol: only that hop
		// holds its key.
		switch {
		case be.Hop == 0:
			return verdict{avoid: path[0].ID, guard: failure}
		case be.Hop == last:
			return verdict{guard: success, stop: exitFailed(err)}
		}
		return verdict{avoid: path[be.Hop].ID, guard: success}
	case isRemote(err):
		return verdict{stop: err} // the guard refused the packet itself
	case errors.Is(err, errAttemptTimeout) && last > 0:
		// Some hop took the packet and never answered: another guard and
		// middle for this call; blame waits for the next attempt
		// (silence.go).
		return verdict{exclude: path[1].ID, guard: neutral, silent: true}
	default:
		return verdict{avoid: path[0].ID, guard: failure} // the guard did not answer
	}
}

func isRemote(err error) bool {
	var we *wire.Error
	return errors.As(err, &we)
}

// mixAllowance is what mix delays may add to one attempt on a path of n
// hops.
func (t *Transport) mixAllowance(n int) time.Duration {
	if t.Mix == nil {
		return 0
	}
	return t.Mix.Allowance(n)
}

func (t *Transport) sendPath(ctx context.Context, path []*member.Node, payload []byte) ([]byte, error) {
	if t.send != nil {
		return t.send(ctx, path, payload)
	}
	hops := make([]Hop, len(path))
	for i, n := range path {
		hops[i] = Hop{ID: []byte(n.ID), OnionKey: n.Record.OnionKey}
	}
	if t.Mix != nil {
		t.Mix.Apply(hops, nil)
	}
	pkt, circ, err := BuildWith(hops, payload, ClientOptions)
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
