package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/p2p"
	"github.com/umbra-im/umbra/internal/wire"
)

type recorder struct {
	mu     sync.Mutex
	events []node.OnionEvent
}

func (r *recorder) add(ev node.OnionEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) all() []node.OnionEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// link is one direction of one hop-to-hop connection, and what crossed it.
type link struct {
	from, to peer.ID
	reply    bool
}

// TestOnionMetadata checks DESIGN §8 against what every hop actually saw
// while a client stored and read a message through onion paths.
func TestOnionMetadata(t *testing.T) {
	rec := &recorder{}
	tn := startNetCfg(t, 7, func(_ int, c *node.Config) { c.OnionObserver = rec.add })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := tn.client(ctx)
	client := c.Host().ID()
	key, _ := mailbox.NewKey()
	mb := key.ID()
	secret := []byte("the content no relay may read")
	res, err := c.Put(ctx, mb, 0, time.Hour, secret)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Get(ctx, key, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("get: %v, %d", err, len(msgs))
	}
	events := rec.all()
	if len(events) == 0 {
		t.Fatal("no onion traffic recorded")
	}
	nodes := map[peer.ID]bool{}
	for _, nd := range tn.nodes {
		nodes[nd.ID()] = true
	}
	links := map[link][][]byte{}
	guards, exits := 0, 0
	for _, ev := range events {
		seen := [][]byte{ev.In, ev.Out, ev.ReplyIn, ev.ReplyOut, ev.Request}
		atGuard := ev.From == client
		if atGuard {
			guards++
			// The guard sees the client, never the mailbox, the content,
			// or the exit.
			for _, b := range seen {
				if bytes.Contains(b, mb[:]) || bytes.Contains(b, secret) || bytes.Contains(b, res.Hash[:]) {
					t.Errorf("guard %s saw the mailbox, content or message hash", p2p.ShortID(ev.Node))
				}
			}
			if ev.Next == "" {
				t.Errorf("guard %s was also the exit", p2p.ShortID(ev.Node))
			}
		} else if !nodes[ev.From] {
			t.Errorf("hop %s got a packet from %s, neither the client nor a node", p2p.ShortID(ev.Node), ev.From)
		}
		if ev.Next == "" {
			exits++
			// The exit learns the mailbox (it must) but not who asked.
			if atGuard {
				t.Errorf("exit %s talked to the client directly", p2p.ShortID(ev.Node))
			}
			for _, b := range seen {
				if bytes.Contains(b, []byte(client)) {
					t.Errorf("exit %s saw the client's peer ID", p2p.ShortID(ev.Node))
				}
			}
		}
		if !atGuard && ev.Next != "" {
			// The middle sees two nodes and nothing else.
			for _, b := range seen {
				if bytes.Contains(b, mb[:]) || bytes.Contains(b, secret) || bytes.Contains(b, []byte(client)) {
					t.Errorf("middle %s saw the mailbox, content or client", p2p.ShortID(ev.Node))
				}
			}
		}
		links[link{ev.From, ev.Node, false}] = append(links[link{ev.From, ev.Node, false}], ev.In)
		links[link{ev.Node, ev.From, true}] = append(links[link{ev.Node, ev.From, true}], ev.ReplyOut)
		if ev.Next != "" {
			links[link{ev.Node, ev.Next, false}] = append(links[link{ev.Node, ev.Next, false}], ev.Out)
			links[link{ev.Next, ev.Node, true}] = append(links[link{ev.Next, ev.Node, true}], ev.ReplyIn)
		}
		// Every packet on every link has one of the fixed sizes.
		for _, b := range [][]byte{ev.In, ev.Out, ev.ReplyIn, ev.ReplyOut} {
			if b != nil && !slices.Contains(onion.Sizes, len(b)) {
				t.Errorf("a %d-byte packet crossed a link; sizes are %v", len(b), onion.Sizes)
			}
		}
	}
	if guards == 0 || exits == 0 || guards != exits {
		t.Fatalf("recorded %d guard and %d exit events; want equal and non-zero", guards, exits)
	}
	// Only guards ever had a connection from the client.
	for _, nd := range tn.nodes {
		if len(nd.Host().Network().ConnsToPeer(client)) > 0 && !slices.Contains(c.Paths().Guards(), nd.ID()) && !wasGuard(events, nd.ID(), client) {
			t.Errorf("node %s, not a guard, is connected to the client", p2p.ShortID(nd.ID()))
		}
	}
	// No byte string of 64 bytes or more appears on two different links.
	index := map[[32]byte]link{}
	for l, pkts := range links {
		for _, p := range pkts {
			for i := 0; i+32 <= len(p); i++ {
				index[sha256.Sum256(p[i:i+32])] = l
			}
		}
	}
	for l, pkts := range links {
		for _, p := range pkts {
			for i := 0; i+32 <= len(p); i += 32 {
				if o, ok := index[sha256.Sum256(p[i:i+32])]; ok && o != l {
					t.Fatalf("the same bytes crossed link %v and link %v", o, l)
				}
			}
		}
	}
	t.Logf("%d onion hops recorded over %d links; %d requests", len(events), len(links), exits)
}

func wasGuard(events []node.OnionEvent, n, client peer.ID) bool {
	for _, ev := range events {
		if ev.Node == n && ev.From == client {
			return true
		}
	}
	return false
}

// A packet replayed to its guard is dropped.
func TestOnionReplayDropped(t *testing.T) {
	rec := &recorder{}
	tn := startNetCfg(t, 5, func(_ int, c *node.Config) { c.OnionObserver = rec.add })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := tn.client(ctx)
	key, _ := mailbox.NewKey()
	if _, err := c.Put(ctx, key.ID(), 0, time.Hour, []byte("once")); err != nil {
		t.Fatal(err)
	}
	var first node.OnionEvent
	for _, ev := range rec.all() {
		if ev.From == c.Host().ID() {
			first = ev
			break
		}
	}
	if first.In == nil {
		t.Fatal("no guard event recorded")
	}
	before := len(rec.all())
	var out wire.OnionPacket
	s, err := p2p.OpenSession(ctx, c.Host(), first.Node, p2p.Proto{ID: wire.ProtoOnionSession, MaxReq: onion.MaxPacket + 64, MaxResp: onion.MaxPacket + 64}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Call(ctx, wire.KindOnion, &wire.OnionPacket{Data: first.In}, wire.KindOnion, &out)
	var we *wire.Error
	if err == nil || !errorsAs(err, &we) || we.Code != wire.CodeUnauthorized {
		t.Fatalf("replayed packet: got %v, want a 401 replay refusal", err)
	}
	if after := len(rec.all()); after != before {
		t.Fatalf("the replayed packet was relayed (%d new hop events)", after-before)
	}
}

func errorsAs(err error, target **wire.Error) bool { return errors.As(err, target) }
