package onion

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
)

// swallows makes a fake circuit that times out when pred holds for it.
func swallows(pred func(path []*member.Node) bool) func(path []*member.Node) error {
	return func(path []*member.Node) error {
		if pred(path) {
			return errAttemptTimeout
		}
		return nil
	}
}

// TestSilentGuardIsReplaced: a guard that takes every packet and never
// answers. Every call still succeeds (the retry goes through the other
// guard) and the silent guard is replaced after silentRun silent attempts
// in a row, after which no
// attempt times out. Before, a timeout excluded only the middle and was
// neutral for the guard: the silent guard stayed for good and cost half of
// all requests an attempt.
func TestSilentGuardIsReplaced(t *testing.T) {
	nodes := loopbackNodes(t, 10)
	pm, clk := newTestPM(nodes)
	silentGuard := nodes[0].ID
	pm.SetGuards([]peer.ID{silentGuard, nodes[1].ID})
	fn := newFakeNet(t, pm, swallows(func(p []*member.Node) bool { return p[0].ID == silentGuard }))
	calls := 0
	for ; calls < 200 && slices.Contains(pm.Guards(), silentGuard); calls++ {
		if err := fn.call(nodes[2+calls%8]); err != nil {
			t.Fatalf("call %d: %v", calls, err)
		}
		clk.add(5 * time.Second) // an exit clears silent paths once per badFor
	}
	if slices.Contains(pm.Guards(), silentGuard) {
		t.Fatalf("the silent guard is still a guard after %d calls", calls)
	}
	t.Logf("silent guard replaced after %d calls", calls)
	n := len(fn.paths)
	for i := 0; i < 40; i++ {
		if err := fn.call(nodes[2+i%8]); err != nil {
			t.Fatal(err)
		}
	}
	if len(fn.paths) != n+40 {
		t.Fatalf("%d circuits for 40 calls after the replacement; want 40", len(fn.paths)-n)
	}
}

// TestSilentExitIsDown: an exit that swallows everything costs a call two
// attempts on paths that share nothing but the exit; then it is taken as
// down, and the next call to it fails at once.
func TestSilentExitIsDown(t *testing.T) {
	nodes := loopbackNodes(t, 10)
	pm, _ := newTestPM(nodes)
	pm.SetGuards([]peer.ID{nodes[0].ID, nodes[1].ID})
	exit := nodes[9]
	fn := newFakeNet(t, pm, swallows(func(p []*member.Node) bool { return p[2].ID == exit.ID }))
	if err := fn.call(exit); err == nil {
		t.Fatal("a call to a silent exit succeeded")
	}
	if len(fn.paths) != 2 {
		t.Fatalf("%d attempts; want 2", len(fn.paths))
	}
	a, b := fn.paths[0], fn.paths[1]
	if a[0].ID == b[0].ID || a[1].ID == b[1].ID {
		t.Fatalf("the two attempts share a guard or a middle: %v %v", a[:2], b[:2])
	}
	if !pm.Down(exit.ID) {
		t.Fatal("the silent exit is not taken as down")
	}
	if err := fn.call(exit); err == nil || len(fn.paths) != 2 {
		t.Fatalf("a call to the down exit: %v after %d circuits; want an error and none", err, len(fn.paths)-2)
	}
	// Its silence cost the guards nothing.
	for _, g := range pm.Guards() {
		if st, _ := pm.GuardStats(g); st.Attempts != st.Successes {
			t.Fatalf("guard %s charged for the exit's silence: %+v", g, st)
		}
	}
}

// TestSilentMiddle: a middle that swallows everything is avoided once it
// has been silent on paths through both guards (each cleared by a retry
// that reached the same exit); a guard that swallows only the packets for
// one honest middle never gets that middle avoided, and pays for it in
// its path-bias record instead.
func TestSilentMiddle(t *testing.T) {
	nodes := loopbackNodes(t, 10)
	pm, clk := newTestPM(nodes)
	pm.SetGuards([]peer.ID{nodes[0].ID, nodes[1].ID})
	silentMiddle := nodes[5].ID
	fn := newFakeNet(t, pm, swallows(func(p []*member.Node) bool { return p[1].ID == silentMiddle }))
	via := map[peer.ID]bool{}
	for i := 0; i < 400 && !pm.Avoided(silentMiddle); i++ {
		n := len(fn.paths)
		if err := fn.call(nodes[2+i%3]); err != nil {
			t.Fatal(err)
		}
		if len(fn.paths) > n+1 {
			via[fn.paths[n][0].ID] = true
		}
		clk.add(time.Second)
	}
	if !pm.Avoided(silentMiddle) || len(via) != 2 {
		t.Fatalf("silent middle avoided %v after silence through %d guards; want true after 2", pm.Avoided(silentMiddle), len(via))
	}

	// A malicious guard swallowing what goes to one honest middle.
	pm2, clk2 := newTestPM(nodes)
	evil, victim := nodes[0].ID, nodes[6].ID
	pm2.SetGuards([]peer.ID{evil, nodes[1].ID})
	fn2 := newFakeNet(t, pm2, swallows(func(p []*member.Node) bool { return p[0].ID == evil && p[1].ID == victim }))
	for i := 0; i < 300 && slices.Contains(pm2.Guards(), evil); i++ {
		if err := fn2.call(nodes[2+i%3]); err != nil {
			t.Fatal(err)
		}
		if pm2.Avoided(victim) {
			t.Fatal("one guard's silence made an honest middle avoided")
		}
		clk2.add(11 * time.Second)
	}
	st, _ := pm2.GuardStats(evil)
	if st.Attempts == st.Successes {
		t.Fatalf("the guard's silence is not in its path-bias record: %+v", st)
	}
}

// TestSilentExitCannotRotateGuards: an exit that drops the first copy of
// every request and answers the retry charges the client's honest guards
// at most one failure per badFor, so path bias keeps them.
func TestSilentExitCannotRotateGuards(t *testing.T) {
	nodes := loopbackNodes(t, 10)
	pm, clk := newTestPM(nodes)
	guards := []peer.ID{nodes[0].ID, nodes[1].ID}
	pm.SetGuards(guards)
	exit := nodes[9]
	seen := 0
	fn := newFakeNet(t, pm, func(p []*member.Node) error {
		if p[2].ID != exit.ID {
			return nil
		}
		if seen++; seen%2 == 1 {
			return errAttemptTimeout // the first copy
		}
		return nil
	})
	for i := 0; i < 600; i++ {
		if err := fn.call(exit); err != nil && !errors.Is(err, errAttemptTimeout) {
			t.Fatal(err)
		}
		if i%3 == 0 { // the client's other traffic, to honest exits
			if err := fn.call(nodes[2+i%5]); err != nil {
				t.Fatal(err)
			}
		}
		clk.add(2 * time.Second)
	}
	if g := pm.Guards(); !slices.Equal(g, guards) {
		t.Fatalf("the exit rotated the guards: %v, want %v", g, guards)
	}
}
