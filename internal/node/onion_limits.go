package node

import (
	"time"

	"github.com/umbra-im/umbra/internal/onion"
)

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

	// MixMaxDelay caps the mix delay a layer may ask this relay to hold a
	// packet for (onion.MaxDelay, 5 s; never more): a larger ask is held
	// this long.
	MixMaxDelay time.Duration
	// MixHeldPackets and MixHeldBytes bound the requests held for their
	// mix delay at once, in count (2048) and bytes of onion budget charge
	// (half of NodeBudget, 32 MiB); MixPeerPackets and MixPeerBytes bound
	// those of one previous hop (256, and half of PeerBudget, 8 MiB).
	// Held requests stay charged to the onion budget too; these bounds
	// keep half of it for undelayed traffic. Beyond them a request is
	// dropped (429) and counted (umbra_onion_mix_dropped_total).
	MixHeldPackets, MixPeerPackets int
	MixHeldBytes, MixPeerBytes     int64
}

// DefaultOnionLimits are the production onion limits.
var DefaultOnionLimits = OnionLimits{
	NodeBudget:         64 << 20,
	PeerBudget:         16 << 20,
	ReplayTagsPerKey:   1 << 18,
	ReplaySyncInterval: time.Second,
	MixMaxDelay:        onion.MaxDelay,
	MixHeldPackets:     2048,
	MixPeerPackets:     256,
	MixHeldBytes:       (64 << 20) / 2,
	MixPeerBytes:       (16 << 20) / 2,
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
	if l.MixMaxDelay <= 0 || l.MixMaxDelay > onion.MaxDelay {
		l.MixMaxDelay = onion.MaxDelay
	}
	if l.MixHeldPackets <= 0 {
		l.MixHeldPackets = d.MixHeldPackets
	}
	if l.MixPeerPackets <= 0 {
		l.MixPeerPackets = d.MixPeerPackets
	}
	// The byte bounds follow the budgets they are carved from.
	if l.MixHeldBytes <= 0 {
		l.MixHeldBytes = l.NodeBudget / 2
	}
	if l.MixPeerBytes <= 0 {
		l.MixPeerBytes = l.PeerBudget / 2
	}
}
