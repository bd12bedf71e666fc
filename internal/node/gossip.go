package node

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

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

// Gossip pacing. A round that moved nothing (the usual case in a stable
// network: the bucket sums agree) doubles the wait before the next, up to
// gossipIdleFactor × GossipInterval; a round that moved records, or a
// change of the table (a new or refreshed record, a node marked down or up),
// brings rounds back to every GossipInterval. So news spreads as fast as
// before (each node that learns something gossips again within a round)
// while an idle network exchanges sums only every few seconds.
// Bootstrap nodes are asked again every gossipBootstrapFactor ×
// GossipInterval, and whenever the table is nearly empty.
const (
	gossipIdleFactor      = 8
	gossipBootstrapFactor = 60
)

// gossipLoop runs the rounds: a push-pull exchange with a random live peer
// when one is due (see gossipIdleFactor), with the bootstrap nodes when
// due, and a try of a node whose record expired (retryLost) every tick.
func (n *Node) gossipLoop(ctx context.Context) {
	boot := n.bootstrapPeers()
	// Ticks are jittered (0.5 to 1.5 intervals) so that nodes started
	// together do not gossip in lockstep: two nodes that know only each
	// other dialled each other at the same instants, round after round
	// (which, while dials came from the listen port, made every dial a
	// failed TCP simultaneous open: see p2p.NewHost).
	base := n.cfg.GossipInterval
	tick := time.NewTimer(base)
	defer tick.Stop()
	var lastSave, lastBoot, next time.Time
	wait := base
	gen := n.table.Gen() - 1 // the first tick gossips
	for {
		now := n.cfg.Now()
		if n.table.Len() <= 1 || now.Sub(lastBoot) >= gossipBootstrapFactor*base {
			for _, b := range boot {
				n.host.Peerstore().AddAddrs(b.ID, b.Addrs, time.Hour)
				n.gossipWith(ctx, b.ID)
			}
			lastBoot = now
		}
		news := n.gossipNews.Swap(false)
		if g := n.table.Gen(); g != gen || news || !now.Before(next) {
			moved := false
			live := n.table.Live()
			for _, i := range rand.Perm(len(live)) {
				if live[i].ID != n.host.ID() {
					moved = n.gossipWith(ctx, live[i].ID)
					break
				}
			}
			if moved || news || g != gen {
				wait = base
			} else {
				wait = min(2*wait, gossipIdleFactor*base)
			}
			gen = n.table.Gen()
			next = n.cfg.Now().Add(wait/2 + rand.N(wait))
		}
		n.retryLost(ctx)
		if now := n.cfg.Now(); now.Sub(lastSave) >= 10*time.Second {
			n.savePeers()
			lastSave = now
		}
		tick.Reset(base/2 + rand.N(base))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// gossipWith runs one push-pull exchange: our bucket sums; their versions
// in the buckets that differ (none when the tables agree, the usual case,
// which ends the exchange); our push of what they lack or hold older and
// of the nodes we want; their records of those. It reports whether
// anything (records or an allow-list) moved either way.
func (n *Node) gossipWith(ctx context.Context, p peer.ID) bool {
	if n.private() && !n.admit(p) {
		if _, v := n.allowList(); v > 0 {
			// A private network's node gossips with listed nodes only
			// (with a bootstrap node too, until it holds a list).
			return false
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
		return false
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	ps := &p2p.Stream{Stream: s, R: newReader(s)}
	allowRaw, allowV := n.allowList()
	buckets := member.DigestBuckets(n.table.Len())
	if err := wire.WriteFrame(s, wire.KindMembersDigest, &wire.MembersDigest{Params: n.cfg.Params, Sums: n.table.Sums(buckets), AllowVersion: allowV}); err != nil {
		s.Reset()
		return false
	}
	var delta wire.MembersDelta
	if err := wire.Read(ps.R, wire.MaxFrame, wire.KindMembersDelta, &delta); err != nil {
		n.log.Debug("gossip", "peer", p2p.ShortID(p), "err", err)
		s.Reset()
		return false
	}
	// A newer allow-list first: it decides which records may be taken.
	n.adoptAllow(delta.Allow, p2p.ShortID(p))
	// We chose to ask p (a node of our table, or a bootstrap node): what
	// it tells us is taken as its introductions, each probed before use.
	n.absorb(p, delta.Records, false)
	push := &wire.MembersPush{Records: n.table.Raw(delta.Want)}
	if len(delta.Buckets) > 0 {
		give, want := n.table.Delta(delta.Versions, p, member.InBuckets(buckets, delta.Buckets))
		push.Records = append(push.Records, give...)
		push.Want = want
	}
	if allowV > delta.AllowVersion {
		push.Allow = allowRaw
	}
	if len(push.Records) == 0 && len(push.Want) == 0 && push.Allow == nil && len(delta.Buckets) == 0 && len(delta.Want) == 0 {
		// The tables agree: nothing to push. (The answerer reads the
		// end of the stream as an empty push.)
		_ = s.CloseWrite()
		n.table.SetDown(p, false)
		return delta.Allow != nil
	}
	if err := wire.WriteFrame(s, wire.KindMembersPush, push); err != nil {
		s.Reset()
		return false
	}
	_ = s.CloseWrite()
	if len(push.Want) > 0 {
		var back wire.MembersPush
		if err := wire.Read(ps.R, wire.MaxFrame, wire.KindMembersPush, &back); err != nil {
			n.log.Debug("gossip", "peer", p2p.ShortID(p), "err", err)
			s.Reset()
			return false
		}
		n.absorb(p, back.Records, false)
	}
	n.table.SetDown(p, false)
	return true
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
		if res == member.OfferUpdated {
			// A refreshed record (same addresses) leaves the table's
			// generation as it is: pass it on within a round anyway.
			n.gossipNews.Store(true)
		}
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
	if d.Sums != nil {
		return n.serveSums(s, from, known, &d, allow, allowV)
	}
	give, want := n.table.Delta(d.Versions, from, nil)
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

// serveSums answers a digest of bucket sums (see gossipWith): our
// versions in the buckets that differ; then the push, if any, and the
// records it wants back.
func (n *Node) serveSums(s *p2p.Stream, from peer.ID, known bool, d *wire.MembersDigest, allow []byte, allowV uint64) error {
	buckets, versions, err := n.table.Differ(d.Sums)
	if err != nil {
		return s.Fail(wire.Errorf(wire.CodeBadRequest, "%v", err))
	}
	if err := s.Reply(wire.KindMembersDelta, &wire.MembersDelta{Allow: allow, AllowVersion: allowV, Buckets: buckets, Versions: versions}); err != nil {
		return err
	}
	var push wire.MembersPush
	if err := wire.Read(s.R, wire.MaxFrame, wire.KindMembersPush, &push); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // the tables agree
		}
		return err
	}
	n.adoptAllow(push.Allow, p2p.ShortID(from))
	// A stranger may introduce itself only (absorb takes its own record).
	n.absorb(from, push.Records, !known)
	if len(push.Want) == 0 {
		return nil
	}
	return s.Reply(wire.KindMembersPush, &wire.MembersPush{Records: n.table.Raw(push.Want)})
}
