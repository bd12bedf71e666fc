package node_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/store"
	"github.com/umbra-im/umbra/internal/wire"
)

// weakWork returns first-contact data for payload that carries less than
// the base work (a nonce whose digest has fewer leading zeros).
func weakWork(mb mailbox.ID, ts, exp int64, payload []byte) []byte {
	for nonce := uint64(0); ; nonce++ {
		data := append(binary.BigEndian.AppendUint64(nil, nonce), payload...)
		if got, _, err := mailbox.RequestWork(mb, ts, exp, data); err == nil && got < mailbox.RequestWorkBase {
			return data
		}
	}
}

func wantCode(t *testing.T, what string, err error, code int) *wire.Error {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != code {
		t.Fatalf("%s: got %v, want error %d", what, err, code)
	}
	return we
}

// TestDropNamespaceRules: the drop namespace's rules at a node: a write
// needs the first-contact work (429 with the bits asked when short), its
// TTL is capped, anyone reads it without authentication in pages, a
// retrieve of the same mailbox ID leaves it out, a delete naming it is
// refused, and it has a quota of its own.
func TestDropNamespaceRules(t *testing.T) {
	const quota = 6
	tn := startNetCfg(t, 5, func(_ int, c *node.Config) {
		c.DropQuota = store.Quota{Messages: quota, Bytes: 1 << 20}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nd := tn.nodes[0]
	owner, _ := mailbox.NewKey() // a keyed mailbox ID: drops stay apart from its other namespaces
	mb := owner.ID()
	ts := wire.CoarseTime(time.Now().UnixMilli())
	ttl := time.Hour.Milliseconds()
	req := func(data []byte) *wire.StoreReq {
		return &wire.StoreReq{Mailbox: mb[:], Namespace: wire.DropNamespace, Timestamp: ts, TTL: ttl, Data: data}
	}

	// Without work, and with too little: refused, asking for the base.
	_, werr := nd.Store(ctx, req([]byte("no nonce")))
	if werr == nil || werr.Code != wire.CodeRateLimited || werr.WorkBits != mailbox.RequestWorkBase {
		t.Fatalf("a drop without work: %v, want 429 asking for %d bits", werr, mailbox.RequestWorkBase)
	}
	_, werr = nd.Store(ctx, req(weakWork(mb, ts, ts+ttl, []byte("too little work"))))
	if werr == nil || werr.Code != wire.CodeRateLimited || werr.WorkBits != mailbox.RequestWorkBase {
		t.Fatalf("a drop with too little work: %v, want 429", werr)
	}
	// The TTL cap: one minute over is refused even with the work.
	long := wire.MaxDropTTL + 60_000
	r := req(mailbox.SealRequest(mb, ts, ts+long, []byte("too long"), mailbox.RequestWorkBase))
	r.TTL = long
	if _, werr = nd.Store(ctx, r); werr == nil || werr.Code != wire.CodeBadRequest {
		t.Fatalf("a drop above the TTL cap: %v, want 400", werr)
	}
	// At the cap, with the work: stored.
	r = req(mailbox.SealRequest(mb, ts, ts+wire.MaxDropTTL, []byte("drop 0"), mailbox.RequestWorkBase))
	r.TTL = wire.MaxDropTTL
	resp, werr := nd.Store(ctx, r)
	if werr != nil || len(resp.Receipts) < 3 {
		t.Fatalf("a drop with its work: %v, %+v", werr, resp)
	}
	hashes := [][32]byte{[32]byte(resp.Hash)}
	for i := 1; i < quota; i++ {
		resp, werr := nd.Store(ctx, req(mailbox.SealRequest(mb, ts, ts+ttl, []byte(fmt.Sprint("drop ", i)), mailbox.RequestWorkBase)))
		if werr != nil {
			t.Fatalf("drop %d: %v", i, werr)
		}
		hashes = append(hashes, [32]byte(resp.Hash))
	}
	// The namespace's own quota: one more is refused, while the mailbox's
	// other namespaces still take messages.
	_, werr = nd.Store(ctx, req(mailbox.SealRequest(mb, ts, ts+ttl, []byte("one too many"), mailbox.RequestWorkBase)))
	if werr == nil || werr.Code != wire.CodeMailboxFull {
		t.Fatalf("a drop over the namespace quota: %v, want %d", werr, wire.CodeMailboxFull)
	}
	c := tn.client(ctx)
	plain, err := c.Put(ctx, mb, 0, time.Hour, []byte("a plain message"))
	if err != nil {
		t.Fatalf("a plain message next to a full drop namespace: %v", err)
	}

	// Unauthenticated paged read, at a node that holds them all.
	waitFor(t, 10*time.Second, func() bool {
		dr, werr := nd.ReadDrop(ctx, &wire.DropReq{Mailbox: mb[:]}, 1<<20)
		return werr == nil && len(dr.Messages) == quota
	}, "every drop at node 0")
	var paged [][32]byte
	var after []byte
	for page := 0; ; page++ {
		dr, werr := nd.ReadDrop(ctx, &wire.DropReq{Mailbox: mb[:], After: after, Limit: 4}, 1<<20)
		if werr != nil {
			t.Fatal(werr)
		}
		if len(dr.Messages) > 4 || page > 2 {
			t.Fatalf("page %d holds %d entries (limit 4)", page, len(dr.Messages))
		}
		for _, m := range dr.Messages {
			if m.Namespace != wire.DropNamespace || !bytes.Equal(m.Mailbox, mb[:]) {
				t.Fatalf("a drop read returned a message of namespace %d", m.Namespace)
			}
			paged = append(paged, [32]byte(m.Hash))
		}
		if !dr.More {
			break
		}
		after = dr.Messages[len(dr.Messages)-1].Hash
	}
	if len(paged) != quota {
		t.Fatalf("paging returned %d entries, want %d", len(paged), quota)
	}
	// The byte bound: a 1-byte budget still returns one entry, and More.
	dr, werr := nd.ReadDrop(ctx, &wire.DropReq{Mailbox: mb[:]}, 1)
	if werr != nil || len(dr.Messages) != 1 || !dr.More {
		t.Fatalf("a read with a 1-byte budget: %v, %d entries, more=%v", werr, len(dr.Messages), dr.More)
	}

	// A retrieve of the same mailbox ID leaves the drops out.
	got, err := c.Get(ctx, owner, 0)
	if err != nil || len(got) != 1 || got[0].Hash != plain.Hash {
		t.Fatalf("retrieve of the mailbox: %d messages, %v; want only the plain one", len(got), err)
	}
	// Even the key's owner cannot delete a drop: they only expire.
	_, err = c.Delete(ctx, owner, hashes[:1])
	wantCode(t, "deleting a drop", err, wire.CodeBadRequest)
	dr, werr = nd.ReadDrop(ctx, &wire.DropReq{Mailbox: mb[:]}, 1<<20)
	if werr != nil || len(dr.Messages) != quota {
		t.Fatalf("after the delete attempt: %d drops, %v", len(dr.Messages), werr)
	}
	if n, err := c.Delete(ctx, owner, [][32]byte{plain.Hash}); err != nil || n != 1 {
		t.Fatalf("deleting the plain message: %d, %v", n, err)
	}
}

// TestDropRealNodes: three writers drop first contacts into one shared
// bucket; an unauthenticated reader sees all of them from the swarm, also
// by long-poll; a delete attempt fails and the entries remain; a flood of
// writes without work is refused; every swarm member ends up holding the
// drops (replication carries the namespace).
func TestDropRealNodes(t *testing.T) {
	tn := startNet(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bucket := mailbox.BucketID(uint64(time.Now().Unix()/86400), 17)
	reader := tn.client(ctx)

	// The reader waits before anything is there.
	type readRes struct {
		msgs []wire.Message
		err  error
	}
	polled := make(chan readRes, 1)
	go func() {
		msgs, err := reader.ReadDrop(ctx, bucket, 20*time.Second)
		var out []wire.Message
		for _, m := range msgs {
			out = append(out, wire.Message{Hash: m.Hash[:], Data: m.Data})
		}
		polled <- readRes{out, err}
	}()
	time.Sleep(300 * time.Millisecond)

	want := map[[32]byte]string{}
	for i := 0; i < 3; i++ {
		w := tn.client(ctx)
		payload := fmt.Sprintf("first contact from writer %d", i)
		res, err := w.PutDrop(ctx, bucket, 0, time.Hour, []byte(payload), 0)
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
		if res.Receipts < 3 {
			t.Fatalf("writer %d: %d receipts", i, res.Receipts)
		}
		want[res.Hash] = payload
	}
	select {
	case r := <-polled:
		if r.err != nil || len(r.msgs) == 0 {
			t.Fatalf("the long-poll ended with %d entries, %v", len(r.msgs), r.err)
		}
		if _, ok := want[[32]byte(r.msgs[0].Hash)]; !ok {
			t.Fatal("the long-poll returned an entry nobody wrote")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the long-poll did not return")
	}

	check := func(what string) {
		t.Helper()
		msgs, err := reader.ReadDrop(ctx, bucket, 0)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(msgs) != len(want) {
			t.Fatalf("%s: the reader sees %d drops, want %d", what, len(msgs), len(want))
		}
		for _, m := range msgs {
			_, payload, err := mailbox.RequestWork(bucket, m.Timestamp.UnixMilli(), m.Expiry.UnixMilli(), m.Data)
			if err != nil || want[m.Hash] != string(payload) || m.Namespace != wire.DropNamespace {
				t.Fatalf("%s: unexpected drop %x (%q)", what, m.Hash[:4], payload)
			}
		}
	}
	check("after three writers")
	for h := range want {
		waitFor(t, 10*time.Second, func() bool { return countHolders(tn, h) == 5 }, "5 replicas of a drop")
	}

	// A delete of the bucket: nobody holds its key, so no signature does.
	anyKey, _ := mailbox.NewKey()
	var hashes [][]byte
	for h := range want {
		hashes = append(hashes, bytes.Clone(h[:]))
	}
	del := &wire.DeleteReq{Mailbox: bucket[:], Hashes: hashes}
	del.Auth.Timestamp, del.Auth.Sig = anyKey.Sign(mailbox.MethodDelete, time.Now(), del.AuthFields())
	for _, n := range reader.Swarm(bucket) {
		var resp wire.DeleteResp
		err := reader.Call(ctx, n, wire.KindDeleteReq, del, wire.KindDeleteResp, &resp)
		wantCode(t, "a delete of the bucket", err, wire.CodeUnauthorized)
	}
	check("after the delete attempt")

	// A flood without work: every write refused, nothing stored.
	flooder := tn.client(ctx)
	ts := wire.CoarseTime(time.Now().UnixMilli())
	refused := 0
	for i := 0; i < 40; i++ {
		data := []byte(fmt.Sprintf("junk %d", i))
		if i%2 == 1 {
			data = weakWork(bucket, ts, ts+time.Hour.Milliseconds(), data)
		}
		_, err := flooder.PutReq(ctx, &wire.StoreReq{Mailbox: bucket[:], Namespace: wire.DropNamespace,
			Timestamp: ts, TTL: time.Hour.Milliseconds(), Data: data})
		if we := wantCode(t, fmt.Sprint("junk write ", i), err, wire.CodeRateLimited); we.WorkBits < mailbox.RequestWorkBase {
			t.Fatalf("junk write %d: the refusal asks for %d bits", i, we.WorkBits)
		}
		refused++
	}
	if refused != 40 {
		t.Fatalf("%d of 40 junk writes refused", refused)
	}
	check("after the flood")
}
