package trafficstat

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestCompareTraces(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	start := time.Unix(0, 0)
	span := 30 * time.Minute
	trace := func(times []time.Time) Trace { return Trace{Times: times, Start: start, Span: span} }
	poisson := func(rate float64) Trace { return trace(PoissonArrivals(r, rate, start, span)) }
	jittered := func() Trace {
		return trace(JitteredArrivals(r, 10*time.Second, 5*time.Second, start, span))
	}
	// Bursty: the same mean rate (1/s) in one-minute bursts of 2/s every
	// other minute.
	var bursts []time.Time
	for m := time.Duration(0); m < span; m += 2 * time.Minute {
		bursts = append(bursts, PoissonArrivals(r, 2, start.Add(m), time.Minute)...)
	}
	// A client that polls on a jittered cadence and adds one poll per contact
	// per minute, as the old per-session long-polls did.
	withContacts := jittered()
	for range 5 {
		withContacts.Times = append(withContacts.Times, JitteredArrivals(r, time.Minute, 20*time.Second, start, span)...)
	}

	for _, tc := range []struct {
		name  string
		a, b  Trace
		wants string // "" when the traces must be indistinguishable
	}{
		{"poisson, same rate", poisson(1), poisson(1), ""},
		{"jittered cadence, same", jittered(), jittered(), ""},
		{"poisson, double rate", poisson(1), poisson(2), "rates differ"},
		{"bursts", poisson(1), trace(bursts), "overdispersed"},
		{"per-contact polls", jittered(), withContacts, "rates differ"},
		// Same rate, different shape: Poisson gaps against a regular cadence.
		{"shape", poisson(0.1), jittered(), "inter-arrival"},
	} {
		c := CompareTraces(tc.a, tc.b, time.Minute)
		if len(c.CountsA) != 30 || len(c.CountsB) != 30 {
			t.Fatalf("%s: %d and %d bins, want 30", tc.name, len(c.CountsA), len(c.CountsB))
		}
		err := c.Indistinguishable(0.01)
		switch {
		case tc.wants == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wants != "" && (err == nil || !strings.Contains(err.Error(), tc.wants)):
			t.Errorf("%s: got %v, want an error about %q", tc.name, err, tc.wants)
		}
	}
	if err := CompareTraces(Trace{}, Trace{}, time.Minute).Indistinguishable(0.01); err == nil {
		t.Error("empty traces must not pass as indistinguishable")
	}
}
