package node

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/wire"
)

// maxOnionRetrieveBytes keeps a retrieve answer inside the largest onion
// packet, with room for its encoding and the reply layers.
const maxOnionRetrieveBytes = 1 << 20

// OnionEvent is what one hop saw of one onion request; tests record these
// to check what each observer learns.
type OnionEvent struct {
	Node     peer.ID
	From     peer.ID // the previous hop (a client's throwaway ID at the guard)
	Next     peer.ID // "" at the exit
	In       []byte  // request packet received
	Out      []byte  // request packet forwarded (nil at the exit)
	Request  []byte  // the request, at the exit only
	ReplyIn  []byte  // reply packet from the next hop (nil at the exit)
	ReplyOut []byte  // reply packet sent back
}

// onionKeys is the node's current onion key and the one before it: clients
// that fetched the record before a rotation still get through.
type onionKeys struct {
	mu        sync.RWMutex
	cur, prev *ecdh.PrivateKey
	since     time.Time
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

// loadOnionKeys reads the onion keys from the store, creating the first.
func (n *Node) loadOnionKeys() (*onionKeys, error) {
	k := &onionKeys{}
	get := func(name string) (*ecdh.PrivateKey, error) {
		b, ok, err := n.store.GetKV(name)
		if err != nil || !ok {
			return nil, err
		}
		return ecdh.X25519().NewPrivateKey(b)
	}
	var err error
	if k.cur, err = get("onion_key"); err != nil {
		return nil, fmt.Errorf("node: read onion key: %w", err)
	}
	if k.prev, err = get("onion_key_prev"); err != nil {
		return nil, fmt.Errorf("node: read onion key: %w", err)
	}
	if b, ok, _ := n.store.GetKV("onion_key_since"); ok && len(b) == 8 {
		k.since = time.UnixMilli(int64(binary.BigEndian.Uint64(b)))
	}
	if k.cur == nil {
		if err := n.rotateOnionKey(k); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// rotateOnionKey makes a new current key; the current one becomes previous.
func (n *Node) rotateOnionKey(k *onionKeys) error {
	nk, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("node: generate onion key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur != nil {
		if err := n.store.SetKV("onion_key_prev", k.cur.Bytes()); err != nil {
			return fmt.Errorf("node: save onion key: %w", err)
		}
	}
	if err := n.store.SetKV("onion_key", nk.Bytes()); err != nil {
		return fmt.Errorf("node: save onion key: %w", err)
	}
	now := n.cfg.Now()
	if err := n.store.SetKV("onion_key_since", binary.BigEndian.AppendUint64(nil, uint64(now.UnixMilli()))); err != nil {
		return fmt.Errorf("node: save onion key: %w", err)
	}
	k.prev, k.cur, k.since = k.cur, nk, now
	return nil
}

// onionRotateLoop rotates the onion key every OnionKeyLifetime and
// republishes the record. The previous key keeps working for one more
// lifetime, and the replay cache remembers tags that long.
func (n *Node) onionRotateLoop(ctx context.Context) {
	for {
		n.okeys.mu.RLock()
		due := n.okeys.since.Add(n.cfg.OnionKeyLifetime)
		n.okeys.mu.RUnlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(due)):
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

// serveOnion relays one onion request: peel this node's layer, drop
// replays, forward to the next hop (or, at the exit, perform the request),
// and send back the reply re-encrypted under this hop's key.
func (n *Node) serveOnion(ctx context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
	if kind != wire.KindOnion {
		return fail(wire.Errorf(wire.CodeBadRequest, "unsupported request %s", kind))
	}
	var pkt wire.OnionPacket
	if err := wire.Unmarshal(body, &pkt); err != nil {
		return fail(wire.Errorf(wire.CodeBadRequest, "%v", err))
	}
	layer, err := onion.Peel(n.okeys.list(), pkt.Data)
	if err != nil {
		n.m.onionBad.Inc()
		return fail(wire.Errorf(wire.CodeBadRequest, "%v", err))
	}
	now := n.cfg.Now()
	if !n.onionSeen.Add(layer.Tag, now.Add(2*n.cfg.OnionKeyLifetime), now) {
		n.m.onionReplays.Inc()
		return fail(wire.Errorf(wire.CodeUnauthorized, "replayed onion packet"))
	}
	ev := OnionEvent{Node: n.host.ID(), From: from, In: pkt.Data}
	var reply []byte
	if len(layer.Next) == 0 {
		n.m.onionExit.Inc()
		ev.Request = layer.Request
		reply, err = onion.FinalReply(layer.ReplyKey, n.exitRequest(ctx, layer.Request))
	} else {
		n.m.onionRelay.Inc()
		ev.Out = layer.Packet
		reply, ev.ReplyIn, ev.Next, err = n.forwardOnion(ctx, layer)
	}
	if err != nil {
		return fail(wire.Errorf(wire.CodeInternal, "onion reply: %v", err))
	}
	ev.ReplyOut = reply
	if n.cfg.OnionObserver != nil {
		n.cfg.OnionObserver(ev)
	}
	return wire.KindOnion, &wire.OnionPacket{Data: reply}
}

// forwardOnion sends the peeled packet to the next hop, which must be a
// live node of the network, and wraps its reply. The packet travels on this
// node's session to the next hop, shared with every other circuit through
// that link; a long-poll in flight holds one of its slots, not the stream.
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
		reply, err = onion.ErrorReply(layer.ReplyKey, "next hop unreachable: "+p2p.ShortID(next))
		return reply, nil, next, err
	}
	reply, err = onion.WrapReply(layer.ReplyKey, resp.Data)
	if err != nil {
		reply, err = onion.ErrorReply(layer.ReplyKey, "next hop sent a malformed reply")
	}
	return reply, resp.Data, next, err
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
