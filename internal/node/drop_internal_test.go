package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/store"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// TestReplicaDropNamespaceChecked: a replicated or repaired drop entry
// must carry the first-contact work and keep to the drop TTL cap, so a
// malicious node cannot fill a bucket by replication.
func TestReplicaDropNamespaceChecked(t *testing.T) {
	n := &Node{cfg: Config{Now: time.Now}}
	mb := mailbox.BucketID(1, 2)
	ts := wire.CoarseTime(time.Now().UnixMilli())
	msg := func(exp int64, data []byte) *wire.Message {
		h := swarm.MessageHash(mb, wire.DropNamespace, ts, exp, data)
		return &wire.Message{Hash: h[:], Mailbox: mb[:], Namespace: wire.DropNamespace, Timestamp: ts, Expiry: exp, Data: data}
	}
	hour := ts + time.Hour.Milliseconds()
	if _, err := n.fromWire(msg(hour, mailbox.SealRequest(mb, ts, hour, []byte("hi"), mailbox.RequestWorkBase))); err != nil {
		t.Fatalf("a drop with its work: %v", err)
	}
	if _, err := n.fromWire(msg(hour, []byte("no work at all"))); err == nil {
		t.Fatal("a drop replica without work was accepted")
	}
	long := ts + wire.MaxDropTTL + 60_000
	if _, err := n.fromWire(msg(long, mailbox.SealRequest(mb, ts, long, []byte("hi"), mailbox.RequestWorkBase))); err == nil {
		t.Fatal("a drop replica above the TTL cap was accepted")
	}
}

// startLoneNode starts one node with no peers, for reads of its own store.
func startLoneNode(tb testing.TB) *Node {
	tb.Helper()
	n, err := New(Config{
		DataDir: filepath.Join(tb.TempDir(), "node"),
		Listen:  []string{"/ip4/127.0.0.1/tcp/0"},
		Params:  wire.Params{Network: "test", Replication: 5, PoWBits: 4},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Close() })
	return n
}

// FuzzDropRead: a drop read (KindDropReq, reachable by anyone, directly or
// from an onion exit) is decoded and answered without a panic; an answer
// holds only drop entries of the mailbox asked about, at most the page
// limit, and no more data than the byte budget (but for a single entry);
// a long-poll never outlasts its context.
func FuzzDropRead(f *testing.F) {
	n := startLoneNode(f)
	mb := mailbox.BucketID(9, 9)
	ts := wire.CoarseTime(time.Now().UnixMilli())
	exp := ts + time.Hour.Milliseconds()
	var msgs []store.Message
	for i := 0; i < 5; i++ {
		data := mailbox.SealRequest(mb, ts, exp, bytes.Repeat([]byte{byte(i)}, 100*(i+1)), 1)
		msgs = append(msgs, store.Message{Hash: swarm.MessageHash(mb, wire.DropNamespace, ts, exp, data), Mailbox: mb,
			Namespace: wire.DropNamespace, Timestamp: ts, Expiry: exp, Data: data})
	}
	plain := []byte("not a drop")
	msgs = append(msgs, store.Message{Hash: swarm.MessageHash(mb, 0, ts, exp, plain), Mailbox: mb, Timestamp: ts, Expiry: exp, Data: plain})
	if _, err := n.store.Put(context.Background(), msgs...); err != nil {
		f.Fatal(err)
	}
	for _, r := range []wire.DropReq{
		{Mailbox: mb[:]},
		{Mailbox: mb[:], Limit: 2},
		{Mailbox: mb[:], After: msgs[1].Hash[:], Limit: 1},
		{Mailbox: mb[:], After: msgs[5].Hash[:]},
		{Mailbox: mb[:5]},
		{Mailbox: mb[:], After: []byte{1, 2}},
		{Mailbox: bytes.Repeat([]byte{7}, 32), WaitMs: 1 << 40},
		{Mailbox: mb[:], Limit: -1, WaitMs: -5},
	} {
		b, _ := wire.Marshal(&r)
		f.Add(b, uint16(1<<15))
		f.Add(b, uint16(150))
	}
	f.Add([]byte{0xa1, 0x01, 0x40}, uint16(0))
	f.Fuzz(func(t *testing.T, body []byte, budget uint16) {
		maxBytes := int(budget)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		kind, resp := n.handleClient(ctx, wire.KindDropReq, body, maxBytes)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("a drop read took %s", d)
		}
		if kind == wire.KindError {
			return
		}
		if kind != wire.KindDropResp {
			t.Fatalf("answered with %s", kind)
		}
		var req wire.DropReq
		if err := wire.Unmarshal(body, &req); err != nil {
			t.Fatalf("answered a body that does not decode: %v", err)
		}
		dr := resp.(*wire.DropResp)
		limit := req.Limit
		if limit <= 0 || limit > maxDropLimit {
			limit = maxDropLimit
		}
		if len(dr.Messages) > limit {
			t.Fatalf("%d entries for a limit of %d", len(dr.Messages), req.Limit)
		}
		size := 0
		for _, m := range dr.Messages {
			if m.Namespace != wire.DropNamespace || !bytes.Equal(m.Mailbox, req.Mailbox) {
				t.Fatalf("a drop read returned a message of namespace %d of %x", m.Namespace, m.Mailbox)
			}
			size += len(m.Data)
		}
		if len(dr.Messages) > 1 && maxBytes > 0 && size > maxBytes {
			t.Fatalf("%d bytes of data for a budget of %d", size, maxBytes)
		}
	})
}
