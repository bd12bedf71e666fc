package node_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

func randData(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// legacySize is the packet size the old rule (the smallest of
// onion.Sizes that holds the content) gives a packet whose content is n
// bytes: what a client paid before the packet classes.
func legacySize(n int) int {
	for _, s := range onion.Sizes {
		if 4+n <= s {
			return s
		}
	}
	return onion.MaxPacket
}

// sizeTally adds up what crossed the client's link to its guard.
type sizeTally struct {
	requests      int
	bytes, legacy int64
}

// add counts one guard event: the request the client sent and the reply
// it got, and what the old rule would have made of each (the request
// without the exit's 4-byte reply-size field, the reply by content).
func (s *sizeTally) add(ev node.OnionEvent) {
	s.requests++
	s.bytes += int64(len(ev.In) + len(ev.ReplyOut))
	s.legacy += int64(legacySize(int(binary.BigEndian.Uint32(ev.In))-4) + legacySize(int(binary.BigEndian.Uint32(ev.ReplyOut))))
}

func (s sizeTally) String() string {
	if s.requests == 0 {
		return "no requests"
	}
	return fmt.Sprintf("%d requests, %.1f KiB/request now (request + reply), %.1f KiB/request by content before (x%.2f)",
		s.requests, float64(s.bytes)/float64(s.requests)/1024, float64(s.legacy)/float64(s.requests)/1024, float64(s.bytes)/float64(s.legacy))
}

// TestOnionEverydaySizes runs a client's everyday workload through onion
// paths (stores of receipts, short texts and a 4 KiB first-contact
// message, empty reads, reads of several messages, deletes, a public read)
// and checks that every packet the client's guard got from it and every
// reply the guard sent back, and every packet on every other link, is
// exactly onion.Everyday bytes: a guard or a link observer cannot tell
// these requests apart by size. A 60 KiB message takes the next class
// (the store's request, the read's reply) and nothing else.
func TestOnionEverydaySizes(t *testing.T) {
	rec := &recorder{}
	tn := startNetCfg(t, 7, func(_ int, c *node.Config) { c.OnionObserver = rec.add })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := tn.client(ctx)
	client := c.Host().ID()

	// check asserts the sizes of every packet recorded since from, and
	// tallies the guard link. reqSize and replySize are what the guard
	// must see; every other link carries the same sizes.
	check := func(what string, from int, reqSize, replySize int) sizeTally {
		t.Helper()
		var tally sizeTally
		evs := rec.all()[from:]
		if len(evs) == 0 {
			t.Fatalf("%s: no onion traffic recorded", what)
		}
		for _, ev := range evs {
			if ev.From == client {
				tally.add(ev)
			}
			for name, b := range map[string][]byte{"request in": ev.In, "request out": ev.Out} {
				if b != nil && len(b) != reqSize {
					t.Errorf("%s: %s at %s: %d bytes, want %d", what, name, p2p.ShortID(ev.Node), len(b), reqSize)
				}
			}
			for name, b := range map[string][]byte{"reply in": ev.ReplyIn, "reply out": ev.ReplyOut} {
				if b != nil && len(b) != replySize {
					t.Errorf("%s: %s at %s: %d bytes, want %d", what, name, p2p.ShortID(ev.Node), len(b), replySize)
				}
			}
		}
		if tally.requests == 0 {
			t.Fatalf("%s: the client's guard saw nothing", what)
		}
		return tally
	}

	start := len(rec.all())
	inbox, _ := mailbox.NewKey()
	mb := inbox.ID()
	// An empty read.
	if msgs, err := c.Get(ctx, inbox, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("empty read: %d messages, %v", len(msgs), err)
	}
	// Receipts and short texts (envelopes are 256 and 1024 bytes on the
	// wire), and a 4 KiB first-contact message with its proof of work.
	var hashes [][32]byte
	for i := 0; i < 3; i++ {
		for _, n := range []int{256, 1024} {
			res, err := c.Put(ctx, mb, 0, time.Hour, randData(t, n))
			if err != nil {
				t.Fatalf("put %d bytes: %v", n, err)
			}
			hashes = append(hashes, res.Hash)
		}
	}
	ts, ttl := wire.CoarseTime(time.Now().UnixMilli()), wire.CoarseTTL(time.Hour.Milliseconds())
	first, err := c.PutReq(ctx, &wire.StoreReq{Mailbox: mb[:], Namespace: wire.RequestNamespace, Timestamp: ts, TTL: ttl,
		Data: mailbox.SealRequest(mb, ts, ts+ttl, randData(t, 4096-8), mailbox.RequestWorkBase)})
	if err != nil {
		t.Fatalf("first contact: %v", err)
	}
	hashes = append(hashes, first.Hash)
	// A read of all of them: more than one everyday reply holds, so it
	// pages.
	msgs, err := c.Get(ctx, inbox, 0)
	if err != nil || len(msgs) != len(hashes) {
		t.Fatalf("read: %d messages, %v; want %d", len(msgs), err, len(hashes))
	}
	// One node's pages, to see the paging.
	id := inbox.ID()
	page, err := c.Retrieve(ctx, c.Swarm(id)[0], inbox, nil, 0)
	if err != nil || !page.More || len(page.Messages) == 0 || len(page.Messages) == len(hashes) {
		t.Fatalf("first page: %v; want some of the %d messages and More", err, len(hashes))
	}
	// Deletes, then an empty read again.
	if _, err := c.Delete(ctx, inbox, hashes); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if msgs, err := c.Get(ctx, inbox, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("read after delete: %d messages, %v", len(msgs), err)
	}
	// A prekey card of a few KiB, published and read.
	card, _ := mailbox.NewKey()
	if _, err := c.Publish(ctx, card, time.Hour, randData(t, 3000)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if pubs, err := c.ReadPublic(ctx, card.ID()); err != nil || len(pubs) != 1 {
		t.Fatalf("public read: %d, %v", len(pubs), err)
	}
	everyday := check("everyday workload", start, onion.Everyday, onion.Everyday)
	t.Logf("everyday workload: %v", everyday)
	if everyday.bytes <= everyday.legacy {
		t.Errorf("the packet classes cost nothing (%d bytes vs %d)?", everyday.bytes, everyday.legacy)
	}

	// A 60 KiB message: its store request is the next class (its answer
	// is everyday), its read's answer is the next class.
	big, _ := mailbox.NewKey()
	from := len(rec.all())
	bigRes, err := c.Put(ctx, big.ID(), 0, time.Hour, randData(t, 60<<10))
	if err != nil {
		t.Fatalf("put 60 KiB: %v", err)
	}
	bigStore := check("60 KiB store", from, onion.Classes[1], onion.Everyday)
	// The read asks every swarm member: wait until the replicas beyond the
	// write quorum hold it too, else a member that has it not yet answers
	// an (everyday-sized) empty page.
	waitFor(t, 10*time.Second, func() bool {
		for _, p := range tn.nodes[0].SwarmOf(big.ID()) {
			for _, nd := range tn.nodes {
				if nd.ID() == p {
					if m, err := nd.MessageStore().GetByHash([][32]byte{bigRes.Hash}); err != nil || len(m) != 1 {
						return false
					}
				}
			}
		}
		return true
	}, "every swarm member to hold the 60 KiB message")
	from = len(rec.all())
	got, err := c.Get(ctx, big, 0)
	if err != nil || len(got) != 1 || len(got[0].Data) != 60<<10 {
		t.Fatalf("read 60 KiB: %d messages, %v", len(got), err)
	}
	bigRead := check("60 KiB read", from, onion.Everyday, onion.Classes[1])
	t.Logf("60 KiB store: %v", bigStore)
	t.Logf("60 KiB read: %v", bigRead)
	t.Logf("read cap: %d bytes of messages per everyday reply (%d per message on top of its data)", swarmclient.ReadBytes, wire.MessageOverhead)
}

// TestRetrieveByteCap: a node honours RetrieveReq.MaxBytes and
// PublicReq.MaxBytes, counting each message's overhead, always answering
// at least one message (a large one alone) and saying More when it left
// some out; paging with the cursor reads everything.
func TestRetrieveByteCap(t *testing.T) {
	tn := startNet(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := tn.client(ctx)
	key, _ := mailbox.NewKey()
	mb := key.ID()
	sizes := []int{1000, 1000, 1000, 20000, 1000, 1000}
	for _, n := range sizes {
		if _, err := c.Put(ctx, mb, 0, time.Hour, randData(t, n)); err != nil {
			t.Fatal(err)
		}
	}
	retrieve := func(nd *node.Node, after []byte, maxBytes int) *wire.RetrieveResp {
		t.Helper()
		req := &wire.RetrieveReq{Mailbox: mb[:], After: after, MaxBytes: maxBytes}
		req.Auth.Timestamp, req.Auth.Sig = key.Sign(mailbox.MethodRetrieve, time.Now(), req.AuthFields())
		resp, werr := nd.Retrieve(ctx, req, 1<<20)
		if werr != nil {
			t.Fatalf("retrieve: %v", werr)
		}
		return resp
	}
	// A node that holds all of them (the write quorum may still be
	// replicating to the last).
	var nd *node.Node
	for i := 0; nd == nil && i < 100; i++ {
		for _, n := range tn.nodes {
			if len(retrieve(n, nil, 0).Messages) == len(sizes) {
				nd = n
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if nd == nil {
		t.Fatal("no node holds every message")
	}
	per := 1000 + wire.MessageOverhead
	for _, c := range []struct {
		maxBytes, want int
		more           bool
	}{
		{0, 6, false},
		{1, 1, true},
		{per, 1, true},
		{2*per + per/2, 2, true},
		{3 * per, 3, true},
		{1 << 20, 6, false},
	} {
		resp := retrieve(nd, nil, c.maxBytes)
		if len(resp.Messages) != c.want || resp.More != c.more {
			t.Errorf("MaxBytes %d: %d messages, More %v; want %d, %v", c.maxBytes, len(resp.Messages), resp.More, c.want, c.more)
		}
	}
	// Paging at 3 KiB: the 20 KB message comes alone, every message once.
	var after []byte
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("paging does not end")
		}
		resp := retrieve(nd, after, 3000)
		size := 0
		for _, m := range resp.Messages {
			size += len(m.Data) + wire.MessageOverhead
			if seen[string(m.Hash)] {
				t.Fatal("a message came twice")
			}
			seen[string(m.Hash)] = true
		}
		if size > 3000 && len(resp.Messages) != 1 {
			t.Fatalf("a page of %d messages, %d bytes, over the cap", len(resp.Messages), size)
		}
		if !resp.More {
			break
		}
		after = resp.Messages[len(resp.Messages)-1].Hash
	}
	if len(seen) != len(sizes) {
		t.Fatalf("paging read %d of %d messages", len(seen), len(sizes))
	}

	// Public reads: the newest that fit, at least one.
	card, _ := mailbox.NewKey()
	for i := 0; i < 3; i++ {
		if _, err := c.Publish(ctx, card, time.Hour, randData(t, 3000)); err != nil {
			t.Fatal(err)
		}
	}
	cid := card.ID()
	var all *wire.PublicResp
	for i := 0; i < 100; i++ {
		var werr *wire.Error
		if all, werr = nd.ReadPublic(&wire.PublicReq{Mailbox: cid[:]}, 1<<20); werr != nil {
			t.Fatal(werr)
		}
		if len(all.Messages) == 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(all.Messages) != 3 {
		t.Fatalf("the node holds %d of 3 public messages", len(all.Messages))
	}
	pubSize := len(all.Messages[0].Data) + wire.MessageOverhead
	for maxBytes, want := range map[int]int{1: 1, pubSize: 1, 2*pubSize + 10: 2, 3 * pubSize: 3} {
		resp, werr := nd.ReadPublic(&wire.PublicReq{Mailbox: cid[:], MaxBytes: maxBytes}, 1<<20)
		if werr != nil {
			t.Fatal(werr)
		}
		if len(resp.Messages) != want {
			t.Fatalf("public MaxBytes %d: %d messages, want %d", maxBytes, len(resp.Messages), want)
		}
		for i, m := range resp.Messages { // the newest: the end of the full answer
			if string(m.Hash) != string(all.Messages[3-want+i].Hash) {
				t.Fatalf("public MaxBytes %d: message %d is not among the newest", maxBytes, i)
			}
		}
	}
}
