package node

import (
	"context"
	"errors"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/store"
	"github.com/umbra-im/umbra/internal/wire"
)

const (
	batchMaxMsgs     = 256
	batchMaxBytes    = 1 << 20
	batchMaxInflight = 2 // concurrent batches per peer
)

// batcher coalesces replica writes bound for the same peer: while a batch
// is in flight, new writes queue and leave together in the next one, so
// under load a replica pays one stream and one disk commit for many
// messages, and an idle network adds no delay.
type batcher struct {
	n     *Node
	mu    sync.Mutex
	peers map[peer.ID]*peerQueue
}

type peerQueue struct {
	mu       sync.Mutex
	q        []*pendingReplica
	inflight int
}

type pendingReplica struct {
	msg  store.Message
	done chan replicaResult
}

func newBatcher(n *Node) *batcher { return &batcher{n: n, peers: make(map[peer.ID]*peerQueue)} }

func (b *batcher) queue(p peer.ID) *peerQueue {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, ok := b.peers[p]
	if !ok {
		q = &peerQueue{}
		b.peers[p] = q
	}
	return q
}

// replicate writes msg at peer p and returns its receipt or error.
func (b *batcher) replicate(ctx context.Context, p peer.ID, msg store.Message) replicaResult {
	pr := &pendingReplica{msg: msg, done: make(chan replicaResult, 1)}
	q := b.queue(p)
	q.mu.Lock()
	q.q = append(q.q, pr)
	start := q.inflight < batchMaxInflight
	if start {
		q.inflight++
	}
	q.mu.Unlock()
	if start {
		b.n.wg.Add(1)
		go func() {
			defer b.n.wg.Done()
			b.drain(p, q)
		}()
	}
	select {
	case res := <-pr.done:
		return res
	case <-ctx.Done():
		return replicaResult{target: p, err: ctx.Err()}
	}
}

// drain sends batches from q until it is empty.
func (b *batcher) drain(p peer.ID, q *peerQueue) {
	for {
		q.mu.Lock()
		if len(q.q) == 0 {
			q.inflight--
			q.mu.Unlock()
			return
		}
		k, size := 0, 0
		for k < len(q.q) && k < batchMaxMsgs && (k == 0 || size+len(q.q[k].msg.Data) <= batchMaxBytes) {
			size += len(q.q[k].msg.Data)
			k++
		}
		batch := q.q[:k:k]
		q.q = q.q[k:]
		q.mu.Unlock()
		b.send(p, batch)
	}
}

func (b *batcher) send(p peer.ID, batch []*pendingReplica) {
	ctx, cancel := context.WithTimeout(b.n.ctx, replicaTimeout)
	defer cancel()
	msgs := make([]store.Message, len(batch))
	for i, pr := range batch {
		msgs[i] = pr.msg
	}
	var resp wire.ReplicateResp
	err := b.n.call(ctx, p, sessReplicate, wire.KindReplicateReq, &wire.ReplicateReq{Messages: toWire(msgs)}, wire.KindReplicateResp, &resp)
	if err == nil && len(resp.Results) != len(batch) {
		err = errors.New("malformed replicate response")
	}
	for i, pr := range batch {
		res := replicaResult{target: p, err: err}
		if err == nil {
			r := resp.Results[i]
			if r.Code != 0 {
				res.code = r.Code
				res.err = wire.Errorf(r.Code, "replica refused the message")
			} else {
				res.receipt = r.Receipt
			}
		}
		pr.done <- res
	}
}
