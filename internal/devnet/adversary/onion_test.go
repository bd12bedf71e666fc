package adversary_test

import (
	"context"
	"crypto/ecdh"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/devnet/adversary"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

// relay makes a serve the onion protocol as a relay: peel its layer and,
// if pass(next) allows, forward the packet and wrap the answer; otherwise
// claim the next hop is unreachable. seen, if set, gets every packet it
// forwards and where to.
func relay(a *adversary.Node, pass func(next peer.ID) bool, seen func(next peer.ID, pkt []byte)) {
	var hook func(from, next peer.ID, pkt []byte)
	if seen != nil {
		hook = func(_, next peer.ID, pkt []byte) { seen(next, pkt) }
	}
	relayFrom(a, pass, hook)
}

// relayFrom is relay with the previous hop passed to seen.
func relayFrom(a *adversary.Node, pass func(next peer.ID) bool, seen func(from, next peer.ID, pkt []byte)) {
	a.Serve(wire.ProtoOnionSession, func(ctx context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
		var pkt wire.OnionPacket
		if kind != wire.KindOnion || wire.Unmarshal(body, &pkt) != nil {
			return wire.KindError, wire.Errorf(wire.CodeBadRequest, "bad packet")
		}
		layer, err := onion.Peel([]*ecdh.PrivateKey{a.Onion}, pkt.Data)
		if err != nil {
			return wire.KindError, wire.Errorf(wire.CodeBadRequest, "%v", err)
		}
		if len(layer.Next) == 0 {
			return wire.KindError, wire.Errorf(wire.CodeBadRequest, "not an exit")
		}
		next := peer.ID(layer.Next)
		if !pass(next) {
			reply, _ := onion.ErrorReply(layer.ReplyKey, "next hop unreachable: "+next.ShortString())
			return wire.KindOnion, &wire.OnionPacket{Data: reply}
		}
		if seen != nil {
			seen(from, next, layer.Packet)
		}
		var out wire.OnionPacket
		cctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		defer cancel()
		if err := a.Call(cctx, next, adversary.OnionProto, wire.KindOnion, &wire.OnionPacket{Data: layer.Packet}, wire.KindOnion, &out); err != nil {
			reply, _ := onion.ErrorReply(layer.ReplyKey, "next hop unreachable")
			return wire.KindOnion, &wire.OnionPacket{Data: reply}
		}
		reply, err := onion.WrapReply(layer.ReplyKey, out.Data)
		if err != nil {
			reply, _ = onion.ErrorReply(layer.ReplyKey, "bad reply")
		}
		return wire.KindOnion, &wire.OnionPacket{Data: reply}
	})
}

func learnAll(a *adversary.Node, c *swarmclient.Client) {
	for _, n := range c.Nodes() {
		a.Learn(n.AddrInfo())
	}
}

// TestMaliciousGuard is the first half of attack 11 of issue 9: a client's
// guard is malicious and claims that every middle but its colluder is
// unreachable, to have the client drop honest middles and build its paths
// through the colluder. The client must not steer: the colluder relays a
// small share of the requests, and the guard, whose circuits keep failing,
// is dropped (path-bias accounting).
func TestMaliciousGuard(t *testing.T) {
	an := startNet(t, 12)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	g := an.adversary(ctx, "127.0.200.1")
	col := an.adversary(ctx, "127.0.201.1")
	var viaColluder atomic.Int64
	relay(g, func(next peer.ID) bool { return next == col.ID() }, nil)
	// Counted: packets the colluder relays as the malicious guard's middle
	// (it may also be picked as a guard itself, by chance: that is not the
	// guard steering).
	relayFrom(col, func(peer.ID) bool { return true }, func(from, _ peer.ID, _ []byte) {
		if from == g.ID() {
			viaColluder.Add(1)
		}
	})
	c := an.client(ctx, false)
	waitListed(t, ctx, c, time.Minute, g.ID(), col.ID())
	learnAll(g, c)
	learnAll(col, c)
	c.Paths().SetGuards([]peer.ID{g.ID()})
	const requests = 80
	failed := 0
	honest := honestNodes(c, g.ID(), col.ID())
	for i := 0; i < requests; i++ {
		exit := honest[i%len(honest)]
		var resp wire.NodesResp
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if err := c.Call(cctx, exit, wire.KindNodesReq, &wire.NodesReq{}, wire.KindNodesResp, &resp); err != nil {
			failed++
		}
		cancel()
	}
	share := float64(viaColluder.Load()) / requests
	guards := c.Paths().Guards()
	t.Logf("%d requests, %d failed; the colluding middle relayed %d (%.0f%%); guards at the end: %v", requests, failed, viaColluder.Load(), 100*share, guards)
	if share > 0.25 {
		t.Errorf("the colluding middle relayed %.0f%% of the requests; a malicious guard steered the client's paths", 100*share)
	}
	if containsID(guards, g.ID()) {
		t.Errorf("the malicious guard, whose circuits keep failing, is still a guard")
	}
}

// TestReplayAfterRestart is the second half of attack 11: a guard keeps a
// packet it forwarded to a middle; the middle crashes (kill -9) and comes
// back; the guard sends it the same packet again. The middle must refuse
// the replay, as it would have before the crash.
func TestReplayAfterRestart(t *testing.T) {
	an := startNet(t, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	g := an.adversary(ctx, "127.0.200.1")
	var mu sync.Mutex
	var kept []byte
	var keptFor peer.ID
	relay(g, func(peer.ID) bool { return true }, func(next peer.ID, pkt []byte) {
		mu.Lock()
		defer mu.Unlock()
		if kept == nil {
			kept, keptFor = append([]byte(nil), pkt...), next
		}
	})
	c := an.client(ctx, false)
	waitListed(t, ctx, c, time.Minute, g.ID())
	learnAll(g, c)
	c.Paths().SetGuards([]peer.ID{g.ID()})
	honest := honestNodes(c, g.ID())
	for i := 0; i < 40; i++ {
		mu.Lock()
		done := kept != nil
		mu.Unlock()
		if done {
			break
		}
		var resp wire.NodesResp
		_ = c.Call(ctx, honest[i%len(honest)], wire.KindNodesReq, &wire.NodesReq{}, wire.KindNodesResp, &resp)
	}
	mu.Lock()
	pkt, middle := kept, keptFor
	mu.Unlock()
	if pkt == nil {
		t.Fatal("the guard never forwarded a packet")
	}
	mi := 0
	for _, p := range an.d.Procs {
		if p.ID == middle {
			mi = p.Index
		}
	}
	if mi == 0 {
		t.Fatalf("middle %s is not a devnet node", middle)
	}
	// Before the crash the middle refuses the replay...
	var out wire.OnionPacket
	err := g.Call(ctx, middle, adversary.OnionProto, wire.KindOnion, &wire.OnionPacket{Data: pkt}, wire.KindOnion, &out)
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("replay before the crash: %v; want a refusal", err)
	}
	if err := an.d.Kill(mi); err != nil {
		t.Fatal(err)
	}
	if err := an.d.Restart(mi); err != nil {
		t.Fatal(err)
	}
	// ...and after it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = g.Call(cctx, middle, adversary.OnionProto, wire.KindOnion, &wire.OnionPacket{Data: pkt}, wire.KindOnion, &out)
		cancel()
		if err == nil {
			t.Fatal("the restarted middle took a replayed packet and relayed it")
		}
		if errors.As(err, &we) {
			t.Logf("the restarted middle refused the replay: %v", err)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted middle never answered the replay: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestAdminNoPprof is part of item 12 of issue 9: a node started without
// --pprof does not serve the profiler on its admin endpoint.
func TestAdminNoPprof(t *testing.T) {
	an := startNet(t, 3)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/profile?seconds=1", "/debug/pprof/heap"} {
		resp, err := http.Get(an.d.Procs[0].AdminURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s; want 404 Not Found without --pprof", path, resp.Status)
		}
	}
}
