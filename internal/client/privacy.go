package client

import (
	"fmt"
	mrand "math/rand/v2"
	"time"
)

// Schedule is the receive schedule: how the engine spaces its reads so
// that their timing says nothing of the mailboxes they belong to. Each
// range is [min, max]; every draw is uniform in it, independently.
type Schedule struct {
	// PollWait is how long a long-poll waits at the node for a message.
	PollWait [2]time.Duration
	// PollGap is the pause between two long-polls of one reader.
	PollGap [2]time.Duration
	// CatchUpGap is the pause before each catch-up read of an older epoch.
	CatchUpGap [2]time.Duration
}

// DefaultSchedule is the schedule of the standard privacy mode.
func DefaultSchedule() Schedule {
	return Schedule{
		PollWait:   [2]time.Duration{15 * time.Second, 25 * time.Second},
		PollGap:    [2]time.Duration{200 * time.Millisecond, 2 * time.Second},
		CatchUpGap: [2]time.Duration{time.Second, 15 * time.Second},
	}
}

// Validate checks that every range is ordered and not negative.
func (s Schedule) Validate() error {
	for _, r := range []struct {
		name string
		v    [2]time.Duration
	}{{"poll wait", s.PollWait}, {"poll gap", s.PollGap}, {"catch-up gap", s.CatchUpGap}} {
		if r.v[0] < 0 || r.v[1] < r.v[0] {
			return fmt.Errorf("receive schedule: %s range %v–%v", r.name, r.v[0], r.v[1])
		}
	}
	return nil
}

func draw(r [2]time.Duration) time.Duration {
	if r[1] <= r[0] {
		return r[0]
	}
	return r[0] + mrand.N(r[1]-r[0])
}

func (s Schedule) pollWait() time.Duration   { return draw(s.PollWait) }
func (s Schedule) pollGap() time.Duration    { return draw(s.PollGap) }
func (s Schedule) catchUpGap() time.Duration { return draw(s.CatchUpGap) }
