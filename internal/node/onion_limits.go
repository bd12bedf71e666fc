package node

import "time"

// OnionLimits bound the onion work of a node. Zero fields take the values
// of DefaultOnionLimits, the one source of these defaults (docs/onion.md
// describes them).
type OnionLimits struct {
	// NodeBudget bounds the bytes of onion work this node holds at once
	// (64 MiB). A request is charged before it is peeled and until its
	// answer is sent; requests may use three quarters of the budget, the
	// rest is kept for the replies they wait for. Over budget, a request
	// is answered at once with 429.
	NodeBudget int64
	// PeerBudget bounds the bytes of onion requests held at once for one
	// previous hop (16 MiB).
	PeerBudget int64
	// ReplayTagsPerKey is how many replay tags one onion key may collect
	// (2^18, 4 MiB of log file). A key whose log is full is rotated at
	// once, and packets to it are refused (503) until it retires: a tag is
	// never forgotten while its key is accepted.
	ReplayTagsPerKey int
	// ReplaySyncInterval is how often the replay logs are fsynced (1 s):
	// a power loss can forget the tags of the last interval; a killed
	// process forgets none (each tag is written before the answer).
	ReplaySyncInterval time.Duration
}

// DefaultOnionLimits are the production onion limits.
var DefaultOnionLimits = OnionLimits{
	NodeBudget:         64 << 20,
	PeerBudget:         16 << 20,
	ReplayTagsPerKey:   1 << 18,
	ReplaySyncInterval: time.Second,
}

func (l *OnionLimits) setDefaults() {
	d := DefaultOnionLimits
	if l.NodeBudget <= 0 {
		l.NodeBudget = d.NodeBudget
	}
	if l.PeerBudget <= 0 {
		l.PeerBudget = d.PeerBudget
	}
	if l.ReplayTagsPerKey <= 0 {
		l.ReplayTagsPerKey = d.ReplayTagsPerKey
	}
	if l.ReplaySyncInterval <= 0 {
		l.ReplaySyncInterval = d.ReplaySyncInterval
	}
}
