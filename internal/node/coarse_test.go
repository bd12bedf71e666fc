package node_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/store"
	"github.com/umbra-im/umbra/internal/wire"
)

// TestCoarseNodeTimes: a client stores (a plain message through Put and
// through a prepared request with a millisecond timestamp, a first-contact
// message, a public bundle), reads and deletes; every time the nodes saw
// from it or keep on disk (messages, signed deletions, the times a node
// picks itself) is a whole minute, the reads and deletes authenticate, two
// equal reads within one minute both pass (the nonce) and a replayed read
// or delete is refused.
func TestCoarseNodeTimes(t *testing.T) {
	var mu sync.Mutex
	seen := map[wire.Kind][][]byte{} // raw bodies of the client requests every node handled
	tn := startNetCfg(t, 5, func(_ int, c *node.Config) {
		node.SetClientObserver(c, func(kind wire.Kind, body []byte) {
			mu.Lock()
			seen[kind] = append(seen[kind], bytes.Clone(body))
			mu.Unlock()
		})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := tn.client(ctx)
	coarse := func(what string, ms int64) {
		t.Helper()
		if !wire.IsCoarse(ms) {
			t.Errorf("%s %d (%s) is not a whole minute", what, ms, time.UnixMilli(ms).UTC().Format(time.RFC3339Nano))
		}
	}
	newKey := func() *mailbox.Key {
		k, err := mailbox.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	key, inbox, pub := newKey(), newKey(), newKey()
	keyID, inboxID, pubID := key.ID(), inbox.ID(), pub.ID()

	// A plain message, with a TTL that is not a whole minute.
	plain, err := c.Put(ctx, keyID, 0, time.Hour+1234*time.Millisecond, []byte("plain"))
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	// A prepared request with a millisecond timestamp, as a client's
	// outbox makes them: nothing binds its times, so PutReq rounds them.
	fine := time.Now().UnixMilli()
	if wire.IsCoarse(fine) {
		fine++
	}
	req := &wire.StoreReq{Mailbox: keyID[:], Timestamp: fine, TTL: (2*time.Hour + 7*time.Millisecond).Milliseconds(), Data: []byte("prepared")}
	prepared, err := c.PutReq(ctx, req)
	if err != nil {
		t.Fatalf("put prepared: %v", err)
	}
	if req.Timestamp != wire.CoarseTime(fine) || req.TTL != (2*time.Hour+time.Minute).Milliseconds() {
		t.Fatalf("PutReq sent timestamp %d TTL %d, want %d and %d", req.Timestamp, req.TTL, wire.CoarseTime(fine), (2*time.Hour + time.Minute).Milliseconds())
	}
	// A first-contact message: its work binds its times, so the sender
	// makes them coarse before it seals.
	ts, ttl := wire.CoarseTime(time.Now().UnixMilli()), wire.CoarseTTL((time.Hour + time.Millisecond).Milliseconds())
	first, err := c.PutReq(ctx, &wire.StoreReq{Mailbox: inboxID[:], Namespace: wire.RequestNamespace, Timestamp: ts, TTL: ttl,
		Data: mailbox.SealRequest(inboxID, ts, ts+ttl, []byte("hello stranger"), mailbox.RequestWorkBase)})
	if err != nil {
		t.Fatalf("put first contact: %v", err)
	}
	// A public bundle, signed over its (coarse) times.
	bundle, err := c.Publish(ctx, pub, 3*time.Hour+time.Second, []byte("bundle"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	for name, r := range map[string]int64{"put": plain.Expiry.UnixMilli(), "prepared": prepared.Expiry.UnixMilli(),
		"first contact": first.Expiry.UnixMilli(), "publish": bundle.Expiry.UnixMilli()} {
		coarse(name+" expiry", r)
	}
	// A store without a timestamp: the node picks it, and rounds it too.
	picked, werr := tn.nodes[0].Store(ctx, &wire.StoreReq{Mailbox: pubID[:], TTL: (90*time.Second + 5*time.Millisecond).Milliseconds(), Data: []byte("no time")})
	if werr != nil {
		t.Fatalf("store without a timestamp: %v", werr)
	}
	coarse("node-picked expiry", picked.Expiry)
	if picked.Expiry < time.Now().UnixMilli()+30*time.Second.Milliseconds() {
		t.Fatalf("node-picked expiry %d is earlier than asked for", picked.Expiry)
	}

	// Reads authenticate, and what they return is coarse.
	msgs, err := c.Get(ctx, key, 0)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("get = %d messages, %v", len(msgs), err)
	}
	firsts, err := c.Get(ctx, inbox, 0)
	if err != nil || len(firsts) != 1 || firsts[0].Hash != first.Hash {
		t.Fatalf("get first contact = %+v, %v", firsts, err)
	}
	if bits, _, err := mailbox.RequestWork(inboxID, firsts[0].Timestamp.UnixMilli(), firsts[0].Expiry.UnixMilli(), firsts[0].Data); err != nil || bits < mailbox.RequestWorkBase {
		t.Fatalf("first-contact work as read back: %d bits, %v", bits, err)
	}
	pubs, err := c.ReadPublic(ctx, pubID)
	if err != nil || len(pubs) != 1 || string(pubs[0].Data) != "bundle" {
		t.Fatalf("read public = %+v, %v", pubs, err)
	}
	for _, m := range append(append(msgs, firsts...), pubs...) {
		coarse("read timestamp", m.Timestamp.UnixMilli())
		coarse("read expiry", m.Expiry.UnixMilli())
	}
	all := [][32]byte{plain.Hash, prepared.Hash, first.Hash, bundle.Hash, [32]byte(picked.Hash)}
	for _, h := range all {
		waitFor(t, 10*time.Second, func() bool { return countHolders(tn, h) == 5 }, "5 replicas")
	}

	// Deletes authenticate, and their signed deletions reach every replica.
	if n, err := c.Delete(ctx, key, [][32]byte{plain.Hash, prepared.Hash}); err != nil || n != 2 {
		t.Fatalf("delete = %d, %v", n, err)
	}
	if n, err := c.Delete(ctx, inbox, [][32]byte{first.Hash}); err != nil || n != 1 {
		t.Fatalf("delete first contact = %d, %v", n, err)
	}
	deleted := map[[32]byte][]store.Hash{keyID: {plain.Hash, prepared.Hash}, inboxID: {first.Hash}}
	waitFor(t, 10*time.Second, func() bool {
		for _, nd := range tn.nodes {
			for mb, hs := range deleted {
				if ds, err := nd.MessageStore().Deletions(mb, hs, 10); err != nil || len(ds) == 0 {
					return false
				}
			}
		}
		return true
	}, "the signed deletions at every node")
	if msgs, err := c.Get(ctx, key, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("get after delete = %d messages, %v", len(msgs), err)
	}

	// Everything the nodes keep is coarse.
	held := 0
	for i, nd := range tn.nodes {
		st := nd.MessageStore()
		for _, mb := range []mailbox.ID{keyID, inboxID, pubID} {
			ms, _, err := st.Get(mb, nil, 1000, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				held++
				coarse("stored timestamp", m.Timestamp)
				coarse("stored expiry", m.Expiry)
			}
		}
		for mb, hs := range deleted {
			ds, err := st.Deletions(mb, hs, 10)
			if err != nil || len(ds) == 0 {
				t.Fatalf("node %d: deletions %v, %v", i, ds, err)
			}
			for _, d := range ds {
				coarse("signed deletion timestamp", d.Timestamp)
				if len(d.Sig) != mailbox.SigSize {
					t.Errorf("node %d keeps a %d-byte deletion signature, want %d (with its nonce)", i, len(d.Sig), mailbox.SigSize)
				}
			}
		}
	}
	if held != 5*2 { // the bundle and the node-picked message, at 5 nodes
		t.Fatalf("nodes hold %d live messages, want 10", held)
	}

	// Everything the nodes saw from the client is coarse.
	mu.Lock()
	counts := map[wire.Kind]int{}
	for kind, bodies := range seen {
		for _, b := range bodies {
			switch kind {
			case wire.KindStoreReq:
				var r wire.StoreReq
				if err := wire.Unmarshal(b, &r); err != nil {
					t.Fatal(err)
				}
				if r.Timestamp == 0 { // the store the test sent a node itself has none
					continue
				}
				coarse("store request timestamp", r.Timestamp)
				coarse("store request TTL", r.TTL)
			case wire.KindRetrieveReq:
				var r wire.RetrieveReq
				if err := wire.Unmarshal(b, &r); err != nil {
					t.Fatal(err)
				}
				coarse("retrieve auth timestamp", r.Auth.Timestamp)
			case wire.KindDeleteReq:
				var r wire.DeleteReq
				if err := wire.Unmarshal(b, &r); err != nil {
					t.Fatal(err)
				}
				coarse("delete auth timestamp", r.Auth.Timestamp)
			}
			counts[kind]++
		}
	}
	mu.Unlock()
	if counts[wire.KindStoreReq] < 4 || counts[wire.KindRetrieveReq] < 3 || counts[wire.KindDeleteReq] < 2 || counts[wire.KindPublicReq] < 1 {
		t.Fatalf("nodes saw %v", counts)
	}

	// Two equal reads signed in the same minute both authenticate: their
	// nonces tell them apart. A replay of either is refused, as before.
	nd := tn.nodes[1]
	now := time.Now()
	sign := func() *wire.RetrieveReq {
		r := &wire.RetrieveReq{Mailbox: pubID[:]}
		r.Auth.Timestamp, r.Auth.Sig = pub.Sign(mailbox.MethodRetrieve, now, r.AuthFields())
		return r
	}
	r1, r2 := sign(), sign()
	if r1.Auth.Timestamp != r2.Auth.Timestamp || bytes.Equal(r1.Auth.Sig, r2.Auth.Sig) {
		t.Fatal("two reads in one minute: same timestamp, different signatures expected")
	}
	for i, r := range []*wire.RetrieveReq{r1, r2} {
		if resp, werr := nd.Retrieve(ctx, r, 1<<20); werr != nil || len(resp.Messages) != 2 {
			t.Fatalf("read %d: %v", i+1, werr)
		}
	}
	if _, werr := nd.Retrieve(ctx, r1, 1<<20); werr == nil || werr.Code != wire.CodeUnauthorized {
		t.Fatalf("replayed read: %v, want refused", werr)
	}
	del := &wire.DeleteReq{Mailbox: pubID[:], Hashes: [][]byte{picked.Hash}}
	del.Auth.Timestamp, del.Auth.Sig = pub.Sign(mailbox.MethodDelete, now, del.AuthFields())
	if resp, werr := nd.Delete(ctx, del); werr != nil || resp.Deleted != 1 {
		t.Fatalf("delete: %v", werr)
	}
	if _, werr := nd.Delete(ctx, del); werr == nil || werr.Code != wire.CodeUnauthorized {
		t.Fatalf("replayed delete: %v, want refused", werr)
	}
	// A read validly signed over a millisecond timestamp (an older
	// client), or without a nonce, is refused: nodes take coarse times
	// only.
	seed := bytes.Repeat([]byte{5}, ed25519.SeedSize)
	sk, err := mailbox.KeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	sid := sk.ID()
	nonce := bytes.Repeat([]byte{1}, mailbox.NonceSize)
	for name, ts := range map[string]int64{"a fine timestamp": fine, "no nonce": wire.CoarseTime(fine)} {
		r := &wire.RetrieveReq{Mailbox: sid[:]}
		r.Auth.Timestamp = ts
		if name == "no nonce" {
			r.Auth.Sig = ed25519.Sign(ed25519.NewKeyFromSeed(seed), mailbox.SignedBytes(mailbox.MethodRetrieve, sid, ts, nil, r.AuthFields()))
		} else {
			r.Auth.Sig = append(ed25519.Sign(ed25519.NewKeyFromSeed(seed), mailbox.SignedBytes(mailbox.MethodRetrieve, sid, ts, nonce, r.AuthFields())), nonce...)
		}
		if err := mailbox.VerifySig(mailbox.MethodRetrieve, sid, ts, r.AuthFields(), r.Auth.Sig); err != nil {
			t.Fatalf("%s: the test's signature is bad: %v", name, err)
		}
		if _, werr := nd.Retrieve(ctx, r, 1<<20); werr == nil || werr.Code != wire.CodeUnauthorized {
			t.Fatalf("read with %s: %v, want refused", name, werr)
		}
	}
}
