package node

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/store"
	"github.com/umbra-im/umbra/internal/wire"
)

const (
	maxSyncDigests = 4096 // mailboxes offered in one sync request
	syncParallel   = 4    // peers synced at once
	pushBatchBytes = 1 << 20
)

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
// whose digest differs answers with its full set, and the two sides
// exchange what is missing (messages and tombstones). A node that holds a
// mailbox but is not in its swarm hands it to the swarm the same way.
func (n *Node) SyncOnce(ctx context.Context) {
	start := time.Now()
	digests := n.store.Digests()
	self := n.host.ID()
	now := n.cfg.Now()
	n.chg.prune(now)
	byPeer := make(map[peer.ID][]wire.MailboxDigest)
	for mb, d := range digests {
		if !n.chg.settled(mb, now) {
			continue
		}
		n.chg.markSynced(mb, now)
		for _, m := range n.swarmOf(mb) {
			if m != self && len(byPeer[m]) < maxSyncDigests {
				byPeer[m] = append(byPeer[m], wire.MailboxDigest{Mailbox: bytes.Clone(mb[:]), Count: d.Count, XOR: bytes.Clone(d.XOR[:])})
			}
		}
	}
	sem := make(chan struct{}, syncParallel)
	var wg sync.WaitGroup
	for p, ds := range byPeer {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := n.syncWith(ctx, p, ds); err != nil {
				n.log.Debug("sync", "peer", p2p.ShortID(p), "err", err)
			}
		}()
	}
	wg.Wait()
	n.m.syncRounds.Inc()
	n.m.syncSeconds.Observe(time.Since(start).Seconds())
}

func (n *Node) syncWith(ctx context.Context, p peer.ID, ds []wire.MailboxDigest) error {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var resp wire.SyncResp
	if err := n.call(cctx, p, sessSync, wire.KindSyncReq, &wire.SyncReq{Digests: ds}, wire.KindSyncResp, &resp); err != nil {
		return err
	}
	var push []store.Message
	var pushSize int
	var tombs []wire.Tomb
	flush := func() error {
		if len(push) == 0 && len(tombs) == 0 {
			return nil
		}
		var rr wire.ReplicateResp
		err := n.call(cctx, p, sessReplicate, wire.KindReplicateReq, &wire.ReplicateReq{Messages: toWire(push), Deletes: tombs}, wire.KindReplicateResp, &rr)
		if err == nil {
			n.m.repairPushed.Add(float64(len(push)))
		}
		push, pushSize, tombs = nil, 0, nil
		return err
	}
	for _, diff := range resp.Diffs {
		mb, werr := mailboxID(diff.Mailbox)
		if werr != nil {
			continue
		}
		mine, err := n.store.Entries(mb)
		if err != nil {
			return err
		}
		theirs := make(map[store.Hash]bool, len(diff.Entries)) // hash -> deleted
		for _, e := range diff.Entries {
			if len(e.Hash) == 32 {
				theirs[store.Hash(e.Hash)] = e.Deleted
			}
		}
		var need []store.Hash // live there, unknown here
		var theyDeleted []store.Hash
		var tomb wire.Tomb
		var give []store.Hash
		myset := make(map[store.Hash]bool, len(mine))
		for _, e := range mine {
			myset[e.Hash] = e.Deleted
			tDel, has := theirs[e.Hash]
			switch {
			case e.Deleted && (!has || !tDel):
				tomb.Hashes = append(tomb.Hashes, bytes.Clone(e.Hash[:]))
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
		if len(theyDeleted) > 0 {
			if _, err := n.store.Delete(cctx, mb, theyDeleted); err != nil {
				return err
			}
		}
		if len(tomb.Hashes) > 0 {
			tomb.Mailbox = bytes.Clone(mb[:])
			tombs = append(tombs, tomb)
		}
		if len(give) > 0 {
			msgs, err := n.store.GetByHash(give)
			if err != nil {
				return err
			}
			for _, m := range msgs {
				push = append(push, m)
				pushSize += len(m.Data) + 128
				if pushSize >= pushBatchBytes {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		if len(need) > 0 && n.inSwarm(mb) {
			if err := n.fetchFrom(cctx, p, need); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (n *Node) inSwarm(mb [32]byte) bool {
	for _, m := range n.swarmOf(mb) {
		if m == n.host.ID() {
			return true
		}
	}
	return false
}

// fetchFrom pulls messages by hash from p and stores them here.
func (n *Node) fetchFrom(ctx context.Context, p peer.ID, need []store.Hash) error {
	for len(need) > 0 {
		batch := need
		if len(batch) > 256 {
			batch = batch[:256]
		}
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

// serveSync answers a digest offer with our full set of every mailbox whose
// digest differs from ours, within the frame limit.
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
	var resp wire.SyncResp
	size := 0
	for _, d := range req.Digests {
		mb, werr := mailboxID(d.Mailbox)
		if werr != nil || len(d.XOR) != 32 {
			continue
		}
		mine := n.store.Digest(mb)
		if mine.Count == d.Count && bytes.Equal(mine.XOR[:], d.XOR) {
			continue
		}
		entries, err := n.store.Entries(mb)
		if err != nil {
			return fail(wire.Errorf(wire.CodeInternal, "storage error"))
		}
		size += 40 + len(entries)*40
		if size > wire.MaxFrame/2 {
			break // the rest waits for the next round
		}
		me := wire.MailboxEntries{Mailbox: d.Mailbox, Entries: make([]wire.SyncEntry, len(entries))}
		for i, e := range entries {
			me.Entries[i] = wire.SyncEntry{Hash: bytes.Clone(e.Hash[:]), Deleted: e.Deleted}
		}
		resp.Diffs = append(resp.Diffs, me)
	}
	return wire.KindSyncResp, &resp
}
