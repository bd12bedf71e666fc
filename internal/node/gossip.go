package node

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/wire"
)

const peersKey = "peers"

// publishSelf signs a fresh record of this node (new sequence, new expiry)
// and puts it in the table, from where gossip spreads it.
func (n *Node) publishSelf() error {
	now := n.cfg.Now()
	n.mu.Lock()
	seq := uint64(now.UnixNano())
	if seq <= n.seq {
		seq = n.seq + 1
	}
	n.seq = seq
	n.mu.Unlock()
	rec := member.Record{
		Network:  n.cfg.Params.Network,
		Node:     []byte(n.host.ID()),
		OnionKey: n.okeys.current().PublicKey().Bytes(),
		Version:  n.cfg.Version,
		Seq:      seq,
		Expires:  now.Add(n.cfg.RecordTTL).UnixMilli(),
		PoW:      n.pow,
	}
	for _, a := range n.host.Addrs() {
		if len(rec.Addrs) < member.MaxAddrs {
			rec.Addrs = append(rec.Addrs, a.Bytes())
		}
	}
	raw, err := member.Sign(rec, n.priv)
	if err != nil {
		return err
	}
	if _, err := n.table.Upsert(raw); err != nil {
		return err
	}
	return nil
}

// cachedPeer is a verified record as a node caches it across restarts,
// with the age it had reached.
type cachedPeer struct {
	Raw   []byte `cbor:"1,keyasint"`
	Since int64  `cbor:"2,keyasint"` // unix ms: reachable since
}

// loadPeers restores the records cached at the last run, with their ages,
// so that a node restarted after a crash can rejoin even if its bootstrap
// nodes are gone, and does not forget which nodes are old enough to take
// placements. Expired records are refused by the table as usual.
func (n *Node) loadPeers() {
	b, ok, err := n.store.GetKV(peersKey)
	if err != nil || !ok {
		return
	}
	var peers []cachedPeer
	if err := wire.Unmarshal(b, &peers); err != nil {
		return
	}
	for _, p := range peers {
		_ = n.table.Restore(p.Raw, time.UnixMilli(p.Since))
	}
}

func (n *Node) savePeers() {
	ages := n.table.Ages()
	live := n.table.Live()
	peers := make([]cachedPeer, 0, len(live))
	for _, l := range live {
		peers = append(peers, cachedPeer{Raw: l.Raw, Since: ages[l.ID].UnixMilli()})
	}
	b, err := wire.Marshal(peers)
	if err == nil {
		err = n.store.SetKV(peersKey, b)
	}
	if err != nil {
		n.log.Warn("cache peer records", "err", err)
	}
}

func (n *Node) bootstrapPeers() []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, s := range n.cfg.Bootstrap {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			n.log.Warn("bad bootstrap address", "addr", s, "err", err)
			continue
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			n.log.Warn("bootstrap address needs /p2p/<id>", "addr", s)
			continue
		}
		if ai.ID != n.host.ID() {
			out = append(out, *ai)
		}
	}
	return out
}

// refreshLoop re-signs this node's record (new sequence, new expiry) every
// third of its lifetime. It runs apart from gossip so that a slow peer can
// never delay it past the record's expiry.
func (n *Node) refreshLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.RecordTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := n.publishSelf(); err != nil {
				n.log.Error("refresh own record", "err", err)
			}
		}
	}
}

// gossipLoop exchanges records with a random live peer every
// GossipInterval, and with the bootstrap nodes while the table is small,
// and tries a node whose record expired (retryLost).
func (n *Node) gossipLoop(ctx context.Context) {
	boot := n.bootstrapPeers()
	// Rounds are jittered (0.5 to 1.5 intervals) so that nodes started
	// together do not gossip in lockstep: two nodes that know only each
	// other dialled each other at the same instants, round after round
	// (which, while dials came from the listen port, made every dial a
	// failed TCP simultaneous open: see p2p.NewHost).
	tick := time.NewTimer(n.cfg.GossipInterval)
	defer tick.Stop()
	lastSave := time.Time{}
	round := 0
	for {
		if n.table.Len() <= 1 || round%30 == 0 {
			for _, b := range boot {
				n.host.Peerstore().AddAddrs(b.ID, b.Addrs, time.Hour)
				n.gossipWith(ctx, b.ID)
			}
		}
		live := n.table.Live()
		for _, i := range rand.Perm(len(live)) {
			if live[i].ID != n.host.ID() {
				n.gossipWith(ctx, live[i].ID)
				break
			}
		}
		n.retryLost(ctx)
		if now := n.cfg.Now(); now.Sub(lastSave) >= 10*time.Second {
			n.savePeers()
			lastSave = now
		}
		round++
		tick.Reset(n.cfg.GossipInterval/2 + rand.N(n.cfg.GossipInterval))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// gossipWith runs one push-pull exchange: our versions, their delta and
// wants, our push.
func (n *Node) gossipWith(ctx context.Context, p peer.ID) {
	if n.private() && !n.admit(p) {
		if _, v := n.allowList(); v > 0 {
			// A private network's node gossips with listed nodes only
			// (with a bootstrap node too, until it holds a list).
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if rec, ok := n.table.Get(p); ok {
		n.host.Peerstore().AddAddrs(p, rec.Addrs, n.cfg.RecordTTL)
	}
	s, err := n.host.NewStream(ctx, p, wire.ProtoMembers)
	if err != nil {
		n.requestProbe(p)
		return
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	ps := &p2p.Stream{Stream: s, R: newReader(s)}
	allowRaw, allowV := n.allowList()
	if err := wire.WriteFrame(s, wire.KindMembersDigest, &wire.MembersDigest{Params: n.cfg.Params, Versions: n.table.Versions(), AllowVersion: allowV}); err != nil {
		s.Reset()
		return
	}
	var delta wire.MembersDelta
	if err := wire.Read(ps.R, wire.MaxFrame, wire.KindMembersDelta, &delta); err != nil {
		n.log.Debug("gossip", "peer", p2p.ShortID(p), "err", err)
		s.Reset()
		return
	}
	// A newer allow-list first: it decides which records may be taken.
	n.adoptAllow(delta.Allow, p2p.ShortID(p))
	// We chose to ask p (a node of our table, or a bootstrap node): what
	// it tells us is taken as its introductions, each probed before use.
	n.absorb(p, delta.Records, false)
	push := &wire.MembersPush{Records: n.table.Raw(delta.Want)}
	if allowV > delta.AllowVersion {
		push.Allow = allowRaw
	}
	if err := wire.WriteFrame(s, wire.KindMembersPush, push); err != nil {
		s.Reset()
		return
	}
	_ = s.CloseWrite()
	n.table.SetDown(p, false)
}

// absorb offers records learned from peer from to the table: a newer
// record of a node we hold replaces the old, a new node waits for its
// probe. With selfOnly (a peer that is not a node of our table yet), only
// the peer's own record is taken: a stranger may introduce itself, not
// thousands of others.
func (n *Node) absorb(from peer.ID, recs [][]byte, selfOnly bool) {
	pending := false
	for _, r := range recs {
		if selfOnly {
			if len(recs) > 1 {
				// Decode only the record that can be the sender's.
				if nd, err := member.Open(r, n.cfg.Params, n.cfg.Now()); err != nil || nd.ID != from {
					continue
				}
			}
		}
		res, err := n.table.Offer(r, from)
		if err != nil {
			n.m.badRecords.Inc()
			continue
		}
		if selfOnly && res == member.OfferPending {
			if nd, err := member.Open(r, n.cfg.Params, n.cfg.Now()); err != nil || nd.ID != from {
				continue
			}
		}
		pending = pending || res == member.OfferPending
	}
	if pending {
		select {
		case n.probeKick <- struct{}{}:
		default:
		}
	}
}

func (n *Node) serveMembers(s *p2p.Stream, kind wire.Kind, body []byte) error {
	if kind != wire.KindMembersDigest {
		return s.Fail(wire.Errorf(wire.CodeBadRequest, "unsupported request %s", kind))
	}
	var d wire.MembersDigest
	if err := wire.Unmarshal(body, &d); err != nil {
		return s.Fail(wire.Errorf(wire.CodeBadRequest, "%v", err))
	}
	if d.Params != n.cfg.Params {
		return s.Fail(wire.Errorf(wire.CodeBadRequest, "network mismatch: peer has %+v, this node %+v", d.Params, n.cfg.Params))
	}
	from := s.Conn().RemotePeer()
	allowRaw, allowV := n.allowList()
	var allow []byte
	if allowV > d.AllowVersion {
		allow = allowRaw
	}
	if n.private() && !n.admit(from) {
		// Not on our allow-list: it may learn the list (and so that it is
		// not on it), nothing else, and we take nothing from it.
		return s.Reply(wire.KindMembersDelta, &wire.MembersDelta{Allow: allow, AllowVersion: allowV})
	}
	known := n.table.Known(from)
	give, want := n.table.Delta(d.Versions, from)
	if !known {
		// A stranger may introduce itself only: ask for its own record,
		// not for whatever else it claims to know.
		want = want[:0]
		for _, v := range d.Versions {
			if peer.ID(v.Node) == from {
				want = append(want, v.Node)
			}
		}
	}
	if err := s.Reply(wire.KindMembersDelta, &wire.MembersDelta{Records: give, Want: want, Allow: allow, AllowVersion: allowV}); err != nil {
		return err
	}
	var push wire.MembersPush
	if err := wire.Read(s.R, wire.MaxFrame, wire.KindMembersPush, &push); err != nil {
		return err
	}
	n.adoptAllow(push.Allow, p2p.ShortID(from))
	n.absorb(from, push.Records, !known)
	return nil
}

func (n *Node) requestProbe(p peer.ID) {
	select {
	case n.probeReq <- p:
	default:
	}
}

// probeLoop keeps the live set honest: a node whose connection dropped or
// whose call failed is probed (pinged, if it is still connected: see
// checkAlive), marked down if it cannot be reached (so it no
// longer takes placements), and marked up when it answers again. New
// records learned by gossip are probed here too, and only a node reached
// at the address its record claims enters the table.
func (n *Node) probeLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.ProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-n.probeReq:
			switch {
			case p == n.host.ID():
			case n.host.Network().Connectedness(p) != network.Connected:
				n.probe(ctx, p)
			default:
				// A call failed over a connection that looks fine: it
				// may be stale (a frozen or cut-off node), which a
				// probe would not notice; a liveness ping does.
				n.goCheckAlive(ctx, p)
			}
		case <-n.probeKick:
			n.probeNew(ctx)
		case <-tick.C:
			n.table.Sweep()
			for _, p := range n.downNodes() {
				n.probe(ctx, p)
			}
			n.probeNew(ctx)
		}
	}
}

// Probing new records: this many at once, each for at most newProbeTimeout.
const (
	newProbes       = 16
	newProbeTimeout = 2 * time.Second
)

// probeNew probes pending records (a few from each source in turn, see
// member.Table.ToProbe) until none is left or the node stops: a node is
// verified only when a dial to its claimed address reaches its peer ID.
func (n *Node) probeNew(ctx context.Context) {
	for rounds := 0; rounds < 64 && ctx.Err() == nil; rounds++ {
		batch := n.table.ToProbe(newProbes)
		if len(batch) == 0 {
			return
		}
		var wg sync.WaitGroup
		for _, rec := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.m.probes.Inc()
				ok := rec.ID == n.host.ID() || n.reach(ctx, rec, newProbeTimeout) == nil
				if !ok {
					n.m.probesFailed.Inc()
				}
				n.table.Probed(rec.ID, ok)
			}()
		}
		wg.Wait()
	}
}

// reach dials rec's addresses (skipping the dial backoff) and checks that
// the node answering is rec's.
func (n *Node) reach(ctx context.Context, rec *member.Node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n.host.Network().Peerstore().AddAddrs(rec.ID, rec.Addrs, n.cfg.RecordTTL)
	return n.host.Connect(network.WithForceDirectDial(ctx, "probe"), rec.AddrInfo())
}

func (n *Node) downNodes() []peer.ID {
	var out []peer.ID
	for _, v := range n.table.Versions() {
		id := peer.ID(v.Node)
		if n.table.IsDown(id) {
			out = append(out, id)
		}
	}
	return out
}

func (n *Node) probe(ctx context.Context, p peer.ID) {
	rec, ok := n.table.Get(p)
	if !ok {
		return
	}
	// A forced direct dial skips the dial backoff, so a restarted node is
	// seen at once.
	err := n.reach(ctx, rec, time.Second)
	if err != nil && n.ctx.Err() == nil {
		if !n.table.IsDown(p) {
			n.log.Info("node unreachable; marked down", "peer", p2p.ShortID(p))
		}
		n.table.SetDown(p, true)
		return
	}
	if err == nil && n.table.IsDown(p) {
		n.log.Info("node reachable again", "peer", p2p.ShortID(p))
		n.table.SetDown(p, false)
	}
}
