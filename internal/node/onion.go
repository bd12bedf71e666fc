package node

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/replay"
	"github.com/umbra-im/umbra/internal/wire"
)

// maxOnionRetrieveBytes keeps a retrieve answer inside the largest onion
// packet, with room for its encoding and the reply layers.
const maxOnionRetrieveBytes = 1 << 20

// OnionEvent is what one hop saw of one onion request; tests record these
// to check what each observer learns.
type OnionEvent struct {
	Received time.Time // when the request packet arrived
	Node     peer.ID
	From     peer.ID       // the previous hop (a client's throwaway ID at the guard)
	Next     peer.ID       // "" at the exit
	In       []byte        // request packet received
	Out      []byte        // request packet forwarded (nil at the exit)
	Request  []byte        // the request, at the exit only
	Delay    time.Duration // mix delay held for (capped), from this hop's layer
	ReplyIn  []byte        // reply packet from the next hop (nil at the exit)
	ReplyOut []byte        // reply packet sent back
}

// onionKeys is the node's current onion key and the one before it (clients
// that fetched the record before a rotation still get through), with the
// replay tags each has accepted, kept in files so that they survive a
// restart (internal/replay).
type onionKeys struct {
	mu        sync.RWMutex
	cur, prev *ecdh.PrivateKey
	since     time.Time

	tags      *replay.Dir   // DataDir/onion-replay: one tag log per key
	rotateNow chan struct{} // the current key's log is full
}

func (k *onionKeys) list() []*ecdh.PrivateKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.prev == nil {
		return []*ecdh.PrivateKey{k.cur}
	}
	return []*ecdh.PrivateKey{k.cur, k.prev}
}

func (k *onionKeys) current() *ecdh.PrivateKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.cur
}

func pubOf(key *ecdh.PrivateKey) [32]byte { return [32]byte(key.PublicKey().Bytes()) }

// Why a layer's replay tag was refused.
var (
	errOnionReplay    = errors.New("replayed onion packet")
	errOnionExhausted = errors.New("onion key exhausted (its replay log is full); fetch the node list again")
	errOnionRetired   = errors.New("onion key retired; fetch the node list again")
)

// record adds the replay tag of a layer that key opened. It returns nil
// only for a tag never seen under that key, once the tag is in the key's
// log file. A full log refuses (and, for the current key, asks for a
// rotation) rather than forget a tag.
func (k *onionKeys) record(key *ecdh.PrivateKey, tag [32]byte) error {
	fresh, err := k.tags.Add(pubOf(key), tag)
	switch {
	case err == nil && fresh:
		return nil
	case err == nil:
		return errOnionReplay
	case errors.Is(err, replay.ErrFull):
		if key == k.current() {
			select {
			case k.rotateNow <- struct{}{}:
			default:
			}
		}
		return errOnionExhausted
	case errors.Is(err, replay.ErrUnknownKey):
		return errOnionRetired
	}
	return err
}

func (k *onionKeys) close() error {
	if k == nil || k.tags == nil {
		return nil
	}
	return k.tags.Close()
}

// loadOnionKeys reads the onion keys from the store and loads their replay
// logs. A key without a trustworthy log (deleted, corrupt, or from before
// logs existed) is retired, since packets it accepted could be replayed;
// a missing current key is replaced by a new one.
func (n *Node) loadOnionKeys() (*onionKeys, error) {
	tags, err := replay.OpenDir(filepath.Join(n.cfg.DataDir, "onion-replay"), n.cfg.Onion.ReplayTagsPerKey)
	if err != nil {
		return nil, fmt.Errorf("node: onion replay logs: %w", err)
	}
	k := &onionKeys{tags: tags, rotateNow: make(chan struct{}, 1)}
	ok := false
	defer func() {
		if !ok {
			tags.Close()
		}
	}()
	get := func(name string) (*ecdh.PrivateKey, error) {
		b, ok, err := n.store.GetKV(name)
		if err != nil || !ok {
			return nil, err
		}
		return ecdh.X25519().NewPrivateKey(b)
	}
	if k.cur, err = get("onion_key"); err != nil {
		return nil, fmt.Errorf("node: read onion key: %w", err)
	}
	if k.prev, err = get("onion_key_prev"); err != nil {
		return nil, fmt.Errorf("node: read onion key: %w", err)
	}
	if b, ok, _ := n.store.GetKV("onion_key_since"); ok && len(b) == 8 {
		k.since = time.UnixMilli(int64(binary.BigEndian.Uint64(b)))
	}
	// The previous key is accepted until the current one has been current
	// for a lifetime (the next rotation); a node down past that drops it.
	if k.prev != nil && (k.cur == nil || k.prev.Equal(k.cur) || !n.cfg.Now().Before(k.since.Add(n.cfg.OnionKeyLifetime))) {
		k.prev = nil
	}
	for _, key := range []**ecdh.PrivateKey{&k.cur, &k.prev} {
		if *key == nil {
			continue
		}
		if err := tags.Load(pubOf(*key)); err != nil {
			n.log.Warn("onion key has no trustworthy replay log: retiring it", "err", err)
			*key = nil
		}
	}
	if k.cur == nil {
		k.prev = nil // it would outlive its lifetime behind a new key
		if err := n.rotateOnionKey(k); err != nil {
			return nil, err
		}
	} else if k.prev == nil {
		if err := n.store.DeleteKV("onion_key_prev"); err != nil {
			return nil, fmt.Errorf("node: save onion key: %w", err)
		}
	}
	if err := k.retainLogs(); err != nil {
		n.log.Warn("delete retired replay logs", "err", err)
	}
	ok = true
	return k, nil
}

// retainLogs deletes the replay logs of every key but the current and
// previous ones.
func (k *onionKeys) retainLogs() error {
	keep := [][32]byte{}
	for _, key := range k.list() {
		keep = append(keep, pubOf(key))
	}
	return k.tags.Retain(keep...)
}

// rotateOnionKey makes a new current key; the current one becomes
// previous and the previous one retires (with its replay log). The new
// key's log is created, durably, before the key is saved or used.
func (n *Node) rotateOnionKey(k *onionKeys) error {
	nk, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("node: generate onion key: %w", err)
	}
	if err := k.tags.Create(pubOf(nk)); err != nil {
		return fmt.Errorf("node: onion replay log: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur != nil {
		err = n.store.SetKV("onion_key_prev", k.cur.Bytes())
	} else {
		err = n.store.DeleteKV("onion_key_prev")
	}
	if err != nil {
		return fmt.Errorf("node: save onion key: %w", err)
	}
	if err := n.store.SetKV("onion_key", nk.Bytes()); err != nil {
		return fmt.Errorf("node: save onion key: %w", err)
	}
	now := n.cfg.Now()
	if err := n.store.SetKV("onion_key_since", binary.BigEndian.AppendUint64(nil, uint64(now.UnixMilli()))); err != nil {
		return fmt.Errorf("node: save onion key: %w", err)
	}
	k.prev, k.cur, k.since = k.cur, nk, now
	keep := [][32]byte{pubOf(k.cur)}
	if k.prev != nil {
		keep = append(keep, pubOf(k.prev))
	}
	if err := k.tags.Retain(keep...); err != nil {
		n.log.Warn("delete retired replay logs", "err", err)
	}
	return nil
}

// onionRotateLoop rotates the onion key every OnionKeyLifetime, or at once
// when the current key's replay log is full, and republishes the record.
// The previous key keeps working until the next rotation, and its replay
// log is kept that long.
func (n *Node) onionRotateLoop(ctx context.Context) {
	for {
		n.okeys.mu.RLock()
		due := n.okeys.since.Add(n.cfg.OnionKeyLifetime)
		n.okeys.mu.RUnlock()
		timer := time.NewTimer(time.Until(due))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-n.okeys.rotateNow:
			timer.Stop()
			if !n.okeys.tags.Full(pubOf(n.okeys.current())) {
				continue // a request from before the last rotation
			}
			n.log.Info("onion key's replay log is full: rotating early")
		}
		if err := n.rotateOnionKey(n.okeys); err != nil {
			n.log.Error("rotate onion key", "err", err)
			continue
		}
		if err := n.publishSelf(); err != nil {
			n.log.Error("publish record", "err", err)
		}
		n.log.Info("onion key rotated")
	}
}

// onionReplayLoop fsyncs the replay logs every ReplaySyncInterval. Each tag
// is written (to the page cache) before the packet is answered, which
// survives a killed process; the fsync bounds what a power loss forgets.
func (n *Node) onionReplayLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.Onion.ReplaySyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.okeys.tags.Sync(); err != nil {
				n.log.Error("sync onion replay logs", "err", err)
			}
		}
	}
}

// serveOnion relays one onion request: charge it to the onion budget,
// peel this node's layer in the buffer it arrived in, refuse replays,
// forward to the next hop (or, at the exit, perform the request), and send
// back the reply re-encrypted under this hop's key.
func (n *Node) serveOnion(ctx context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
	if kind != wire.KindOnion {
		return fail(wire.Errorf(wire.CodeBadRequest, "unsupported request %s", kind))
	}
	cost := onionCharge(len(body))
	if !n.obudget.acquireRequest(from, cost) {
		return fail(wire.Errorf(wire.CodeRateLimited, "onion relay busy: over its memory budget"))
	}
	defer n.obudget.releaseRequest(from, cost)
	data, err := onion.PacketData(body)
	if err != nil {
		return fail(wire.Errorf(wire.CodeBadRequest, "%v", err))
	}
	ev := OnionEvent{Node: n.host.ID(), From: from, Received: time.Now()}
	if n.cfg.OnionObserver != nil {
		ev.In = bytes.Clone(data) // peeled in place below
	}
	keys := n.okeys.list()
	layer, err := onion.PeelInPlace(keys, data)
	if err != nil {
		n.m.onionBad.Inc()
		return fail(wire.Errorf(wire.CodeBadRequest, "%v", err))
	}
	if err := n.okeys.record(keys[layer.KeyIndex], layer.Tag); err != nil {
		switch {
		case errors.Is(err, errOnionReplay):
			n.m.onionReplays.Inc()
			return fail(wire.Errorf(wire.CodeUnauthorized, "%v", err))
		case errors.Is(err, errOnionExhausted), errors.Is(err, errOnionRetired):
			return fail(wire.Errorf(wire.CodeUnavailable, "%v", err))
		}
		n.log.Error("record onion replay tag", "err", err)
		return fail(wire.Errorf(wire.CodeInternal, "onion replay log unavailable"))
	}
	// Mix delay (strict mode): hold the request as its layer asks, before
	// forwarding or running it. Its budget charge stays held meanwhile;
	// the answer, when it comes, goes back at once.
	if layer.Delay > 0 {
		ev.Delay = n.obudget.mix.capDelay(layer.Delay)
		if err := n.obudget.mix.hold(ctx, from, cost, layer.Delay); err != nil {
			if errors.Is(err, errMixFull) {
				return fail(wire.Errorf(wire.CodeRateLimited, "%v", err))
			}
			return fail(wire.Errorf(wire.CodeUnavailable, "%v", err))
		}
	}
	var reply []byte
	if len(layer.Next) == 0 {
		n.m.onionExit.Inc()
		ev.Request = layer.Request
		reply, err = n.exitReply(ctx, layer)
	} else {
		n.m.onionRelay.Inc()
		ev.Out = layer.Packet
		reply, ev.ReplyIn, ev.Next, err = n.forwardOnion(ctx, layer)
	}
	if err != nil {
		return fail(wire.Errorf(wire.CodeInternal, "onion reply: %v", err))
	}
	if n.cfg.OnionObserver != nil {
		ev.ReplyOut = reply
		n.cfg.OnionObserver(ev)
	}
	return wire.KindOnion, &wire.OnionPacket{Data: reply}
}

// exitReply performs the request of an exit layer and seals the answer,
// charging the reply to the node budget first.
func (n *Node) exitReply(ctx context.Context, layer *onion.Layer) ([]byte, error) {
	resp := n.exitRequest(ctx, layer.Request)
	// The reply has the size the client asked for (or the smallest
	// class that holds it), whatever the answer holds.
	size, err := layer.ReplySizeFor(len(resp))
	if err != nil {
		return nil, err
	}
	if !n.obudget.acquireReply(onionCharge(size)) {
		return layer.ErrorReply("exit busy: over its memory budget")
	}
	defer n.obudget.releaseReply(onionCharge(size))
	return layer.FinalReply(resp)
}

// forwardOnion sends the peeled packet to the next hop, which must be a
// live node of the network, and wraps its reply in place. The packet
// travels on this node's session to the next hop, shared with every other
// circuit through that link; a long-poll in flight holds one of its slots,
// not the stream.
func (n *Node) forwardOnion(ctx context.Context, layer *onion.Layer) (reply, replyIn []byte, next peer.ID, err error) {
	next, err = peer.IDFromBytes(layer.Next)
	if err != nil || !n.table.Known(next) || next == n.host.ID() {
		reply, err = onion.ErrorReply(layer.ReplyKey, "next hop is not a node of this network")
		return reply, nil, next, err
	}
	ctx, cancel := context.WithTimeout(ctx, MaxLongPoll+15*time.Second)
	defer cancel()
	var resp wire.OnionPacket
	if err := n.call(ctx, next, sessOnion, wire.KindOnion, &wire.OnionPacket{Data: layer.Packet}, wire.KindOnion, &resp); err != nil {
		msg := "next hop unreachable: " + p2p.ShortID(next)
		var we *wire.Error
		if errors.As(err, &we) {
			msg = fmt.Sprintf("next hop %s refused: %d", p2p.ShortID(next), we.Code)
		}
		reply, err = onion.ErrorReply(layer.ReplyKey, msg)
		return reply, nil, next, err
	}
	// resp.Data is this node's own copy (decoded from the frame): the
	// reply is wrapped in it.
	cost := onionCharge(len(resp.Data))
	if !n.obudget.acquireReply(cost) {
		reply, err = onion.ErrorReply(layer.ReplyKey, "relay busy: over its memory budget")
		return reply, nil, next, err
	}
	defer n.obudget.releaseReply(cost)
	if n.cfg.OnionObserver != nil {
		replyIn = bytes.Clone(resp.Data)
	}
	if err := onion.WrapReplyInPlace(layer.ReplyKey, resp.Data); err != nil {
		reply, err = onion.ErrorReply(layer.ReplyKey, "next hop sent a malformed reply")
		return reply, replyIn, next, err
	}
	return resp.Data, replyIn, next, nil
}

// exitRequest performs a client request at the exit and encodes the answer.
func (n *Node) exitRequest(ctx context.Context, req []byte) []byte {
	var kind wire.Kind
	var resp any
	if len(req) == 0 {
		kind, resp = wire.KindError, wire.Errorf(wire.CodeBadRequest, "empty request")
	} else {
		kind, resp = n.handleClient(ctx, wire.Kind(req[0]), req[1:], maxOnionRetrieveBytes)
	}
	b, err := wire.EncodeMsg(kind, resp)
	if err != nil {
		b, _ = wire.EncodeMsg(wire.KindError, wire.Errorf(wire.CodeInternal, "encode answer"))
	}
	return b
}
