// Package node is an Umbra service node: it stores mailboxes for the swarms
// it belongs to, replicates writes to a quorum, repairs replicas by
// anti-entropy, gossips signed node records and serves an admin endpoint.
package node

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/sharestore"
	"github.com/umbra-im/umbra/internal/store"
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

// Config configures a node. DefaultConfig gives the production defaults
// (the CLI's flags read them from there); in a Config built by hand, a zero
// field takes the same default, except the network parameters' PoWBits and
// MinAgeMs, where zero means none.
type Config struct {
	DataDir string   // keys, database, addr file; created if missing
	Listen  []string // multiaddrs; default /ip4/127.0.0.1/tcp/0
	// Announce, if set, are the multiaddrs others dial this node at: they
	// replace the listen addresses in its signed record and in what libp2p
	// advertises (a node behind a port forward listens on a private
	// address and announces its public one). Each is /ip4 or /ip6, not
	// unspecified, then /tcp/PORT or /udp/PORT/quic-v1; at most
	// member.MaxAddrs. Default: none (the listen addresses are announced).
	Announce  []string
	Bootstrap []string // multiaddrs with /p2p/ of nodes to join through
	Admin     string   // host:port for the admin HTTP server; "" disables it
	Pprof     bool     // serve /debug/pprof/ on the admin server (off by default)
	// DialFromListenAddr: dials leave from the listen address and port
	// (p2p.DialFromListenAddr). Tests only: a devnet on one loopback runs
	// its nodes as 127.x.y.z addresses and per-address limits must see
	// each node's own. Off, two nodes' crossing dials over a slow link
	// would become a failed TCP simultaneous open.
	DialFromListenAddr bool

	Params  wire.Params // network: name, replication R, PoW difficulty
	Version string

	// Operator, if set, makes the network private (privnet.go): only nodes
	// on an allow-list signed by this Ed25519 key are taken into the
	// table, gossiped with and replicated to. AllowFile is a signed
	// allow-list file the node reads at start and rereads for newer
	// versions; lists also spread between nodes by gossip.
	Operator  ed25519.PublicKey
	AllowFile string

	// RecordTTL is how long a node record lives unless refreshed (30m;
	// refreshed every third of it). Every refresh reaches every node, so
	// the lifetime sets the idle gossip load: with 60 s, 100 nodes
	// refreshed 5 records a second, each of which every node received. A
	// dead node leaves placements sooner than that: see
	// member.DownScopeGrace.
	RecordTTL      time.Duration
	GossipInterval time.Duration // record gossip period while records change (1s; idle: up to 8× longer)
	SyncInterval   time.Duration // anti-entropy period (5s)
	SyncSettle     time.Duration // a mailbox changed this recently is not compared yet (1s)
	ProbeInterval  time.Duration // probe period for down nodes (2s; after 30 s down, doubling up to 5×)
	ExpireInterval time.Duration // expired-message sweep period (30s)
	// OnionKeyLifetime is how long an onion key is current (1h); the
	// previous key is still accepted for one more lifetime.
	OnionKeyLifetime time.Duration
	// OnionObserver, if set, is called for every onion request this node
	// relays (tests use it to check what each hop learns).
	OnionObserver func(OnionEvent)
	// clientObserver, if set (tests, through SetClientObserver), is
	// called with every client request this node is about to handle,
	// direct or from an onion exit: what a node sees of its clients.
	clientObserver func(kind wire.Kind, body []byte)
	// Onion bounds the memory of onion relaying and the replay logs
	// (onion_limits.go).
	Onion OnionLimits

	MaxMailboxMessages int
	MaxMailboxBytes    int64
	MaxStoreBytes      int64
	// ShareQuota bounds the bytes of file shares this node keeps (in
	// DataDir/shares.db, apart from the messages); past half of it the
	// proof-of-work of a share rises (files.ShareWork).
	ShareQuota int64
	// PublicQuota, RequestQuota and DropQuota bound a mailbox's public
	// namespace (prekey bundles), first-contact namespace and drop
	// namespace (shared request buckets), each on its own.
	PublicQuota  store.Quota
	RequestQuota store.Quota
	DropQuota    store.Quota
	// ReplicaRate bounds the replica writes and deletions one node may
	// send this one per second (a token bucket holding ReplicaBurst).
	ReplicaRate  float64
	ReplicaBurst int
	// MemoryLimit is the Go runtime's soft memory limit the `umbra node`
	// command sets for its process (debug.SetMemoryLimit; GOMEMLIMIT, if
	// set, wins): the garbage collector works harder near it, so garbage
	// left by a flood of refused requests does not push the node past what
	// its resource manager budgets for. 0: none.
	MemoryLimit int64

	Logger *slog.Logger
	Now    func() time.Time
}

// DefaultMinAge is the production network's minimum age before a node
// takes placements (a network parameter).
const DefaultMinAge = 24 * time.Hour

// DefaultConfig returns the production defaults (DataDir is left empty:
// it is required).
func DefaultConfig() Config {
	return Config{
		Listen:             []string{"/ip4/127.0.0.1/tcp/0"},
		Params:             wire.Params{Network: DefaultNetwork, Replication: swarm.DefaultReplication, PoWBits: 24, MinAgeMs: DefaultMinAge.Milliseconds()},
		Version:            "dev",
		RecordTTL:          30 * time.Minute,
		GossipInterval:     time.Second,
		SyncInterval:       5 * time.Second,
		SyncSettle:         time.Second,
		ProbeInterval:      2 * time.Second,
		ExpireInterval:     30 * time.Second,
		OnionKeyLifetime:   time.Hour,
		Onion:              DefaultOnionLimits,
		MaxMailboxMessages: 10000,
		MaxMailboxBytes:    64 << 20,
		MaxStoreBytes:      8 << 30,
		ShareQuota:         sharestore.DefaultConfig().QuotaBytes,
		PublicQuota:        store.Quota{Messages: 64, Bytes: 4 << 20},
		RequestQuota:       store.Quota{Messages: 10000, Bytes: 64 << 20},
		DropQuota:          store.Quota{Messages: 10000, Bytes: 64 << 20},
		ReplicaRate:        5000,
		ReplicaBurst:       20000,
		MemoryLimit:        192 << 20,
	}
}

// DefaultNetwork is the network name used when none is given.
const DefaultNetwork = "umbra-dev"

// setDefaults fills zero fields from DefaultConfig and validates.
func (c *Config) setDefaults() error {
	d := DefaultConfig()
	if len(c.Listen) == 0 {
		c.Listen = d.Listen
	}
	if c.Params.Network == "" {
		c.Params.Network = d.Params.Network
	}
	if c.Params.Replication == 0 {
		c.Params.Replication = d.Params.Replication
	}
	if c.Version == "" {
		c.Version = d.Version
	}
	dur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	dur(&c.RecordTTL, d.RecordTTL)
	dur(&c.GossipInterval, d.GossipInterval)
	dur(&c.SyncInterval, d.SyncInterval)
	dur(&c.SyncSettle, d.SyncSettle)
	dur(&c.ProbeInterval, d.ProbeInterval)
	dur(&c.ExpireInterval, d.ExpireInterval)
	dur(&c.OnionKeyLifetime, d.OnionKeyLifetime)
	c.Onion.setDefaults()
	if c.MaxMailboxMessages <= 0 {
		c.MaxMailboxMessages = d.MaxMailboxMessages
	}
	if c.MaxMailboxBytes <= 0 {
		c.MaxMailboxBytes = d.MaxMailboxBytes
	}
	if c.MaxStoreBytes <= 0 {
		c.MaxStoreBytes = d.MaxStoreBytes
	}
	if c.ShareQuota <= 0 {
		c.ShareQuota = d.ShareQuota
	}
	if c.PublicQuota.Messages <= 0 || c.PublicQuota.Bytes <= 0 {
		c.PublicQuota = d.PublicQuota
	}
	if c.RequestQuota.Messages <= 0 || c.RequestQuota.Bytes <= 0 {
		c.RequestQuota = d.RequestQuota
	}
	if c.DropQuota.Messages <= 0 || c.DropQuota.Bytes <= 0 {
		c.DropQuota = d.DropQuota
	}
	if c.ReplicaRate <= 0 {
		c.ReplicaRate = d.ReplicaRate
	}
	if c.ReplicaBurst <= 0 {
		c.ReplicaBurst = d.ReplicaBurst
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c.Validate()
}

// Validate checks a configuration whose defaults are filled in.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("node: a data directory is required (--data DIR)")
	}
	if c.Params.Replication < 1 || c.Params.Replication > 15 {
		return fmt.Errorf("node: replication must be 1..15, got %d", c.Params.Replication)
	}
	if c.Params.PoWBits < 0 || c.Params.PoWBits > 40 {
		return fmt.Errorf("node: proof-of-work bits must be 0..40, got %d", c.Params.PoWBits)
	}
	if c.Params.MinAgeMs < 0 || c.Params.MinAgeMs > (30*24*time.Hour).Milliseconds() {
		return fmt.Errorf("node: the minimum age must be between 0 and 30 days, got %s", time.Duration(c.Params.MinAgeMs)*time.Millisecond)
	}
	if len(c.Announce) > member.MaxAddrs {
		return fmt.Errorf("node: at most %d announce addresses, got %d", member.MaxAddrs, len(c.Announce))
	}
	for _, a := range c.Announce {
		if _, err := ParseAnnounce(a); err != nil {
			return err
		}
	}
	if len(c.Operator) != 0 && len(c.Operator) != ed25519.PublicKeySize {
		return errors.New("node: the operator key must be an Ed25519 public key")
	}
	if c.AllowFile != "" && len(c.Operator) == 0 {
		return errors.New("node: an allow-list needs a private network file (with an operator key)")
	}
	if c.RecordTTL > member.MaxRecordTTL {
		return fmt.Errorf("node: the record lifetime may be at most %s, got %s", member.MaxRecordTTL, c.RecordTTL)
	}
	return nil
}

// ParseAnnounce parses and checks an announce address (Config.Announce):
// /ip4/IP or /ip6/IP, where IP is not unspecified (0.0.0.0 or ::), then
// /tcp/PORT or /udp/PORT/quic-v1 with a port other than 0, and nothing
// else (no /p2p/: the node adds its own ID).
func ParseAnnounce(s string) (ma.Multiaddr, error) {
	bad := func(why string) (ma.Multiaddr, error) {
		return nil, fmt.Errorf("node: announce address %q: %s", s, why)
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return bad(fmt.Sprintf("not a multiaddr (%v); want e.g. /ip4/203.0.113.7/tcp/4001 or /ip4/203.0.113.7/udp/4001/quic-v1", err))
	}
	if len(m) < 2 || (m[0].Code() != ma.P_IP4 && m[0].Code() != ma.P_IP6) {
		return bad("must start with /ip4/IP or /ip6/IP")
	}
	if ip := net.ParseIP(m[0].Value()); ip == nil || ip.IsUnspecified() {
		return bad("0.0.0.0 and :: are where to listen, not an address others can dial; announce the IP they reach this node at")
	}
	switch {
	case len(m) == 2 && m[1].Code() == ma.P_TCP:
	case len(m) == 3 && m[1].Code() == ma.P_UDP && m[2].Code() == ma.P_QUIC_V1:
	default:
		return bad("want /tcp/PORT or /udp/PORT/quic-v1 after the IP, and nothing else")
	}
	if m[1].Value() == "0" {
		return bad("port 0 is where to listen on any free port, not an address others can dial")
	}
	return m, nil
}
