package adversary_test

import (
	"bytes"
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

// TestLyingGroupReplica: a group's mailbox is read by every member with a
// cursor (swarmclient.GetSince) and never emptied. A hostile member of its
// swarm answers every read with the genuine entries' hashes over altered
// data, entries of another mailbox and of another namespace (each with a
// hash that is right for what it claims), and a page that says there is
// more for ever. The reader must get every genuine entry with its genuine
// data from the honest replicas, and nothing of what the liar made up
// except what anyone may store (an entry of this mailbox whose hash is
// right, which the group layer then fails to open).
func TestLyingGroupReplica(t *testing.T) {
	an := startNet(t, 12)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	a := an.adversary(ctx, "127.0.200.1")
	c := an.client(ctx, true)
	waitListed(t, ctx, c, time.Minute, a.ID())
	R := c.Params().Replication
	key := findMailbox(t, ctx, c, 90*time.Second, func(r []*member.Node) bool { i := rankOf(r, a.ID()); return i >= 0 && i < R })
	other := findMailbox(t, ctx, c, 90*time.Second, func(r []*member.Node) bool { return true })
	mb, omb := key.ID(), other.ID()
	genuine := map[[32]byte][]byte{}
	for i := 0; i < 10; i++ {
		data := []byte{byte(i), 'g', 'e', 'n', 'u', 'i', 'n', 'e'}
		res, err := c.Put(ctx, mb, 0, time.Hour, data)
		if err != nil {
			t.Fatalf("honest store %d: %v", i, err)
		}
		genuine[res.Hash] = data
	}
	time.Sleep(2 * time.Second) // the fan-out reaches every replica

	ts := wire.CoarseTime(time.Now().UnixMilli())
	exp := ts + time.Hour.Milliseconds()
	entry := func(box []byte, ns int32, data []byte) wire.Message {
		h := swarm.MessageHash([32]byte(box), ns, ts, exp, data)
		return wire.Message{Hash: h[:], Mailbox: bytes.Clone(box), Namespace: ns, Timestamp: ts, Expiry: exp, Data: data}
	}
	planted := entry(mb[:], 0, []byte("anyone may store this"))
	var lied atomic.Int64
	a.Serve(wire.ProtoStoreSession, func(_ context.Context, _ peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
		if kind != wire.KindRetrieveReq {
			return wire.KindError, wire.Errorf(wire.CodeBadRequest, "no")
		}
		lied.Add(1)
		var resp wire.RetrieveResp
		for h := range genuine {
			// A genuine hash over altered data.
			resp.Messages = append(resp.Messages, wire.Message{Hash: bytes.Clone(h[:]), Mailbox: mb[:], Timestamp: ts, Expiry: exp, Data: []byte("altered")})
		}
		resp.Messages = append(resp.Messages, entry(omb[:], 0, []byte("of another mailbox")),
			entry(mb[:], wire.DropNamespace, []byte("of another namespace")), planted)
		resp.More = true // and there is always more
		return wire.KindRetrieveResp, &resp
	})

	cur := &swarmclient.DropCursor{}
	got, err := c.GetSince(ctx, key, cur, 0)
	if err != nil {
		t.Fatal(err)
	}
	if lied.Load() == 0 {
		t.Fatal("the reader never asked the liar: the attack did not run")
	}
	t.Logf("the liar answered %d reads; the reader got %d entries", lied.Load(), len(got))
	seen := map[[32]byte]bool{}
	for _, m := range got {
		seen[m.Hash] = true
		if want, ok := genuine[m.Hash]; ok {
			if !bytes.Equal(m.Data, want) {
				t.Fatalf("entry %x came with altered data %q", m.Hash[:6], m.Data)
			}
			continue
		}
		if m.Hash != [32]byte(planted.Hash) {
			t.Fatalf("the reader took a made-up entry %q", m.Data)
		}
	}
	for h := range genuine {
		if !seen[h] {
			t.Fatalf("genuine entry %x is missing", h[:6])
		}
	}
	// Read again from the cursors: nothing genuine comes twice.
	again, err := c.GetSince(ctx, key, cur, 0)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(again, func(m swarmclient.Message) bool {
		_, ok := genuine[m.Hash]
		return ok && !bytes.Equal(m.Data, genuine[m.Hash])
	}) {
		t.Fatal("a second read took altered data")
	}
}
