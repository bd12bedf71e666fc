package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/umbra-im/umbra/internal/wire"
)

// The slot accounting keys sources by address and /24 or /48, loopback
// addresses whole, and refuses over each share.
func TestSlotsShares(t *testing.T) {
	s := newSlots(slotLimits{total: 11, perIP: 2, perSubnet: 3})
	src := func(a string) source { return sourceOfAddr(netip.MustParseAddr(a)) }
	key := func(p string) poolKey { return poolKey{peer.ID(p), "/test/2"} }
	take := func(p, a string, maxPeer int) int {
		if e := s.take(key(p), src(a), maxPeer); e != nil {
			return e.Code
		}
		return 0
	}
	steps := []struct {
		peer, addr string
		maxPeer    int
		want       int
	}{
		{"a", "203.0.113.1", 1, 0},
		{"a", "203.0.113.1", 1, wire.CodeRateLimited}, // a's own cap
		{"b", "203.0.113.1", 9, 0},
		{"c", "203.0.113.1", 9, wire.CodeRateLimited}, // the address's share, whatever the peer
		{"d", "203.0.113.2", 9, 0},
		{"e", "203.0.113.3", 9, wire.CodeRateLimited}, // the /24's share
		{"f", "198.51.100.1", 9, 0},                   // another subnet
		{"g", "2001:db8:1:1::1", 9, 0},
		{"g", "2001:db8:1:2::1", 9, 0},
		{"g", "2001:db8:1:3::1", 9, 0},
		{"h", "2001:db8:1:4::1", 9, wire.CodeRateLimited}, // the /48's share
		{"i", "::ffff:198.51.100.1", 9, 0},                // an IPv4-mapped address is the IPv4 one
		{"j", "198.51.100.1", 9, wire.CodeRateLimited},
		{"k", "127.0.0.1", 9, 0}, // loopback: each address is its own subnet
		{"k", "127.0.0.1", 9, 0},
		{"l", "127.0.0.2", 9, 0},
		{"m", "127.0.0.3", 9, wire.CodeUnavailable}, // the server is full
	}
	for i, st := range steps {
		a := st.addr
		if strings.HasPrefix(a, "::ffff:") {
			a = netip.MustParseAddr(a).Unmap().String()
		}
		if got := take(st.peer, a, st.maxPeer); got != st.want {
			t.Fatalf("step %d (%s from %s): got %d, want %d", i, st.peer, st.addr, got, st.want)
		}
	}
	if n := s.inUse(); n != 11 {
		t.Fatalf("%d slots in use, want 11", n)
	}
	s.give(key("k"), src("127.0.0.1"))
	if got := take("m", "127.0.0.3", 9); got != 0 {
		t.Fatalf("after a slot was given back: %d", got)
	}
	if got := take("k", "127.0.0.1", 9); got != wire.CodeUnavailable {
		t.Fatalf("full server: %d", got)
	}
	if got := sourceOfAddr(netip.MustParseAddr("127.0.5.1")).subnet.String(); got != "127.0.5.1/32" {
		t.Errorf("loopback subnet %s", got)
	}
	if got := sourceOfAddr(netip.MustParseAddr("10.1.2.3")).subnet.String(); got != "10.1.2.0/24" {
		t.Errorf("IPv4 subnet %s", got)
	}
}

// hostOn is a node host listening on ip, so that its connections come
// from ip (the TCP transport dials from its listening address).
func hostOn(t *testing.T, ip string) host.Host {
	t.Helper()
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	h, err := NewNodeHost(priv, []string{"/ip4/" + ip + "/tcp/0"}, nil, DialFromListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// flood opens up to sessions sessions from h to srv on proto and sends n
// requests on each, never waiting for answers; it counts the 429 and 503
// answers. The streams stay open until the test ends.
func flood(t *testing.T, h host.Host, srv host.Host, proto string, sessions, n int, refused *atomic.Int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: srv.ID(), Addrs: srv.Addrs()}); err != nil {
		t.Fatal(err)
	}
	body, _ := wire.Marshal(&wire.OnionPacket{Data: []byte("hold")})
	var reqs []byte
	for i := 1; i <= n; i++ {
		reqs = appendFrame(reqs, uint32(i), wire.KindOnion, body)
	}
	for range sessions {
		s, err := h.NewStream(ctx, srv.ID(), protocol.ID(proto))
		if err != nil {
			continue
		}
		t.Cleanup(func() { s.Reset() })
		if _, err := s.Write(reqs); err != nil {
			continue // refused by the server: more sessions than allowed
		}
		go func() {
			r := bufio.NewReader(s)
			for {
				id, kind, b, err := readFrame(r, 0)
				if err != nil {
					return
				}
				var e wire.Error
				if id != 0 && kind == wire.KindError && wire.Unmarshal(b, &e) == nil && (e.Code == wire.CodeRateLimited || e.Code == wire.CodeUnavailable) {
					refused.Add(1)
				}
			}
		}()
	}
}

// holdHandler holds "hold" requests until release is closed (or the
// server closes), counting them, and answers anything else at once.
func holdHandler(held *atomic.Int32, release <-chan struct{}) Handler {
	return func(ctx context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
		var pkt wire.OnionPacket
		if err := wire.Unmarshal(body, &pkt); err != nil {
			return wire.KindError, wire.Errorf(wire.CodeBadRequest, "%v", err)
		}
		if string(pkt.Data) == "hold" {
			held.Add(1)
			defer held.Add(-1)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return wire.KindOnion, &pkt
	}
}

// Throwaway peer IDs from one address cannot take the server's request
// slots from a peer at another address: at most DefaultMaxInflightPerIP of
// their requests are served, the rest answered 429 at once, and an honest
// call from elsewhere is served at once. (Before the fix, two such peers
// held all 4,096 slots and the honest call waited until they let go.)
func TestThrowawayPeersCannotStarveOthers(t *testing.T) {
	p := newPair(t) // the server listens on 127.0.0.1; the honest client comes from there
	var held atomic.Int32
	release := make(chan struct{})
	defer close(release)
	p.srv.HandleSession(testProto, SessionOptions{}, holdHandler(&held, release))

	// Four attacking peers on one address, each trying 16 sessions of 128
	// long-polls: 8,192 requests, twice the server's slots.
	var refused atomic.Int32
	for range 4 {
		a := hostOn(t, "127.0.5.1")
		flood(t, a, p.srvHost, testProto, 16, DefaultMaxInflight, &refused)
		if conns := p.srvHost.Network().ConnsToPeer(a.ID()); len(conns) == 0 || !strings.Contains(conns[0].RemoteMultiaddr().String(), "/127.0.5.1/") {
			t.Fatalf("attacker's connection comes from %v, want 127.0.5.1", conns)
		}
	}
	// Wait until the attack has settled: every request it got in is held.
	time.Sleep(time.Second)
	for last := int32(-1); held.Load() != last; time.Sleep(300 * time.Millisecond) {
		last = held.Load()
	}
	t.Logf("attack: %d requests held, %d refused at once", held.Load(), refused.Load())

	pool := NewPool(p.cliHost, PoolOptions{})
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if got, err := call(ctx, pool, p.srvHost.ID(), echoProto, "honest"); err != nil || got != "honest" {
		t.Fatalf("honest call during the attack: %q, %v (after %v)", got, err, time.Since(start))
	}
	t.Logf("honest call answered in %v", time.Since(start))
	if n := held.Load(); n > DefaultMaxInflightPerIP {
		t.Errorf("one address holds %d requests; its share is %d", n, DefaultMaxInflightPerIP)
	}
	if refused.Load() == 0 {
		t.Error("no request of the flood was refused")
	}
}

// A peer's requests over all its sessions of a protocol are capped: past
// MaxPeerInflight they are answered 429 at once, without stalling its
// sessions.
func TestPerPeerInflightCap(t *testing.T) {
	p := newPair(t)
	var held atomic.Int32
	release := make(chan struct{})
	defer close(release)
	p.srv.HandleSession(testProto, SessionOptions{MaxPeerInflight: 100}, holdHandler(&held, release))
	var refused atomic.Int32
	a := hostOn(t, "127.0.6.1")
	flood(t, a, p.srvHost, testProto, 2, 80, &refused) // 160 requests on 2 sessions
	waitFor(t, "the cap to be reached and the rest refused", func() bool { return held.Load() == 100 && refused.Load() == 60 })
	time.Sleep(200 * time.Millisecond)
	if h, r := held.Load(), refused.Load(); h != 100 || r != 60 {
		t.Fatalf("%d held, %d refused; want 100 and 60", h, r)
	}
}

// An honest client with a few hundred calls in flight to one server gets
// every answer: its pool keeps within the server's per-peer cap and queues
// the rest, and its address's share is far above it.
func TestManyCallsInFlightFromOneClient(t *testing.T) {
	p := newPair(t)
	var inflight, maxInflight atomic.Int32
	p.srv.HandleSession(testProto, SessionOptions{}, func(ctx context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := maxInflight.Load(); n > m && !maxInflight.CompareAndSwap(m, n); m = maxInflight.Load() {
		}
		return echo(ctx, from, kind, body)
	})
	pool := NewPool(p.cliHost, PoolOptions{})
	defer pool.Close()
	const calls = 400
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := fmt.Sprintf("sleep:300:%d", i)
			if got, err := call(context.Background(), pool, p.srvHost.ID(), echoProto, data); err != nil || got != data {
				if failed.Add(1) == 1 {
					t.Errorf("call %d: %q, %v", i, got, err)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d calls failed", n, calls)
	}
	if m := maxInflight.Load(); m > DefaultMaxPeerInflight || m < DefaultMaxPeerInflight/2 {
		t.Errorf("%d calls served at once; want up to the per-peer cap %d", m, DefaultMaxPeerInflight)
	}
}

// A peer that does not read its answers cannot make the server queue them:
// an answer holds its slot until written, so the session's reader stops at
// MaxInflight unwritten answers. (Before, each answer was queued and its
// slot freed, and the queue grew with every request.)
func TestUnreadAnswersBounded(t *testing.T) {
	p := newPair(t)
	const answer = 64 << 10
	var served atomic.Int32
	p.srv.HandleSession(testProto, SessionOptions{}, func(ctx context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
		served.Add(1)
		return wire.KindOnion, &wire.OnionPacket{Data: make([]byte, answer)}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.cliHost.NewStream(ctx, p.srvHost.ID(), testProto)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	body, _ := wire.Marshal(&wire.OnionPacket{Data: []byte("x")})
	const requests = 2000
	var reqs []byte
	for i := 1; i <= requests; i++ {
		reqs = appendFrame(reqs, uint32(i), wire.KindOnion, body)
	}
	before := heapInUse()
	if _, err := s.Write(reqs); err != nil {
		t.Fatal(err)
	}
	// Never read. Wait until the server stops serving.
	time.Sleep(time.Second)
	for last := int32(-1); served.Load() != last; time.Sleep(300 * time.Millisecond) {
		last = served.Load()
	}
	grew := int64(heapInUse()) - int64(before)
	t.Logf("%d of %d requests served; heap grew by %.1f MiB", served.Load(), requests, float64(grew)/(1<<20))
	if n := served.Load(); n > 2*DefaultMaxInflight {
		t.Errorf("the server served %d requests whose answers nobody reads; want at most about %d", n, DefaultMaxInflight)
	}
	if grew > 32<<20 {
		t.Errorf("heap grew by %d MiB holding unread answers", grew>>20)
	}
}

// errorsAsWire is errors.As for *wire.Error.
func errorsAsWire(err error) (*wire.Error, bool) {
	var we *wire.Error
	ok := errors.As(err, &we)
	return we, ok
}
