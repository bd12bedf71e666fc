package node_test

import (
	"context"
	"crypto/rand"
	"runtime"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/wire"
)

// relayBench sends hand-built onion packets from a throwaway client host
// over in-process nodes, on 2-hop (middle, exit) and 3-hop (guard, middle,
// exit) paths with the same middle and exit.
type relayBench struct {
	tn                  *testNet
	guard, middle, exit *node.Node
	hops                map[*node.Node]onion.Hop
	oc                  *onionClient
	key                 *mailbox.Key // a mailbox at the exit holding about 1 MiB
	lastTS              int64
}

func newRelayBench(b *testing.B) *relayBench {
	b.Helper()
	tn := startNet(b, 5)
	rb := &relayBench{tn: tn, guard: tn.nodes[0], middle: tn.nodes[1], exit: tn.nodes[2], hops: map[*node.Node]onion.Hop{},
		oc: newOnionClient(b)}
	for _, nd := range []*node.Node{rb.guard, rb.middle, rb.exit} {
		rb.hops[nd] = rb.oc.hop(b, nd)
	}
	// About 1.2 MiB in one mailbox, so that a retrieve answer fills the
	// largest reply packet (the exit caps it at 1 MiB of data).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := tn.client(ctx)
	rb.key, _ = mailbox.NewKey()
	for i := 0; i < 6; i++ {
		data := make([]byte, 200<<10)
		rand.Read(data)
		if _, err := c.Put(ctx, rb.key.ID(), 0, time.Hour, data); err != nil {
			b.Fatalf("put: %v", err)
		}
	}
	return rb
}

// retrieve is a freshly signed retrieve request for the bench mailbox
// (each signature once: nodes refuse replayed signatures).
func (rb *relayBench) retrieve(b *testing.B) []byte {
	id := rb.key.ID()
	req := &wire.RetrieveReq{Mailbox: id[:]}
	now := time.Now()
	if ms := now.UnixMilli(); ms <= rb.lastTS {
		now = time.UnixMilli(rb.lastTS + 1)
	}
	req.Auth.Timestamp, req.Auth.Sig = rb.key.Sign(mailbox.MethodRetrieve, now, req.AuthFields())
	rb.lastTS = req.Auth.Timestamp
	p, err := wire.EncodeMsg(wire.KindRetrieveReq, req)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// send builds a packet for path, sends it to path[0] and returns the bytes
// the whole process allocated during the call (not the build or the
// client's opening of the reply), and the reply's size.
func (rb *relayBench) send(b *testing.B, path []*node.Node, payload []byte) (uint64, int) {
	hops := make([]onion.Hop, len(path))
	for i, nd := range path {
		hops[i] = rb.hops[nd]
	}
	pkt, circ, err := onion.Build(hops, payload)
	if err != nil {
		b.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	reply, err := rb.oc.send(ctx, path[0].ID(), pkt)
	cancel()
	runtime.ReadMemStats(&ms)
	if err != nil {
		b.Fatalf("onion call over %d hops: %v", len(path), err)
	}
	if _, err := circ.Open(reply); err != nil {
		b.Fatalf("open reply over %d hops: %v", len(path), err)
	}
	return ms.TotalAlloc - before, len(reply)
}

// BenchmarkOnionRelayMemory reports the bytes one relay allocates for one
// onion request: the whole process's allocations during a 3-hop call minus
// those during a 2-hop call over the same middle and exit (the extra hop is
// the guard; background loops add a few KiB of noise). "request" sends a
// 1280 KiB request packet that the exit refuses with a small answer (the
// shape of the memory attack); "reply" sends a small retrieve whose answer
// fills a 1280 KiB reply packet.
func BenchmarkOnionRelayMemory(b *testing.B) {
	rb := newRelayBench(b)
	big := make([]byte, 1200<<10)
	rand.Read(big)
	big[0] = 0xee // no such request kind: the exit answers 400
	for _, c := range []struct {
		name    string
		payload func() []byte
	}{
		{"request=1280KiB", func() []byte { return big }},
		{"reply=1280KiB", func() []byte { return rb.retrieve(b) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var two, three uint64
			var replySize int
			for i := 0; i < b.N; i++ {
				a2, _ := rb.send(b, []*node.Node{rb.middle, rb.exit}, c.payload())
				a3, rs := rb.send(b, []*node.Node{rb.guard, rb.middle, rb.exit}, c.payload())
				two += a2
				three += a3
				replySize = rs
			}
			perRelay := (float64(three) - float64(two)) / float64(b.N)
			b.ReportMetric(float64(three)/float64(b.N)/(1<<10), "3hop-KiB/op")
			b.ReportMetric(float64(two)/float64(b.N)/(1<<10), "2hop-KiB/op")
			b.ReportMetric(perRelay/(1<<10), "relay-KiB/op")
			b.ReportMetric(perRelay/float64(onion.MaxPacket), "relay-packets/op")
			b.ReportMetric(float64(replySize>>10), "reply-KiB")
		})
	}
}
