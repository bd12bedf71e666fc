// Package node is an Umbra service node: it stores mailboxes for the swarms
// it belongs to, replicates writes to a quorum, repairs replicas by
// anti-entropy, gossips signed node records and serves an admin endpoint.
package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// Protocol limits.
const (
	MaxMessageSize = wire.MaxMessageSize
	DefaultTTL     = 14 * 24 * time.Hour
	MaxTTL         = 30 * 24 * time.Hour
	MaxLongPoll    = 25 * time.Second
	// MaxFutureSkew bounds how far ahead of the node clock a sender timestamp may be.
	MaxFutureSkew = 60 * time.Second
)

// Config configures a node. The zero value of every field except DataDir
// gives the production default.
type Config struct {
	DataDir   string   // keys, database, addr file; created if missing
	Listen    []string // multiaddrs; default /ip4/127.0.0.1/tcp/0
	Bootstrap []string // multiaddrs with /p2p/ of nodes to join through
	Admin     string   // host:port for the admin HTTP server; "" disables it

	Params  wire.Params // network: name, replication R, PoW difficulty
	Version string

	RecordTTL      time.Duration // how long a node record lives unless refreshed (60s)
	GossipInterval time.Duration // record gossip period (1s)
	SyncInterval   time.Duration // anti-entropy period (5s)
	SyncSettle     time.Duration // a mailbox changed this recently is not compared yet (1s)
	ProbeInterval  time.Duration // liveness probe period for down nodes (2s)
	ExpireInterval time.Duration // expired-message sweep period (30s)
	// OnionKeyLifetime is how long an onion key is current (1h); the
	// previous key is still accepted for one more lifetime.
	OnionKeyLifetime time.Duration
	// OnionObserver, if set, is called for every onion request this node
	// relays (tests use it to check what each hop learns).
	OnionObserver func(OnionEvent)
	// Onion bounds the memory of onion relaying and the replay logs
	// (onion_limits.go).
	Onion OnionLimits

	MaxMailboxMessages int
	MaxMailboxBytes    int64
	MaxStoreBytes      int64

	Logger *slog.Logger
	Now    func() time.Time
}

// DefaultNetwork is the network name used when none is given.
const DefaultNetwork = "umbra-dev"

func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		return errors.New("node: a data directory is required (--data DIR)")
	}
	if len(c.Listen) == 0 {
		c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	if c.Params.Network == "" {
		c.Params.Network = DefaultNetwork
	}
	if c.Params.Replication == 0 {
		c.Params.Replication = swarm.DefaultReplication
	}
	if c.Params.Replication < 1 || c.Params.Replication > 15 {
		return fmt.Errorf("node: replication must be 1..15, got %d", c.Params.Replication)
	}
	if c.Params.PoWBits < 0 || c.Params.PoWBits > 40 {
		return fmt.Errorf("node: proof-of-work bits must be 0..40, got %d", c.Params.PoWBits)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.RecordTTL, 60*time.Second)
	def(&c.GossipInterval, time.Second)
	def(&c.SyncInterval, 5*time.Second)
	def(&c.SyncSettle, time.Second)
	def(&c.ProbeInterval, 2*time.Second)
	def(&c.ExpireInterval, 30*time.Second)
	def(&c.OnionKeyLifetime, time.Hour)
	c.Onion.setDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
