package adversary_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/devnet/adversary"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

// storeN stores n distinct messages in key's mailbox and returns their hashes.
func storeN(t *testing.T, ctx context.Context, c *swarmclient.Client, key *mailbox.Key, n int, prefix string) map[[32]byte]bool {
	t.Helper()
	out := map[[32]byte]bool{}
	for i := 0; i < n; i++ {
		res, err := c.Put(ctx, key.ID(), 0, time.Hour, []byte(fmt.Sprintf("%s %d", prefix, i)))
		if err != nil {
			t.Fatalf("honest store %d: %v", i, err)
		}
		out[res.Hash] = true
	}
	return out
}

// heldBy reads node n's own copy of key's mailbox (all pages).
func heldBy(ctx context.Context, c *swarmclient.Client, n *member.Node, key *mailbox.Key) (map[[32]byte]bool, error) {
	got := map[[32]byte]bool{}
	var after []byte
	for page := 0; page < 100; page++ {
		resp, err := c.Retrieve(ctx, n, key, after, 0)
		if err != nil {
			return nil, err
		}
		for _, m := range resp.Messages {
			got[[32]byte(m.Hash)] = true
		}
		if !resp.More || len(resp.Messages) == 0 {
			break
		}
		after = resp.Messages[len(resp.Messages)-1].Hash
	}
	return got, nil
}

func honestNodes(c *swarmclient.Client, bad ...peer.ID) []*member.Node {
	var out []*member.Node
	for _, n := range c.Nodes() {
		if !containsID(bad, n.ID) {
			out = append(out, n)
		}
	}
	return out
}

func containsID(ids []peer.ID, id peer.ID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func junkMessage(mb mailbox.ID) wire.Message {
	data := make([]byte, 200)
	rand.Read(data)
	ts := time.Now().UnixMilli()
	exp := ts + time.Hour.Milliseconds()
	h := swarm.MessageHash(mb, 0, ts, exp, data)
	return wire.Message{Hash: h[:], Mailbox: mb[:], Timestamp: ts, Expiry: exp, Data: data}
}

// TestEraseMailbox is attack 1 of issue 9. A node outside a mailbox's
// swarm asks the replicas for the mailbox's hash list over sync and sends
// them tombstones for every hash (which carry no proof from the mailbox
// owner), then injects 2,000 junk messages; a node inside another
// mailbox's swarm sends tombstones for that one. Every honest replica must
// keep all 20 messages of each mailbox and hold no junk.
func TestEraseMailbox(t *testing.T) {
	an := startNet(t, 12)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	a := an.adversary(ctx, "127.0.200.1")
	c := an.client(ctx, true)
	waitListed(t, ctx, c, time.Minute, a.ID())
	R := c.Params().Replication
	outside := findMailbox(t, ctx, c, 90*time.Second, func(r []*member.Node) bool { return rankOf(r, a.ID()) == len(r)-1 })
	inside := findMailbox(t, ctx, c, 90*time.Second, func(r []*member.Node) bool { i := rankOf(r, a.ID()); return i >= 0 && i < R })
	stored := map[mailbox.ID]map[[32]byte]bool{
		outside.ID(): storeN(t, ctx, c, outside, 20, "outside"),
		inside.ID():  storeN(t, ctx, c, inside, 20, "inside"),
	}
	time.Sleep(2 * time.Second) // let the fan-out reach all replicas
	honest := honestNodes(c, a.ID())

	var refused atomic.Int64
	for mb, known := range stored {
		// What a replica tells the attacker over sync, plus every hash
		// (the worst case: it knows them all).
		learned := 0
		for _, n := range honest {
			var resp wire.SyncResp
			err := a.Call(ctx, n.ID, adversary.SyncProto, wire.KindSyncReq,
				&wire.SyncReq{Digests: []wire.MailboxDigest{{Mailbox: mb[:], Count: 0, XOR: make([]byte, 32)}}}, wire.KindSyncResp, &resp)
			if err != nil {
				refused.Add(1)
				continue
			}
			for _, d := range resp.Diffs {
				learned += len(d.Entries)
			}
		}
		t.Logf("mailbox %s…: the attacker learned %d hash entries over sync", mb.String()[:8], learned)
		tomb := wire.Tomb{Mailbox: bytes.Clone(mb[:])}
		for h := range known {
			tomb.Hashes = append(tomb.Hashes, bytes.Clone(h[:]))
		}
		for _, n := range honest {
			var rr wire.ReplicateResp
			if err := a.Call(ctx, n.ID, adversary.ReplicateProto, wire.KindReplicateReq, &wire.ReplicateReq{Deletes: []wire.Tomb{tomb}}, wire.KindReplicateResp, &rr); err != nil {
				refused.Add(1)
			}
		}
	}
	// Junk into the mailbox whose swarm the attacker is not in.
	for b := 0; b < 8; b++ {
		req := &wire.ReplicateReq{}
		for i := 0; i < 250; i++ {
			req.Messages = append(req.Messages, junkMessage(outside.ID()))
		}
		for _, n := range honest {
			var rr wire.ReplicateResp
			if err := a.Call(ctx, n.ID, adversary.ReplicateProto, wire.KindReplicateReq, req, wire.KindReplicateResp, &rr); err != nil {
				refused.Add(1)
			}
		}
	}
	t.Logf("requests refused by honest nodes: %d", refused.Load())
	time.Sleep(6 * time.Second) // several anti-entropy rounds (2 s on a devnet)

	for _, key := range []*mailbox.Key{outside, inside} {
		mb := key.ID()
		junk := 0
		for _, n := range c.Swarm(mb) {
			if n.ID == a.ID() {
				continue
			}
			got, err := heldBy(ctx, c, n, key)
			if err != nil {
				t.Fatalf("read node %s: %v", n.ID, err)
			}
			kept := 0
			for h := range stored[mb] {
				if got[h] {
					kept++
				}
			}
			if kept != len(stored[mb]) {
				t.Errorf("replica %s of mailbox %s… holds %d of %d messages after the attack", n.ID.ShortString(), mb.String()[:8], kept, len(stored[mb]))
			}
			junk += len(got) - kept
		}
		if junk > 0 {
			t.Errorf("mailbox %s…: the swarm's replicas hold %d junk messages", mb.String()[:8], junk)
		}
	}
}

// TestFakeAcknowledgement is attack 2 of issue 9. A malicious swarm member
// answers every store with the answer of another message it stored
// itself (a true hash with valid receipts, of the wrong message). The
// client must not count that as its message's acknowledgement: every store
// the client reports as acknowledged must be on the honest replicas.
func TestFakeAcknowledgement(t *testing.T) {
	an := startNet(t, 12)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	a := an.adversary(ctx, "127.0.200.1")
	c := an.client(ctx, true)
	waitListed(t, ctx, c, time.Minute, a.ID())
	R := c.Params().Replication
	W := swarm.Quorum(R)
	key := findMailbox(t, ctx, c, 90*time.Second, func(r []*member.Node) bool { i := rankOf(r, a.ID()); return i >= 0 && i < R })
	mb := key.ID()

	// The attacker stores a decoy through an honest member and keeps the
	// genuine answer.
	var decoy wire.StoreResp
	for _, n := range c.Swarm(mb) {
		if n.ID == a.ID() {
			continue
		}
		a.Learn(n.AddrInfo())
		req := &wire.StoreReq{Mailbox: mb[:], Timestamp: time.Now().UnixMilli(), TTL: time.Hour.Milliseconds(), Data: []byte("decoy")}
		if err := a.Call(ctx, n.ID, adversary.StoreProto, wire.KindStoreReq, req, wire.KindStoreResp, &decoy); err == nil {
			break
		}
	}
	if len(decoy.Receipts) < W {
		t.Fatalf("the attacker could not get a genuine acknowledgement to replay: %+v", decoy)
	}
	var lied atomic.Int64
	a.Serve(wire.ProtoStoreSession, func(_ context.Context, _ peer.ID, kind wire.Kind, _ []byte) (wire.Kind, any) {
		if kind != wire.KindStoreReq {
			return wire.KindError, wire.Errorf(wire.CodeBadRequest, "no")
		}
		lied.Add(1)
		return wire.KindStoreResp, &decoy
	})

	// Each message's hash is computed here, from what was sent: an
	// acknowledgement counts for that message only.
	acked := map[[32]byte]bool{}
	for i := 0; i < 40; i++ {
		// Times at nodes are whole minutes: the client sends them so.
		ts := wire.CoarseTime(time.Now().UnixMilli())
		ttl := time.Hour.Milliseconds()
		data := []byte(fmt.Sprintf("message %d", i))
		_, err := c.PutReq(ctx, &wire.StoreReq{Mailbox: mb[:], Timestamp: ts, TTL: ttl, Data: data})
		if err != nil {
			t.Logf("store %d failed: %v", i, err)
			continue
		}
		acked[swarm.MessageHash(mb, 0, ts, ts+ttl, data)] = true
	}
	if lied.Load() == 0 {
		t.Fatal("the client never asked the malicious member: the attack did not run")
	}
	t.Logf("%d stores acknowledged; the malicious member answered %d store requests with a replayed acknowledgement", len(acked), lied.Load())
	if len(acked) < 40 {
		t.Errorf("only %d of 40 honest stores were acknowledged; want all (fail over to honest members)", len(acked))
	}
	time.Sleep(2 * time.Second)
	holders := map[[32]byte]int{}
	for _, n := range honestNodes(c, a.ID()) {
		got, err := heldBy(ctx, c, n, key)
		if err != nil {
			continue
		}
		for h := range got {
			holders[h]++
		}
	}
	lost := 0
	for h := range acked {
		if holders[h] < W-1 {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged messages are held by fewer than %d honest nodes: acknowledged but not stored", lost, W-1)
	}
}

// TestBlockMailbox is attack 3 of issue 9. A swarm member answers every
// replica write at once with a receipt that does not verify. The
// coordinator must not count it: at least 99% of honest stores to the
// mailbox still succeed.
func TestBlockMailbox(t *testing.T) {
	an := startNet(t, 12)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	a := an.adversary(ctx, "127.0.200.1")
	var answered atomic.Int64
	a.Serve(wire.ProtoReplicateSession, func(_ context.Context, _ peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
		var req wire.ReplicateReq
		if kind != wire.KindReplicateReq || wire.Unmarshal(body, &req) != nil {
			return wire.KindFetchResp, &wire.FetchResp{}
		}
		answered.Add(1)
		resp := &wire.ReplicateResp{Results: make([]wire.ReplicaResult, len(req.Messages))}
		for i := range resp.Results {
			sig := make([]byte, 64)
			rand.Read(sig)
			resp.Results[i].Receipt = sig
		}
		return wire.KindReplicateResp, resp
	})
	c := an.client(ctx, true)
	waitListed(t, ctx, c, time.Minute, a.ID())
	R := c.Params().Replication
	key := findMailbox(t, ctx, c, 90*time.Second, func(r []*member.Node) bool { i := rankOf(r, a.ID()); return i >= 0 && i < R })
	var st storeStats
	for i := 0; i < 100; i++ {
		start := time.Now()
		_, err := c.Put(ctx, key.ID(), 0, time.Hour, []byte(fmt.Sprintf("message %d", i)))
		st.add(time.Since(start), err)
	}
	if answered.Load() == 0 {
		t.Fatal("no coordinator wrote to the malicious member: the attack did not run")
	}
	t.Logf("the malicious member answered %d replica writes with bad receipts", answered.Load())
	st.requireSuccess(t)
}
