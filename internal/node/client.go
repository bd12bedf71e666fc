package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/store"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// maxRetrieveBytes bounds the data in one retrieve answer, under MaxFrame.
const maxRetrieveBytes = wire.MaxFrame - 256<<10

// registerHandlers serves every request protocol on sessions (/2), and
// gossip one-shot. Node-to-node protocols vet the peer before reading
// anything (Accept) and again in every handler.
func (n *Node) registerHandlers() {
	known := n.table.Known
	node := func(maxReq int) p2p.SessionOptions {
		return p2p.SessionOptions{MaxReq: maxReq, MaxPerPeer: nodeMaxPerPeer, MaxPeerInflight: nodeMaxPeerInflight, Accept: known}
	}
	n.srv.HandleSession(wire.ProtoStoreSession, p2p.SessionOptions{MaxReq: wire.MaxClientRequest}, n.serveClient)
	n.srv.HandleSession(wire.ProtoReplicateSession, node(sessReplicate.MaxReq), n.serveReplicate)
	n.srv.HandleSession(wire.ProtoSyncSession, node(sessSync.MaxReq), n.serveSync)
	// Onion is served to anyone (clients to their guard, nodes relaying),
	// with a node's allowance, since one node relays many circuits.
	n.srv.HandleSession(wire.ProtoOnionSession, p2p.SessionOptions{MaxReq: sessOnion.MaxReq, MaxPerPeer: nodeMaxPerPeer, MaxPeerInflight: nodeMaxPeerInflight}, n.serveOnion)
	p2p.Handle(n.host, wire.ProtoMembers, 10*time.Second, wire.MaxFrame, n.serveMembers)
}

// serveClient answers client requests on a store session.
func (n *Node) serveClient(ctx context.Context, _ peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
	return n.handleClient(ctx, kind, body, maxRetrieveBytes)
}

// handleClient answers a client request (store, retrieve, delete, node
// list, drop and public reads, file shares), from a direct stream or from an onion exit. maxBytes bounds the
// data of a retrieve answer.
func (n *Node) handleClient(ctx context.Context, kind wire.Kind, body []byte, maxBytes int) (wire.Kind, any) {
	bad := func(err error) (wire.Kind, any) { return fail(wire.Errorf(wire.CodeBadRequest, "%v", err)) }
	if n.cfg.clientObserver != nil {
		n.cfg.clientObserver(kind, body)
	}
	switch kind {
	case wire.KindStoreReq:
		var req wire.StoreReq
		if err := wire.Unmarshal(body, &req); err != nil {
			return bad(err)
		}
		resp, werr := n.Store(ctx, &req)
		if werr != nil {
			return fail(werr)
		}
		return wire.KindStoreResp, resp
	case wire.KindRetrieveReq:
		var req wire.RetrieveReq
		if err := wire.Unmarshal(body, &req); err != nil {
			return bad(err)
		}
		resp, werr := n.Retrieve(ctx, &req, maxBytes)
		if werr != nil {
			return fail(werr)
		}
		return wire.KindRetrieveResp, resp
	case wire.KindDeleteReq:
		var req wire.DeleteReq
		if err := wire.Unmarshal(body, &req); err != nil {
			return bad(err)
		}
		resp, werr := n.Delete(ctx, &req)
		if werr != nil {
			return fail(werr)
		}
		return wire.KindDeleteResp, resp
	case wire.KindNodesReq:
		raws, ages := n.table.LiveAges()
		allow, _ := n.allowList()
		return wire.KindNodesResp, &wire.NodesResp{Params: n.cfg.Params, Records: raws, Ages: ages, Allow: allow}
	case wire.KindDropReq:
		var req wire.DropReq
		if err := wire.Unmarshal(body, &req); err != nil {
			return bad(err)
		}
		resp, werr := n.ReadDrop(ctx, &req, maxBytes)
		if werr != nil {
			return fail(werr)
		}
		return wire.KindDropResp, resp
	case wire.KindPublicReq:
		var req wire.PublicReq
		if err := wire.Unmarshal(body, &req); err != nil {
			return bad(err)
		}
		resp, werr := n.ReadPublic(&req, maxBytes)
		if werr != nil {
			return fail(werr)
		}
		return wire.KindPublicResp, resp
	case wire.KindSharePutReq:
		var req wire.SharePutReq
		if err := wire.Unmarshal(body, &req); err != nil {
			return bad(err)
		}
		resp, werr := n.PutShare(ctx, &req)
		if werr != nil {
			return fail(werr)
		}
		return wire.KindSharePutResp, resp
	case wire.KindShareGetReq:
		var req wire.ShareGetReq
		if err := wire.Unmarshal(body, &req); err != nil {
			return bad(err)
		}
		resp, werr := n.GetShare(ctx, &req)
		if werr != nil {
			return fail(werr)
		}
		return wire.KindShareGetResp, resp
	default:
		return fail(wire.Errorf(wire.CodeBadRequest, "unsupported request %s", kind))
	}
}

func mailboxID(b []byte) (mailbox.ID, *wire.Error) {
	var id mailbox.ID
	if len(b) != len(id) {
		return id, wire.Errorf(wire.CodeBadRequest, "mailbox must be 32 bytes, got %d", len(b))
	}
	copy(id[:], b)
	return id, nil
}

// Store validates a client's message and writes it to a quorum of its swarm.
// It is the entry point for direct clients and, later, onion exits.
func (n *Node) Store(ctx context.Context, req *wire.StoreReq) (*wire.StoreResp, *wire.Error) {
	start := time.Now()
	mb, werr := mailboxID(req.Mailbox)
	if werr != nil {
		return nil, werr
	}
	if len(req.Data) == 0 {
		return nil, wire.Errorf(wire.CodeBadRequest, "empty message")
	}
	if len(req.Data) > MaxMessageSize {
		return nil, wire.Errorf(wire.CodeTooLarge, "message is %d bytes; the limit is %d", len(req.Data), MaxMessageSize)
	}
	ttl := time.Duration(req.TTL) * time.Millisecond
	maxTTL := maxTTLOf(req.Namespace)
	if req.TTL == 0 {
		ttl = min(DefaultTTL, maxTTL)
	}
	if ttl < time.Second || ttl > maxTTL {
		return nil, wire.Errorf(wire.CodeBadRequest, "TTL must be between 1s and %s in namespace %d", maxTTL, req.Namespace)
	}
	now := n.cfg.Now()
	// Clients send coarse times (wire.CoarseTime), a minute in the past at
	// most, so the future-skew check below is unchanged by them. A node
	// cannot round a finer timestamp itself: the message hash, the owner's
	// signature (public namespace) and the first-contact work bind it, and
	// refusing it would strand messages older clients queued. A timestamp
	// the node picks itself is coarse, so the node's own clock leaks no
	// finer than the senders' to the replicas and readers (with the TTL
	// rounded up, so the expiry is coarse and no earlier than asked).
	ts := req.Timestamp
	if ts == 0 {
		ts = wire.CoarseTime(now.UnixMilli())
		ttl = time.Duration(wire.CoarseTTL(ttl.Milliseconds())) * time.Millisecond
	}
	if time.UnixMilli(ts).Sub(now) > MaxFutureSkew {
		return nil, wire.Errorf(wire.CodeBadRequest, "timestamp is in the future; check the clock")
	}
	expiry := ts + ttl.Milliseconds()
	if expiry <= now.UnixMilli() {
		return nil, wire.Errorf(wire.CodeBadRequest, "message already expired")
	}
	switch req.Namespace {
	case wire.PublicNamespace:
		// Anyone may read the public namespace (prekey bundles), so only
		// the mailbox owner may write it: otherwise a few junk writes
		// would push the owner's bundle out of every read.
		if _, err := mailbox.OpenPublic(mb, ts, expiry, req.Data); err != nil {
			return nil, wire.Errorf(wire.CodeUnauthorized, "%v", err)
		}
	case wire.RequestNamespace, wire.DropNamespace:
		// A first-contact message pays for its place: the more are
		// waiting in this mailbox (in its namespace), the more work a
		// new one must carry. The drop namespace's mailbox is any 32
		// bytes, a shared bucket with no key: the work is its only gate.
		need := mailbox.RequiredRequestWork(max(0, n.store.Count(mb, req.Namespace)))
		if got, _, err := mailbox.RequestWork(mb, ts, expiry, req.Data); err != nil || got < need {
			n.m.workRefused.Inc()
			e := wire.Errorf(wire.CodeRateLimited, "first-contact message needs %d bits of proof-of-work, carries %d", need, got)
			e.WorkBits = need
			return nil, e
		}
	}
	h := swarm.MessageHash(mb, req.Namespace, ts, expiry, req.Data)
	msg := store.Message{Hash: h, Mailbox: mb, Namespace: req.Namespace, Timestamp: ts, Expiry: expiry, Data: req.Data}
	receipts, werr := n.writeQuorum(ctx, msg)
	n.m.storeLatency.Observe(time.Since(start).Seconds())
	if werr != nil && werr.Code == wire.CodeGone {
		// Stored before and since deleted by the mailbox owner: a
		// sender's retry after the recipient read it. The owner's signed
		// deletion proves it was delivered.
		if ds, err := n.store.Deletions(mb, []store.Hash{h}, 1); err == nil && len(ds) == 1 {
			n.m.storeOK.Inc()
			t := tombOf(ds[0])
			return &wire.StoreResp{Hash: h[:], Expiry: expiry, Deleted: &t}, nil
		}
	}
	if werr != nil {
		n.m.storeFail.Inc()
		return nil, werr
	}
	n.m.storeOK.Inc()
	return &wire.StoreResp{Hash: h[:], Expiry: expiry, Receipts: receipts}, nil
}

// checkAuth verifies a mailbox signature and rejects replays.
func (n *Node) checkAuth(method string, mb mailbox.ID, a wire.Auth, fields []byte) *wire.Error {
	now := n.cfg.Now()
	if err := mailbox.Verify(method, mb, a.Timestamp, fields, a.Sig, now); err != nil {
		n.m.authFail.Inc()
		return wire.Errorf(wire.CodeUnauthorized, "%v", err)
	}
	// The signature covers a random nonce (mailbox.Sign), so a tag of it
	// names one request even when two share a coarse timestamp and
	// fields. It is kept as long as the request would pass Verify.
	if !n.seen.Add(sha256.Sum256(a.Sig), mailbox.Expires(a.Timestamp), now) {
		n.m.authFail.Inc()
		return wire.Errorf(wire.CodeUnauthorized, "replayed request")
	}
	return nil
}

// Retrieve answers an authenticated read, long-polling when asked, with at
// most maxBytes of message data.
func (n *Node) Retrieve(ctx context.Context, req *wire.RetrieveReq, maxBytes int) (*wire.RetrieveResp, *wire.Error) {
	mb, werr := mailboxID(req.Mailbox)
	if werr != nil {
		return nil, werr
	}
	// The cursor's length is checked first: with it fixed, the signed
	// fields (After ‖ Limit ‖ WaitMs [‖ MaxBytes]) parse one way only.
	if len(req.After) != 0 && len(req.After) != 32 {
		return nil, wire.Errorf(wire.CodeBadRequest, "cursor must be a 32-byte hash")
	}
	if req.MaxBytes < 0 {
		return nil, wire.Errorf(wire.CodeBadRequest, "negative byte cap")
	}
	if werr := n.checkAuth(mailbox.MethodRetrieve, mb, req.Auth, req.AuthFields()); werr != nil {
		return nil, werr
	}
	var after *store.Hash
	if len(req.After) > 0 {
		var h store.Hash
		copy(h[:], req.After)
		after = &h
	}
	limit := req.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	// The client's cap counts each message's overhead too; the store
	// counts data only, so it is asked for at most the cap in data and the
	// answer is trimmed to the cap below (capMessages).
	dataBytes := maxBytes
	if req.MaxBytes > 0 {
		dataBytes = min(maxBytes, req.MaxBytes)
	}
	n.m.retrieves.Inc()
	msgs, more, werr := n.longPoll(ctx, mb, time.Duration(req.WaitMs)*time.Millisecond, func() ([]store.Message, bool, error) {
		return n.store.Get(mb, after, limit, dataBytes)
	})
	if werr != nil {
		return nil, werr
	}
	if req.MaxBytes > 0 {
		msgs, more = capMessages(msgs, more, req.MaxBytes)
	}
	return &wire.RetrieveResp{Messages: toWire(msgs), More: more}, nil
}

// ReadPublic returns the newest messages of a mailbox's public namespace
// (at most 16), with no authentication: that namespace is public by design.
func (n *Node) ReadPublic(req *wire.PublicReq, maxBytes int) (*wire.PublicResp, *wire.Error) {
	mb, werr := mailboxID(req.Mailbox)
	if werr != nil {
		return nil, werr
	}
	limit := req.Limit
	if limit <= 0 || limit > 16 {
		limit = 16
	}
	if req.MaxBytes < 0 {
		return nil, wire.Errorf(wire.CodeBadRequest, "negative byte cap")
	}
	if req.MaxBytes > 0 {
		maxBytes = min(maxBytes, req.MaxBytes)
	}
	// Through the (mailbox, namespace) index: the cost does not grow with
	// what else the mailbox holds.
	pub, err := n.store.Newest(mb, wire.PublicNamespace, limit)
	if err != nil {
		return nil, wire.Errorf(wire.CodeInternal, "storage error")
	}
	// The newest that fit, and always the newest one.
	size := 0
	for i := len(pub) - 1; i >= 0; i-- {
		size += len(pub[i].Data) + wire.MessageOverhead
		if size > maxBytes && i < len(pub)-1 {
			pub = pub[i+1:]
			break
		}
	}
	return &wire.PublicResp{Messages: toWire(pub)}, nil
}

// capMessages keeps the first of msgs (oldest first) whose data and
// per-message overhead fit limit bytes, and always the first one; more is
// set if any were left out.
func capMessages(msgs []store.Message, more bool, limit int) ([]store.Message, bool) {
	size := 0
	for i, m := range msgs {
		size += len(m.Data) + wire.MessageOverhead
		if size > limit && i > 0 {
			return msgs[:i], true
		}
	}
	return msgs, more
}

// Delete removes messages from the swarm, authenticated by the mailbox key.
func (n *Node) Delete(ctx context.Context, req *wire.DeleteReq) (*wire.DeleteResp, *wire.Error) {
	mb, werr := mailboxID(req.Mailbox)
	if werr != nil {
		return nil, werr
	}
	if len(req.Hashes) > maxDeleteHashes {
		return nil, wire.Errorf(wire.CodeTooLarge, "delete takes at most %d hashes; send them in several requests", maxDeleteHashes)
	}
	// The request itself, signed by the owner, is what every replica
	// checks before it deletes.
	tomb := wire.Tomb{Mailbox: mb[:], Hashes: req.Hashes, Timestamp: req.Auth.Timestamp, Sig: req.Auth.Sig}
	d, werr := deletionForm(&tomb)
	if werr != nil {
		return nil, werr
	}
	if werr := n.checkAuth(mailbox.MethodDelete, mb, req.Auth, req.AuthFields()); werr != nil {
		return nil, werr
	}
	if werr := n.refuseDropDelete(d.Mailbox, d.Hashes); werr != nil {
		return nil, werr
	}
	deleted, err := n.deleteQuorum(ctx, d, tomb)
	if err != nil {
		return nil, err
	}
	return &wire.DeleteResp{Deleted: deleted}, nil
}

func toWire(msgs []store.Message) []wire.Message {
	out := make([]wire.Message, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		out[i] = wire.Message{Hash: m.Hash[:], Mailbox: m.Mailbox[:], Namespace: m.Namespace,
			Timestamp: m.Timestamp, Expiry: m.Expiry, Data: m.Data}
	}
	return out
}

// fromWire validates a replicated message: sizes, a hash that matches its
// content, and an expiry within bounds.
func (n *Node) fromWire(w *wire.Message) (store.Message, error) {
	var m store.Message
	if len(w.Hash) != 32 || len(w.Mailbox) != 32 {
		return m, errors.New("bad hash or mailbox length")
	}
	if len(w.Data) == 0 || len(w.Data) > MaxMessageSize {
		return m, errors.New("bad data size")
	}
	copy(m.Mailbox[:], w.Mailbox)
	if swarm.MessageHash(m.Mailbox, w.Namespace, w.Timestamp, w.Expiry, w.Data) != [32]byte(w.Hash) {
		return m, errors.New("hash does not match content")
	}
	if time.UnixMilli(w.Expiry).Sub(n.cfg.Now()) > MaxTTL+MaxFutureSkew {
		return m, errors.New("expiry too far ahead")
	}
	if w.Namespace == wire.DropNamespace && (w.Expiry-w.Timestamp > wire.MaxDropTTL ||
		time.UnixMilli(w.Expiry).Sub(n.cfg.Now()) > maxTTLOf(w.Namespace)+MaxFutureSkew) {
		return m, errors.New("drop-namespace TTL above its cap")
	}
	switch w.Namespace {
	case wire.PublicNamespace:
		// Checked here too, so a node cannot slip junk into a public
		// namespace by replication or repair.
		if _, err := mailbox.OpenPublic(m.Mailbox, w.Timestamp, w.Expiry, w.Data); err != nil {
			return m, err
		}
	case wire.RequestNamespace, wire.DropNamespace:
		// Likewise the first-contact work; replicas ask for the base
		// (their counts differ a little from the coordinator's).
		if got, _, err := mailbox.RequestWork(m.Mailbox, w.Timestamp, w.Expiry, w.Data); err != nil || got < mailbox.RequestWorkBase {
			return m, errors.New("first-contact message without its proof-of-work")
		}
	}
	copy(m.Hash[:], w.Hash)
	m.Namespace, m.Timestamp, m.Expiry, m.Data = w.Namespace, w.Timestamp, w.Expiry, w.Data
	return m, nil
}
