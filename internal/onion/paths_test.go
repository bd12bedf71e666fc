package onion

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/wire"
)

func TestSubnet(t *testing.T) {
	cases := []struct {
		name string
		a, b []string // addresses of two nodes
		same bool
	}{
		{"loopback other /24", []string{"/ip4/127.0.1.1/tcp/4001"}, []string{"/ip4/127.0.2.1/tcp/4001"}, false},
		{"loopback same /24", []string{"/ip4/127.0.1.1/tcp/4001"}, []string{"/ip4/127.0.1.2/tcp/4001"}, true},
		{"loopback same IP other port", []string{"/ip4/127.0.1.1/tcp/4001"}, []string{"/ip4/127.0.1.1/udp/4002/quic-v1"}, true},
		{"ipv6 loopback vs ipv4 loopback", []string{"/ip6/::1/tcp/4001"}, []string{"/ip4/127.0.0.1/tcp/4001"}, false},
		{"ipv4 same /24", []string{"/ip4/1.2.3.4/tcp/4001"}, []string{"/ip4/1.2.3.200/tcp/4001"}, true},
		{"ipv4 other /24", []string{"/ip4/1.2.3.4/tcp/4001"}, []string{"/ip4/1.2.4.1/tcp/4001"}, false},
		{"ipv4 other /16", []string{"/ip4/1.2.3.4/tcp/4001"}, []string{"/ip4/1.3.3.4/tcp/4001"}, false},
		{"ipv4 private same /24", []string{"/ip4/10.0.0.1/tcp/1"}, []string{"/ip4/10.0.0.254/udp/1/quic-v1"}, true},
		{"ipv6 same /48", []string{"/ip6/2001:db8:1::1/tcp/4001"}, []string{"/ip6/2001:db8:1:ffff::2/tcp/4001"}, true},
		{"ipv6 same /48 last bits", []string{"/ip6/2001:db8:1:0::1/tcp/4001"}, []string{"/ip6/2001:db8:1:abcd:ef01:2345:6789:abcd/tcp/4001"}, true},
		{"ipv6 other /48", []string{"/ip6/2001:db8:1::1/tcp/4001"}, []string{"/ip6/2001:db8:2::1/tcp/4001"}, false},
		{"ipv6 differs in bit 48", []string{"/ip6/2001:db8:1::1/tcp/4001"}, []string{"/ip6/2001:db8:0:8000::1/tcp/4001"}, false},
		{"ipv4 vs ipv4-mapped ipv6", []string{"/ip4/1.2.3.4/tcp/4001"}, []string{"/ip6/::ffff:1.2.3.9/tcp/4001"}, true},
		{"first IP address counts", []string{"/dns4/example.org/tcp/1", "/ip4/1.2.3.4/tcp/4001"}, []string{"/ip4/1.2.3.5/tcp/4001"}, true},
		{"no IP address", []string{"/dns4/example.org/tcp/1"}, []string{"/dns4/example.org/tcp/1"}, false},
		{"no address", nil, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := testNode(t, c.a...), testNode(t, c.b...)
			sa, sb := Subnet(a), Subnet(b)
			if (sa == sb) != c.same {
				t.Fatalf("Subnet(%v) = %q, Subnet(%v) = %q; same = %v, want %v", c.a, sa, c.b, sb, sa == sb, c.same)
			}
			if sa == "" || sb == "" {
				t.Fatal("empty subnet key")
			}
		})
	}
	// Keys are stable and say what they are.
	for addr, want := range map[string]string{
		"/ip4/127.0.1.7/tcp/1":             "127.0.1.0/24",
		"/ip4/1.2.3.4/tcp/1":               "1.2.3.0/24",
		"/ip6/2001:db8:1:2:3::1/tcp/1":     "2001:db8:1::/48",
		"/ip6/::1/tcp/1":                   "::1",
		"/ip4/192.168.17.99/udp/1/quic-v1": "192.168.17.0/24",
	} {
		if got := Subnet(testNode(t, addr)); got != want {
			t.Errorf("Subnet(%s) = %q, want %q", addr, got, want)
		}
	}
	n := testNode(t)
	if got := Subnet(n); !strings.HasPrefix(got, "unknown:") || !strings.Contains(got, n.ID.String()) {
		t.Errorf("Subnet of a node without addresses = %q", got)
	}
}

// fakeClock is a settable clock for PathManager.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestPM(nodes []*member.Node) (*PathManager, *fakeClock) {
	pm := NewPathManager(func() []*member.Node { return nodes })
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	pm.now = clk.now
	return pm, clk
}

// checkPath checks the shape of a path for exit: three nodes, exit last,
// three distinct subnets.
func checkPath(t *testing.T, path []*member.Node, exit *member.Node) {
	t.Helper()
	if len(path) != 3 {
		t.Fatalf("path of %d nodes", len(path))
	}
	if path[2] != exit {
		t.Fatalf("path ends at %s, want the exit %s", path[2].ID, exit.ID)
	}
	nets := map[string]bool{}
	for _, n := range path {
		nets[Subnet(n)] = true
	}
	if len(nets) != 3 {
		t.Fatalf("path %s, %s, %s spans %d subnets, want 3", Subnet(path[0]), Subnet(path[1]), Subnet(path[2]), len(nets))
	}
}

// nonGuards returns the nodes that are not in guards.
func nonGuards(nodes []*member.Node, guards []peer.ID) []*member.Node {
	var out []*member.Node
	for _, n := range nodes {
		if !slices.Contains(guards, n.ID) {
			out = append(out, n)
		}
	}
	return out
}

func TestPathManagerGuards(t *testing.T) {
	nodes := loopbackNodes(t, 12)
	pm, _ := newTestPM(nodes)
	if g := pm.Guards(); len(g) != 0 {
		t.Fatalf("guards before the first path: %v", g)
	}
	if _, err := pm.Path(nodes[0]); err != nil {
		t.Fatal(err)
	}
	guards := pm.Guards()
	if len(guards) != Guards {
		t.Fatalf("%d guards, want %d", len(guards), Guards)
	}
	if Subnet(byID(t, nodes, guards[0])) == Subnet(byID(t, nodes, guards[1])) {
		t.Fatal("the two guards share a subnet")
	}
	exits := nonGuards(nodes, guards)
	used := map[peer.ID]int{}
	middles := map[peer.ID]bool{}
	for i := 0; i < 100; i++ {
		exit := exits[i%len(exits)]
		path, err := pm.Path(exit)
		if err != nil {
			t.Fatal(err)
		}
		checkPath(t, path, exit)
		if !slices.Contains(guards, path[0].ID) {
			t.Fatalf("call %d: guard %s is not one of the persistent guards", i, path[0].ID)
		}
		used[path[0].ID]++
		middles[path[1].ID] = true
		if g := pm.Guards(); !slices.Equal(g, guards) {
			t.Fatalf("call %d: guards changed from %v to %v", i, guards, g)
		}
	}
	// The guard of a request is drawn from the two guards at random
	// (paths.go), so both carry traffic; the set never changes.
	t.Logf("guard use over 100 paths: %v; %d distinct middles", used, len(middles))
	if len(middles) < 3 {
		t.Fatalf("only %d distinct middles over 100 paths", len(middles))
	}
	// Guards() is a copy.
	g := pm.Guards()
	g[0] = "mutated"
	if pm.Guards()[0] == "mutated" {
		t.Fatal("Guards returned the internal slice")
	}
}

func byID(t *testing.T, nodes []*member.Node, id peer.ID) *member.Node {
	t.Helper()
	for _, n := range nodes {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("no node %s", id)
	return nil
}

func TestPathManagerFailedGuard(t *testing.T) {
	nodes := loopbackNodes(t, 12)
	pm, clk := newTestPM(nodes)
	if _, err := pm.Path(nodes[0]); err != nil {
		t.Fatal(err)
	}
	guards := pm.Guards()
	failed, kept := guards[0], guards[1]
	pm.Failed(failed)
	if g := pm.Guards(); !slices.Equal(g, []peer.ID{kept}) {
		t.Fatalf("after Failed, guards = %v, want just %v", g, kept)
	}
	exits := nonGuards(nodes, guards)
	var replacement peer.ID
	for i := 0; i < 100; i++ {
		exit := exits[i%len(exits)]
		path, err := pm.Path(exit)
		if err != nil {
			t.Fatal(err)
		}
		checkPath(t, path, exit)
		g := pm.Guards()
		if len(g) != Guards || slices.Contains(g, failed) || !slices.Contains(g, kept) {
			t.Fatalf("call %d: guards %v; want %d guards with %s kept and %s gone", i, g, Guards, kept, failed)
		}
		if replacement == "" {
			replacement = g[1]
		} else if g[1] != replacement {
			t.Fatalf("call %d: the replacement guard changed from %s to %s", i, replacement, g[1])
		}
		for j, n := range path {
			if n.ID == failed {
				t.Fatalf("call %d: failed node used at position %d", i, j)
			}
		}
	}
	// After the penalty the node may be a middle again (not a guard: the
	// replacement stays).
	clk.add(badFor + time.Second)
	seen := false
	for i := 0; i < 200 && !seen; i++ {
		exit := exits[i%len(exits)]
		if exit.ID == failed || exit.ID == replacement {
			continue
		}
		path, err := pm.Path(exit)
		if err != nil {
			t.Fatal(err)
		}
		seen = path[1].ID == failed
	}
	if !seen {
		t.Fatal("a node that failed more than badFor ago is never used again")
	}
	if g := pm.Guards(); slices.Contains(g, failed) {
		t.Fatalf("the failed guard came back as a guard: %v", g)
	}
}

func TestPathManagerFailedMiddle(t *testing.T) {
	nodes := loopbackNodes(t, 6)
	pm, _ := newTestPM(nodes)
	if _, err := pm.Path(nodes[0]); err != nil {
		t.Fatal(err)
	}
	guards := pm.Guards()
	others := nonGuards(nodes, guards)
	bad := others[0]
	pm.Failed(bad.ID)
	if g := pm.Guards(); !slices.Equal(g, guards) {
		t.Fatalf("a middle's failure changed the guards: %v", g)
	}
	for i := 0; i < 100; i++ {
		exit := others[1+i%(len(others)-1)]
		path, err := pm.Path(exit)
		if err != nil {
			t.Fatal(err)
		}
		checkPath(t, path, exit)
		if path[0].ID == bad.ID || path[1].ID == bad.ID {
			t.Fatalf("call %d: the failed node is on the path", i)
		}
	}
}

func TestPathManagerNoPath(t *testing.T) {
	for _, c := range []struct {
		name  string
		addrs []string
	}{
		{"no other node", []string{"/ip4/127.0.1.1/tcp/1"}},
		{"two nodes", []string{"/ip4/127.0.1.1/tcp/1", "/ip4/127.0.1.2/tcp/1"}},
		{"three nodes two subnets", []string{"/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.5/tcp/1", "/ip4/5.6.7.8/tcp/1"}},
		{"many nodes one /24", []string{"/ip4/1.2.3.1/tcp/1", "/ip4/1.2.3.2/tcp/1", "/ip4/1.2.3.3/tcp/1", "/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.5/tcp/1"}},
		{"many nodes one /48", []string{"/ip6/2001:db8:1::1/tcp/1", "/ip6/2001:db8:1::2/tcp/1", "/ip6/2001:db8:1:2::3/tcp/1", "/ip6/2001:db8:1:3::4/tcp/1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var nodes []*member.Node
			for _, a := range c.addrs {
				nodes = append(nodes, testNode(t, a))
			}
			pm, _ := newTestPM(nodes)
			for _, exit := range nodes {
				if p, err := pm.Path(exit); !errors.Is(err, ErrNoPath) {
					t.Fatalf("Path = %v, %v; want ErrNoPath", p, err)
				}
			}
		})
	}
	t.Run("three nodes three subnets", func(t *testing.T) {
		nodes := loopbackNodes(t, 3)
		pm, _ := newTestPM(nodes)
		for _, exit := range nodes {
			path, err := pm.Path(exit)
			if err != nil {
				t.Fatal(err)
			}
			checkPath(t, path, exit)
		}
	})
	// The floor: with every other node avoided there is still a path
	// (through avoided nodes, none of them made a guard), and a healthy
	// node is preferred to avoided ones whenever one fits.
	t.Run("all others failed", func(t *testing.T) {
		nodes := loopbackNodes(t, 5)
		pm, clk := newTestPM(nodes)
		for _, n := range nodes[1:] {
			pm.Failed(n.ID)
		}
		path, err := pm.Path(nodes[0])
		if err != nil {
			t.Fatalf("Path with every other node failed: %v", err)
		}
		checkPath(t, path, nodes[0])
		for _, g := range pm.Guards() {
			if g != nodes[0].ID {
				t.Fatalf("an avoided node became a guard: %v", g)
			}
		}
		// Excluded by the request itself: never used, even at the floor.
		if _, err := pm.Path(nodes[0], nodes[1].ID, nodes[2].ID, nodes[3].ID); !errors.Is(err, ErrNoPath) {
			t.Fatalf("Path through nodes this request excluded: %v", err)
		}
		clk.add(badFor + time.Second)
		pm.Failed(nodes[4].ID)
		for range 20 {
			path, err := pm.Path(nodes[0])
			if err != nil {
				t.Fatalf("Path after the penalty: %v", err)
			}
			checkPath(t, path, nodes[0])
			if path[0].ID == nodes[4].ID || path[1].ID == nodes[4].ID {
				t.Fatal("an avoided node is on a path while healthy ones fit")
			}
		}
	})
}

func TestPathManagerExitIsGuard(t *testing.T) {
	nodes := loopbackNodes(t, 12)
	pm, _ := newTestPM(nodes)
	if _, err := pm.Path(nodes[0]); err != nil {
		t.Fatal(err)
	}
	guards := pm.Guards()
	for k, exitID := range guards {
		exit := byID(t, nodes, exitID)
		other := guards[1-k]
		for i := 0; i < 50; i++ {
			path, err := pm.Path(exit)
			if err != nil {
				t.Fatal(err)
			}
			checkPath(t, path, exit)
			if path[0].ID != other {
				t.Fatalf("exit is guard %s: path guard %s, want the other guard %s", exitID, path[0].ID, other)
			}
		}
	}
	if g := pm.Guards(); !slices.Equal(g, guards) {
		t.Fatalf("guards changed: %v -> %v", guards, g)
	}

	// Guards restored from disk that both share the exit's subnet (a
	// previous run picked them before they moved): another node guards
	// this request, and the guards are kept.
	a := testNode(t, "/ip4/1.2.3.4/tcp/1")
	b := testNode(t, "/ip4/1.2.3.5/tcp/1")
	rest := []*member.Node{a, b}
	for i := 0; i < 6; i++ {
		rest = append(rest, testNode(t, fmt.Sprintf("/ip4/9.9.%d.1/tcp/1", i)))
	}
	pm2, _ := newTestPM(rest)
	pm2.SetGuards([]peer.ID{a.ID, b.ID})
	for i := 0; i < 50; i++ {
		path, err := pm2.Path(a)
		if err != nil {
			t.Fatal(err)
		}
		checkPath(t, path, a)
		if path[0].ID == a.ID || path[0].ID == b.ID {
			t.Fatalf("guard %s shares the exit's subnet", path[0].ID)
		}
	}
	if g := pm2.Guards(); !slices.Equal(g, []peer.ID{a.ID, b.ID}) {
		t.Fatalf("a one-off guard replaced the persistent ones: %v", g)
	}
	// For other exits the restored guards are used.
	for i := 0; i < 20; i++ {
		exit := rest[2+i%6]
		path, err := pm2.Path(exit)
		if err != nil {
			t.Fatal(err)
		}
		checkPath(t, path, exit)
		if path[0].ID != a.ID && path[0].ID != b.ID {
			t.Fatalf("guard %s is not a restored guard", path[0].ID)
		}
	}
}

func TestPathManagerSetGuards(t *testing.T) {
	nodes := loopbackNodes(t, 12)
	pm1, _ := newTestPM(nodes)
	if _, err := pm1.Path(nodes[0]); err != nil {
		t.Fatal(err)
	}
	saved := pm1.Guards()

	pm2, _ := newTestPM(nodes)
	pm2.SetGuards(saved)
	saved[0] = "mutated after SetGuards" // SetGuards copies
	saved = pm1.Guards()
	if g := pm2.Guards(); !slices.Equal(g, saved) {
		t.Fatalf("restored guards %v, want %v", g, saved)
	}
	exits := nonGuards(nodes, saved)
	for i := 0; i < 50; i++ {
		path, err := pm2.Path(exits[i%len(exits)])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(saved, path[0].ID) {
			t.Fatalf("guard %s is not a restored guard", path[0].ID)
		}
	}
	if g := pm2.Guards(); !slices.Equal(g, saved) {
		t.Fatalf("guards changed after paths: %v", g)
	}

	// A restored guard that left the network is replaced; the other stays.
	gone := byID(t, nodes, saved[0])
	var fewer []*member.Node
	for _, n := range nodes {
		if n != gone {
			fewer = append(fewer, n)
		}
	}
	pm3, _ := newTestPM(fewer)
	pm3.SetGuards(saved)
	if _, err := pm3.Path(nonGuards(fewer, saved)[0]); err != nil {
		t.Fatal(err)
	}
	g := pm3.Guards()
	if len(g) != Guards || slices.Contains(g, saved[0]) || g[0] != saved[1] {
		t.Fatalf("guards %v after %s left, want %s kept and a new one", g, saved[0], saved[1])
	}
}

// TestPathManagerConcurrent is for the race detector.
func TestPathManagerConcurrent(t *testing.T) {
	nodes := loopbackNodes(t, 12)
	pm := NewPathManager(func() []*member.Node { return nodes })
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				exit := nodes[(w*7+i)%len(nodes)]
				path, err := pm.Path(exit)
				if err != nil {
					continue // possible when many nodes are marked failed
				}
				if i%10 == 0 {
					pm.Failed(path[1].ID)
				}
				_ = pm.Guards()
			}
		}()
	}
	wg.Wait()
}

// TestSubnetIgnoresDecoyAddress: records may list up to member.MaxAddrs
// addresses and nothing filters loopback ones out of a gossiped record.
// Two nodes reachable in the same public /24 must conflict however many
// other addresses (loopback or public decoys) they list first.
func TestSubnetIgnoresDecoyAddress(t *testing.T) {
	a := testNode(t, "/ip4/127.0.0.2/tcp/1", "/ip4/1.2.3.4/tcp/4001")
	b := testNode(t, "/ip4/127.0.0.3/tcp/1", "/ip4/1.2.3.5/tcp/4001")
	if !shareSubnet(a, b) {
		t.Fatalf("nodes at 1.2.3.4 and 1.2.3.5 (same /24) do not conflict: keys %v and %v", Subnets(a), Subnets(b))
	}
	c := testNode(t, "/ip4/9.9.9.9/tcp/1", "/ip4/1.2.3.6/tcp/4001")
	if !shareSubnet(a, c) {
		t.Fatalf("a public decoy listed first hides the shared /24: %v and %v", Subnets(a), Subnets(c))
	}
	d := testNode(t, "/ip4/5.6.7.8/tcp/4001")
	if shareSubnet(a, d) {
		t.Fatalf("nodes in different /24s conflict: %v and %v", Subnets(a), Subnets(d))
	}
	// Private addresses do not make unrelated hosts collide when both have
	// public ones (a docker bridge, a VPC default range).
	e := testNode(t, "/ip4/172.17.0.1/tcp/1", "/ip4/10.0.0.5/tcp/1", "/ip4/8.8.1.1/tcp/1")
	f := testNode(t, "/ip4/172.17.0.1/tcp/1", "/ip4/10.0.0.6/tcp/1", "/ip4/9.9.1.1/tcp/1")
	if shareSubnet(e, f) {
		t.Fatalf("hosts in different public /24s collide on private addresses: %v and %v", Subnets(e), Subnets(f))
	}
	g := testNode(t, "/ip4/10.1.2.3/tcp/1")
	h := testNode(t, "/ip4/10.1.2.4/tcp/1")
	if !shareSubnet(g, h) {
		t.Fatal("private-only nodes of one /24 do not conflict")
	}
	// However many decoys come first, the shared /24 is found.
	decoys := testNode(t, "/ip4/1.1.1.1/tcp/1", "/ip4/2.2.2.2/tcp/1", "/ip4/3.3.3.3/tcp/1", "/ip4/1.2.3.9/tcp/1")
	if !shareSubnet(a, decoys) {
		t.Fatalf("three public decoys hide the shared /24: %v", Subnets(decoys))
	}
	// Loopback-only nodes (a devnet) key by /24 like any IPv4 address: a
	// devnet puts each node in a /24 of its own.
	l1, l2 := testNode(t, "/ip4/127.0.1.1/tcp/1"), testNode(t, "/ip4/127.0.2.1/tcp/1")
	if shareSubnet(l1, l2) {
		t.Fatal("devnet nodes in distinct loopback /24s conflict")
	}
	if l3 := testNode(t, "/ip4/127.0.1.2/tcp/1"); !shareSubnet(l1, l3) {
		t.Fatal("loopback addresses of one /24 do not conflict")
	}
	// A path never holds two nodes of one /24, decoys or not.
	pm := NewPathManager(func() []*member.Node { return []*member.Node{a, b, c, d} })
	for range 50 {
		if p, err := pm.Path(d); err == nil {
			t.Fatalf("a path over 3 nodes of one /24 and the exit: %v", p)
		}
	}
}

// TestGuardsChangeHook: the hook sees the guards when they are first
// picked and when a failed one is replaced, and not on paths that keep
// them.
func TestGuardsChangeHook(t *testing.T) {
	var nodes []*member.Node
	for i := 0; i < 8; i++ {
		nodes = append(nodes, testNode(t, fmt.Sprintf("/ip4/10.%d.0.1/tcp/1", i)))
	}
	pm, _ := newTestPM(nodes)
	var calls [][]peer.ID
	pm.OnGuardsChange(func(g []peer.ID) { calls = append(calls, g) })
	exit := nodes[7]
	for i := 0; i < 5; i++ {
		if _, err := pm.Path(exit); err != nil {
			t.Fatal(err)
		}
	}
	if len(calls) != 1 || len(calls[0]) != Guards {
		t.Fatalf("after five paths the hook saw %v, want the two guards once", calls)
	}
	pm.Failed(calls[0][0])
	if len(calls) != 2 || len(calls[1]) != Guards-1 {
		t.Fatalf("a failed guard: hook calls %v", calls)
	}
	if _, err := pm.Path(exit); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 3 || len(calls[2]) != Guards || slices.Contains(calls[2], calls[0][0]) {
		t.Fatalf("the replacement guard: hook calls %v", calls)
	}
}

// TestJudgeBlamesTheReporter: a failed attempt blames the hop that
// reported the failure, never the hop it names; what the guard reports
// costs it path bias and excludes the named node for this call only; an
// exit that answers with an error or garbage never costs the client its
// guard (else a malicious exit could rotate the guards until it holds one).
func TestJudgeBlamesTheReporter(t *testing.T) {
	g := testNode(t, "/ip4/10.0.1.1/tcp/1")
	m := testNode(t, "/ip4/10.0.2.1/tcp/1")
	x := testNode(t, "/ip4/10.0.3.1/tcp/1")
	path := []*member.Node{g, m, x}
	for _, c := range []struct {
		name           string
		err            error
		avoid, exclude peer.ID
		report         *report
		guard          outcome
		stop           bool
	}{
		{"guard unreachable", errors.New("dial: connection refused"), g.ID, "", nil, failure, false},
		{"guard says the middle is unreachable", &HopError{Hop: 0, Msg: "next hop unreachable"}, "", m.ID, &report{g.ID, m.ID, true}, failure, false},
		{"middle says the exit is unreachable", &HopError{Hop: 1, Msg: "next hop unreachable"}, "", "", &report{m.ID, x.ID, false}, neutral, true},
		{"exit answers an error box", &HopError{Hop: 2, Msg: "whatever"}, "", "", nil, success, true},
		{"guard's box garbled", &LayerError{Layer: 0}, g.ID, "", nil, failure, false},
		{"middle's box garbled", &LayerError{Layer: 1}, "", m.ID, nil, failure, false},
		{"exit's box garbled", &LayerError{Layer: 2}, "", x.ID, nil, success, true},
		{"guard seals a final answer", &BadReplyError{Hop: 0}, g.ID, "", nil, failure, false},
		{"middle seals a final answer", &BadReplyError{Hop: 1}, m.ID, "", nil, success, false},
		{"exit seals an inner box", &BadReplyError{Hop: 2}, "", "", nil, success, true},
		{"guard refuses the packet", wire.Errorf(wire.CodeBadRequest, "bad packet"), "", "", nil, neutral, true},
		{"guard is busy", wire.Errorf(wire.CodeRateLimited, "busy"), "", "", nil, neutral, true},
	} {
		v := judge(path, x.ID, c.err)
		if v.avoid != c.avoid || v.exclude != c.exclude || v.guard != c.guard || (v.stop != nil) != c.stop ||
			(v.report == nil) != (c.report == nil) || (v.report != nil && *v.report != *c.report) {
			t.Errorf("%s: avoid %q, exclude %q, report %+v, guard %d, stop %v; want %q, %q, %+v, %d, stop %v",
				c.name, v.avoid, v.exclude, v.report, v.guard, v.stop, c.avoid, c.exclude, c.report, c.guard, c.stop)
		}
	}
	// A middle that says the next hop is down when that is not the exit
	// (a longer path) is the reporter and the call goes on.
	if v := judge(path, "someone-else", &HopError{Hop: 1, Msg: "down"}); v.report == nil || v.report.by != m.ID || v.stop != nil {
		t.Errorf("middle reporting a non-exit: %+v", v)
	}
}
