//go:build linux

package nemesis

import (
	"reflect"
	"testing"
	"time"
)

func TestScheduleReplaysAndKeepsAMinority(t *testing.T) {
	cfg := ScheduleConfig{Duration: 5 * time.Minute, Nodes: 20, Clients: 4, Swarms: [][]int{{1, 4, 7, 9, 12}}}
	for seed := int64(1); seed <= 50; seed++ {
		a, b := Schedule(seed, cfg), Schedule(seed, cfg)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: two schedules differ", seed)
		}
		if len(a) < 5 {
			t.Fatalf("seed %d: only %d faults in 5 minutes", seed, len(a))
		}
		prev := time.Duration(0)
		for _, e := range a {
			if e.At < prev || e.HealAt <= e.At || e.HealAt > cfg.Duration {
				t.Fatalf("seed %d: %s overlaps or overruns", seed, e)
			}
			prev = e.HealAt
			if len(e.Nodes) > (cfg.Nodes-1)/2 || len(e.Nodes)+len(e.Clients) == 0 {
				t.Fatalf("seed %d: %s faults %d nodes", seed, e, len(e.Nodes))
			}
			if e.Kind == SwarmMinority && len(e.Nodes) != 2 {
				t.Fatalf("seed %d: %s is not two of a swarm of five", seed, e)
			}
			if (e.Kind == Wipe || e.Kind == Skew) && len(e.Nodes) != 1 {
				t.Fatalf("seed %d: %s", seed, e)
			}
		}
	}
	if reflect.DeepEqual(Schedule(1, cfg), Schedule(2, cfg)) {
		t.Fatal("seeds 1 and 2 give the same schedule")
	}
}

func TestCheck(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	h := History{
		Sends: []Send{
			{From: 0, To: 1, Seq: 1, At: at(0), Outcome: Acked, ID: "a"},
			{From: 0, To: 1, Seq: 2, At: at(10), Outcome: Queued, ID: "b"}, // acked later, delivered
			{From: 0, To: 1, Seq: 3, At: at(20), Outcome: Acked, ID: "c"},  // lost
			{From: 1, To: 0, Seq: 1, At: at(30), Outcome: Unknown, ID: ""}, // never delivered: fine
			{From: 1, To: 0, Seq: 2, At: at(40), Outcome: Queued, ID: "e"}, // still queued
			{From: 1, To: 0, Seq: 3, At: at(50), Outcome: Acked, ID: "f"},  // delivered twice
		},
		Received: [][]Received{
			{{Text: Text(1, 0, 3), ID: "f", ReceivedAt: at(51)}, {Text: Text(1, 0, 3), ID: "f2", ReceivedAt: at(52)}},
			{{Text: Text(0, 1, 2), ID: "b", ReceivedAt: at(12)}, {Text: Text(0, 1, 1), ID: "a", ReceivedAt: at(1)}, {Text: "hi", ReceivedAt: at(2)}},
		},
		SenderState: map[string]string{Text(0, 1, 1): "delivered", Text(0, 1, 2): "sent", Text(0, 1, 3): "sent", Text(1, 0, 2): "queued", Text(1, 0, 3): "read"},
		Windows:     []Window{{Start: at(5), End: at(15)}},
	}
	r := Check(h)
	if r.Sent != 6 || r.Acked != 3 || r.LateAcked != 1 || r.StillQueued != 1 || r.Unknown != 1 || r.Delivered != 3 {
		t.Fatalf("counts: %s", r)
	}
	if len(r.Lost) != 1 || len(r.Duplicated) != 1 || len(r.OutOfOrder) != 1 || len(r.Phantom) != 1 || r.OK() {
		t.Fatalf("verdict: %s", r)
	}
	if len(r.Latency[PhaseCalm]) != 1 || len(r.Latency[PhaseFault]) != 1 || len(r.Latency[PhaseHeal]) != 1 {
		t.Fatalf("phases: %v", r.Latency)
	}
	t.Log("\n" + r.String())
}
