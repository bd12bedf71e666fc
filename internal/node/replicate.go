package node

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/store"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/wire"
)

const (
	replicaTimeout = 5 * time.Second  // one replica write
	quorumTimeout  = 10 * time.Second // the whole fan-out, including fallbacks
	maxFetchBytes  = wire.MaxFrame - 256<<10
)

// rank returns the live nodes in placement order for mailbox (member.Place:
// aged nodes first, rendezvous weight of their positions, at most ⌊R/2⌋
// per subnet in the swarm): the first R are its swarm, the rest fallbacks.
func (n *Node) rank(mb [32]byte) []peer.ID {
	placed := member.Place(mb, n.table.Live(), n.table.Aged, n.cfg.Params.Replication)
	out := make([]peer.ID, len(placed))
	for i, p := range placed {
		out[i] = p.ID
	}
	return out
}

// inScope reports whether every one of ids ranks within the first R+k of
// mailbox mb's placement over all verified nodes, down ones included: the
// nodes that may write, repair, fetch and acknowledge its messages. A node
// answers another's replica writes, deletions, sync offers and fetches
// only for mailboxes where both are in scope.
func (n *Node) inScope(mb [32]byte, ids ...peer.ID) bool {
	placed := member.Place(mb, n.table.All(), n.table.Aged, n.cfg.Params.Replication)
	for _, id := range ids {
		if !member.InScope(placed, id, n.cfg.Params.Replication) {
			return false
		}
	}
	return true
}

// SwarmOf returns the mailbox's swarm in this node's view.
func (n *Node) SwarmOf(mb [32]byte) []peer.ID { return n.swarmOf(mb) }

// swarmOf returns the first R of rank.
func (n *Node) swarmOf(mb [32]byte) []peer.ID {
	r := n.rank(mb)
	if len(r) > n.cfg.Params.Replication {
		r = r[:n.cfg.Params.Replication]
	}
	return r
}

type replicaResult struct {
	target  peer.ID
	receipt []byte
	code    int
	err     error
}

type quorumOutcome struct {
	receipts []wire.Receipt
	werr     *wire.Error
}

// writeQuorum writes msg to the R highest-ranked live nodes and returns as
// soon as W of them hold it on disk. A replica that fails is replaced by the
// next-ranked node (repair moves the data home later). The fan-out goes on
// in the background after the answer so that all R replicas are written.
func (n *Node) writeQuorum(ctx context.Context, msg store.Message) ([]wire.Receipt, *wire.Error) {
	ranked := n.rank(msg.Mailbox)
	r := n.cfg.Params.Replication
	w := swarm.Quorum(r)
	if len(ranked) < w {
		return nil, wire.Errorf(wire.CodeUnavailable, "only %d live nodes; a write needs %d", len(ranked), w)
	}
	out := make(chan quorumOutcome, 1)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.fanOut(msg, ranked, r, w, out)
	}()
	select {
	case o := <-out:
		return o.receipts, o.werr
	case <-ctx.Done():
		return nil, wire.Errorf(wire.CodeUnavailable, "node shutting down")
	}
}

func (n *Node) fanOut(msg store.Message, ranked []peer.ID, r, w int, out chan<- quorumOutcome) {
	ctx, cancel := context.WithTimeout(n.ctx, quorumTimeout)
	defer cancel()
	results := make(chan replicaResult, len(ranked))
	next, inflight := 0, 0
	launch := func() bool {
		if next >= len(ranked) {
			return false
		}
		t := ranked[next]
		next++
		inflight++
		go func() { results <- n.replicateOne(ctx, t, msg) }()
		return true
	}
	for i := 0; i < r; i++ {
		launch()
	}
	var receipts []wire.Receipt
	decided := false
	for inflight > 0 {
		res := <-results
		inflight--
		if res.err == nil && !decided && res.target != n.host.ID() && !n.validReceipt(res.target, &msg, res.receipt) {
			// A receipt that does not verify counts for nothing: the
			// replica lied or garbled it. Try the next node instead.
			// (Only receipts that may still decide the answer are
			// checked: a verification costs more than a signature.)
			n.m.badReceipts.Inc()
			res.err = errors.New("receipt does not verify")
		}
		if res.err == nil {
			receipts = append(receipts, wire.Receipt{Node: []byte(res.target), Sig: res.receipt})
			if len(receipts) == w && !decided {
				out <- quorumOutcome{receipts: append([]wire.Receipt(nil), receipts...)}
				decided = true
			}
			continue
		}
		n.log.Debug("replica write failed", "target", p2p.ShortID(res.target), "err", res.err)
		if refusal := refusalMessage(res.code); refusal != "" {
			// The message itself is refused (full mailbox, deleted...):
			// another node would refuse it too, or accept what the swarm
			// must not hold. No fallback.
			if !decided {
				out <- quorumOutcome{werr: wire.Errorf(res.code, "%s", refusal)}
				decided = true
			}
			continue
		}
		if len(receipts)+inflight < r {
			launch()
		}
		if !decided && len(receipts)+inflight < w {
			out <- quorumOutcome{werr: wire.Errorf(wire.CodeUnavailable, "write quorum not reached: %d of %d replicas answered (%v)", len(receipts), w, res.err)}
			decided = true
		}
	}
	if !decided {
		out <- quorumOutcome{werr: wire.Errorf(wire.CodeUnavailable, "write quorum not reached: %d of %d replicas answered", len(receipts), w)}
	}
}

// validReceipt checks a replica's receipt: target's signature over the
// message's hash, mailbox and expiry.
func (n *Node) validReceipt(target peer.ID, m *store.Message, sig []byte) bool {
	pub, err := target.ExtractPublicKey()
	if err != nil {
		return false
	}
	ok, err := pub.Verify(swarm.ReceiptBytes(m.Hash, m.Mailbox, m.Expiry), sig)
	return err == nil && ok
}

// refusalMessage explains a replica's refusal of the message itself, or
// returns "" for failures another node might not have.
func refusalMessage(code int) string {
	switch code {
	case wire.CodeGone:
		return "the mailbox owner deleted this message (it was delivered)"
	case wire.CodeMailboxFull:
		return "mailbox is full (quota reached): the recipient must read and delete messages, or wait for old ones to expire"
	case wire.CodeStoreFull:
		return "the swarm's nodes are out of storage space (quota reached); try again later"
	case wire.CodeBadRequest:
		return "the swarm refused the message (deleted, expired or malformed)"
	}
	return ""
}

// replicateOne writes msg at target (this node or a peer) and returns its receipt.
func (n *Node) replicateOne(ctx context.Context, target peer.ID, msg store.Message) replicaResult {
	res := replicaResult{target: target}
	if target == n.host.ID() {
		res.receipt, res.code, res.err = n.storeLocal(ctx, msg)
		return res
	}
	return n.batch.replicate(ctx, target, msg)
}

// storeLocal writes msg durably here and signs a receipt.
func (n *Node) storeLocal(ctx context.Context, msg store.Message) ([]byte, int, error) {
	rs, err := n.store.Put(ctx, msg)
	if err != nil {
		return nil, wire.CodeInternal, err
	}
	n.chg.touch(msg.Mailbox, n.cfg.Now())
	code, err := putCode(rs[0])
	if err != nil {
		return nil, code, err
	}
	sig, err := n.signReceipt(&msg)
	return sig, 0, err
}

func putCode(r store.PutResult) (int, error) {
	switch r.Status {
	case store.Stored, store.Duplicate:
		return 0, nil
	case store.Deleted:
		return wire.CodeGone, errors.New("message was deleted by the mailbox owner")
	case store.Expired:
		return wire.CodeBadRequest, errors.New("message expired")
	default:
		if errors.Is(r.Err, store.ErrMailboxFull) {
			return wire.CodeMailboxFull, r.Err
		}
		if errors.Is(r.Err, store.ErrStoreFull) {
			return wire.CodeStoreFull, r.Err
		}
		return wire.CodeInternal, r.Err
	}
}

func (n *Node) signReceipt(m *store.Message) ([]byte, error) {
	return n.priv.Sign(swarm.ReceiptBytes(m.Hash, m.Mailbox, m.Expiry))
}

// call sends a request to target on its session for proto (opened on
// first use; the pool teaches the peerstore the target's addresses from its
// record first) and marks the target for a probe if it cannot be reached.
func (n *Node) call(ctx context.Context, target peer.ID, proto p2p.Proto, reqKind wire.Kind, req any, respKind wire.Kind, resp any) error {
	err := n.pool.Call(ctx, target, proto, reqKind, req, respKind, resp)
	if err != nil && !isRemoteError(err) && n.ctx.Err() == nil {
		n.requestProbe(target)
	}
	return err
}

func isRemoteError(err error) bool {
	var we *wire.Error
	return errors.As(err, &we)
}

// deleteQuorum applies the owner's signed deletion here and at the swarm,
// waiting for a majority. tomb's signature must have been checked (d is
// its store form); every replica checks it again itself. Tombstones keep
// replicas from resurrecting the messages.
func (n *Node) deleteQuorum(ctx context.Context, d store.Deletion, tomb wire.Tomb) (int, *wire.Error) {
	members := n.swarmOf(d.Mailbox)
	w := swarm.Quorum(n.cfg.Params.Replication)
	type res struct {
		err error
	}
	results := make(chan res, len(members)+1)
	cctx, cancel := context.WithTimeout(ctx, replicaTimeout)
	defer cancel()
	self := false
	for _, m := range members {
		if m == n.host.ID() {
			self = true
			continue
		}
		go func() {
			var resp wire.ReplicateResp
			err := n.call(cctx, m, sessReplicate, wire.KindReplicateReq, &wire.ReplicateReq{Deletes: []wire.Tomb{tomb}}, wire.KindReplicateResp, &resp)
			results <- res{err: err}
		}()
	}
	local, err := n.store.DeleteSigned(cctx, d)
	if err != nil {
		return 0, wire.Errorf(wire.CodeInternal, "storage error")
	}
	n.chg.touch(d.Mailbox, n.cfg.Now())
	acks := 0
	if self {
		acks++
	}
	for i := 0; i < len(members)-btoi(self); i++ {
		if r := <-results; r.err == nil {
			acks++
		}
	}
	if acks < w {
		return local, wire.Errorf(wire.CodeUnavailable, "delete reached %d of %d swarm nodes; it will be retried by repair", acks, w)
	}
	return local, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// deletionOf checks a signed deletion, the mailbox owner's signature over
// its hashes (whatever its age: it stays the owner's word), and returns it
// in the store's form.
func deletionOf(t *wire.Tomb) (store.Deletion, *wire.Error) {
	d, werr := deletionForm(t)
	if werr != nil {
		return d, werr
	}
	if err := mailbox.VerifySig(mailbox.MethodDelete, d.Mailbox, t.Timestamp, t.AuthFields(), t.Sig); err != nil {
		return store.Deletion{}, wire.Errorf(wire.CodeUnauthorized, "deletion not signed by the mailbox owner")
	}
	return d, nil
}

// deletionForm checks a deletion's shape (not its signature) and returns
// it in the store's form.
func deletionForm(t *wire.Tomb) (store.Deletion, *wire.Error) {
	mb, werr := mailboxID(t.Mailbox)
	if werr != nil {
		return store.Deletion{}, werr
	}
	if len(t.Hashes) == 0 || len(t.Hashes) > maxDeleteHashes {
		return store.Deletion{}, wire.Errorf(wire.CodeBadRequest, "a deletion names 1 to %d hashes", maxDeleteHashes)
	}
	d := store.Deletion{Mailbox: mb, Timestamp: t.Timestamp, Sig: t.Sig, Hashes: make([]store.Hash, len(t.Hashes))}
	for i, h := range t.Hashes {
		if len(h) != 32 {
			return store.Deletion{}, wire.Errorf(wire.CodeBadRequest, "hash %d is not 32 bytes", i)
		}
		copy(d.Hashes[i][:], h)
	}
	return d, nil
}

// tombOf is a stored signed deletion in its wire form.
func tombOf(d store.Deletion) wire.Tomb {
	t := wire.Tomb{Mailbox: bytes.Clone(d.Mailbox[:]), Timestamp: d.Timestamp, Sig: d.Sig, Hashes: make([][]byte, len(d.Hashes))}
	for i, h := range d.Hashes {
		t.Hashes[i] = bytes.Clone(h[:])
	}
	return t
}

// maxDeleteHashes bounds the hashes of one deletion (a client's delete
// request, a tomb between nodes).
const maxDeleteHashes = 1000

// serveReplicate answers node-to-node writes, deletions and fetches. Only
// nodes in the table may use it, only for mailboxes where both nodes are
// in scope, and at most at the replica rate.
func (n *Node) serveReplicate(_ context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
	if !n.table.Known(from) {
		return fail(wire.Errorf(wire.CodeUnauthorized, "unknown node"))
	}
	switch kind {
	case wire.KindReplicateReq:
		var req wire.ReplicateReq
		if err := wire.Unmarshal(body, &req); err != nil {
			return fail(wire.Errorf(wire.CodeBadRequest, "%v", err))
		}
		cost := len(req.Messages)
		for _, t := range req.Deletes {
			cost += len(t.Hashes)
		}
		if !n.replicaRate.allow(from, cost) {
			n.m.rateLimited.Inc()
			return fail(wire.Errorf(wire.CodeRateLimited, "too many replica writes; slow down"))
		}
		resp, werr := n.applyReplicas(from, &req)
		if werr != nil {
			return fail(werr)
		}
		return wire.KindReplicateResp, resp
	case wire.KindFetchReq:
		var req wire.FetchReq
		if err := wire.Unmarshal(body, &req); err != nil {
			return fail(wire.Errorf(wire.CodeBadRequest, "%v", err))
		}
		resp, werr := n.fetch(from, &req)
		if werr != nil {
			return fail(werr)
		}
		return wire.KindFetchResp, resp
	default:
		return fail(wire.Errorf(wire.CodeBadRequest, "unsupported request %s", kind))
	}
}

// fetch answers a repair fetch: the messages and the signed deletions asked
// for, of mailboxes where both nodes are in scope.
func (n *Node) fetch(from peer.ID, req *wire.FetchReq) (*wire.FetchResp, *wire.Error) {
	if len(req.Hashes) > store.MaxGetLimit || len(req.Tombs) > store.MaxGetLimit {
		return nil, wire.Errorf(wire.CodeBadRequest, "fetch takes at most %d hashes", store.MaxGetLimit)
	}
	scope := scopeCache{n: n, from: from}
	hashes := make([]store.Hash, 0, len(req.Hashes))
	for _, h := range req.Hashes {
		if len(h) == 32 {
			hashes = append(hashes, store.Hash(h))
		}
	}
	msgs, err := n.store.GetByHash(hashes)
	if err != nil {
		return nil, wire.Errorf(wire.CodeInternal, "storage error")
	}
	resp := &wire.FetchResp{}
	size := 0
	for i := range msgs {
		if !scope.ok(msgs[i].Mailbox) {
			continue
		}
		size += len(msgs[i].Data) + 128
		if size > maxFetchBytes {
			break
		}
		resp.Messages = append(resp.Messages, toWire(msgs[i:i+1])...)
	}
	if len(req.Tombs) > 0 {
		mb, werr := mailboxID(req.TombsOf)
		if werr != nil {
			return nil, werr
		}
		if !scope.ok(mb) {
			return resp, nil
		}
		ds, err := n.store.Deletions(mb, hashesOf(req.Tombs), 64)
		if err != nil {
			return nil, wire.Errorf(wire.CodeInternal, "storage error")
		}
		for _, d := range ds {
			size += 32*len(d.Hashes) + 128
			if size > maxFetchBytes {
				break
			}
			resp.Tombs = append(resp.Tombs, tombOf(d))
		}
	}
	return resp, nil
}

func hashesOf(b [][]byte) []store.Hash {
	out := make([]store.Hash, 0, len(b))
	for _, h := range b {
		if len(h) == 32 {
			out = append(out, store.Hash(h))
		}
	}
	return out
}

// scopeCache answers inScope for one peer over many mailboxes, computing
// each mailbox's placement once.
type scopeCache struct {
	n    *Node
	from peer.ID
	seen map[store.Hash]bool
}

func (c *scopeCache) ok(mb store.Hash) bool {
	if v, ok := c.seen[mb]; ok {
		return v
	}
	if c.seen == nil {
		c.seen = map[store.Hash]bool{}
	}
	v := c.n.inScope(mb, c.from, c.n.host.ID())
	c.seen[mb] = v
	if !v {
		c.n.m.outOfScope.Inc()
	}
	return v
}

// applyReplicas stores replica writes and applies signed deletions from
// node from, for mailboxes where both nodes are in scope. A deletion
// whose signature does not verify is refused whole.
func (n *Node) applyReplicas(from peer.ID, req *wire.ReplicateReq) (*wire.ReplicateResp, *wire.Error) {
	scope := scopeCache{n: n, from: from}
	for i := range req.Deletes {
		d, werr := deletionOf(&req.Deletes[i])
		if werr != nil {
			return nil, werr
		}
		if !scope.ok(d.Mailbox) {
			return nil, wire.Errorf(wire.CodeForbidden, "mailbox outside both nodes' scope")
		}
		if _, err := n.store.DeleteSigned(n.ctx, d); err != nil {
			return nil, wire.Errorf(wire.CodeInternal, "storage error")
		}
		n.chg.touch(d.Mailbox, n.cfg.Now())
	}
	resp := &wire.ReplicateResp{Results: make([]wire.ReplicaResult, len(req.Messages))}
	msgs := make([]store.Message, 0, len(req.Messages))
	idx := make([]int, 0, len(req.Messages))
	for i := range req.Messages {
		m, err := n.fromWire(&req.Messages[i])
		if err != nil {
			resp.Results[i].Code = wire.CodeBadRequest
			continue
		}
		if !scope.ok(m.Mailbox) {
			resp.Results[i].Code = wire.CodeForbidden
			continue
		}
		msgs = append(msgs, m)
		idx = append(idx, i)
	}
	if len(msgs) == 0 {
		return resp, nil
	}
	rs, err := n.store.Put(n.ctx, msgs...)
	if err != nil {
		return nil, wire.Errorf(wire.CodeInternal, "storage error")
	}
	now := n.cfg.Now()
	for i := range msgs {
		n.chg.touch(msgs[i].Mailbox, now)
	}
	n.m.replicated.Add(float64(len(msgs)))
	for j, r := range rs {
		i := idx[j]
		if code, err := putCode(r); err != nil {
			resp.Results[i].Code = code
			continue
		}
		sig, err := n.signReceipt(&msgs[j])
		if err != nil {
			resp.Results[i].Code = wire.CodeInternal
			continue
		}
		resp.Results[i].Receipt = sig
	}
	return resp, nil
}
