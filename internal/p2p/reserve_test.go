package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/umbra-im/umbra/internal/wire"
)

// smallStreams is limits with 256 KiB of memory per stream: a request
// (60 % of it, 153 KiB) or an answer (80 %, 204 KiB) of 200 KiB or more
// is refused by the resource manager.
func smallStreams(limits rcmgr.ConcreteLimitConfig) rcmgr.ConcreteLimitConfig {
	p := limits.ToPartialLimitConfig()
	p.Stream.Memory = rcmgr.LimitVal64(256 << 10)
	return p.Build(limits)
}

// newPairLimits is newPair with the hosts' resource-manager limits.
func newPairLimits(t *testing.T, srvLimits, cliLimits rcmgr.ConcreteLimitConfig) *pair {
	t.Helper()
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	sh, err := newNodeHost(priv, []string{"/ip4/127.0.0.1/tcp/0"}, nil, srvLimits)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := newClientHost(cliLimits)
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

// sized answers "big:<n>" with n bytes of data and echoes anything else.
func sized(ctx context.Context, from peer.ID, kind wire.Kind, body []byte) (wire.Kind, any) {
	var pkt wire.OnionPacket
	if err := wire.Unmarshal(body, &pkt); err != nil {
		return wire.KindError, wire.Errorf(wire.CodeBadRequest, "%v", err)
	}
	var n int
	if _, err := fmt.Sscanf(string(pkt.Data), "big:%d", &n); err == nil {
		return wire.KindOnion, &wire.OnionPacket{Data: make([]byte, n)}
	}
	return wire.KindOnion, &pkt
}

var bigProto = Proto{ID: testProto, MaxReq: 1 << 20, MaxResp: 1 << 20}

// A request whose body the server's resource manager will not hold is
// refused with a 503 answer; the session goes on and nothing stays
// reserved.
func TestRequestOverMemoryLimitRefused(t *testing.T) {
	p := newPairLimits(t, smallStreams(NodeLimits()), ClientLimits())
	p.srv.HandleSession(testProto, SessionOptions{MaxReq: 1 << 20}, sized)
	pool := NewPool(p.cliHost, PoolOptions{})
	defer pool.Close()
	to := p.srvHost.ID()
	_, err := call(context.Background(), pool, to, bigProto, strings.Repeat("x", 200<<10))
	we, ok := errorsAsWire(err)
	if !ok || we.Code != wire.CodeUnavailable || !strings.Contains(we.Msg, "refused") {
		t.Fatalf("200 KiB request over a 256 KiB stream limit: %v, want a 503 refusal", err)
	}
	// An answer over the limit is refused too (the request was small).
	_, err = call(context.Background(), pool, to, bigProto, "big:300000")
	if we, ok := errorsAsWire(err); !ok || we.Code != wire.CodeUnavailable || !strings.Contains(we.Msg, "answer refused") {
		t.Fatalf("300 KB answer over a 256 KiB stream limit: %v, want a 503 refusal", err)
	}
	for i := range 3 {
		// The last call's answer is released just after it is written,
		// which may be after the client has sent this request: wait, so
		// that this call alone counts against the stream's limit.
		waitFor(t, "the server's reservations to be released", func() bool { return serviceMemory(t, p.srvHost) == 0 })
		data := fmt.Sprintf("after-%d-%s", i, strings.Repeat("y", 60<<10)) // request and answer held together: 120 KiB
		if got, err := call(context.Background(), pool, to, bigProto, data); err != nil || got != data {
			t.Fatalf("call within the limit after a refusal: %d bytes, %v", len(got), err)
		}
	}
	if n := pool.Sessions(); n != 1 {
		t.Errorf("%d sessions; the refusals should not have ended the first", n)
	}
	waitFor(t, "the server's reservations to be released", func() bool { return serviceMemory(t, p.srvHost) == 0 })
	waitFor(t, "the client's reservations to be released", func() bool { return serviceMemory(t, p.cliHost) == 0 })
}

// An answer the client's resource manager will not hold fails that call,
// locally; the session goes on.
func TestAnswerOverMemoryLimitRefused(t *testing.T) {
	p := newPairLimits(t, NodeLimits(), smallStreams(ClientLimits()))
	p.srv.HandleSession(testProto, SessionOptions{MaxReq: 1 << 20}, sized)
	pool := NewPool(p.cliHost, PoolOptions{})
	defer pool.Close()
	to := p.srvHost.ID()
	_, err := call(context.Background(), pool, to, bigProto, "big:300000")
	if err == nil || !errors.Is(err, wire.ErrReserve) {
		t.Fatalf("300 KB answer over the client's 256 KiB stream limit: %v, want a reservation refusal", err)
	}
	if _, ok := errorsAsWire(err); ok {
		t.Fatalf("a local refusal came back as the peer's error: %v", err)
	}
	if got, err := call(context.Background(), pool, to, bigProto, "big:100000"); err != nil || len(got) != 100000 {
		t.Fatalf("answer within the limit after a refusal: %d bytes, %v", len(got), err)
	}
	if n := pool.Sessions(); n != 1 {
		t.Errorf("%d sessions; the refusal should not have ended the first", n)
	}
	waitFor(t, "the client's reservations to be released", func() bool { return serviceMemory(t, p.cliHost) == 0 })
}

// The one-shot reader (gossip) refuses a frame over the memory limits with
// a 503 error frame, then resets.
func TestOneShotOverMemoryLimitRefused(t *testing.T) {
	p := newPairLimits(t, smallStreams(NodeLimits()), ClientLimits())
	const proto = wire.ProtoMembers
	called := make(chan struct{}, 1)
	Handle(p.srvHost, proto, 10*time.Second, wire.MaxFrame, func(s *Stream, kind wire.Kind, body []byte) error {
		called <- struct{}{}
		return s.Reply(wire.KindOnion, &wire.OnionPacket{})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.cliHost.NewStream(ctx, p.srvHost.ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go func() {
		_ = wire.WriteFrame(s, wire.KindOnion, &wire.OnionPacket{Data: make([]byte, 200<<10)})
	}()
	err = wire.Read(bufio.NewReader(s), wire.MaxFrame, wire.KindOnion, &wire.OnionPacket{})
	we, ok := errorsAsWire(err)
	if !ok || we.Code != wire.CodeUnavailable {
		t.Fatalf("200 KiB gossip frame over a 256 KiB stream limit: %v, want a 503 error frame", err)
	}
	select {
	case <-called:
		t.Fatal("the handler got a frame the resource manager refused")
	default:
	}
	waitFor(t, "the server's reservations to be released", func() bool { return serviceMemory(t, p.srvHost) == 0 })
}
