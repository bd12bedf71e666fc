package store

import (
	"context"
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// benchCallers is the number of concurrent Put callers in BenchmarkPutParallel.
const benchCallers = 64

func benchStore(b *testing.B) *Store {
	s, _ := openTest(b, nil, func(c *Config) {
		c.MaxMailboxMessages = 1 << 30
		c.MaxMailboxBytes = 1 << 40
		c.MaxTotalBytes = 1 << 40
	})
	return s
}

// benchMsg builds a unique 200-byte message without hashing the payload.
func benchMsg(i uint64, exp int64) Message {
	var h, mb Hash
	binary.BigEndian.PutUint64(h[:], i)
	h[31] = 1
	binary.BigEndian.PutUint32(mb[:], uint32(i%1024))
	data := make([]byte, 200)
	binary.BigEndian.PutUint64(data, i)
	return Message{Hash: h, Mailbox: mb, Timestamp: exp, Expiry: exp, Data: data}
}

// BenchmarkPutParallel: benchCallers goroutines each Put one 200-byte
// message at a time (synchronous=FULL, group commit).
func BenchmarkPutParallel(b *testing.B) {
	s := benchStore(b)
	exp := time.Now().Add(time.Hour).UnixMilli()
	var ctr atomic.Uint64
	b.SetParallelism((benchCallers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := s.Put(context.Background(), benchMsg(ctr.Add(1), exp))
			if err != nil || res[0].Status != Stored {
				b.Errorf("Put: %v %v", err, res)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	b.ReportMetric(float64(s.committedReqs.Load())/float64(s.commits.Load()), "puts/commit")
}

// BenchmarkPutSerial: one caller, one message per Put: every Put pays a
// whole commit (fsync).
func BenchmarkPutSerial(b *testing.B) {
	s := benchStore(b)
	exp := time.Now().Add(time.Hour).UnixMilli()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := s.Put(context.Background(), benchMsg(uint64(i), exp)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkGet: pages of 100 messages from a 2000-message mailbox, cursor at
// varying positions.
func BenchmarkGet(b *testing.B) {
	s := benchStore(b)
	exp := time.Now().Add(time.Hour).UnixMilli()
	const n = 2000
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = benchMsg(uint64(i)*1024, exp) // all in mailbox 0
	}
	mustPut(b, s, msgs...)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	got := 0
	for i := range b.N {
		cur := &msgs[(i*97)%(n-100)].Hash
		page, _, err := s.Get(msgs[0].Mailbox, cur, 100, 0)
		if err != nil || len(page) != 100 {
			b.Fatalf("Get: %d msgs, %v", len(page), err)
		}
		got += len(page)
	}
	b.ReportMetric(float64(got)/time.Since(start).Seconds(), "msgs/s")
}
