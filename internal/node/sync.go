package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/store"
	"github.com/umbra-im/umbra/internal/wire"
)

const (
	maxSyncDigests = 4096 // mailboxes offered in one sync request
	maxSyncPages   = 64   // page requests in one sync request
	syncParallel   = 4    // peers synced at once
	pushBatchBytes = 1 << 20
	// syncPageEntries bounds one page of a mailbox's entries, and
	// syncAnswerEntries all the entries of one sync answer (about 40
	// bytes each on the wire: well under the frame limit).
	syncPageEntries   = 8192
	syncAnswerEntries = 32768
	fetchBatch        = 256 // messages asked for in one fetch
	// syncQuietFactor: a peer that found every mailbox offered to it equal
	// is not offered the same digests again for this many SyncIntervals,
	// unless the live set changes (see agreements).
	syncQuietFactor = 8
)

// agreements remembers, per peer, the digests of the last sync round in
// which the peer found every mailbox equal, and when. While the mailboxes
// a node holds are unchanged, anti-entropy used to send every swarm peer
// the same digests every SyncInterval (5 s) to hear "same": about half a
// kilobyte a second of an idle node's traffic in the 100-node lab with
// only 40 mailboxes stored. A mailbox that changes changes its digest (the
// peer is offered it at once); the peer's own changes reach us through its
// own rounds; a change of the live set (a node down, back or new: a wiped
// restart is one) forgets every agreement. So an unchanged peer is asked
// again every syncQuietFactor × SyncInterval only, to catch a copy lost
// without any of that.
type agreements struct {
	mu  sync.Mutex
	gen uint64 // the table generation the agreements hold for
	m   map[peer.ID]agreement
}

type agreement struct {
	sum [32]byte
	at  time.Time
}

// sumDigests hashes a sync request's digests (sorted by mailbox: the
// order they were gathered in is a map's).
func sumDigests(ds []wire.MailboxDigest) [32]byte {
	slices.SortFunc(ds, func(a, b wire.MailboxDigest) int { return bytes.Compare(a.Mailbox, b.Mailbox) })
	h := sha256.New()
	var c [4]byte
	for _, d := range ds {
		h.Write(d.Mailbox)
		binary.BigEndian.PutUint32(c[:], d.Count)
		h.Write(c[:])
		h.Write(d.XOR)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// quiet reports whether p agreed to exactly these digests within the
// quiet window, first forgetting every agreement if the live set changed.
func (a *agreements) quiet(p peer.ID, sum [32]byte, gen uint64, now time.Time, window time.Duration) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen != gen || a.m == nil {
		a.m, a.gen = make(map[peer.ID]agreement), gen
		return false
	}
	g, ok := a.m[p]
	return ok && g.sum == sum && now.Sub(g.at) < window
}

// record notes the outcome of a round with p: agreed on everything, or
// not (which forgets any earlier agreement).
func (a *agreements) record(p peer.ID, sum [32]byte, gen uint64, now time.Time, agreed bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen != gen || a.m == nil {
		return
	}
	if agreed {
		a.m[p] = agreement{sum: sum, at: now}
	} else {
		delete(a.m, p)
	}
}

// syncLoop runs anti-entropy every SyncInterval and shortly after every
// change of the live set (a node joined, left, died or came back).
func (n *Node) syncLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.table.Changes():
			// let a burst of changes settle
			select {
			case <-ctx.Done():
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
		n.SyncOnce(ctx)
	}
}

// SyncOnce runs one anti-entropy round: for every mailbox this node holds,
// it offers a digest to each other member of the mailbox's swarm; a peer
// whose digest differs answers with its set, a page at a time, and the
// two sides exchange what is missing: messages, and the owner's signed
// deletions for tombstones. A node that holds a mailbox but is not in its
// swarm hands it to the swarm the same way, while it is still in scope.
func (n *Node) SyncOnce(ctx context.Context) {
	start := time.Now()
	digests := n.store.Digests()
	self := n.host.ID()
	now := n.cfg.Now()
	n.chg.prune(now)
	byPeer := make(map[peer.ID][]wire.MailboxDigest)
	// Copies outside the swarm: how many members must confirm each.
	handover := map[store.Hash]int{}
	handingTo := make(map[peer.ID]bool) // peers offered a copy to take over
	for mb, d := range digests {
		if !n.chg.settled(mb, now) {
			continue
		}
		n.chg.markSynced(mb, now)
		if !n.inScope(mb, self) {
			continue // no node would take it from us
		}
		members := n.swarmOf(mb)
		handing := !slices.Contains(members, self)
		if handing {
			handover[mb] = len(members)
		}
		for _, m := range members {
			if m != self && len(byPeer[m]) < maxSyncDigests {
				byPeer[m] = append(byPeer[m], wire.MailboxDigest{Mailbox: bytes.Clone(mb[:]), Count: d.Count, XOR: bytes.Clone(d.XOR[:])})
				handingTo[m] = handingTo[m] || handing
			}
		}
	}
	sem := make(chan struct{}, syncParallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	confirmed := map[store.Hash]int{}
	gen := n.table.Gen()
	window := syncQuietFactor * n.cfg.SyncInterval
	for p, ds := range byPeer {
		sum := sumDigests(ds)
		// A peer being handed a copy is asked every round: its "same" is
		// what lets this node drop the copy.
		if !handingTo[p] && n.agreed.quiet(p, sum, gen, now, window) {
			n.m.syncQuiet.Inc()
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			same, err := n.syncWith(ctx, p, ds)
			n.agreed.record(p, sum, gen, now, err == nil && len(same) == len(ds))
			if err != nil {
				n.log.Debug("sync", "peer", p2p.ShortID(p), "err", err)
				return
			}
			mu.Lock()
			for _, mb := range same {
				if _, ok := handover[mb]; ok {
					confirmed[mb]++
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	n.dropHandedOver(ctx, handover, confirmed, digests)
	n.m.syncRounds.Inc()
	n.m.syncSeconds.Observe(time.Since(start).Seconds())
}

// dropHandedOver drops this node's copies of mailboxes outside its swarm
// that every member of the swarm confirmed holding as they are here (the
// same digest), unless the copy changed since. Copies outside the swarm
// used to stay until they expired, and every anti-entropy round offered
// them again (issue 11, lab finding 6: 5 copies per message grew to 9
// after splits). One member that lies about holding a mailbox cannot make
// it lost: the others confirmed it too.
func (n *Node) dropHandedOver(ctx context.Context, handover, confirmed map[store.Hash]int, digests map[store.Hash]store.Digest) {
	for mb, need := range handover {
		if need == 0 || confirmed[mb] < need {
			continue
		}
		ok, err := n.store.Forget(ctx, mb, digests[mb])
		if err != nil {
			n.log.Warn("drop a handed-over copy", "err", err)
			return
		}
		if ok {
			n.m.handedOver.Inc()
		}
	}
}

// syncPusher batches what one sync round sends a peer.
type syncPusher struct {
	n     *Node
	p     peer.ID
	msgs  []store.Message
	size  int
	tombs []wire.Tomb
}

func (s *syncPusher) flush(ctx context.Context) error {
	if len(s.msgs) == 0 && len(s.tombs) == 0 {
		return nil
	}
	var rr wire.ReplicateResp
	err := s.n.call(ctx, s.p, sessReplicate, wire.KindReplicateReq, &wire.ReplicateReq{Messages: toWire(s.msgs), Deletes: s.tombs}, wire.KindReplicateResp, &rr)
	if err == nil {
		s.n.m.repairPushed.Add(float64(len(s.msgs)))
	}
	s.msgs, s.size, s.tombs = nil, 0, nil
	return err
}

// syncWith reconciles the mailboxes of ds with p, and reports those p
// found equal to ours (wire.SyncResp.Same).
func (n *Node) syncWith(ctx context.Context, p peer.ID, ds []wire.MailboxDigest) (same []store.Hash, err error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var resp wire.SyncResp
	if err := n.call(cctx, p, sessSync, wire.KindSyncReq, &wire.SyncReq{Digests: ds}, wire.KindSyncResp, &resp); err != nil {
		return nil, err
	}
	for _, i := range resp.Same {
		if int(i) < len(ds) {
			if mb, werr := mailboxID(ds[i].Mailbox); werr == nil {
				same = append(same, mb)
			}
		}
	}
	return same, n.reconcile(cctx, p, resp)
}

// reconcile exchanges what differs in the mailboxes of a sync answer,
// page by page.
func (n *Node) reconcile(cctx context.Context, p peer.ID, resp wire.SyncResp) error {
	push := &syncPusher{n: n, p: p}
	for _, page := range resp.Diffs {
		mb, werr := mailboxID(page.Mailbox)
		if werr != nil {
			continue
		}
		for pages := 0; ; pages++ {
			var lo *store.Hash
			if len(page.After) == 32 {
				h := store.Hash(page.After)
				lo = &h
			}
			var hi *store.Hash // through the last entry, or to the end
			if page.More && len(page.Entries) > 0 {
				h := store.Hash(page.Entries[len(page.Entries)-1].Hash)
				hi = &h
			}
			if err := n.syncRange(cctx, p, mb, lo, hi, page.Entries, push); err != nil {
				return err
			}
			if !page.More || hi == nil || pages > 64 {
				break
			}
			var next wire.SyncResp
			req := &wire.SyncReq{Pages: []wire.SyncPage{{Mailbox: mb[:], After: hi[:]}}}
			if err := n.call(cctx, p, sessSync, wire.KindSyncReq, req, wire.KindSyncResp, &next); err != nil {
				return err
			}
			if len(next.Diffs) != 1 || !bytes.Equal(next.Diffs[0].Mailbox, mb[:]) || !bytes.Equal(next.Diffs[0].After, hi[:]) {
				break // the peer would not go on: the next round will
			}
			page = next.Diffs[0]
		}
	}
	return push.flush(cctx)
}

// syncRange reconciles the part of mailbox mb's set with hashes in
// (lo, hi] (nil: open) with theirs, the peer's entries in that range.
func (n *Node) syncRange(ctx context.Context, p peer.ID, mb store.Hash, lo, hi *store.Hash, theirEntries []wire.SyncEntry, push *syncPusher) error {
	mine, err := n.store.EntriesBetween(mb, lo, hi)
	if err != nil {
		return err
	}
	theirs := make(map[store.Hash]bool, len(theirEntries)) // hash -> deleted
	for _, e := range theirEntries {
		if len(e.Hash) == 32 {
			theirs[store.Hash(e.Hash)] = e.Deleted
		}
	}
	var need, theyDeleted, tombsFor, give []store.Hash
	myset := make(map[store.Hash]bool, len(mine))
	for _, e := range mine {
		myset[e.Hash] = e.Deleted
		tDel, has := theirs[e.Hash]
		switch {
		case e.Deleted && (!has || !tDel):
			tombsFor = append(tombsFor, e.Hash)
		case !e.Deleted && !has:
			give = append(give, e.Hash)
		case !e.Deleted && tDel:
			theyDeleted = append(theyDeleted, e.Hash)
		}
	}
	for h, del := range theirs {
		if _, has := myset[h]; !has && !del {
			need = append(need, h)
		}
	}
	// Our tombstones, as the owner signed them.
	for len(tombsFor) > 0 {
		part := tombsFor[:min(len(tombsFor), store.MaxGetLimit)]
		tombsFor = tombsFor[len(part):]
		dels, err := n.store.Deletions(mb, part, 64)
		if err != nil {
			return err
		}
		for _, d := range dels {
			push.tombs = append(push.tombs, tombOf(d))
			push.size += 32*len(d.Hashes) + 128
		}
		if push.size >= pushBatchBytes {
			if err := push.flush(ctx); err != nil {
				return err
			}
		}
	}
	for len(give) > 0 {
		part := give[:min(len(give), store.MaxGetLimit)]
		give = give[len(part):]
		msgs, err := n.store.GetByHash(part)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			push.msgs = append(push.msgs, m)
			push.size += len(m.Data) + 128
			if push.size >= pushBatchBytes {
				if err := push.flush(ctx); err != nil {
					return err
				}
			}
		}
	}
	// Their deletions we apply only with the owner's signature.
	if len(theyDeleted) > 0 {
		if err := n.fetchDeletions(ctx, p, mb, theyDeleted); err != nil {
			return err
		}
	}
	if len(need) > 0 && n.inSwarm(mb) {
		if err := n.fetchFrom(ctx, p, need); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) inSwarm(mb [32]byte) bool {
	for _, m := range n.swarmOf(mb) {
		if m == n.host.ID() {
			return true
		}
	}
	return false
}

// fetchDeletions asks p for the signed deletions behind its tombstones of
// hashes and applies those whose signature verifies.
func (n *Node) fetchDeletions(ctx context.Context, p peer.ID, mb store.Hash, hashes []store.Hash) error {
	for len(hashes) > 0 {
		part := hashes[:min(len(hashes), store.MaxGetLimit)]
		hashes = hashes[len(part):]
		req := wire.FetchReq{Tombs: make([][]byte, len(part)), TombsOf: bytes.Clone(mb[:])}
		for i, h := range part {
			req.Tombs[i] = bytes.Clone(h[:])
		}
		var resp wire.FetchResp
		if err := n.call(ctx, p, sessReplicate, wire.KindFetchReq, &req, wire.KindFetchResp, &resp); err != nil {
			return err
		}
		for i := range resp.Tombs {
			d, werr := deletionOf(&resp.Tombs[i])
			if werr != nil || d.Mailbox != mb {
				continue // not the owner's word: ignored
			}
			if _, err := n.store.DeleteSigned(ctx, d); err != nil {
				return err
			}
			n.chg.touch(mb, n.cfg.Now())
		}
	}
	return nil
}

// fetchFrom pulls messages by hash from p and stores them here.
func (n *Node) fetchFrom(ctx context.Context, p peer.ID, need []store.Hash) error {
	for len(need) > 0 {
		batch := need[:min(len(need), fetchBatch)]
		need = need[len(batch):]
		req := wire.FetchReq{Hashes: make([][]byte, len(batch))}
		for i, h := range batch {
			req.Hashes[i] = bytes.Clone(h[:])
		}
		var resp wire.FetchResp
		if err := n.call(ctx, p, sessReplicate, wire.KindFetchReq, &req, wire.KindFetchResp, &resp); err != nil {
			return err
		}
		msgs := make([]store.Message, 0, len(resp.Messages))
		for i := range resp.Messages {
			m, err := n.fromWire(&resp.Messages[i])
			if err != nil {
				continue
			}
			msgs = append(msgs, m)
		}
		if len(msgs) > 0 {
			if _, err := n.store.Put(ctx, msgs...); err != nil {
				return err
			}
			n.m.repairPulled.Add(float64(len(msgs)))
		}
	}
	return nil
}

// serveSync answers a digest offer with the first page of our set of every
// mailbox whose digest differs from ours, and page requests with the next
// page, within an entry budget per answer; only for mailboxes where both
// nodes are in scope.
func (n *Node) serveSync(_ context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
	if !n.table.Known(from) {
		return fail(wire.Errorf(wire.CodeUnauthorized, "unknown node"))
	}
	if kind != wire.KindSyncReq {
		return fail(wire.Errorf(wire.CodeBadRequest, "unsupported request %s", kind))
	}
	var req wire.SyncReq
	if err := wire.Unmarshal(body, &req); err != nil {
		return fail(wire.Errorf(wire.CodeBadRequest, "%v", err))
	}
	if len(req.Digests) > maxSyncDigests || len(req.Pages) > maxSyncPages {
		return fail(wire.Errorf(wire.CodeTooLarge, "at most %d digests and %d pages per sync request", maxSyncDigests, maxSyncPages))
	}
	scope := scopeCache{n: n, from: from}
	var resp wire.SyncResp
	budget := syncAnswerEntries
	page := func(mb store.Hash, after []byte) bool {
		var lo *store.Hash
		if len(after) == 32 {
			h := store.Hash(after)
			lo = &h
		}
		entries, more, err := n.store.EntriesPage(mb, lo, min(syncPageEntries, budget))
		if err != nil {
			return false
		}
		budget -= len(entries)
		me := wire.MailboxEntries{Mailbox: bytes.Clone(mb[:]), Entries: make([]wire.SyncEntry, len(entries)), More: more, After: after}
		for i, e := range entries {
			me.Entries[i] = wire.SyncEntry{Hash: bytes.Clone(e.Hash[:]), Deleted: e.Deleted}
		}
		resp.Diffs = append(resp.Diffs, me)
		return true
	}
	for _, pg := range req.Pages {
		if budget <= 0 {
			break
		}
		mb, werr := mailboxID(pg.Mailbox)
		if werr != nil || (len(pg.After) != 32) || !scope.ok(mb) {
			continue
		}
		if !page(mb, pg.After) {
			return fail(wire.Errorf(wire.CodeInternal, "storage error"))
		}
	}
	for i, d := range req.Digests {
		if budget <= 0 {
			break // the rest waits for the next round
		}
		mb, werr := mailboxID(d.Mailbox)
		if werr != nil || len(d.XOR) != 32 {
			continue
		}
		mine := n.store.Digest(mb)
		if mine.Count == d.Count && bytes.Equal(mine.XOR[:], d.XOR) {
			if scope.ok(mb) {
				resp.Same = append(resp.Same, uint32(i))
			}
			continue
		}
		if !scope.ok(mb) {
			continue
		}
		if !page(mb, nil) {
			return fail(wire.Errorf(wire.CodeInternal, "storage error"))
		}
	}
	return wire.KindSyncResp, &resp
}
