package swarmclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// Stores: a put goes to the swarm members in random order until a write
// quorum has signed receipts that check out.

// PutResult is the outcome of an acknowledged store.
type PutResult struct {
	Hash     [32]byte
	Expiry   time.Time
	Receipts int  // verified receipts from distinct nodes of the swarm
	Deleted  bool // stored before, and since read and deleted by the mailbox owner (signed)
}

// Put stores data in mb's swarm and returns once a write quorum holds it,
// having checked the nodes' signed receipts. It tries swarm members in
// random order and fails over to the next on errors.
func (c *Client) Put(ctx context.Context, mb mailbox.ID, namespace int32, ttl time.Duration, data []byte) (*PutResult, error) {
	req := &wire.StoreReq{Mailbox: mb[:], Namespace: namespace, Timestamp: wire.CoarseTime(time.Now().UnixMilli()), TTL: wire.CoarseTTL(ttl.Milliseconds()), Data: data}
	return c.PutReq(ctx, req)
}

// Publish stores data in the public namespace of key's mailbox (where
// anyone can read it), signed by the mailbox key as nodes require there
// (mailbox.SignPublic).
func (c *Client) Publish(ctx context.Context, key *mailbox.Key, ttl time.Duration, data []byte) (*PutResult, error) {
	id := key.ID()
	ts, ttlMs := wire.CoarseTime(time.Now().UnixMilli()), wire.CoarseTTL(ttl.Milliseconds()) // nodes see minutes only
	req := &wire.StoreReq{Mailbox: id[:], Namespace: wire.PublicNamespace, Timestamp: ts, TTL: ttlMs,
		Data: key.SignPublic(ts, ts+ttlMs, data)}
	return c.PutReq(ctx, req)
}

// DefaultTTL is how long a message lives when a store request names no
// TTL (the nodes' default).
const DefaultTTL = 14 * 24 * time.Hour

// PutReq is Put with a prepared request (a fixed timestamp makes retries
// idempotent: the same message gets the same hash). It fills in a missing
// timestamp and TTL, and makes them coarse where nothing binds them (see
// below). It asks the swarm's members in random order and
// moves on to the next when one fails, refuses for a reason another node
// may not share, or answers with an acknowledgement that does not hold
// (see checkAck); a refusal of the message itself (too large, mailbox
// full, not enough first-contact work...) ends it.
func (c *Client) PutReq(ctx context.Context, req *wire.StoreReq) (*PutResult, error) {
	if len(req.Mailbox) != len(mailbox.ID{}) {
		return nil, errors.New("mailbox must be 32 bytes")
	}
	if len(req.Data) == 0 || len(req.Data) > wire.MaxMessageSize {
		return nil, fmt.Errorf("message must be 1 byte to %d KiB, got %d bytes", wire.MaxMessageSize>>10, len(req.Data))
	}
	if req.Timestamp == 0 {
		req.Timestamp = wire.CoarseTime(time.Now().UnixMilli())
	}
	if req.TTL == 0 {
		req.TTL = DefaultTTL.Milliseconds()
	}
	if req.Namespace != wire.PublicNamespace && req.Namespace != wire.RequestNamespace && req.Namespace != wire.DropNamespace {
		// Nodes see times only to the minute (wire.TimeGranularity). Here
		// nothing in the data binds them, so they are rounded here (the
		// same way on every retry). In the public, request and drop
		// namespaces the owner's signature or the first-contact work
		// covers them: the caller must have made them coarse
		// (wire.CoarseTime, CoarseTTL).
		req.Timestamp, req.TTL = wire.CoarseTime(req.Timestamp), wire.CoarseTTL(req.TTL)
	}
	mb := mailbox.ID(req.Mailbox)
	// The acknowledgement must be for this message: its hash is computed
	// here, from what is sent, never taken from the answer.
	want := expectedAck{hash: swarm.MessageHash(mb, req.Namespace, req.Timestamp, req.Timestamp+req.TTL, req.Data), expiry: req.Timestamp + req.TTL}
	members := c.Swarm(mb)
	if len(members) == 0 {
		return nil, errors.New("no live nodes known")
	}
	order := make([]*member.Node, len(members))
	for i, j := range rand.Perm(len(members)) {
		order[i] = members[j]
	}
	c.lastIfUnreachable(order)
	var errs []error
	for _, n := range order {
		var resp wire.StoreResp
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := c.call(cctx, n, wire.KindStoreReq, req, wire.KindStoreResp, &resp)
		cancel()
		if err == nil {
			var res *PutResult
			res, err = c.checkAck(mb, want, &resp)
			if errors.Is(err, errOutOfView) && c.freshView(ctx) {
				// The swarm may have changed (a node came of age, joined
				// or left) since this client's view: look again, then
				// judge the same answer.
				res, err = c.checkAck(mb, want, &resp)
			}
			if err == nil {
				return res, nil
			}
			err = fmt.Errorf("node %s: %w", n.ID.ShortString(), err)
		} else if final(err) {
			return nil, err
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("store failed on every swarm node: %w", errors.Join(errs...))
}

// final reports whether a node's refusal is of the message itself, which
// every node would repeat, rather than a failure of that node.
func final(err error) bool {
	var we *wire.Error
	if !errors.As(err, &we) {
		return false
	}
	switch we.Code {
	case wire.CodeUnavailable, wire.CodeInternal, wire.CodeForbidden, wire.CodeGone:
		return false
	case wire.CodeRateLimited:
		return we.WorkBits > 0 // more first-contact work: the caller must pay it
	}
	return true
}

// expectedAck is what an acknowledgement must be about.
type expectedAck struct {
	hash   [32]byte
	expiry int64
}

// checkAck checks a store answer against the message sent: the hash and
// expiry must be the message's, and it needs W valid receipts from
// distinct nodes that rank within the mailbox's first R+k in this client's
// own view (a node outside the swarm cannot vouch for it). An answer that
// the message was deleted must carry the mailbox owner's signed deletion
// naming it: then it was stored and the recipient has read it.
func (c *Client) checkAck(mb mailbox.ID, want expectedAck, resp *wire.StoreResp) (*PutResult, error) {
	if len(resp.Hash) != 32 || [32]byte(resp.Hash) != want.hash || resp.Expiry != want.expiry {
		return nil, errors.New("the store answer is not about this message")
	}
	res := &PutResult{Hash: want.hash, Expiry: time.UnixMilli(want.expiry)}
	if resp.Deleted != nil {
		if err := checkDeleted(mb, want.hash, resp.Deleted); err != nil {
			return nil, err
		}
		res.Deleted = true
		return res, nil
	}
	placed := c.Ranked(mb)
	r := c.Params().Replication
	msg := swarm.ReceiptBytes(res.Hash, mb, want.expiry)
	seen := map[peer.ID]bool{}
	outside := 0 // valid receipts of nodes outside the scope in this view
	for _, rc := range resp.Receipts {
		id, err := peer.IDFromBytes(rc.Node)
		if err != nil || seen[id] {
			continue
		}
		pub, err := id.ExtractPublicKey()
		if err != nil {
			continue
		}
		if ok, err := pub.Verify(msg, rc.Sig); err != nil || !ok {
			continue
		}
		seen[id] = true
		if !member.InScope(placed, id, r) {
			outside++
			continue
		}
		res.Receipts++
	}
	if w := swarm.Quorum(r); res.Receipts < w {
		err := fmt.Errorf("store answer carries %d valid receipts from the mailbox's swarm; %d needed", res.Receipts, w)
		if outside > 0 {
			err = fmt.Errorf("%w (%d more from nodes outside it in this client's view): %w", err, outside, errOutOfView)
		}
		return nil, err
	}
	return res, nil
}

// errOutOfView marks an acknowledgement short only of receipts from nodes
// this client's node list places outside the mailbox's scope: the list may
// be out of date.
var errOutOfView = errors.New("node list may be stale")

// freshView makes sure the node list is at most 10 seconds old,
// refreshing it if not, and reports whether it is.
func (c *Client) freshView(ctx context.Context) bool {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	c.mu.RLock()
	age := time.Since(c.lastRefresh)
	c.mu.RUnlock()
	if age < 10*time.Second {
		return true
	}
	return c.Refresh(ctx) == nil
}

// checkDeleted checks that t is mb's owner's signed deletion of hash h.
func checkDeleted(mb mailbox.ID, h [32]byte, t *wire.Tomb) error {
	if !bytes.Equal(t.Mailbox, mb[:]) {
		return errors.New("a deletion of another mailbox")
	}
	named := false
	for _, x := range t.Hashes {
		named = named || bytes.Equal(x, h[:])
	}
	if !named {
		return errors.New("a deletion that does not name this message")
	}
	if err := mailbox.VerifySig(mailbox.MethodDelete, mb, t.Timestamp, t.AuthFields(), t.Sig); err != nil {
		return errors.New("a deletion not signed by the mailbox owner")
	}
	return nil
}
