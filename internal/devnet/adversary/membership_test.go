package adversary_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/devnet/adversary"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// devnetMinAge is how long a devnet node must have been reachable before
// it takes placements (the devnet's --min-age).
const devnetMinAge = devnet.MinAge

// TestFillTable is attack 4 of issue 9. An attacker gossips 4,100 node
// records with valid signatures and admission proofs for nodes that do
// not exist (addresses spread over many /24s where nobody answers, and
// some at a listener that accepts connections and never speaks), over and
// over. A new honest node must still be admitted, and honest stores by a
// client that joins during the flood must succeed.
func TestFillTable(t *testing.T) {
	an := startNet(t, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	params := an.params(ctx)
	// The flood comes from a node of the network: it joined like any
	// other, so the honest nodes take what it gossips as introductions.
	a := an.adversary(ctx, "127.0.200.1")
	waitListed(t, ctx, an.client(ctx, true), time.Minute, a.ID())
	stall, err := net.Listen("tcp", "127.0.201.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			conn, err := stall.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, conn)
			heldMu.Unlock()
		}
	}()
	defer func() {
		stall.Close()
		heldMu.Lock()
		for _, c := range held {
			c.Close()
		}
		heldMu.Unlock()
	}()
	stallPort := stall.Addr().(*net.TCPAddr).Port
	var fakes [][]byte
	for i := 0; i < 4100; i++ {
		addr := fmt.Sprintf("/ip4/127.%d.%d.1/tcp/9", 100+i/250, 1+i%250)
		if i%41 == 0 {
			addr = fmt.Sprintf("/ip4/127.0.201.1/tcp/%d", stallPort)
		}
		raw, _, err := adversary.FakeRecord(params, addr, 9*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		fakes = append(fakes, raw)
	}
	flood := func() int {
		taken := 0
		for _, info := range an.infos {
			a.Learn(info)
			if k, err := a.Announce(ctx, info.ID, fakes); err == nil {
				taken += k
			}
		}
		return taken
	}
	t.Logf("flood: the honest nodes asked for %d fake records", flood())
	fctx, fstop := context.WithCancel(ctx)
	var fwg sync.WaitGroup
	fwg.Add(1)
	go func() {
		defer fwg.Done()
		for fctx.Err() == nil {
			flood()
			select {
			case <-fctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
	defer func() { fstop(); fwg.Wait() }()
	time.Sleep(2 * time.Second)

	p, err := an.d.AddNode()
	if err != nil {
		t.Fatal(err)
	}
	c := an.client(ctx, true)
	start := time.Now()
	waitListed(t, ctx, c, 45*time.Second, p.ID)
	t.Logf("the new honest node was admitted %s after it started, during the flood", time.Since(start).Round(100*time.Millisecond))
	if n := len(c.Nodes()); n > 7+10 {
		t.Errorf("a client that joined during the flood lists %d nodes (7 honest)", n)
	}
	var st storeStats
	lctx, lcancel := context.WithTimeout(ctx, 15*time.Second)
	honestLoad(lctx, c, 250*time.Millisecond, &st)
	lcancel()
	st.requireSuccess(t)
}

// placementKey is what an attacker grinds: a candidate node identity.
type candidate struct {
	priv  crypto.PrivKey
	id    peer.ID
	nonce uint64
}

// outranks reports whether cand would rank above every honest node for
// mb, by the placement rule a node computes from public data: the
// rendezvous weight of its position, the hash of its admission proof.
func outranks(mb mailbox.ID, params wire.Params, cand candidate, honest []*member.Node) bool {
	pos := member.Position(params.Network, []byte(cand.id), cand.nonce)
	s := swarm.Score(mb, pos[:])
	for _, h := range honest {
		if swarm.Score(mb, h.Pos[:]) >= s {
			return false
		}
	}
	return true
}

// grind makes candidate identities (a key and its admission proof each)
// until want of them outrank every honest node for mb, or budget runs out.
func grind(t *testing.T, params wire.Params, mb mailbox.ID, honest []*member.Node, want, budget int) []candidate {
	t.Helper()
	var out []candidate
	start := time.Now()
	for i := 0; i < budget && len(out) < want; i++ {
		priv, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		id, _ := peer.IDFromPrivateKey(priv)
		nonce, err := member.SolvePoW(params.Network, []byte(id), params.PoWBits, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := candidate{priv: priv, id: id, nonce: nonce}
		if outranks(mb, params, c, honest) {
			out = append(out, c)
		}
		if i+1 == budget || len(out) == want {
			t.Logf("grinding: %d candidates made in %s, %d outrank all %d honest nodes", i+1, time.Since(start).Round(time.Millisecond), len(out), len(honest))
		}
	}
	return out
}

// TestTakeSwarm is attack 5 of issue 9. An attacker grinds node keys
// against a chosen mailbox until five of them outrank every honest node,
// and runs those five nodes from one /24. While they are younger than the
// network's minimum age they must take no seat in the mailbox's swarm;
// once old enough, at most ⌊R/2⌋ of them (the subnet cap).
func TestTakeSwarm(t *testing.T) {
	an := startNet(t, 12)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	time.Sleep(devnetMinAge) // the honest nodes are now old enough to take placements
	params := an.params(ctx)
	c := an.client(ctx, true)
	R := c.Params().Replication
	target, _ := mailbox.NewKey()
	mb := target.ID()
	cands := grind(t, params, mb, c.Nodes(), R, 50000)
	if len(cands) < R {
		t.Fatalf("grinding found %d candidates", len(cands))
	}
	var hits sync.Map // peer.ID -> *atomic.Int64: writes for mb (replicas, or stores as coordinator)
	var ids []peer.ID
	for i, cd := range cands {
		a, err := adversary.NewNodeWithProof(fmt.Sprintf("127.0.200.%d", i+1), params, cd.priv, cd.nonce)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		var n atomic.Int64
		hits.Store(a.ID(), &n)
		// Take replica writes, sign valid receipts, keep nothing.
		a.Serve(wire.ProtoReplicateSession, func(_ context.Context, _ peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
			var req wire.ReplicateReq
			if kind != wire.KindReplicateReq || wire.Unmarshal(body, &req) != nil {
				return wire.KindFetchResp, &wire.FetchResp{}
			}
			resp := &wire.ReplicateResp{Results: make([]wire.ReplicaResult, len(req.Messages))}
			for j, m := range req.Messages {
				if len(m.Hash) != 32 || len(m.Mailbox) != 32 {
					continue
				}
				if mailbox.ID(m.Mailbox) == mb {
					n.Add(1)
				}
				sig, _ := cd.priv.Sign(swarm.ReceiptBytes([32]byte(m.Hash), [32]byte(m.Mailbox), m.Expiry))
				resp.Results[j].Receipt = sig
			}
			return wire.KindReplicateResp, resp
		})
		// As a coordinator, acknowledge with the colluders' receipts
		// and keep nothing.
		a.Serve(wire.ProtoStoreSession, func(_ context.Context, _ peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
			var req wire.StoreReq
			if kind != wire.KindStoreReq || wire.Unmarshal(body, &req) != nil || len(req.Mailbox) != 32 {
				return wire.KindError, wire.Errorf(wire.CodeBadRequest, "no")
			}
			if mailbox.ID(req.Mailbox) == mb {
				n.Add(1)
			}
			exp := req.Timestamp + req.TTL
			h := swarm.MessageHash([32]byte(req.Mailbox), req.Namespace, req.Timestamp, exp, req.Data)
			resp := &wire.StoreResp{Hash: h[:], Expiry: exp}
			for _, o := range cands {
				sig, _ := o.priv.Sign(swarm.ReceiptBytes(h, [32]byte(req.Mailbox), exp))
				resp.Receipts = append(resp.Receipts, wire.Receipt{Node: []byte(o.id), Sig: sig})
			}
			return wire.KindStoreResp, resp
		})
		if err := a.Join(an.infos); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID())
	}
	waitListed(t, ctx, c, time.Minute, ids...)
	seats := func() (inSwarm, written int) {
		for _, n := range c.Swarm(mb) {
			if containsID(ids, n.ID) {
				inSwarm++
			}
		}
		hits.Range(func(_, v any) bool {
			if v.(*atomic.Int64).Load() > 0 {
				written++
			}
			return true
		})
		return inSwarm, written
	}
	storeSome := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := c.Put(ctx, mb, 0, time.Hour, []byte(fmt.Sprintf("to the target %d", i))); err != nil {
				t.Logf("store: %v", err)
			}
		}
		time.Sleep(time.Second) // the background fan-out
	}
	storeSome(10)
	young, youngWritten := seats()
	t.Logf("young attacker nodes: %d of %d seats in the client's view, %d of them received writes", young, R, youngWritten)
	if young > 0 || youngWritten > 0 {
		t.Errorf("attacker nodes younger than the minimum age hold %d seats (%d received writes); want 0", young, youngWritten)
	}
	time.Sleep(devnetMinAge + 5*time.Second)
	_ = c.Refresh(ctx)
	storeSome(10)
	old, oldWritten := seats()
	t.Logf("aged attacker nodes from one /24: %d of %d seats in the client's view, %d received writes", old, R, oldWritten)
	if old > R/2 || oldWritten > R/2 {
		t.Errorf("aged attacker nodes from one /24 hold %d seats (%d received writes); want at most %d", old, oldWritten, R/2)
	}
}
