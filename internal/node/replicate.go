package node

import (
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

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

// rank returns the live nodes ordered by rendezvous weight for mailbox: the
// first R are its swarm, the rest fallbacks.
func (n *Node) rank(mb [32]byte) []peer.ID {
	live := n.table.Live()
	ids := make([][]byte, len(live))
	for i, l := range live {
		ids[i] = []byte(l.ID)
	}
	ranked := swarm.Rank(mb, ids)
	out := make([]peer.ID, len(ranked))
	for i, r := range ranked {
		out[i] = peer.ID(r)
	}
	return out
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

// refusalMessage explains a replica's refusal of the message itself, or
// returns "" for failures another node might not have.
func refusalMessage(code int) string {
	switch code {
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
		return wire.CodeBadRequest, errors.New("message was deleted")
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

// deleteQuorum applies a deletion here and at the swarm, waiting for a
// majority. Tombstones keep replicas from resurrecting the messages.
func (n *Node) deleteQuorum(ctx context.Context, mb [32]byte, hashes []store.Hash) (int, *wire.Error) {
	members := n.swarmOf(mb)
	w := swarm.Quorum(n.cfg.Params.Replication)
	tomb := wire.Tomb{Mailbox: mb[:]}
	for _, h := range hashes {
		tomb.Hashes = append(tomb.Hashes, h[:])
	}
	type res struct {
		deleted int
		err     error
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
	local, err := n.store.Delete(cctx, mb, hashes)
	if err != nil {
		return 0, wire.Errorf(wire.CodeInternal, "storage error")
	}
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

// serveReplicate answers node-to-node writes, deletions and fetches. Only
// nodes in the table may use it.
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
		resp, werr := n.applyReplicas(&req)
		if werr != nil {
			return fail(werr)
		}
		return wire.KindReplicateResp, resp
	case wire.KindFetchReq:
		var req wire.FetchReq
		if err := wire.Unmarshal(body, &req); err != nil {
			return fail(wire.Errorf(wire.CodeBadRequest, "%v", err))
		}
		hashes := make([]store.Hash, 0, len(req.Hashes))
		for _, h := range req.Hashes {
			if len(h) == 32 {
				hashes = append(hashes, store.Hash(h))
			}
		}
		msgs, err := n.store.GetByHash(hashes)
		if err != nil {
			return fail(wire.Errorf(wire.CodeInternal, "storage error"))
		}
		size := 0
		for i := range msgs {
			size += len(msgs[i].Data) + 128
			if size > maxFetchBytes {
				msgs = msgs[:i]
				break
			}
		}
		return wire.KindFetchResp, &wire.FetchResp{Messages: toWire(msgs)}
	default:
		return fail(wire.Errorf(wire.CodeBadRequest, "unsupported request %s", kind))
	}
}

func (n *Node) applyReplicas(req *wire.ReplicateReq) (*wire.ReplicateResp, *wire.Error) {
	for _, t := range req.Deletes {
		mb, werr := mailboxID(t.Mailbox)
		if werr != nil {
			return nil, werr
		}
		hashes := make([]store.Hash, 0, len(t.Hashes))
		for _, h := range t.Hashes {
			if len(h) == 32 {
				hashes = append(hashes, store.Hash(h))
			}
		}
		if _, err := n.store.Delete(n.ctx, mb, hashes); err != nil {
			return nil, wire.Errorf(wire.CodeInternal, "storage error")
		}
		n.chg.touch(mb, n.cfg.Now())
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
