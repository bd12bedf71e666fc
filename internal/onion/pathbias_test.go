package onion

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/wire"
)

// okAnswer is what the fake network answers for a circuit that works.
func okAnswer(t testing.TB) []byte {
	t.Helper()
	b, err := wire.EncodeMsg(wire.KindNodesResp, &wire.NodesResp{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeNet is a Transport whose circuits are decided by a function of the
// path instead of a network; it records the paths tried.
type fakeNet struct {
	t     testing.TB
	pm    *PathManager
	tr    *Transport
	mu    sync.Mutex
	paths [][]*member.Node
}

func newFakeNet(t testing.TB, pm *PathManager, circuit func(path []*member.Node) error) *fakeNet {
	fn := &fakeNet{t: t, pm: pm}
	answer := okAnswer(t)
	fn.tr = &Transport{Paths: pm, send: func(_ context.Context, path []*member.Node, _ []byte) ([]byte, error) {
		fn.mu.Lock()
		fn.paths = append(fn.paths, path)
		fn.mu.Unlock()
		if err := circuit(path); err != nil {
			return nil, err
		}
		return answer, nil
	}}
	return fn
}

func (fn *fakeNet) call(exit *member.Node) error {
	var resp wire.NodesResp
	return fn.tr.Call(context.Background(), exit, wire.KindNodesReq, &wire.NodesReq{}, wire.KindNodesResp, &resp)
}

// TestMaliciousGuardCannotPushMiddlesOut: a guard that claims "next hop
// unreachable" for every middle but its colluder. Before the fix every
// such claim made the honest middle avoided by all of the client's
// requests for 30 s; now no honest middle is ever avoided, the guard's
// failures pile up in its path-bias record, and it is replaced (the change
// hook sees the new set) and not picked again.
func TestMaliciousGuardCannotPushMiddlesOut(t *testing.T) {
	nodes := loopbackNodes(t, 20)
	pm, clk := newTestPM(nodes)
	bad, honest, colluder := nodes[0], nodes[1], nodes[2]
	pm.SetGuards([]peer.ID{bad.ID, honest.ID})
	var hook [][]peer.ID
	pm.OnGuardsChange(func(g []peer.ID) { hook = append(hook, g) })
	fn := newFakeNet(t, pm, func(path []*member.Node) error {
		if path[0].ID == bad.ID && path[1].ID != colluder.ID {
			return &HopError{Hop: 0, Msg: "next hop unreachable: " + path[1].ID.String()}
		}
		return nil
	})
	exits := nodes[3:]
	dropped := -1
	for i := 0; i < 400 && dropped < 0; i++ {
		_ = fn.call(exits[i%len(exits)])
		for _, n := range nodes {
			if n.ID != bad.ID && pm.Avoided(n.ID) {
				t.Fatalf("call %d: %s is avoided on every path because the malicious guard named it", i, n.ID)
			}
		}
		if !slices.Contains(pm.Guards(), bad.ID) {
			dropped = i
		}
		clk.add(time.Second)
	}
	if dropped < 0 {
		st, _ := pm.GuardStats(bad.ID)
		t.Fatalf("the malicious guard is still a guard after 400 calls (%+v)", st)
	}
	t.Logf("the malicious guard was replaced after %d calls", dropped+1)
	if len(hook) == 0 || slices.Contains(hook[len(hook)-1], bad.ID) {
		t.Fatalf("the change hook did not see the guard go: %v", hook)
	}
	if !slices.Contains(pm.Guards(), honest.ID) {
		t.Fatal("the honest guard was replaced too")
	}
	// Every call succeeded in the end (through the colluder or the other
	// guard); the replaced guard is not picked again, even as the only
	// other candidates fail.
	for i := 0; i < 100; i++ {
		if err := fn.call(exits[i%len(exits)]); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(pm.Guards(), bad.ID) {
			t.Fatal("the replaced guard came back")
		}
	}
	clk.add(biasDropFor + time.Hour)
	if pm.wasDropped(bad.ID, clk.now()) {
		t.Fatal("a dropped guard is remembered forever")
	}
}

// TestGuardReportExcludesForThisCallOnly: when the guard says the middle
// is down, the next attempt of the same call uses another middle, and the
// next call may use that middle again.
func TestGuardReportExcludesForThisCallOnly(t *testing.T) {
	nodes := loopbackNodes(t, 6)
	pm, _ := newTestPM(nodes)
	if _, err := pm.Path(nodes[5]); err != nil {
		t.Fatal(err)
	}
	var first peer.ID
	failOnce := true
	fn := newFakeNet(t, pm, func(path []*member.Node) error {
		if failOnce {
			failOnce = false
			first = path[1].ID
			return &HopError{Hop: 0, Msg: "next hop unreachable"}
		}
		if path[1].ID == first {
			return fmt.Errorf("the same call tried the excluded middle %s again", first)
		}
		return nil
	})
	exit := nonGuards(nodes, pm.Guards())[0]
	if err := fn.call(exit); err != nil {
		t.Fatal(err)
	}
	if len(fn.paths) != 2 {
		t.Fatalf("%d attempts, want 2", len(fn.paths))
	}
	if pm.Avoided(first) {
		t.Fatal("the middle the guard named is avoided beyond this call")
	}
	// First attempt: a failure for its guard; second: a success for its.
	want := map[peer.ID]*GuardStats{}
	for i, p := range fn.paths {
		st := want[p[0].ID]
		if st == nil {
			st = &GuardStats{}
			want[p[0].ID] = st
		}
		st.Attempts++
		if i == 1 {
			st.Successes++
		}
	}
	for id, w := range want {
		if st, ok := pm.GuardStats(id); !ok || st != *w {
			t.Fatalf("guard %s: record %+v, want %+v", id, st, *w)
		}
	}
	// The excluded middle is fair game for the next call.
	seen := false
	fn2 := newFakeNet(t, pm, func(path []*member.Node) error {
		seen = seen || path[1].ID == first
		return nil
	})
	for i := 0; i < 200 && !seen; i++ {
		_ = fn2.call(exit)
	}
	if !seen {
		t.Fatal("a middle excluded by one call is never used again")
	}
}

// TestMiddleReportBlamesMiddle: a middle that says the exit is down is
// avoided itself, the call stops (the caller picks another swarm node),
// and the guard's path-bias record does not move.
func TestMiddleReportBlamesMiddle(t *testing.T) {
	nodes := loopbackNodes(t, 8)
	pm, _ := newTestPM(nodes)
	if _, err := pm.Path(nodes[7]); err != nil {
		t.Fatal(err)
	}
	fn := newFakeNet(t, pm, func(path []*member.Node) error {
		return &HopError{Hop: 1, Msg: "next hop unreachable"}
	})
	exit := nonGuards(nodes, pm.Guards())[0]
	err := fn.call(exit)
	if err == nil || len(fn.paths) != 1 {
		t.Fatalf("call: %v after %d attempts; want an error after 1", err, len(fn.paths))
	}
	path := fn.paths[0]
	if !pm.Avoided(path[1].ID) || pm.Avoided(exit.ID) || pm.Avoided(path[0].ID) {
		t.Fatalf("avoided: middle %v, exit %v, guard %v; want only the middle",
			pm.Avoided(path[1].ID), pm.Avoided(exit.ID), pm.Avoided(path[0].ID))
	}
	if st, ok := pm.GuardStats(path[0].ID); ok && st.Attempts != 0 {
		t.Fatalf("a middle's report moved the guard's record: %+v", st)
	}
}

// TestGarbledInnerBoxCountsAgainstGuard: the guard's box opens, the
// middle's does not: the guard may have replaced it, so the guard is
// charged a failure and the middle is excluded for this call only.
func TestGarbledInnerBoxCountsAgainstGuard(t *testing.T) {
	nodes := loopbackNodes(t, 8)
	pm, _ := newTestPM(nodes)
	pm.SetGuards([]peer.ID{nodes[0].ID, nodes[1].ID})
	n := 0
	fn := newFakeNet(t, pm, func(path []*member.Node) error {
		n++
		if n == 1 {
			return &LayerError{Layer: 1}
		}
		return nil
	})
	if err := fn.call(nodes[7]); err != nil {
		t.Fatal(err)
	}
	first, second := fn.paths[0], fn.paths[1]
	if second[1].ID == first[1].ID {
		t.Fatal("the call retried through the implicated middle")
	}
	if pm.Avoided(first[1].ID) || pm.Avoided(first[0].ID) {
		t.Fatal("a garbled inner box made a node avoided beyond this call")
	}
	g := first[0].ID
	st, _ := pm.GuardStats(g)
	wantS := 0.0
	if second[0].ID == g {
		wantS = 1
	}
	if st.Attempts != 1+wantS || st.Successes != wantS {
		t.Fatalf("guard record %+v after a garbled inner box", st)
	}
}

// TestPathBiasThresholds: no judgement before BiasMinAttempts circuits;
// then a guard below BiasMinRate is replaced; counts halve at
// BiasScaleAt, so a long good record does not shield a guard for long.
func TestPathBiasThresholds(t *testing.T) {
	nodes := loopbackNodes(t, 8)
	pm, _ := newTestPM(nodes)
	g := nodes[0].ID
	pm.SetGuards([]peer.ID{g, nodes[1].ID})
	for i := 1; i < BiasMinAttempts; i++ {
		pm.guardOutcome(g, failure)
		if !slices.Contains(pm.Guards(), g) {
			t.Fatalf("replaced after %d failures, before BiasMinAttempts", i)
		}
	}
	pm.guardOutcome(g, failure)
	if slices.Contains(pm.Guards(), g) {
		t.Fatalf("still a guard after %d failures in %d attempts", BiasMinAttempts, BiasMinAttempts)
	}
	if _, ok := pm.GuardStats(g); ok {
		t.Fatal("a replaced guard keeps its record")
	}

	// A good record, then the guard turns bad: with halving at
	// BiasScaleAt it is caught after about half of BiasScaleAt failures.
	h := nodes[2].ID
	pm.SetGuards([]peer.ID{h, nodes[1].ID})
	for i := 0; i < 1000; i++ {
		pm.guardOutcome(h, success)
	}
	fails := 0
	for slices.Contains(pm.Guards(), h) {
		pm.guardOutcome(h, failure)
		fails++
		if fails > BiasScaleAt {
			t.Fatalf("still a guard after %d failures following 1000 successes", fails)
		}
	}
	t.Logf("a guard with 1000 successes is replaced after %d failures in a row", fails)
	if fails < BiasScaleAt/4 {
		t.Fatalf("replaced after only %d failures following 1000 successes", fails)
	}

	// An honest guard whose circuits fail one in four (middles going down)
	// is kept, however long it runs; neutral outcomes do not count.
	k := nodes[3].ID
	pm.SetGuards([]peer.ID{k, nodes[1].ID})
	for i := 0; i < 2000; i++ {
		o := success
		if i%4 == 0 {
			o = failure
		}
		pm.guardOutcome(k, o)
		pm.guardOutcome(k, neutral)
	}
	if !slices.Contains(pm.Guards(), k) {
		t.Fatal("an honest guard with 75% success was replaced")
	}
	st, _ := pm.GuardStats(k)
	if st.Attempts >= BiasScaleAt || st.Attempts < BiasScaleAt/2 {
		t.Fatalf("attempts %v: not kept between BiasScaleAt/2 and BiasScaleAt", st.Attempts)
	}
	// Outcomes of a one-off first hop (not a persistent guard) are ignored.
	other := nodes[4].ID
	for i := 0; i < 50; i++ {
		pm.guardOutcome(other, failure)
	}
	if _, ok := pm.GuardStats(other); ok {
		t.Fatal("a node that is not a guard has a path-bias record")
	}
}

// TestGuardNotAnsweringIsReplaced: a guard that does not answer is
// avoided and replaced at once, as before.
func TestGuardNotAnsweringIsReplaced(t *testing.T) {
	nodes := loopbackNodes(t, 8)
	pm, _ := newTestPM(nodes)
	pm.SetGuards([]peer.ID{nodes[0].ID, nodes[1].ID})
	fn := newFakeNet(t, pm, func(path []*member.Node) error {
		if path[0].ID == nodes[0].ID {
			return errors.New("stream reset")
		}
		return nil
	})
	for i := 0; i < 10; i++ {
		if err := fn.call(nodes[2+i%6]); err != nil {
			t.Fatal(err)
		}
	}
	if slices.Contains(pm.Guards(), nodes[0].ID) || !pm.Avoided(nodes[0].ID) {
		t.Fatal("a guard that does not answer is kept")
	}
}

// TestPathExclude: Path never returns an excluded node, in any role; with
// both guards excluded another node is the first hop for that request.
func TestPathExclude(t *testing.T) {
	nodes := loopbackNodes(t, 10)
	pm, _ := newTestPM(nodes)
	if _, err := pm.Path(nodes[9]); err != nil {
		t.Fatal(err)
	}
	guards := pm.Guards()
	others := nonGuards(nodes, guards)
	exit := others[0]
	ex := append([]peer.ID{others[1].ID, others[2].ID}, guards...)
	for i := 0; i < 100; i++ {
		path, err := pm.Path(exit, ex...)
		if err != nil {
			t.Fatal(err)
		}
		checkPath(t, path, exit)
		for _, n := range path[:2] {
			if slices.Contains(ex, n.ID) {
				t.Fatalf("path uses excluded node %s", n.ID)
			}
		}
	}
	if g := pm.Guards(); !slices.Equal(g, guards) {
		t.Fatalf("excluding guards for one request changed the guard set: %v", g)
	}
}

// TestDeadExitCorroborated: an exit that is really down is named by every
// middle asked to reach it. The first report avoids its reporter; a second
// reporter confirms it: the exit is taken as down (requests to it fail at
// once, without a circuit, and it is used in no role), and the middles are
// cleared. One reporter naming a node again and again never makes it down.
func TestDeadExitCorroborated(t *testing.T) {
	nodes := loopbackNodes(t, 10)
	pm, clk := newTestPM(nodes)
	pm.SetGuards([]peer.ID{nodes[0].ID, nodes[1].ID})
	dead := nodes[9]
	fn := newFakeNet(t, pm, func(path []*member.Node) error {
		for i, n := range path[1:] {
			if n.ID == dead.ID {
				return &HopError{Hop: i, Msg: "next hop unreachable"}
			}
		}
		return nil
	})
	if err := fn.call(dead); err == nil {
		t.Fatal("a call to a dead exit succeeded")
	}
	first := fn.paths[0][1].ID
	if !pm.Avoided(first) || pm.Down(dead.ID) {
		t.Fatalf("after one report: reporter avoided %v, exit down %v; want true, false", pm.Avoided(first), pm.Down(dead.ID))
	}
	if err := fn.call(dead); err == nil {
		t.Fatal("a call to a dead exit succeeded")
	}
	second := fn.paths[1][1].ID
	if second == first {
		t.Fatal("the avoided middle was used again")
	}
	if !pm.Down(dead.ID) || pm.Avoided(first) || pm.Avoided(second) {
		t.Fatalf("after two reporters: exit down %v, reporters avoided %v %v; want true, false, false",
			pm.Down(dead.ID), pm.Avoided(first), pm.Avoided(second))
	}
	n := len(fn.paths)
	if err := fn.call(dead); err == nil || len(fn.paths) != n {
		t.Fatalf("a call to a down exit: %v after %d more circuits; want an error and none", err, len(fn.paths)-n)
	}
	// The dead node is no middle either, and the other exits work.
	for i := 0; i < 50; i++ {
		if err := fn.call(nodes[2+i%7]); err != nil {
			t.Fatal(err)
		}
	}
	clk.add(badFor + time.Second)
	if pm.Down(dead.ID) {
		t.Fatal("a node stays down beyond badFor")
	}

	// One malicious middle naming an honest exit over and over.
	pm2, clk2 := newTestPM(nodes)
	pm2.SetGuards([]peer.ID{nodes[0].ID, nodes[1].ID})
	liar, victim := nodes[2].ID, nodes[8].ID
	for i := 0; i < 20; i++ {
		pm2.reported(report{by: liar, named: victim})
		clk2.add(time.Second)
	}
	if pm2.Down(victim) || pm2.Avoided(victim) || !pm2.Avoided(liar) {
		t.Fatalf("one reporter: victim down %v avoided %v, liar avoided %v", pm2.Down(victim), pm2.Avoided(victim), pm2.Avoided(liar))
	}
	// Nor does one guard.
	for i := 0; i < 20; i++ {
		pm2.reported(report{by: nodes[0].ID, named: nodes[7].ID, guard: true})
	}
	if pm2.Avoided(nodes[7].ID) || pm2.Avoided(nodes[0].ID) {
		t.Fatal("one guard's reports avoided a node (or the guard, which path bias handles)")
	}
}
