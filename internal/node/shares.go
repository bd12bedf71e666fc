package node

import (
	"context"
	"errors"
	"time"

	"github.com/umbra-im/umbra/internal/files"
	"github.com/umbra-im/umbra/internal/sharestore"
	"github.com/umbra-im/umbra/internal/wire"
)

// shareDBName is the share database's file in the data directory, next to
// the message store's store.db.
const shareDBName = "shares.db"

// Reasons a share put is refused, the label of umbra_share_puts_refused_total.
const (
	refusedBadRequest = "bad_request" // address length, size or expiry out of bounds
	refusedAddress    = "address"     // the data does not hash to the address
	refusedWork       = "work"        // too little proof-of-work
	refusedFull       = "full"        // over the share quota
	refusedError      = "error"       // storage failure or shutdown
)

// shareAddr checks a share address's length.
func shareAddr(b []byte) (files.Address, *wire.Error) {
	var a files.Address
	if len(b) != len(a) {
		return a, wire.Errorf(wire.CodeBadRequest, "share address must be %d bytes, got %d", len(a), len(b))
	}
	copy(a[:], b)
	return a, nil
}

// PutShare keeps one file share until its expiry, if the request passes
// its checks, in this order: a 32-byte address; data a positive multiple
// of files.ShareAlign bytes, at most files.MaxShareSize; an expiry in the
// future and at most files.MaxShareTTL (and MaxFutureSkew) ahead; data
// that hashes to the address; the proof-of-work files.ShareWork asks at
// this node's share use (else CodeRateLimited with the bits in WorkBits);
// room in the share quota (else CodeStoreFull). The answer, sent once the
// share is on disk, carries the requested expiry and the node's signature
// over files.ReceiptMessage(Addr, Expiry).
func (n *Node) PutShare(ctx context.Context, req *wire.SharePutReq) (*wire.SharePutResp, *wire.Error) {
	refuse := func(reason string, e *wire.Error) (*wire.SharePutResp, *wire.Error) {
		n.m.sharesRefused.WithLabelValues(reason).Inc()
		return nil, e
	}
	a, werr := shareAddr(req.Addr)
	if werr != nil {
		return refuse(refusedBadRequest, werr)
	}
	if size := len(req.Data); size == 0 || size > files.MaxShareSize || size%files.ShareAlign != 0 {
		return refuse(refusedBadRequest, wire.Errorf(wire.CodeBadRequest,
			"a share is a positive multiple of %d bytes up to %d, got %d", files.ShareAlign, files.MaxShareSize, size))
	}
	now := n.cfg.Now().UnixMilli()
	if req.Expiry <= now {
		return refuse(refusedBadRequest, wire.Errorf(wire.CodeBadRequest, "share expiry is not in the future"))
	}
	if req.Expiry-now > files.MaxShareTTL+MaxFutureSkew.Milliseconds() {
		return refuse(refusedBadRequest, wire.Errorf(wire.CodeBadRequest, "share expiry is more than %s ahead",
			time.Duration(files.MaxShareTTL)*time.Millisecond))
	}
	if files.AddressOf(req.Data) != a {
		return refuse(refusedAddress, wire.Errorf(wire.CodeBadRequest, "share data does not match its address"))
	}
	bits := files.ShareWork(len(req.Data), n.shares.Used(), n.shares.Quota())
	if !files.CheckWork(a, req.Expiry, req.Work, bits) {
		e := wire.Errorf(wire.CodeRateLimited, "share needs %d bits of proof-of-work", bits)
		e.WorkBits = bits
		return refuse(refusedWork, e)
	}
	switch err := n.shares.Put(ctx, a, req.Data, req.Expiry); {
	case err == nil:
	case errors.Is(err, sharestore.ErrFull):
		return refuse(refusedFull, wire.Errorf(wire.CodeStoreFull, "this node's share storage is full"))
	case errors.Is(err, sharestore.ErrExpired):
		return refuse(refusedBadRequest, wire.Errorf(wire.CodeBadRequest, "share expiry is not in the future"))
	case errors.Is(err, sharestore.ErrClosed), ctx.Err() != nil:
		return refuse(refusedError, wire.Errorf(wire.CodeUnavailable, "node shutting down"))
	default:
		n.log.Error("store share", "err", err)
		return refuse(refusedError, wire.Errorf(wire.CodeInternal, "storage error"))
	}
	sig, err := n.priv.Sign(files.ReceiptMessage(a, req.Expiry))
	if err != nil {
		return refuse(refusedError, wire.Errorf(wire.CodeInternal, "sign receipt"))
	}
	n.m.sharesStored.Inc()
	return &wire.SharePutResp{Expiry: req.Expiry, Sig: sig}, nil
}

// GetShare reads one share by its address: CodeGone if this node does not
// hold it or it has expired.
func (n *Node) GetShare(ctx context.Context, req *wire.ShareGetReq) (*wire.ShareGetResp, *wire.Error) {
	a, werr := shareAddr(req.Addr)
	if werr != nil {
		return nil, werr
	}
	data, err := n.shares.Get(ctx, a)
	switch {
	case errors.Is(err, sharestore.ErrNotFound):
		n.m.shareGets.WithLabelValues("missing").Inc()
		return nil, wire.Errorf(wire.CodeGone, "no such share here")
	case err != nil:
		return nil, wire.Errorf(wire.CodeInternal, "storage error")
	}
	n.m.shareGets.WithLabelValues("served").Inc()
	return &wire.ShareGetResp{Data: data}, nil
}
