package node

import (
	"context"
	"time"

	"github.com/umbra-im/umbra/internal/store"
	"github.com/umbra-im/umbra/internal/wire"
)

// The drop namespace (wire.DropNamespace) holds shared first-contact
// buckets: anyone writes there with the first-contact proof-of-work (see
// Store), anyone reads there without authentication (ReadDrop), nobody
// deletes there (Delete refuses), and entries live at most
// wire.MaxDropTTL. Its entries are kept apart from the mailbox's other
// namespaces: Retrieve never returns them (store.Config.ApartNamespace).

// MaxDropTTL is wire.MaxDropTTL as a duration.
const MaxDropTTL = time.Duration(wire.MaxDropTTL) * time.Millisecond

// maxDropLimit bounds the entries of one drop-read page.
const maxDropLimit = 1000

// maxTTLOf is the longest TTL a message of namespace ns may have.
func maxTTLOf(ns int32) time.Duration {
	if ns == wire.DropNamespace {
		return MaxDropTTL
	}
	return MaxTTL
}

// ReadDrop answers an unauthenticated read of a mailbox's drop namespace:
// one page of its entries in this node's arrival order after req.After,
// at most maxBytes of data, long-polling up to req.WaitMs (capped at
// MaxLongPoll) when there is none.
func (n *Node) ReadDrop(ctx context.Context, req *wire.DropReq, maxBytes int) (*wire.DropResp, *wire.Error) {
	mb, werr := mailboxID(req.Mailbox)
	if werr != nil {
		return nil, werr
	}
	var after *store.Hash
	if len(req.After) > 0 {
		if len(req.After) != 32 {
			return nil, wire.Errorf(wire.CodeBadRequest, "cursor must be a 32-byte hash")
		}
		h := store.Hash(req.After)
		after = &h
	}
	limit := req.Limit
	if limit <= 0 || limit > maxDropLimit {
		limit = maxDropLimit
	}
	if req.MaxBytes < 0 {
		return nil, wire.Errorf(wire.CodeBadRequest, "negative byte cap")
	}
	if req.MaxBytes > 0 {
		maxBytes = min(maxBytes, req.MaxBytes)
	}
	msgs, more, werr := n.longPoll(ctx, mb, time.Duration(req.WaitMs)*time.Millisecond, func() ([]store.Message, bool, error) {
		return n.store.GetNamespace(mb, wire.DropNamespace, after, limit, maxBytes)
	})
	if werr != nil {
		return nil, werr
	}
	n.m.retrieves.Inc()
	if req.MaxBytes > 0 {
		msgs, more = capMessages(msgs, more, req.MaxBytes)
	}
	return &wire.DropResp{Messages: toWire(msgs), More: more}, nil
}

// longPoll runs read until it finds messages, or wait (at most
// MaxLongPoll; none when too many are waiting already) passes, waking on
// every write to mailbox mb.
func (n *Node) longPoll(ctx context.Context, mb store.Hash, wait time.Duration, read func() ([]store.Message, bool, error)) ([]store.Message, bool, *wire.Error) {
	wait = min(wait, MaxLongPoll)
	if wait > 0 {
		select {
		case n.pollSem <- struct{}{}:
			defer func() { <-n.pollSem }()
		default:
			wait = 0 // too many waiting: answer now
		}
	}
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	for {
		ch, cancel := n.store.Watch(mb)
		msgs, more, err := read()
		if err != nil || len(msgs) > 0 || timer == nil {
			cancel()
			if err != nil {
				n.log.Error("read", "err", err)
				return nil, false, wire.Errorf(wire.CodeInternal, "storage error")
			}
			return msgs, more, nil
		}
		select {
		case <-ch:
		case <-timer:
			timer = nil
		case <-ctx.Done():
			cancel()
			return nil, false, wire.Errorf(wire.CodeUnavailable, "node shutting down")
		}
		cancel()
	}
}

// refuseDropDelete refuses a deletion that names a drop-namespace entry
// of mailbox mb this node holds: those only expire. (In a shared bucket nobody could
// sign a deletion anyway, having no key; this keeps drops written to a
// keyed mailbox ID out of its owner's reach too.)
func (n *Node) refuseDropDelete(mb store.Hash, hashes []store.Hash) *wire.Error {
	held, err := n.store.GetByHash(hashes)
	if err != nil {
		return wire.Errorf(wire.CodeInternal, "storage error")
	}
	for i := range held {
		if held[i].Namespace == wire.DropNamespace && held[i].Mailbox == mb {
			return wire.Errorf(wire.CodeBadRequest, "drop-namespace messages cannot be deleted; they expire")
		}
	}
	return nil
}
