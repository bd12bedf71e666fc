package memswarm

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/swarmclient"
	"github.com/umbra-im/umbra/internal/wire"
)

func newKey(t *testing.T) *mailbox.Key {
	t.Helper()
	k, err := mailbox.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func put(c *Client, mb mailbox.ID, ns int32, ts, ttl int64, data []byte) (*swarmclient.PutResult, error) {
	return c.PutReq(context.Background(), &wire.StoreReq{Mailbox: mb[:], Namespace: ns, Timestamp: ts, TTL: ttl, Data: data})
}

func code(err error) int {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Code
	}
	return 0
}

// TestRefusesWhatNodesRefuse: sizes, TTLs, times, unsigned public data and
// first contact without work are refused with the nodes' codes.
func TestRefusesWhatNodesRefuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{})
		c := s.Client("a")
		k := newKey(t)
		mb := k.ID()
		now := time.Now().UnixMilli()
		min := time.Minute.Milliseconds()
		for _, tc := range []struct {
			name string
			ns   int32
			ts   int64
			ttl  int64
			data []byte
			code int
		}{
			{"empty", 0, now, min, nil, wire.CodeBadRequest},
			{"too large", 0, now, min, make([]byte, wire.MaxMessageSize+1), wire.CodeTooLarge},
			{"TTL too long", 0, now, (node.MaxTTL + time.Hour).Milliseconds(), []byte("x"), wire.CodeBadRequest},
			{"expired", 0, now - 2*min, min, []byte("x"), wire.CodeBadRequest},
			{"future", 0, now + 5*min, min, []byte("x"), wire.CodeBadRequest},
			{"unsigned public", wire.PublicNamespace, wire.CoarseTime(now), min, []byte("card"), wire.CodeUnauthorized},
			{"request without work", wire.RequestNamespace, wire.CoarseTime(now), min, []byte("0123456789"), wire.CodeRateLimited},
		} {
			if _, err := put(c, mb, tc.ns, tc.ts, tc.ttl, tc.data); code(err) != tc.code {
				t.Errorf("%s: %v, want code %d", tc.name, err, tc.code)
			}
		}
		if n := s.Messages(mb); len(n) != 0 {
			t.Fatalf("refused messages were stored: %v", n)
		}
		// What carries its work or signature is taken.
		ts := wire.CoarseTime(now)
		req := mailbox.SealRequest(mb, ts, ts+min, []byte("hello"), mailbox.RequestWorkBase)
		if _, err := put(c, mb, wire.RequestNamespace, ts, min, req); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Publish(context.Background(), k, time.Hour, []byte("card")); err != nil {
			t.Fatal(err)
		}
		pub, err := c.ReadPublic(context.Background(), mb)
		if err != nil || len(pub) != 1 || string(pub[0].Data) != "card" {
			t.Fatalf("public read: %v %v", pub, err)
		}
		if n := s.Messages(mb); n[wire.RequestNamespace] != 1 || n[wire.PublicNamespace] != 1 {
			t.Fatalf("stored %v", n)
		}
	})
}

// TestQuota: a namespace with a quota of its own refuses past it.
func TestQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{MaxMailboxMessages: 2})
		c := s.Client("a")
		mb := newKey(t).ID()
		for i := range 3 {
			_, err := put(c, mb, 0, 0, time.Hour.Milliseconds(), []byte{byte(i)})
			if want := map[bool]int{true: wire.CodeMailboxFull, false: 0}[i == 2]; code(err) != want {
				t.Fatalf("message %d: %v, want code %d", i, err, want)
			}
		}
	})
}

// TestLongPollExpiryDelete: a waiting read wakes when a message lands,
// messages come sorted and deduplicated, expire on the clock, and one
// deleted by the owner reads as delivered when stored again.
func TestLongPollExpiryDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{})
		reader, writer := s.Client("r"), s.Client("w")
		k := newKey(t)
		mb := k.ID()
		got := make(chan []swarmclient.Message, 1)
		start := time.Now()
		go func() {
			ms, err := reader.Get(context.Background(), k, time.Minute)
			if err != nil {
				t.Error(err)
			}
			got <- ms
		}()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		select {
		case <-got:
			t.Fatal("the read returned before anything landed")
		default:
		}
		if _, err := put(writer, mb, 0, 0, (2 * time.Minute).Milliseconds(), []byte("b")); err != nil {
			t.Fatal(err)
		}
		ms := <-got
		if len(ms) != 1 || string(ms[0].Data) != "b" || time.Since(start) != 10*time.Second {
			t.Fatalf("long-poll got %d messages after %v", len(ms), time.Since(start))
		}
		// An older timestamp sorts first; the same request twice is one message.
		ts := wire.CoarseTime(time.Now().UnixMilli()) - time.Minute.Milliseconds()
		for range 2 {
			if _, err := put(writer, mb, 0, ts, (10 * time.Minute).Milliseconds(), []byte("a")); err != nil {
				t.Fatal(err)
			}
		}
		ms, err := reader.Get(context.Background(), k, 0)
		if err != nil || len(ms) != 2 || string(ms[0].Data) != "a" || string(ms[1].Data) != "b" {
			t.Fatalf("got %v, %v; want a then b", ms, err)
		}
		// b lives 2 minutes from its coarse timestamp: gone in 3.
		time.Sleep(3 * time.Minute)
		if ms, _ := reader.Get(context.Background(), k, 0); len(ms) != 1 || string(ms[0].Data) != "a" {
			t.Fatalf("after expiry got %d messages, want a only", len(ms))
		}
		if n, err := reader.Delete(context.Background(), k, [][32]byte{ms[0].Hash}); n != 1 || err != nil {
			t.Fatalf("delete: %d, %v", n, err)
		}
		res, err := put(writer, mb, 0, ts, (10 * time.Minute).Milliseconds(), []byte("a"))
		if err != nil || !res.Deleted {
			t.Fatalf("a store of a deleted message: %+v, %v; want deleted", res, err)
		}
		if n := s.Messages(mb); len(n) != 0 {
			t.Fatalf("the deleted message came back: %v", n)
		}
		// A waiting read ends when ctx does, and when the client closes.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := reader.Get(ctx, k, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read past its context: %v", err)
		}
		go func() { time.Sleep(time.Second); reader.Close() }()
		if _, err := reader.Get(context.Background(), k, time.Minute); err == nil {
			t.Fatal("a read on a closed client succeeded")
		}
	})
}

// TestHooks: injected failures, counts and what nodes see.
func TestHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{})
		c := s.Client("alice")
		k := newKey(t)
		c.FailNext(OpGet, 2, nil)
		for i := range 3 {
			_, err := c.Get(context.Background(), k, 0)
			if (err != nil) != (i < 2) || (err != nil && code(err) != wire.CodeUnavailable) {
				t.Fatalf("get %d: %v", i, err)
			}
		}
		if c.Calls(OpGet) != 3 || s.Calls(OpGet) != 3 || s.Calls(OpPut) != 0 {
			t.Fatalf("counts: client %d, swarm %d get, %d put", c.Calls(OpGet), s.Calls(OpGet), s.Calls(OpPut))
		}
		var watched int
		s.Watch(func(Seen) { watched++ })
		if _, err := put(c, k.ID(), 0, 0, time.Hour.Milliseconds(), []byte("12345")); err != nil {
			t.Fatal(err)
		}
		seen := s.Seen()
		last := seen[len(seen)-1]
		if watched != 1 || last.Op != OpPut || last.Mailbox != k.ID() || last.Size != 5 || last.Client != "alice" ||
			last.Timestamp%time.Minute.Milliseconds() != 0 {
			t.Fatalf("seen %+v (watched %d)", last, watched)
		}
	})
}
