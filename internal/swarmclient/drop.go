package swarmclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// MaxDropTTL is the longest TTL nodes accept in the drop namespace.
const MaxDropTTL = time.Duration(wire.MaxDropTTL) * time.Millisecond

// PutDrop stores payload in the drop namespace (wire.DropNamespace) of
// mailbox mb, a shared request bucket (mailbox.BucketID) or any 32 bytes,
// sealed with at least bits of first-contact work (mailbox.SealRequest;
// never less than mailbox.RequestWorkBase). ts is the sender timestamp
// (0: now) and ttl the lifetime (0: MaxDropTTL); both are made coarse
// before the work binds them. When a node asks for more work than bits
// (a 429 with WorkBits, at most mailbox.RequestWorkMax), PutDrop seals
// the payload again with that much and tries once more; otherwise the
// refusal is returned as a *wire.Error.
func (c *Client) PutDrop(ctx context.Context, mb mailbox.ID, ts int64, ttl time.Duration, payload []byte, bits int) (*PutResult, error) {
	if ts == 0 {
		ts = time.Now().UnixMilli()
	}
	if ttl == 0 {
		ttl = MaxDropTTL
	}
	ts = wire.CoarseTime(ts)
	ttlMs := wire.CoarseTTL(ttl.Milliseconds())
	if ttlMs > wire.MaxDropTTL {
		return nil, fmt.Errorf("drop TTL %s is above the nodes' cap of %s", ttl, MaxDropTTL)
	}
	bits = max(bits, mailbox.RequestWorkBase)
	for attempt := 0; ; attempt++ {
		req := &wire.StoreReq{Mailbox: mb[:], Namespace: wire.DropNamespace, Timestamp: ts, TTL: ttlMs,
			Data: mailbox.SealRequest(mb, ts, ts+ttlMs, payload, bits)}
		res, err := c.PutReq(ctx, req)
		var we *wire.Error
		if attempt > 0 || !errors.As(err, &we) || we.Code != wire.CodeRateLimited ||
			we.WorkBits <= bits || we.WorkBits > mailbox.RequestWorkMax {
			return res, err
		}
		bits = we.WorkBits
	}
}

// ReadDrop reads every entry of mailbox mb's drop namespace from its
// swarm, without authentication (anyone may read a drop mailbox, and a
// read does not say which of the accounts sharing it the reader is). It
// merges the answers of up to R reachable members, paging through each,
// so a replica that is behind, or leaves entries out, cannot hide an
// entry another member holds. Entries that are not drop entries of mb,
// whose hash does not match their content, that carry less than the base
// first-contact work or outlive the drop TTL cap are dropped: a lying node
// cannot slip in junk it did not pay for. If there is none and wait > 0,
// it long-polls the members until one has an entry or wait passes.
// Messages come sorted by sender timestamp, then hash; Data is as stored
// (work nonce and payload: mailbox.RequestWork splits them).
func (c *Client) ReadDrop(ctx context.Context, mb mailbox.ID, wait time.Duration) ([]Message, error) {
	deadline := time.Now().Add(wait)
	for {
		left := max(time.Until(deadline), 0)
		msgs, err := c.ReadDropSince(ctx, mb, &DropCursor{}, min(left, 25*time.Second))
		if err != nil || len(msgs) > 0 || left <= 25*time.Second {
			return msgs, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// dropEntry checks one entry a node returned for mb's drop namespace: the
// rules every node applies at store, checked again here.
func dropEntry(mb mailbox.ID, m *wire.Message) (Message, bool) {
	if len(m.Hash) != 32 || !bytes.Equal(m.Mailbox, mb[:]) || m.Namespace != wire.DropNamespace {
		return Message{}, false
	}
	if swarm.MessageHash(mb, m.Namespace, m.Timestamp, m.Expiry, m.Data) != [32]byte(m.Hash) {
		return Message{}, false
	}
	if m.Expiry-m.Timestamp > wire.MaxDropTTL {
		return Message{}, false
	}
	if got, _, err := mailbox.RequestWork(mb, m.Timestamp, m.Expiry, m.Data); err != nil || got < mailbox.RequestWorkBase {
		return Message{}, false
	}
	return Message{Hash: [32]byte(m.Hash), Namespace: m.Namespace, Timestamp: time.UnixMilli(m.Timestamp),
		Expiry: time.UnixMilli(m.Expiry), Data: m.Data}, true
}

// ReadDropPage sends one drop read to node n: the entries after the
// cursor (the last hash of the previous page; nil from the start),
// waiting up to wait for a first one when there is none.
func (c *Client) ReadDropPage(ctx context.Context, n *member.Node, mb mailbox.ID, after []byte, wait time.Duration) (*wire.DropResp, error) {
	req := &wire.DropReq{Mailbox: mb[:], After: after, WaitMs: wait.Milliseconds(), MaxBytes: ReadBytes}
	cctx, cancel := context.WithTimeout(ctx, wait+15*time.Second)
	defer cancel()
	var resp wire.DropResp
	if err := c.call(cctx, n, wire.KindDropReq, req, wire.KindDropResp, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// DropCursor remembers, for each swarm member, the last drop entry read
// from it, so that a reader long-polls for what is new instead of reading
// the whole mailbox again. The zero value is ready; it is safe for
// concurrent use. Keys are opaque (a node's peer ID).
type DropCursor struct {
	mu   sync.Mutex
	last map[string][]byte
}

// After is the cursor of member k, nil from the start.
func (d *DropCursor) After(k string) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last[k]
}

// Set moves member k's cursor to the entry with hash h.
func (d *DropCursor) Set(k string, h []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil {
		d.last = map[string][]byte{}
	}
	d.last[k] = bytes.Clone(h)
}

// ReadDropSince reads the drop entries of mb that its swarm members got
// since cur's cursors (every entry when cur is new), merging the answers
// of up to R reachable members as ReadDrop does, and moves the cursors.
// With nothing new and wait > 0 it long-polls until a member has a new
// entry or wait passes. A member that lost the cursor's entry answers
// from the start: callers must tolerate entries they have seen.
func (c *Client) ReadDropSince(ctx context.Context, mb mailbox.ID, cur *DropCursor, wait time.Duration) ([]Message, error) {
	return c.fanOut(ctx, mb, wait, func(ctx context.Context, n *member.Node) ([]wire.Message, error) {
		msgs, err := pages(cur.After(n.ID.String()), wait, func(after []byte, wait time.Duration) ([]wire.Message, bool, error) {
			resp, err := c.ReadDropPage(ctx, n, mb, after, wait)
			if err != nil {
				return nil, false, err
			}
			return resp.Messages, resp.More, nil
		})
		if err == nil && len(msgs) > 0 {
			// Only a member that answered moves its cursor; one cancelled
			// because another answered first stays put.
			cur.Set(n.ID.String(), msgs[len(msgs)-1].Hash)
		}
		return msgs, err
	}, func(m *wire.Message) (Message, bool) { return dropEntry(mb, m) })
}
