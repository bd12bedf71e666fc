//go:build linux

package nemesis

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Outcomes of a send call.
const (
	Acked   = "acked"   // the call answered "sent" (a write quorum holds it)
	Queued  = "queued"  // the call answered "queued": the outbox goes on
	Refused = "refused" // the call answered an error: nothing was queued
	Unknown = "unknown" // no answer (timeout, transport error): maybe queued
)

// Send is one message a client asked its daemon to send.
type Send struct {
	From, To int // client indices
	Seq      int // per (From, To), from 1, in call order
	At, Done time.Time
	Outcome  string
	ID       string // message ID, when answered
}

// Text is the message text for a (from, to, seq).
func Text(from, to, seq int) string { return fmt.Sprintf("nemesis c%d>c%d #%d", from, to, seq) }

// ParseText reverses Text.
func ParseText(s string) (from, to, seq int, ok bool) {
	n, err := fmt.Sscanf(s, "nemesis c%d>c%d #%d", &from, &to, &seq)
	return from, to, seq, err == nil && n == 3
}

// Received is one incoming message as a receiver's client lists it, in
// the list's (display) order.
type Received struct {
	To         int // the receiving client
	Text       string
	ID         string
	ReceivedAt time.Time
}

// History is what the clients did and saw.
type History struct {
	Sends []Send
	// Received[c] is client c's incoming messages in display order.
	Received [][]Received
	// SenderState maps a message text to its final state on the sender
	// ("queued", "sent", "delivered", "read", "failed"): by text, since a
	// call that got no answer has no ID.
	SenderState map[string]string
	Windows     []Window
}

// Phases of a send, by when it was made.
const (
	PhaseCalm  = "calm"        // before the first fault
	PhaseFault = "under fault" // while a fault was in effect
	PhaseHeal  = "after heal"  // after the first fault, none in effect
)

// Report is the checker's verdict and figures.
type Report struct {
	Sent, Acked, LateAcked, StillQueued, Failed, Refused, Unknown int
	Delivered                                                     int // distinct messages delivered
	Lost, Duplicated, OutOfOrder, Phantom                         []string
	ArrivalInversions                                             int // pairs delivered in another order than sent (display order is right)
	Latency                                                       map[string][]time.Duration
}

// Check judges h: every message acknowledged as sent (by the call, or
// later by the outbox) is delivered exactly once; no message is shown
// twice or comes from nowhere; each conversation shows a sender's messages
// in the order they were sent.
func Check(h History) Report {
	r := Report{Latency: map[string][]time.Duration{}}
	type key struct{ from, to, seq int }
	sends := map[key]Send{}
	for _, s := range h.Sends {
		sends[key{s.From, s.To, s.Seq}] = s
	}
	seen := map[key]int{}
	first := map[key]Received{}
	for c, list := range h.Received {
		last := map[int]int{} // sender -> last seq shown
		for _, m := range list {
			f, to, seq, ok := ParseText(m.Text)
			k := key{f, to, seq}
			if _, sent := sends[k]; !ok || to != c || !sent {
				r.Phantom = append(r.Phantom, fmt.Sprintf("client %d shows %q", c, m.Text))
				continue
			}
			seen[k]++
			if seen[k] == 1 {
				first[k] = m
			} else {
				r.Duplicated = append(r.Duplicated, fmt.Sprintf("%q shown %d times (ids %s, %s)", m.Text, seen[k], first[k].ID, m.ID))
				continue
			}
			if seq <= last[f] {
				r.OutOfOrder = append(r.OutOfOrder, fmt.Sprintf("client %d shows c%d #%d after #%d", c, f, seq, last[f]))
			}
			last[f] = max(last[f], seq)
		}
	}
	r.Delivered = len(first)
	type pair struct{ from, to int }
	byPair := map[pair][]key{}
	for _, s := range h.Sends {
		k := key{s.From, s.To, s.Seq}
		r.Sent++
		st := h.SenderState[Text(s.From, s.To, s.Seq)]
		late := s.Outcome != Acked && (st == "sent" || st == "delivered" || st == "read")
		switch {
		case s.Outcome == Acked:
			r.Acked++
		case late:
			r.LateAcked++
		case st == "queued":
			r.StillQueued++
		case st == "failed":
			r.Failed++
		case s.Outcome == Refused:
			r.Refused++
		default:
			r.Unknown++
		}
		if m, ok := first[k]; ok {
			ph := phaseOf(s.At, h.Windows)
			r.Latency[ph] = append(r.Latency[ph], m.ReceivedAt.Sub(s.At))
			byPair[pair{s.From, s.To}] = append(byPair[pair{s.From, s.To}], k)
		} else if s.Outcome == Acked || late {
			r.Lost = append(r.Lost, fmt.Sprintf("%q (id %s, %s at %s, sender state %q)", Text(s.From, s.To, s.Seq), s.ID, s.Outcome, s.At.Format("15:04:05.000"), st))
		}
	}
	for _, ks := range byPair {
		for i := 1; i < len(ks); i++ {
			if first[ks[i]].ReceivedAt.Before(first[ks[i-1]].ReceivedAt) {
				r.ArrivalInversions++
			}
		}
	}
	return r
}

func phaseOf(t time.Time, ws []Window) string {
	if len(ws) == 0 || t.Before(ws[0].Start) {
		return PhaseCalm
	}
	for _, w := range ws {
		if !t.Before(w.Start) && !t.After(w.End) {
			return PhaseFault
		}
	}
	return PhaseHeal
}

// OK reports whether the checker found nothing wrong.
func (r Report) OK() bool {
	return len(r.Lost) == 0 && len(r.Duplicated) == 0 && len(r.OutOfOrder) == 0 && len(r.Phantom) == 0
}

// Histogram is p50/p90/p99/max of ds.
func Histogram(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no messages"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration {
		return s[min(len(s)-1, int(p*float64(len(s))))].Round(time.Millisecond)
	}
	return fmt.Sprintf("n=%d p50=%v p90=%v p99=%v max=%v", len(s), q(.50), q(.90), q(.99), s[len(s)-1].Round(time.Millisecond))
}

// String is the report as lines for a test log.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent %d: acked %d, acked later by the outbox %d, still queued %d, failed %d, refused %d, unknown %d\n",
		r.Sent, r.Acked, r.LateAcked, r.StillQueued, r.Failed, r.Refused, r.Unknown)
	fmt.Fprintf(&b, "delivered %d, lost %d, duplicated %d, out of order %d, phantom %d, arrival inversions %d (display order is checked)\n",
		r.Delivered, len(r.Lost), len(r.Duplicated), len(r.OutOfOrder), len(r.Phantom), r.ArrivalInversions)
	for _, ph := range []string{PhaseCalm, PhaseFault, PhaseHeal} {
		fmt.Fprintf(&b, "latency %-11s %s\n", ph+":", Histogram(r.Latency[ph]))
	}
	for _, l := range [][]string{r.Lost, r.Duplicated, r.OutOfOrder, r.Phantom} {
		for i, s := range l {
			if i == 20 {
				fmt.Fprintf(&b, "  ... %d more\n", len(l)-i)
				break
			}
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	return b.String()
}
