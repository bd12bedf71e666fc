package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/umbra-im/umbra/internal/store"
)

func newReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

type metrics struct {
	storeLatency prometheus.Histogram
	storeOK      prometheus.Counter
	storeFail    prometheus.Counter
	retrieves    prometheus.Counter
	authFail     prometheus.Counter
	replicated   prometheus.Counter
	repairPushed prometheus.Counter
	handedOver   prometheus.Counter
	repairPulled prometheus.Counter
	syncRounds   prometheus.Counter
	syncQuiet    prometheus.Counter
	syncSeconds  prometheus.Histogram
	badRecords   prometheus.Counter
	onionRelay   prometheus.Counter
	onionExit    prometheus.Counter
	onionBad     prometheus.Counter
	onionReplays prometheus.Counter
	badReceipts  prometheus.Counter
	rateLimited  prometheus.Counter
	outOfScope   prometheus.Counter
	probes       prometheus.Counter
	probesFailed prometheus.Counter
	workRefused  prometheus.Counter
	liveMisses   prometheus.Counter

	sharesStored  prometheus.Counter
	sharesRefused *prometheus.CounterVec // by reason (shares.go)
	shareGets     *prometheus.CounterVec // served, missing
}

func newMetrics(reg *prometheus.Registry, n *Node) *metrics {
	f := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "umbra", Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	m := &metrics{
		storeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "umbra", Name: "store_seconds",
			Help: "Time from a store request to its quorum ack.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "umbra", Name: "sync_round_seconds",
			Help: "Duration of an anti-entropy round.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		storeOK:      f("stores_total", "Store requests acknowledged by a write quorum."),
		storeFail:    f("store_failures_total", "Store requests refused or short of quorum."),
		retrieves:    f("retrieves_total", "Authenticated retrieve requests."),
		authFail:     f("auth_failures_total", "Requests with a bad, stale or replayed mailbox signature."),
		replicated:   f("replicas_received_total", "Messages received from other nodes (writes and repair)."),
		repairPushed: f("repair_pushed_total", "Messages pushed to peers by anti-entropy."),
		handedOver:   f("handed_over_total", "Mailbox copies outside this node's swarm dropped once every member held them."),
		repairPulled: f("repair_pulled_total", "Messages pulled from peers by anti-entropy."),
		syncRounds:   f("sync_rounds_total", "Anti-entropy rounds run."),
		syncQuiet:    f("sync_quiet_total", "Anti-entropy offers to a peer skipped: it found the same digests equal within 8 sync intervals."),
		badRecords:   f("bad_records_total", "Node records refused (bad signature, proof-of-work, expiry...)."),
		onionRelay:   f("onion_relayed_total", "Onion packets peeled and forwarded (as guard or middle)."),
		onionExit:    f("onion_exit_total", "Onion requests performed as exit."),
		onionBad:     f("onion_bad_total", "Onion packets that could not be peeled."),
		onionReplays: f("onion_replays_total", "Replayed onion packets dropped."),
		badReceipts:  f("bad_receipts_total", "Replica receipts that did not verify (not counted toward a quorum)."),
		rateLimited:  f("replica_rate_limited_total", "Replica requests refused because their node sent too many."),
		outOfScope:   f("out_of_scope_total", "Node requests about a mailbox outside both nodes' scope, refused."),
		probes:       f("record_probes_total", "Reachability probes of new node records."),
		probesFailed: f("record_probes_failed_total", "New node records whose node could not be reached (dropped)."),
		workRefused:  f("first_contact_work_refused_total", "First-contact messages refused for too little proof-of-work."),
		liveMisses:   f("liveness_misses_total", "Liveness pings not answered in time (the connection was closed and the node probed)."),
	}
	m.sharesStored = f("share_puts_total", "File shares accepted and stored (or their expiry extended).")
	m.sharesRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "umbra", Name: "share_puts_refused_total",
		Help: "File share puts refused, by reason: bad_request, address, work, full, error."}, []string{"reason"})
	m.shareGets = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "umbra", Name: "share_gets_total",
		Help: "File share reads, by result: served, missing (not held or expired)."}, []string{"result"})
	for _, r := range []string{refusedBadRequest, refusedAddress, refusedWork, refusedFull, refusedError} {
		m.sharesRefused.WithLabelValues(r)
	}
	m.shareGets.WithLabelValues("served")
	m.shareGets.WithLabelValues("missing")
	reg.MustRegister(m.storeLatency, m.syncSeconds, m.sharesRefused, m.shareGets)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "umbra", Name: "share_stored_bytes",
		Help: "Bytes of file shares held on disk, counted against --share-quota."}, func() float64 { return float64(n.shares.Used()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "umbra", Name: "share_quota_bytes",
		Help: "The file share limit (--share-quota); new shares are refused past it."}, func() float64 { return float64(n.cfg.ShareQuota) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "umbra", Name: "live_nodes",
		Help: "Live nodes in this node's view, itself included."}, func() float64 { return float64(len(n.table.Live())) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "umbra", Name: "stored_messages",
		Help: "Messages held on disk."}, func() float64 { return float64(n.store.Stats().Messages) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "umbra", Name: "stored_bytes",
		Help: "Bytes of message data held on disk."}, func() float64 { return float64(n.store.Stats().Bytes) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "umbra", Name: "store_quota_used_bytes",
		Help: "Bytes counted against --max-store-bytes: message data, tombstones and signed deletions."}, func() float64 {
		st := n.store.Stats()
		return float64(st.Bytes + st.Tombstones*store.TombstoneCost + st.DeletionBytes)
	}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "umbra", Name: "store_quota_bytes",
		Help: "The node-wide store limit (--max-store-bytes); new messages are refused past it."}, func() float64 { return float64(n.cfg.MaxStoreBytes) }))
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Status is the JSON served at /status.
type Status struct {
	PeerID         string   `json:"peer_id"`
	Addrs          []string `json:"addrs"`
	Network        string   `json:"network"`
	Replication    int      `json:"replication"`
	Version        string   `json:"version"`
	LiveNodes      int      `json:"live_nodes"`
	KnownNodes     int      `json:"known_nodes"`
	StoredMessages int64    `json:"stored_messages"`
	StoredBytes    int64    `json:"stored_bytes"`
	Mailboxes      int      `json:"mailboxes"`
	Tombstones     int64    `json:"tombstones"`
	DeletionBytes  int64    `json:"deletion_bytes"` // signed deletions kept for the tombstones
	PendingNodes   int      `json:"pending_nodes"`  // records waiting for their reachability probe
	StoredShares   int64    `json:"stored_shares"`  // file shares on disk
	ShareBytes     int64    `json:"share_bytes"`    // their bytes, counted against the share quota
	UptimeSeconds  int64    `json:"uptime_seconds"`
	// Private networks: the allow-list version held, and the live nodes.
	AllowVersion uint64   `json:"allow_version,omitempty"`
	LivePeers    []string `json:"live_peers,omitempty"`
}

// Status reports the node's state.
func (n *Node) Status() Status {
	stats := n.store.Stats()
	st := Status{
		PeerID: n.host.ID().String(), Addrs: n.Addrs(), Network: n.cfg.Params.Network,
		Replication: n.cfg.Params.Replication, Version: n.cfg.Version,
		LiveNodes: len(n.table.Live()), KnownNodes: n.table.Len(),
		StoredMessages: stats.Messages, StoredBytes: stats.Bytes, Mailboxes: stats.Mailboxes,
		Tombstones: stats.Tombstones, DeletionBytes: stats.DeletionBytes, PendingNodes: n.table.PendingLen(),
		StoredShares: n.shares.Count(), ShareBytes: n.shares.Used(),
		UptimeSeconds: int64(n.cfg.Now().Sub(n.started).Seconds()),
		AllowVersion:  n.AllowVersion(),
	}
	if n.private() {
		for _, l := range n.table.Live() {
			st.LivePeers = append(st.LivePeers, l.ID.String())
		}
	}
	return st
}

// Peers is the JSON served at /peers: this node's view of the network.
type Peers struct {
	Live []string `json:"live"` // peer IDs of the live nodes, this one included
	Down []string `json:"down"` // nodes with an unexpired record, marked down
}

// Peers reports the nodes of this node's table, live and down.
func (n *Node) Peers() Peers {
	var p Peers
	for _, nd := range n.table.All() {
		if n.table.IsDown(nd.ID) {
			p.Down = append(p.Down, nd.ID.String())
		} else {
			p.Live = append(p.Live, nd.ID.String())
		}
	}
	return p
}

func (n *Node) startAdmin(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("node: admin address %q: want host:port", addr)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("node: admin address %q must be a loopback IP (127.0.0.1 or ::1)", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("node: admin listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(n.Status())
	})
	mux.HandleFunc("GET /peers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(n.Peers())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	if n.cfg.Pprof {
		registerPprof(mux)
	}
	n.adminL = l
	n.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.admin.Serve(l); err != nil && err != http.ErrServerClosed {
			n.log.Error("admin server", "err", err)
		}
	}()
	return writeFileAtomic(filepath.Join(n.cfg.DataDir, "admin"), []byte("http://"+l.Addr().String()+"\n"))
}

// registerPprof serves Go's profiler under /debug/pprof/. Only on request
// (--pprof): a profile or trace costs CPU and shows the node's internals,
// and the admin port has no authentication beyond being on loopback.
func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// maintainLoop deletes expired messages and file shares periodically.
func (n *Node) maintainLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.ExpireInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			n.savePeers()
			return
		case <-tick.C:
			if k, err := n.store.ExpireNow(); err != nil {
				n.log.Error("expire messages", "err", err)
			} else if k > 0 {
				n.log.Info("expired messages deleted", "count", k)
			}
			if k, err := n.shares.Expire(); err != nil {
				n.log.Error("expire shares", "err", err)
			} else if k > 0 {
				n.log.Info("expired shares deleted", "count", k)
			}
		}
	}
}
