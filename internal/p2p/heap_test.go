package p2p

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/umbra-im/umbra/internal/wire"
)

// slowStreams is the number of streams of the slow-frame attack.
const slowStreams = 200

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// slowFrameAttack opens one stream on proto from each of n throwaway
// client hosts (each its own peer ID, as an attacker would use to get
// around per-peer caps) and writes prefix on it, then nothing more. It
// returns the growth of the live heap once the server holds every stream,
// with the attacking hosts' own memory counted in the baseline.
func slowFrameAttack(t *testing.T, srvHost host.Host, active func() int, proto string, prefix []byte, n int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hosts := make([]host.Host, n)
	for i := range hosts {
		h, err := NewClientHost()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		if err := h.Connect(ctx, peer.AddrInfo{ID: srvHost.ID(), Addrs: srvHost.Addrs()}); err != nil {
			t.Fatal(err)
		}
		hosts[i] = h
	}
	streams := make([]network.Stream, 0, n)
	t.Cleanup(func() {
		for _, s := range streams {
			s.Reset()
		}
	})
	// Open the streams and negotiate them before the baseline, so that
	// what grows afterwards is what the prefixes make the server hold.
	for _, h := range hosts {
		s, err := h.NewStream(ctx, srvHost.ID(), protocol.ID(proto))
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	before := heapInUse()
	for _, s := range streams {
		if _, err := s.Write(prefix); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); active() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server serves %d streams of %d", active(), n)
		}
	}
	time.Sleep(500 * time.Millisecond) // let every server reader block on the missing bytes
	after := heapInUse()
	if after < before {
		return 0
	}
	return after - before
}

// announce is the start of a session frame announcing a 4 MiB request:
// the length, then the id and kind, then nothing more.
func announce() []byte {
	b := binary.AppendUvarint(nil, wire.MaxFrame+idLen)
	b = binary.BigEndian.AppendUint32(b, 1)
	return append(b, byte(wire.KindOnion))
}

// 200 sessions that each announce a 4 MiB request and send nothing more
// must not pin 200 × 4 MiB: the reader allocates as bytes arrive. (Before
// the fix the heap grew by 800 MiB.)
func TestSlowFramesHeapSession(t *testing.T) {
	p := newPair(t)
	// A real protocol ID, so that the node's resource-manager limits for
	// it apply.
	const proto = wire.ProtoOnionSession
	p.srv.HandleSession(proto, SessionOptions{MaxReq: wire.MaxFrame}, echo)
	grew := slowFrameAttack(t, p.srvHost, p.srv.active, proto, announce(), slowStreams)
	t.Logf("heap grew by %.1f MiB with %d streams announcing %d MiB each", float64(grew)/(1<<20), slowStreams, wire.MaxFrame>>20)
	if limit := uint64(slowStreams * 160 << 10); grew > limit {
		t.Fatalf("heap grew by %d MiB; the bound is %d MiB (160 KiB per stream)", grew>>20, limit>>20)
	}
	// The buffers are reserved in the resource manager, under the Umbra
	// service.
	if got, want := serviceMemory(t, p.srvHost), int64(slowStreams*wire.FirstChunk); got < want {
		t.Errorf("the Umbra service scope holds %d bytes; want at least %d (a first chunk per stream)", got, want)
	}
}

// The same on a one-shot protocol (gossip's p2p.Handle), with 100 streams:
// the node's resource manager takes at most 128 on the gossip protocol.
func TestSlowFramesHeapOneShot(t *testing.T) {
	p := newPair(t)
	const proto, streams = wire.ProtoMembers, 100
	Handle(p.srvHost, proto, 30*time.Second, wire.MaxFrame, func(s *Stream, kind wire.Kind, body []byte) error {
		return s.Reply(wire.KindOnion, &wire.OnionPacket{})
	})
	prefix := binary.AppendUvarint(nil, wire.MaxFrame)
	prefix = append(prefix, byte(wire.KindOnion))
	grew := slowFrameAttack(t, p.srvHost, func() int { return streamsOn(p.srvHost, proto) }, proto, prefix, streams)
	t.Logf("heap grew by %.1f MiB with %d one-shot streams announcing %d MiB each", float64(grew)/(1<<20), streams, wire.MaxFrame>>20)
	if limit := uint64(streams * 160 << 10); grew > limit {
		t.Fatalf("heap grew by %d MiB; the bound is %d MiB (160 KiB per stream)", grew>>20, limit>>20)
	}
}

// streamsOn counts h's open streams on proto.
func streamsOn(h host.Host, proto string) int {
	n := 0
	for _, c := range h.Network().Conns() {
		for _, s := range c.GetStreams() {
			if s.Protocol() == protocol.ID(proto) {
				n++
			}
		}
	}
	return n
}

// serviceMemory is the memory reserved in h's Umbra service scope.
func serviceMemory(t *testing.T, h host.Host) int64 {
	t.Helper()
	var mem int64
	err := h.Network().ResourceManager().ViewService(ServiceName, func(s network.ServiceScope) error {
		mem = s.Stat().Memory
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}
