//go:build linux

package nemesis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/netlab"
)

// Nemesis applies a schedule to a lab whose node i runs in NodeHost(i) as
// devnet node i, and whose client c runs in ClientHost(c).
type Nemesis struct {
	Lab        *netlab.Lab
	Devnet     *devnet.Devnet
	NodeHost   func(i int) *netlab.Host
	ClientHost func(c int) *netlab.Host
	Logf       func(format string, args ...any)

	mu   sync.Mutex
	skew map[int]time.Duration
}

// Env is the extra environment node i starts with (its clock offset while a
// Skew fault is on it): the lab's Command hook for the devnet adds it.
func (n *Nemesis) Env(i int) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if d := n.skew[i]; d != 0 {
		return []string{"UMBRA_TEST_CLOCK_OFFSET=" + d.String()}
	}
	return nil
}

func (n *Nemesis) setSkew(i int, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.skew == nil {
		n.skew = map[int]time.Duration{}
	}
	n.skew[i] = d
}

// Window is when a fault was really in effect (wall clock).
type Window struct {
	Event      Event
	Start, End time.Time
}

// Run applies events (sorted by At, each healed before the next) relative
// to start, healing each at its HealAt. When ctx ends it heals the fault in
// effect and returns. Errors applying or healing a fault are returned
// together at the end (the schedule goes on).
func (n *Nemesis) Run(ctx context.Context, start time.Time, evs []Event) ([]Window, error) {
	var errs []error
	var ws []Window
	for _, e := range evs {
		if !sleepUntil(ctx, start.Add(e.At)) {
			break
		}
		w := Window{Event: e, Start: time.Now()}
		n.logf("nemesis: %s", e)
		if err := n.apply(e); err != nil {
			errs = append(errs, fmt.Errorf("apply %s: %w", e, err))
		}
		sleepUntil(ctx, start.Add(e.HealAt))
		if err := n.heal(e); err != nil {
			errs = append(errs, fmt.Errorf("heal %s: %w", e, err))
		}
		w.End = time.Now()
		n.logf("nemesis: healed %s after %v", e.Kind, w.End.Sub(w.Start).Round(100*time.Millisecond))
		ws = append(ws, w)
	}
	return ws, errors.Join(errs...)
}

func (n *Nemesis) logf(format string, args ...any) {
	if n.Logf != nil {
		n.Logf(format, args...)
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// cutOff is the hosts an event's partition puts on the small side.
func (n *Nemesis) cutOff(e Event) []*netlab.Host {
	var hs []*netlab.Host
	for _, i := range e.Nodes {
		hs = append(hs, n.NodeHost(i))
	}
	for _, c := range e.Clients {
		hs = append(hs, n.ClientHost(c))
	}
	return hs
}

func (n *Nemesis) apply(e Event) error {
	var errs []error
	switch e.Kind {
	case Isolate, Split, SwarmMinority:
		n.Lab.Partition(n.cutOff(e))
	case Kill:
		for _, i := range e.Nodes {
			errs = append(errs, n.Devnet.Kill(i))
		}
	case Pause:
		for _, i := range e.Nodes {
			errs = append(errs, n.Devnet.Pause(i))
		}
	case Wipe:
		for _, i := range e.Nodes {
			errs = append(errs, n.Devnet.Kill(i), n.Devnet.Wipe(i))
		}
	case Skew:
		for _, i := range e.Nodes {
			errs = append(errs, n.Devnet.Terminate(i))
			n.setSkew(i, e.Skew)
			errs = append(errs, n.Devnet.Restart(i))
		}
	default:
		return fmt.Errorf("unknown fault %q", e.Kind)
	}
	return errors.Join(errs...)
}

func (n *Nemesis) heal(e Event) error {
	var errs []error
	switch e.Kind {
	case Isolate, Split, SwarmMinority:
		n.Lab.Heal()
	case Kill, Wipe:
		for _, i := range e.Nodes {
			errs = append(errs, n.Devnet.Restart(i))
		}
	case Pause:
		for _, i := range e.Nodes {
			errs = append(errs, n.Devnet.Resume(i))
		}
	case Skew:
		for _, i := range e.Nodes {
			errs = append(errs, n.Devnet.Terminate(i))
			n.setSkew(i, 0)
			errs = append(errs, n.Devnet.Restart(i))
		}
	}
	return errors.Join(errs...)
}
