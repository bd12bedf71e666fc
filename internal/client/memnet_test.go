package client_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/memswarm"
)

// The engine tests that need no real node run on an in-memory swarm
// (internal/memswarm) inside a testing/synctest bubble: time is virtual,
// so epochs, long-polls, receipt delays and the read schedule cost no
// wall-clock time, and a test ends when every engine goroutine has
// stopped (Close). Make the memNet, the accounts and the engines inside
// the bubble.

// memNet is an in-memory network for one test.
type memNet struct {
	t *testing.T
	s *memswarm.Swarm
}

func newMemNet(t *testing.T) *memNet {
	return &memNet{t: t, s: memswarm.New(memswarm.Options{})}
}

// account makes an account with no network file (the swarm is injected).
func (n *memNet) account(name string) *user {
	n.t.Helper()
	home := filepath.Join(n.t.TempDir(), name)
	acct, err := client.Init(home, "", nil, "")
	if err != nil {
		n.t.Fatal(err)
	}
	return &user{home: home, id: acct.ID().String()}
}

// openEngine opens u's engine on the swarm with cfg (Home and Network
// filled in; the test schedule and logger unless cfg says otherwise),
// without starting it. It returns the engine's client of the swarm.
func (n *memNet) openEngine(u *user, cfg client.Config) (*client.Engine, *memswarm.Client) {
	n.t.Helper()
	c := n.s.Client(filepath.Base(u.home))
	cfg.Home, cfg.Network = u.home, c
	if cfg.Logger == nil {
		cfg.Logger = testLogger(n.t, u.home)
	}
	if cfg.Schedule == (client.Schedule{}) {
		cfg.Schedule = testSchedule
	}
	e, err := client.Open(context.Background(), cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	return e, c
}

// start opens and starts u's engine, stopped when the test ends.
func (n *memNet) start(u *user, cfg client.Config) *memswarm.Client {
	n.t.Helper()
	e, c := n.openEngine(u, cfg)
	e.Start()
	u.e = e
	n.t.Cleanup(u.stop)
	return c
}

// newUser makes an account and starts its engine.
func (n *memNet) newUser(name string) *user {
	n.t.Helper()
	u := n.account(name)
	n.start(u, client.Config{})
	return u
}
