package wire

import (
	"math"
	"time"
)

// TimeGranularity is the resolution of every time a client puts on the
// wire for nodes to see or keep: a stored message's timestamp and expiry,
// and the timestamp of a mailbox request's signature. Nodes so learn when
// a message was sent, or a mailbox read, only to the minute; the exact
// send time travels inside the end-to-end encryption (envelope
// Content.SentAt), where only the recipient reads it. Nodes round the few
// times they choose themselves (a store request without a timestamp) the
// same way.
const TimeGranularity = time.Minute

const granularityMs = int64(TimeGranularity / time.Millisecond)

// CoarseTime rounds a unix-millisecond time down to TimeGranularity (to
// the start of its minute). Every timestamp a client sends to nodes goes
// through it. Rounding down keeps a timestamp from ever being ahead of the
// sender's clock, so nodes' future-skew checks are unchanged; a coarse
// timestamp is instead up to TimeGranularity in the past, which the nodes'
// checks of past times allow for (mailbox.MaxAge).
func CoarseTime(ms int64) int64 {
	r := ms % granularityMs
	if r < 0 {
		r += granularityMs
	}
	if ms < math.MinInt64+r {
		return ms - r + granularityMs // the first minute of int64 has no start: round up
	}
	return ms - r
}

// CoarseTTL rounds a lifetime in milliseconds up to TimeGranularity (a
// positive TTL becomes at least a minute), so that a coarse timestamp plus
// the TTL is a coarse expiry and a message never lives less than asked
// for, measured from its coarse timestamp. A value too close to the int64
// limit to round up is rounded down.
func CoarseTTL(ms int64) int64 {
	c := CoarseTime(ms)
	if c >= ms || c > math.MaxInt64-granularityMs {
		return c
	}
	return c + granularityMs
}

// IsCoarse reports whether a unix-millisecond time (or a duration in
// milliseconds) is a whole multiple of TimeGranularity.
func IsCoarse(ms int64) bool { return ms%granularityMs == 0 }
