package p2p

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/wire"
)

const testProto = "/test/echo/2"

var echoProto = Proto{ID: testProto, MaxReq: 64 << 10, MaxResp: 64 << 10}

// pair is a node host serving test handlers and a client host connected to it.
type pair struct {
	srvHost host.Host
	cliHost host.Host
	srv     *Server
}

func newPair(t testing.TB) *pair {
	t.Helper()
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	sh, err := NewNodeHost(priv, []string{"/ip4/127.0.0.1/tcp/0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := NewClientHost()
	if err != nil {
		sh.Close()
		t.Fatal(err)
	}
	if err := ch.Connect(context.Background(), peer.AddrInfo{ID: sh.ID(), Addrs: sh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	p := &pair{srvHost: sh, cliHost: ch, srv: NewServer(sh)}
	t.Cleanup(func() {
		p.srv.Close()
		ch.Close()
		sh.Close()
	})
	return p
}

// echo answers an OnionPacket with the same data; "sleep:<ms>:" data makes
// it wait first, "bad" answers an error.
func echo(ctx context.Context, _ peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
	var pkt wire.OnionPacket
	if kind != wire.KindOnion {
		return wire.KindError, wire.Errorf(wire.CodeBadRequest, "unsupported request %s", kind)
	}
	if err := wire.Unmarshal(body, &pkt); err != nil {
		return wire.KindError, wire.Errorf(wire.CodeBadRequest, "%v", err)
	}
	var ms int
	if _, err := fmt.Sscanf(string(pkt.Data), "sleep:%d:", &ms); err == nil {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
		}
	}
	if string(pkt.Data) == "bad" {
		return wire.KindError, wire.Errorf(wire.CodeBadRequest, "bad data")
	}
	return wire.KindOnion, &pkt
}

func call(ctx context.Context, pool *Pool, to peer.ID, proto Proto, data string) (string, error) {
	var out wire.OnionPacket
	err := pool.Call(ctx, to, proto, wire.KindOnion, &wire.OnionPacket{Data: []byte(data)}, wire.KindOnion, &out)
	return string(out.Data), err
}

// Many concurrent calls share one session and are answered out of order:
// the server holds every request until all have arrived, then answers them
// last to first.
func TestSessionPipelining(t *testing.T) {
	p := newPair(t)
	const calls = 100
	var arrived atomic.Int32
	all := make(chan struct{})
	answered := make([]chan struct{}, calls+1)
	for i := range answered {
		answered[i] = make(chan struct{})
	}
	close(answered[calls])
	p.srv.HandleSession(testProto, SessionOptions{}, func(ctx context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
		var pkt wire.OnionPacket
		if err := wire.Unmarshal(body, &pkt); err != nil {
			return wire.KindError, wire.Errorf(wire.CodeBadRequest, "%v", err)
		}
		var i int
		fmt.Sscanf(string(pkt.Data), "call-%d", &i)
		if arrived.Add(1) == calls {
			close(all)
		}
		<-all
		<-answered[i+1]
		defer close(answered[i])
		return wire.KindOnion, &pkt
	})
	pool := NewPool(p.cliHost, PoolOptions{})
	defer pool.Close()
	// Each answer must reach its own caller although they come back in
	// the reverse order of the requests.
	var wg sync.WaitGroup
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := fmt.Sprintf("call-%d", i)
			got, err := call(context.Background(), pool, p.srvHost.ID(), echoProto, data)
			if err != nil || got != data {
				t.Errorf("call %d: got %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	if n := pool.Sessions(); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
}

// A call whose context ends returns at once; its late answer is dropped and
// the session goes on serving other calls.
func TestSessionCancel(t *testing.T) {
	p := newPair(t)
	release := make(chan struct{})
	var served atomic.Int32
	p.srv.HandleSession(testProto, SessionOptions{}, func(ctx context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
		if bytes.Contains(body, []byte("block")) {
			<-release
		}
		served.Add(1)
		return echo(ctx, from, kind, body)
	})
	pool := NewPool(p.cliHost, PoolOptions{})
	defer pool.Close()
	to := p.srvHost.ID()
	if _, err := call(context.Background(), pool, to, echoProto, "warm-up"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	start := time.Now()
	_, err := call(ctx, pool, to, echoProto, "block")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled call: %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("cancelled call took %v", el)
	}
	close(release) // the late answer arrives now and must be dropped
	for i := 0; i < 20; i++ {
		data := fmt.Sprintf("after-%d", i)
		got, err := call(context.Background(), pool, to, echoProto, data)
		if err != nil || got != data {
			t.Fatalf("call after cancel: got %q, %v", got, err)
		}
	}
	if n := pool.Sessions(); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
	waitFor(t, "the abandoned request to be served", func() bool { return served.Load() == 22 })
}

// A peer that resets the session fails every pending call at once; the
// next call opens a new session.
func TestSessionPeerReset(t *testing.T) {
	p := newPair(t)
	var sessions atomic.Int32
	// A raw server: answers requests, but resets the stream on "reset"
	// without answering the requests still pending.
	p.srvHost.SetStreamHandler(testProto, func(s network.Stream) {
		sessions.Add(1)
		r := bufio.NewReader(s)
		var w frameWriter
		w.s = s
		for {
			id, kind, body, err := readFrame(r, 0)
			if err != nil {
				s.Reset()
				return
			}
			switch {
			case bytes.Contains(body, []byte("reset")):
				time.Sleep(50 * time.Millisecond)
				s.Reset()
				return
			case bytes.Contains(body, []byte("hang")):
				// never answered
			default:
				k, v := echo(context.Background(), "", kind, body)
				b, _ := wire.Marshal(v)
				_ = w.write(id, k, b, false)
			}
		}
	})
	pool := NewPool(p.cliHost, PoolOptions{})
	defer pool.Close()
	to := p.srvHost.ID()
	if got, err := call(context.Background(), pool, to, echoProto, "hello"); err != nil || got != "hello" {
		t.Fatalf("first call: %q, %v", got, err)
	}
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		go func() {
			_, err := call(context.Background(), pool, to, echoProto, "hang")
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if _, err := call(context.Background(), pool, to, echoProto, "reset"); err == nil {
		t.Fatal("call on a reset session succeeded")
	}
	for i := 0; i < 10; i++ {
		if err := <-errs; err == nil {
			t.Fatal("pending call succeeded on a reset session")
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("pending calls failed after %v; want at once", el)
	}
	if got, err := call(context.Background(), pool, to, echoProto, "again"); err != nil || got != "again" {
		t.Fatalf("call after reset: %q, %v", got, err)
	}
	if n := sessions.Load(); n != 2 {
		t.Errorf("server saw %d sessions, want 2", n)
	}
	if n := pool.Sessions(); n != 1 {
		t.Errorf("pool holds %d sessions, want 1", n)
	}
}

// The server serves at most MaxInflight requests of a session at once and
// stops reading beyond that; the rest are served as slots free up.
func TestServerConcurrencyBound(t *testing.T) {
	p := newPair(t)
	const bound = 4
	var inflight, maxInflight atomic.Int32
	release := make(chan struct{})
	p.srv.HandleSession(testProto, SessionOptions{MaxInflight: bound}, func(ctx context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
		n := inflight.Add(1)
		for {
			m := maxInflight.Load()
			if n <= m || maxInflight.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		inflight.Add(-1)
		return echo(ctx, from, kind, body)
	})
	s, err := OpenSession(context.Background(), p.cliHost, p.srvHost.ID(), echoProto, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out wire.OnionPacket
			data := fmt.Sprintf("req-%d", i)
			err := s.Call(context.Background(), wire.KindOnion, &wire.OnionPacket{Data: []byte(data)}, wire.KindOnion, &out)
			if err != nil || string(out.Data) != data {
				t.Errorf("call %d: %q, %v", i, out.Data, err)
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for inflight.Load() < bound && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if n := inflight.Load(); n != bound {
		t.Errorf("%d requests served at once, want %d", n, bound)
	}
	close(release)
	wg.Wait()
	if m := maxInflight.Load(); m > bound {
		t.Errorf("server served %d at once; the bound is %d", m, bound)
	}
}

// A request over the limit is refused at the caller without touching the
// session; an oversized frame that reaches the server ends the session
// with an error frame; a bad request gets an error answer and the session
// goes on.
func TestSessionBadAndOversized(t *testing.T) {
	p := newPair(t)
	p.srv.HandleSession(testProto, SessionOptions{MaxReq: 1024}, echo)
	to := p.srvHost.ID()
	small := Proto{ID: testProto, MaxReq: 1024}
	pool := NewPool(p.cliHost, PoolOptions{})
	defer pool.Close()

	// pending call to check the session survives what follows
	pending := make(chan error, 1)
	go func() {
		_, err := call(context.Background(), pool, to, small, "sleep:300:")
		pending <- err
	}()
	time.Sleep(50 * time.Millisecond)

	_, err := call(context.Background(), pool, to, small, strings.Repeat("x", 2000))
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeTooLarge {
		t.Fatalf("oversized request: %v, want a 413 error", err)
	}
	_, err = call(context.Background(), pool, to, small, "bad")
	if !errors.As(err, &we) || we.Code != wire.CodeBadRequest {
		t.Fatalf("bad request: %v, want a 400 error", err)
	}
	var resp wire.OnionPacket
	err = pool.Call(context.Background(), to, small, wire.KindNodesReq, &wire.NodesReq{}, wire.KindOnion, &resp)
	if !errors.As(err, &we) || !strings.Contains(we.Msg, "unsupported") {
		t.Fatalf("unknown kind: %v, want an error answer", err)
	}
	if err := <-pending; err != nil {
		t.Fatalf("pending call: %v", err)
	}
	if n := pool.Sessions(); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}

	// A client that does not check the limit: the server answers with a
	// session-level error and ends the session.
	loose := Proto{ID: testProto, MaxReq: 64 << 10}
	s, err := OpenSession(context.Background(), p.cliHost, to, loose, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Call(context.Background(), wire.KindOnion, &wire.OnionPacket{Data: bytes.Repeat([]byte("x"), 2000)}, wire.KindOnion, &resp)
	if err == nil {
		t.Fatal("oversized frame answered")
	}
	if errors.As(err, &we) {
		t.Errorf("session-level error came back as a refusal of the call: %v", err)
	}
	<-s.Done()
	if !strings.Contains(s.Err().Error(), "too large") {
		t.Errorf("session ended with %v, want the server's frame-too-large error", s.Err())
	}
	// The pool's own session is unaffected.
	if got, err := call(context.Background(), pool, to, small, "still"); err != nil || got != "still" {
		t.Fatalf("call after another session broke: %q, %v", got, err)
	}
}

// Long calls fill a session's slots; the pool opens another session for
// short calls instead of queueing them behind the long ones.
func TestPoolLongPollsDoNotBlock(t *testing.T) {
	p := newPair(t)
	p.srv.HandleSession(testProto, SessionOptions{}, echo)
	pool := NewPool(p.cliHost, PoolOptions{MaxInflight: 4})
	defer pool.Close()
	to := p.srvHost.ID()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call(ctx, pool, to, echoProto, "sleep:3000:")
		}()
	}
	time.Sleep(200 * time.Millisecond)
	for i := 0; i < 10; i++ {
		start := time.Now()
		if got, err := call(context.Background(), pool, to, echoProto, "short"); err != nil || got != "short" {
			t.Fatalf("short call: %q, %v", got, err)
		}
		if el := time.Since(start); el > time.Second {
			t.Fatalf("short call waited %v behind long ones", el)
		}
	}
	if n := pool.Sessions(); n != 2 {
		t.Errorf("%d sessions, want 2 (4 + 2 long calls in flight)", n)
	}
	cancel()
	wg.Wait()
}

// Sessions unused for IdleTimeout are closed by the pool, and by the
// server for its own idle timeout.
func TestSessionIdle(t *testing.T) {
	p := newPair(t)
	p.srv.HandleSession(testProto, SessionOptions{}, echo)
	p.srv.HandleSession("/test/short-idle/2", SessionOptions{IdleTimeout: 200 * time.Millisecond}, echo)
	pool := NewPool(p.cliHost, PoolOptions{IdleTimeout: 200 * time.Millisecond})
	defer pool.Close()
	if _, err := call(context.Background(), pool, p.srvHost.ID(), echoProto, "x"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pool to close its idle session", func() bool { return pool.Sessions() == 0 })
	waitFor(t, "server to see the session closed", func() bool { return p.srv.active() == 0 })

	s, err := OpenSession(context.Background(), p.cliHost, p.srvHost.ID(), Proto{ID: "/test/short-idle/2"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out wire.OnionPacket
	if err := s.Call(context.Background(), wire.KindOnion, &wire.OnionPacket{Data: []byte("y")}, wire.KindOnion, &out); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("server did not close an idle session")
	}
}

// A long call keeps a server session alive past its idle timeout.
func TestSessionIdleNotWhileBusy(t *testing.T) {
	p := newPair(t)
	p.srv.HandleSession(testProto, SessionOptions{IdleTimeout: 100 * time.Millisecond}, echo)
	s, err := OpenSession(context.Background(), p.cliHost, p.srvHost.ID(), echoProto, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out wire.OnionPacket
	if err := s.Call(context.Background(), wire.KindOnion, &wire.OnionPacket{Data: []byte("sleep:500:")}, wire.KindOnion, &out); err != nil {
		t.Fatalf("long call on a session with a short idle timeout: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Closing the pool and the server ends every goroutine they started, with
// calls in flight.
func TestSessionNoGoroutineLeak(t *testing.T) {
	p := newPair(t)
	p.srv.HandleSession(testProto, SessionOptions{}, echo)
	p.srv.HandleSession("/test/other/2", SessionOptions{}, echo)
	// Let the hosts' own goroutines settle before counting.
	time.Sleep(200 * time.Millisecond)
	before := runtime.NumGoroutine()

	pool := NewPool(p.cliHost, PoolOptions{MaxInflight: 8})
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			proto := echoProto
			if i%2 == 1 {
				proto = Proto{ID: "/test/other/2"}
			}
			data := "quick"
			if i%4 == 0 {
				data = "sleep:10000:" // still in flight at Close
			}
			call(context.Background(), pool, p.srvHost.ID(), proto, data)
		}()
	}
	waitFor(t, "sessions to open", func() bool { return pool.Sessions() >= 2 })
	time.Sleep(100 * time.Millisecond)
	pool.Close()
	p.srv.Close()
	wg.Wait()
	if _, err := call(context.Background(), pool, p.srvHost.ID(), echoProto, "x"); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("call on a closed pool: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// active is the number of streams being served (tests).
func (srv *Server) active() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.streams)
}

// A peer that Accept refuses has its session reset before anything is
// read: its requests reach no handler and hold no memory.
func TestAcceptBeforeRead(t *testing.T) {
	p := newPair(t)
	var called atomic.Int32
	var asked atomic.Int32
	p.srv.HandleSession(testProto, SessionOptions{Accept: func(peer.ID) bool { asked.Add(1); return false }},
		func(ctx context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
			called.Add(1)
			return echo(ctx, from, kind, body)
		})
	pool := NewPool(p.cliHost, PoolOptions{})
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := call(ctx, pool, p.srvHost.ID(), echoProto, strings.Repeat("x", 60<<10)); err == nil {
		t.Fatal("a refused peer's call was answered")
	}
	if asked.Load() == 0 || called.Load() != 0 {
		t.Fatalf("Accept asked %d times, handler called %d times", asked.Load(), called.Load())
	}
	if m := serviceMemory(t, p.srvHost); m != 0 {
		t.Fatalf("%d bytes reserved for a refused peer", m)
	}
}
