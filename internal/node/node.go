package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/umbra-im/umbra/internal/fsutil"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/replay"
	"github.com/umbra-im/umbra/internal/sharestore"
	"github.com/umbra-im/umbra/internal/store"
	"github.com/umbra-im/umbra/internal/wire"
)

// Node is a running service node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	host    host.Host
	pool    *p2p.Pool   // sessions to other nodes (replicate, sync, onion)
	srv     *p2p.Server // the request protocols this node serves
	priv    crypto.PrivKey
	okeys   *onionKeys
	pow     uint64
	store   *store.Store
	shares  *sharestore.Store // file shares, a database of their own
	table   *member.Table
	seen    *replay.Cache // mailbox request signatures
	obudget *onionBudget  // bytes of onion work held
	m       *metrics
	batch   *batcher
	chg     *changeLog
	agreed  agreements // sync peers that found everything equal (sync.go)
	reg     *prometheus.Registry

	replicaRate *rateLimit    // replica writes and deletions per peer
	probeKick   chan struct{} // new records wait for a probe

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the node starts
	lock   *os.File
	admin  *http.Server
	adminL net.Listener

	pollSem  chan struct{} // bounds concurrent long-polls
	probeReq chan peer.ID
	lostBusy atomic.Bool // a gossip with a lost node is running
	// gossipNews is set when something the table's generation does not
	// show (a newer allow-list, a refreshed record) should go out in the
	// next gossip round.
	gossipNews atomic.Bool
	pingTurn   atomic.Uint64 // which of a peer's connections checkAlive pings
	pinging    sync.Map      // peer.ID -> a liveness check is running
	started    time.Time

	mu  sync.Mutex
	seq uint64 // last record sequence signed

	self peer.ID
	pn   privState // private network: allow-list and removed nodes
}

// New opens the data directory, the store and the libp2p host, and starts
// the node's loops. Close stops it.
func New(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: create data dir: %w", err)
	}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, lock: lock, seen: replay.New(1 << 16),
		pollSem: make(chan struct{}, 2048), probeReq: make(chan peer.ID, 256), started: cfg.Now(),
		replicaRate: newRateLimit(cfg.ReplicaRate, cfg.ReplicaBurst, cfg.Now), probeKick: make(chan struct{}, 1)}
	ok := false
	defer func() {
		if !ok {
			n.closeResources()
		}
	}()
	n.store, err = store.Open(store.Config{
		Path:               filepath.Join(cfg.DataDir, "store.db"),
		MaxMailboxMessages: cfg.MaxMailboxMessages,
		MaxMailboxBytes:    cfg.MaxMailboxBytes,
		NamespaceQuotas: map[int32]store.Quota{wire.PublicNamespace: cfg.PublicQuota,
			wire.RequestNamespace: cfg.RequestQuota, wire.DropNamespace: cfg.DropQuota},
		// A retrieve never returns drop entries; only a drop read does.
		ApartNamespace: wire.DropNamespace,
		MaxTotalBytes:  cfg.MaxStoreBytes,
		Now:            cfg.Now,
		Logger:         cfg.Logger.With("sub", "store"),
	})
	if err != nil {
		return nil, fmt.Errorf("node: open store: %w", err)
	}
	n.shares, err = sharestore.Open(sharestore.Config{
		Path:       filepath.Join(cfg.DataDir, shareDBName),
		QuotaBytes: cfg.ShareQuota,
		Now:        cfg.Now,
		Logger:     cfg.Logger.With("sub", "shares"),
	})
	if err != nil {
		return nil, fmt.Errorf("node: open share store: %w", err)
	}
	if n.priv, err = LoadIdentity(filepath.Join(cfg.DataDir, "identity.key")); err != nil {
		return nil, err
	}
	if n.okeys, err = n.loadOnionKeys(); err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(n.priv)
	if err != nil {
		return nil, fmt.Errorf("node: peer ID: %w", err)
	}
	if n.pow, err = n.loadPoW(id); err != nil {
		return nil, err
	}
	n.reg = prometheus.NewRegistry()
	n.m = newMetrics(n.reg, n)
	n.obudget = newOnionBudget(cfg.Onion, n.reg)
	n.self = id
	var announce []ma.Multiaddr
	for _, a := range cfg.Announce {
		m, _ := ParseAnnounce(a) // checked by Validate
		announce = append(announce, m)
	}
	hostOpts := []p2p.HostOption{p2p.Announce(announce)}
	if cfg.DialFromListenAddr {
		hostOpts = append(hostOpts, p2p.DialFromListenAddr())
	}
	if n.private() {
		hostOpts = append(hostOpts, p2p.WithLibp2p(libp2p.ConnectionGater(gater{n})))
	}
	if n.host, err = p2p.NewNodeHost(n.priv, cfg.Listen, n.reg, hostOpts...); err != nil {
		return nil, err
	}
	n.table = member.NewTable(cfg.Params, cfg.Now)
	if n.private() {
		n.table.SetAdmit(n.admit)
		n.loadAllow()
	}
	n.pool = p2p.NewPool(n.host, p2p.PoolOptions{MaxSessions: nodeMaxSessions, BeforeOpen: n.learnAddrs})
	n.srv = p2p.NewServer(n.host)
	n.batch = newBatcher(n)
	n.chg = newChangeLog(cfg.SyncSettle, 10*cfg.SyncInterval)
	n.ctx, n.cancel = context.WithCancel(context.Background())

	if err := n.publishSelf(); err != nil {
		return nil, err
	}
	n.loadPeers()
	n.registerHandlers()
	if cfg.Admin != "" {
		if err := n.startAdmin(cfg.Admin); err != nil {
			return nil, err
		}
	}
	if err := n.writeAddrFile(); err != nil {
		return nil, err
	}
	n.host.Network().Notify(&network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) {
		select {
		case n.probeReq <- c.RemotePeer():
		default:
		}
	}})
	n.goLoop("gossip", n.gossipLoop)
	n.goLoop("refresh", n.refreshLoop)
	n.goLoop("onion-rotate", n.onionRotateLoop)
	n.goLoop("onion-replay", n.onionReplayLoop)
	n.goLoop("onion-mix", n.onionMixLoop)
	n.goLoop("sync", n.syncLoop)
	n.goLoop("probe", n.probeLoop)
	n.goLoop("liveness", n.livenessLoop)
	n.goLoop("maintain", n.maintainLoop)
	if n.private() && cfg.AllowFile != "" {
		n.goLoop("allow-file", n.allowFileLoop)
	}
	ok = true
	n.log.Info("node started", "peer", id, "addrs", n.Addrs(), "network", cfg.Params.Network)
	return n, nil
}

func (n *Node) goLoop(name string, f func(ctx context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.ctx)
		n.log.Debug("loop stopped", "loop", name)
	}()
}

// Close stops the node gracefully: loops end, in-flight requests are cut,
// the store is closed cleanly.
func (n *Node) Close() error {
	if n.cancel != nil {
		n.cancel()
	}
	if n.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.admin.Shutdown(ctx)
		cancel()
	}
	// Sessions first: calls in flight fail at once, handlers see their
	// context end and are waited for.
	if n.pool != nil {
		n.pool.Close()
	}
	if n.srv != nil {
		n.srv.Close()
	}
	var err error
	if n.host != nil {
		err = n.host.Close()
	}
	n.wg.Wait()
	return errors.Join(err, n.closeResources())
}

func (n *Node) closeResources() error {
	err := n.okeys.close()
	if n.store != nil {
		err = errors.Join(err, n.store.Close())
		n.store = nil
	}
	if n.shares != nil {
		err = errors.Join(err, n.shares.Close())
		n.shares = nil
	}
	if n.lock != nil {
		n.lock.Close()
		n.lock = nil
	}
	return err
}

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Host exposes the libp2p host (tests and the onion layer use it).
func (n *Node) Host() host.Host { return n.host }

// Table is the node's view of the network.
func (n *Node) Table() *member.Table { return n.table }

// MessageStore is the node's message store.
func (n *Node) MessageStore() *store.Store { return n.store }

// ShareStore is the node's store of file shares.
func (n *Node) ShareStore() *sharestore.Store { return n.shares }

// Addrs are the node's full dialable multiaddrs, each ending in /p2p/<id>.
func (n *Node) Addrs() []string {
	var out []string
	for _, a := range n.host.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.host.ID().String())
	}
	return out
}

// AdminAddr is the address the admin server listens on ("" if none).
func (n *Node) AdminAddr() string {
	if n.adminL == nil {
		return ""
	}
	return n.adminL.Addr().String()
}

func (n *Node) writeAddrFile() error {
	addrs := n.Addrs()
	if len(addrs) == 0 {
		return errors.New("node: no listen address")
	}
	return writeFileAtomic(filepath.Join(n.cfg.DataDir, "addr"), []byte(strings.Join(addrs, "\n")+"\n"))
}

// writeFileAtomic replaces an address file (addr, admin) durably: other
// processes (the devnet, scripts) read them, and a crash must not leave
// one empty.
func writeFileAtomic(path string, b []byte) error {
	if err := fsutil.WriteFileAtomic(path, b, 0o644); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

func lockDir(dir string) (*os.File, error) {
	f, err := fsutil.TryLock(filepath.Join(dir, "lock"))
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, fmt.Errorf("node: data dir %s is in use by another node process", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("node: lock data dir: %w", err)
	}
	return f, nil
}

// LoadIdentity reads the node's libp2p identity key at path, creating it
// (mode 0600, written and flushed to disk before it is renamed into place)
// if missing. The devnet calls it to learn peer IDs before starting nodes.
func LoadIdentity(path string) (crypto.PrivKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("node: identity key %s is corrupt: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("node: read identity key: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node: generate identity key: %w", err)
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	// Flushed to disk before the node uses it: a key lost in a crash would
	// give the node a new identity its peers and records do not know.
	if err := fsutil.WriteFileAtomic(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("node: save identity key: %w", err)
	}
	return k, nil
}

// loadPoW returns the admission proof for this key and network, solving and
// caching it on first start.
func (n *Node) loadPoW(id peer.ID) (uint64, error) {
	key := fmt.Sprintf("pow/%s/%d", n.cfg.Params.Network, n.cfg.Params.PoWBits)
	if b, ok, err := n.store.GetKV(key); err == nil && ok && len(b) == 8 {
		nonce := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
			uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
		if member.CheckPoW(n.cfg.Params.Network, []byte(id), nonce, n.cfg.Params.PoWBits) {
			return nonce, nil
		}
	}
	if n.cfg.Params.PoWBits > 16 {
		n.log.Info("solving admission proof-of-work", "bits", n.cfg.Params.PoWBits)
	}
	nonce, err := member.SolvePoW(n.cfg.Params.Network, []byte(id), n.cfg.Params.PoWBits, nil)
	if err != nil {
		return 0, err
	}
	b := []byte{byte(nonce >> 56), byte(nonce >> 48), byte(nonce >> 40), byte(nonce >> 32),
		byte(nonce >> 24), byte(nonce >> 16), byte(nonce >> 8), byte(nonce)}
	if err := n.store.SetKV(key, b); err != nil {
		return 0, fmt.Errorf("node: save proof-of-work: %w", err)
	}
	return nonce, nil
}
