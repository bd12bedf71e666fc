//go:build linux

// Package nemesis injects faults into a netlab lab running real nodes, as
// Jepsen's nemesis does: partitions (one host cut off, the network split
// with a minority of the nodes on one side, a swarm's minority cut from its
// majority), kill -9 and restart, SIGSTOP/SIGCONT pauses, a restart on a
// wiped disk and a node clock set ±30 s off. A schedule is drawn from a seed
// (so a failing run can be replayed), each fault is healed before the next
// one starts, and at most a minority of the nodes is faulted at once. The
// checker (checker.go) then judges what the clients saw.
package nemesis

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The faults.
const (
	Isolate       Kind = "isolate"        // one host (node or client) cut off from every other
	Split         Kind = "split"          // a minority of the nodes (and some clients) cut from the rest
	SwarmMinority Kind = "swarm-minority" // two members of a known swarm cut from the rest
	Kill          Kind = "kill"           // kill -9, restarted (same data) at heal
	Pause         Kind = "pause"          // SIGSTOP, SIGCONT at heal
	Wipe          Kind = "wipe"           // kill -9 and data folder deleted, restarted empty at heal
	Skew          Kind = "skew"           // restarted with its clock ±30 s off, restarted right at heal
)

// AllKinds is every fault kind.
var AllKinds = []Kind{Isolate, Split, SwarmMinority, Kill, Pause, Wipe, Skew}

// Event is one fault: it starts At after the schedule starts and is healed
// at HealAt.
type Event struct {
	At, HealAt time.Duration
	Kind       Kind
	Nodes      []int         // node indices (1-based) faulted, or on the cut-off side
	Clients    []int         // client indices (0-based) on the cut-off side
	Skew       time.Duration // for Skew
}

func (e Event) String() string {
	s := fmt.Sprintf("%6.1fs-%6.1fs %-14s nodes %v", e.At.Seconds(), e.HealAt.Seconds(), e.Kind, e.Nodes)
	if len(e.Clients) > 0 {
		s += fmt.Sprintf(" clients %v", e.Clients)
	}
	if e.Skew != 0 {
		s += fmt.Sprintf(" skew %v", e.Skew)
	}
	return s
}

// ScheduleConfig shapes a schedule.
type ScheduleConfig struct {
	Duration time.Duration // the whole schedule; the last fault heals by then
	Nodes    int           // nodes 1..Nodes
	Clients  int           // clients 0..Clients-1
	// Swarms are known swarms (node indices), e.g. where a client's card
	// lives; SwarmMinority cuts two members of one. Without any, it cuts
	// two random nodes.
	Swarms [][]int
	Kinds  []Kind // default AllKinds

	Lead               time.Duration // calm time before the first fault (default Duration/6)
	MinFault, MaxFault time.Duration // a fault's length (default 5 s, 20 s)
	MinGap, MaxGap     time.Duration // calm time after a heal (default 4 s, 12 s)
	MaxSkew            time.Duration // default 30 s: a skew is ±MaxSkew
}

// SeedEnv names the environment variable that replays a seed.
const SeedEnv = "UMBRA_NEMESIS_SEED"

// Seed returns the seed in $UMBRA_NEMESIS_SEED, or a fresh one.
func Seed() (int64, error) {
	if v := os.Getenv(SeedEnv); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", SeedEnv, err)
		}
		return s, nil
	}
	return time.Now().UnixNano() & (1<<53 - 1), nil
}

// Rand is the generator a seed gives (the schedule and anything else a
// test draws from the seed use it, in a fixed order).
func Rand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// Schedule draws a fault schedule from seed.
func Schedule(seed int64, cfg ScheduleConfig) []Event {
	if len(cfg.Kinds) == 0 {
		cfg.Kinds = AllKinds
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.Lead, cfg.Duration/6)
	def(&cfg.MinFault, 5*time.Second)
	def(&cfg.MaxFault, 20*time.Second)
	def(&cfg.MinGap, 4*time.Second)
	def(&cfg.MaxGap, 12*time.Second)
	def(&cfg.MaxSkew, 30*time.Second)
	r := Rand(seed, 1)
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(r.Int64N(int64(hi-lo)))
	}
	minority := (cfg.Nodes - 1) / 2 // most nodes faulted at once
	pick := func(k int) []int {     // k distinct random nodes
		p := r.Perm(cfg.Nodes)[:k]
		out := make([]int, k)
		for i, v := range p {
			out[i] = v + 1
		}
		slices.Sort(out)
		return out
	}
	var evs []Event
	for t := cfg.Lead; t+cfg.MinFault <= cfg.Duration; {
		e := Event{At: t, Kind: cfg.Kinds[r.IntN(len(cfg.Kinds))]}
		e.HealAt = min(t+between(cfg.MinFault, cfg.MaxFault), cfg.Duration)
		switch e.Kind {
		case Isolate:
			if cfg.Clients > 0 && r.IntN(4) == 0 {
				e.Clients = []int{r.IntN(cfg.Clients)}
			} else {
				e.Nodes = pick(1)
			}
		case Split:
			e.Nodes = pick(max(1, minority))
			for c := range cfg.Clients {
				if r.IntN(2) == 0 {
					e.Clients = append(e.Clients, c)
				}
			}
		case SwarmMinority:
			if len(cfg.Swarms) > 0 {
				sw := slices.Clone(cfg.Swarms[r.IntN(len(cfg.Swarms))])
				r.Shuffle(len(sw), func(i, j int) { sw[i], sw[j] = sw[j], sw[i] })
				e.Nodes = sw[:min(len(sw), max(1, (len(sw)-1)/2), max(1, minority))]
				slices.Sort(e.Nodes)
			} else {
				e.Nodes = pick(min(2, max(1, minority)))
			}
		case Kill, Pause:
			e.Nodes = pick(1 + r.IntN(min(2, max(1, minority))))
		case Wipe, Skew:
			// One at a time: a wiped node must be repaired before another
			// member of its swarm loses its disk.
			e.Nodes = pick(1)
			if e.Kind == Skew {
				e.Skew = cfg.MaxSkew
				if r.IntN(2) == 0 {
					e.Skew = -e.Skew
				}
			}
		}
		evs = append(evs, e)
		t = e.HealAt + between(cfg.MinGap, cfg.MaxGap)
	}
	return evs
}

// Summary is a one-line count of a schedule's faults by kind.
func Summary(evs []Event) string {
	n := map[Kind]int{}
	var faulted time.Duration
	for _, e := range evs {
		n[e.Kind]++
		faulted += e.HealAt - e.At
	}
	var parts []string
	for _, k := range AllKinds {
		if n[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
		}
	}
	return fmt.Sprintf("%d faults (%s), %v under fault", len(evs), strings.Join(parts, ", "), faulted.Round(time.Second))
}
