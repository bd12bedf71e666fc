package sharestore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/files"
)

// clock is a settable fake clock.
type clock struct{ ms atomic.Int64 }

func (c *clock) Now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *clock) add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(1_700_000_000_000)
	return c
}

func testConfig(t *testing.T, c *clock) Config {
	return Config{Path: filepath.Join(t.TempDir(), "shares.db"), Now: c.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func open(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// share is n bytes of content seeded by seed, and its address.
func share(seed byte, n int) ([]byte, files.Address) {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed ^ byte(i*7)
	}
	return b, files.AddressOf(b)
}

func TestPutGet(t *testing.T) {
	c := newClock()
	s := open(t, testConfig(t, c))
	ctx := context.Background()
	data, a := share(1, files.MaxShareSize)
	if err := s.Put(ctx, a, data, c.Now().Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, a)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get = %d bytes, %v; want the %d bytes put", len(got), err, len(data))
	}
	if s.Used() != int64(len(data)) || s.Count() != 1 {
		t.Fatalf("used %d count %d, want %d and 1", s.Used(), s.Count(), len(data))
	}
	_, other := share(2, 64)
	if _, err := s.Get(ctx, other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a share never put: %v, want ErrNotFound", err)
	}
	// Put does not retain the caller's buffer.
	data[0] ^= 0xff
	if got, _ := s.Get(ctx, a); got[0] == data[0] {
		t.Fatal("the store kept the caller's buffer")
	}
}

func TestPutBounds(t *testing.T) {
	c := newClock()
	s := open(t, testConfig(t, c))
	ctx := context.Background()
	exp := c.Now().Add(time.Hour).UnixMilli()
	big := make([]byte, files.MaxShareSize+1)
	if err := s.Put(ctx, files.AddressOf(big), big, exp); !errors.Is(err, ErrSize) {
		t.Fatalf("put of %d bytes: %v, want ErrSize", len(big), err)
	}
	if err := s.Put(ctx, files.AddressOf(nil), nil, exp); !errors.Is(err, ErrSize) {
		t.Fatalf("put of an empty share: %v, want ErrSize", err)
	}
	data, a := share(3, 64)
	if err := s.Put(ctx, a, data, c.Now().UnixMilli()-1); !errors.Is(err, ErrExpired) {
		t.Fatalf("put with a past expiry: %v, want ErrExpired", err)
	}
	if s.Used() != 0 || s.Count() != 0 {
		t.Fatalf("refused puts left used %d count %d", s.Used(), s.Count())
	}
}

func TestPutAgainExtendsExpiry(t *testing.T) {
	c := newClock()
	s := open(t, testConfig(t, c))
	ctx := context.Background()
	data, a := share(4, 1024)
	t0 := c.Now()
	if err := s.Put(ctx, a, data, t0.Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, a, data, t0.Add(3*time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	// An earlier expiry does not shorten what is held.
	if err := s.Put(ctx, a, data, t0.Add(2*time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if s.Used() != 1024 || s.Count() != 1 {
		t.Fatalf("three puts of one share: used %d count %d, want 1024 and 1", s.Used(), s.Count())
	}
	c.add(150 * time.Minute)
	if n, err := s.Expire(); err != nil || n != 0 {
		t.Fatalf("sweep at 2h30: removed %d, %v; want 0", n, err)
	}
	if got, err := s.Get(ctx, a); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get at 2h30 (expiry extended to 3h): %v", err)
	}
	c.add(31 * time.Minute)
	if _, err := s.Get(ctx, a); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get past the extended expiry: %v, want ErrNotFound", err)
	}
}

func TestQuota(t *testing.T) {
	c := newClock()
	cfg := testConfig(t, c)
	cfg.QuotaBytes = 3 * 1024
	s := open(t, cfg)
	ctx := context.Background()
	exp := c.Now().Add(time.Hour).UnixMilli()
	d1, a1 := share(5, 2048)
	d2, a2 := share(6, 1024)
	d3, a3 := share(7, 64)
	if err := s.Put(ctx, a1, d1, exp); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, a2, d2, exp); err != nil {
		t.Fatalf("a put that fills the quota exactly: %v", err)
	}
	if err := s.Put(ctx, a3, d3, exp); !errors.Is(err, ErrFull) {
		t.Fatalf("a put past the quota: %v, want ErrFull", err)
	}
	// A share held already takes no more room: its refresh is accepted.
	if err := s.Put(ctx, a1, d1, exp+1000); err != nil {
		t.Fatalf("refresh at a full store: %v", err)
	}
	if _, err := s.Get(ctx, a3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused share is readable: %v", err)
	}
	if s.Used() != 3*1024 {
		t.Fatalf("used %d, want %d", s.Used(), 3*1024)
	}
	// Once shares expire and are swept, there is room again.
	c.add(2 * time.Hour)
	if n, err := s.Expire(); err != nil || n != 2 {
		t.Fatalf("sweep: removed %d, %v; want 2", n, err)
	}
	if s.Used() != 0 || s.Count() != 0 {
		t.Fatalf("after the sweep used %d count %d, want 0", s.Used(), s.Count())
	}
	if err := s.Put(ctx, a3, d3, c.Now().Add(time.Hour).UnixMilli()); err != nil {
		t.Fatalf("put after the sweep: %v", err)
	}
}

// TestConcurrentPutsQuota: puts racing for the last room of the quota,
// group-committed together, never take more than the quota.
func TestConcurrentPutsQuota(t *testing.T) {
	c := newClock()
	cfg := testConfig(t, c)
	cfg.QuotaBytes = 10 * 4096
	s := open(t, cfg)
	ctx := context.Background()
	exp := c.Now().Add(time.Hour).UnixMilli()
	var wg sync.WaitGroup
	var stored, full atomic.Int64
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, a := share(byte(i), 4096)
			switch err := s.Put(ctx, a, d, exp); {
			case err == nil:
				stored.Add(1)
			case errors.Is(err, ErrFull):
				full.Add(1)
			default:
				t.Errorf("put %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if stored.Load() != 10 || full.Load() != 22 {
		t.Fatalf("stored %d, refused %d: want 10 and 22", stored.Load(), full.Load())
	}
	if s.Used() != 10*4096 || s.Count() != 10 {
		t.Fatalf("used %d count %d", s.Used(), s.Count())
	}
}

func TestExpireSweep(t *testing.T) {
	c := newClock()
	s := open(t, testConfig(t, c))
	ctx := context.Background()
	t0 := c.Now()
	var keep files.Address
	for i := range 5 {
		d, a := share(byte(10+i), 128)
		exp := t0.Add(time.Duration(i+1) * time.Minute).UnixMilli()
		if err := s.Put(ctx, a, d, exp); err != nil {
			t.Fatal(err)
		}
		keep = a
	}
	// At 3 min the shares expiring at 1 and 2 min are past; the one at
	// exactly 3 min is still held (a share lives through its expiry).
	c.add(3 * time.Minute)
	if n, err := s.Expire(); err != nil || n != 2 {
		t.Fatalf("sweep at 3 min: removed %d, %v; want 2", n, err)
	}
	if s.Count() != 3 || s.Used() != 3*128 {
		t.Fatalf("count %d used %d, want 3 and 384", s.Count(), s.Used())
	}
	if _, err := s.Get(ctx, keep); err != nil {
		t.Fatalf("a share not yet expired: %v", err)
	}
	c.add(time.Hour)
	if n, err := s.Expire(); err != nil || n != 3 {
		t.Fatalf("second sweep: removed %d, %v; want 3", n, err)
	}
	if s.Count() != 0 || s.Used() != 0 {
		t.Fatalf("count %d used %d after the last sweep", s.Count(), s.Used())
	}
}

// TestExpireChunks: a backlog larger than one sweep transaction is all
// removed by one Expire.
func TestExpireChunks(t *testing.T) {
	c := newClock()
	s := open(t, testConfig(t, c))
	ctx := context.Background()
	exp := c.Now().Add(time.Minute).UnixMilli()
	const n = expireChunk + 10
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				d := []byte{byte(i), byte(i >> 8), 0xee}
				if err := s.Put(ctx, files.AddressOf(d), d, exp); err != nil {
					t.Errorf("put %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s.Count() != n {
		t.Fatalf("count %d, want %d", s.Count(), n)
	}
	c.add(2 * time.Minute)
	if k, err := s.Expire(); err != nil || k != n {
		t.Fatalf("removed %d, %v; want %d", k, err, n)
	}
	if s.Count() != 0 || s.Used() != 0 {
		t.Fatalf("count %d used %d", s.Count(), s.Used())
	}
}

func TestReopenKeepsShares(t *testing.T) {
	c := newClock()
	cfg := testConfig(t, c)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exp := c.Now().Add(time.Hour).UnixMilli()
	var addrs []files.Address
	var datas [][]byte
	total := int64(0)
	for i := range 4 {
		d, a := share(byte(20+i), (i+1)*files.ShareAlign*10)
		if err := s.Put(ctx, a, d, exp); err != nil {
			t.Fatal(err)
		}
		addrs, datas = append(addrs, a), append(datas, d)
		total += int64(len(d))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, addrs[0], datas[0], exp); !errors.Is(err, ErrClosed) {
		t.Fatalf("put after close: %v, want ErrClosed", err)
	}
	s2 := open(t, cfg)
	if s2.Used() != total || s2.Count() != 4 {
		t.Fatalf("reopened: used %d count %d, want %d and 4", s2.Used(), s2.Count(), total)
	}
	for i, a := range addrs {
		got, err := s2.Get(ctx, a)
		if err != nil || !bytes.Equal(got, datas[i]) {
			t.Fatalf("share %d after reopen: %v", i, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	d := DefaultConfig()
	if d.QuotaBytes != 4<<30 {
		t.Fatalf("default quota %d, want 4 GiB", d.QuotaBytes)
	}
	if err := d.Validate(); err == nil {
		t.Fatal("a config without a path validated")
	}
	d.Path = "x.db"
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	d.QuotaBytes = -1
	if err := d.Validate(); err == nil {
		t.Fatal("a negative quota validated")
	}
	if _, err := Open(Config{Path: filepath.Join(t.TempDir(), "s.db"), QuotaBytes: -5}); err == nil {
		t.Fatal("Open took a negative quota")
	}
}
