package client

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// searchCorpus writes n messages of chat-like text over convs
// conversations to e's database: words drawn from a Zipf distribution over
// a vocabulary of common English words and made-up ones, 3 to 30 words a
// message. One message in 20,000 holds "xylophone".
func searchCorpus(b *testing.B, e *Engine, n, convs int) {
	common := strings.Fields(`the to and a i you it of is in that for me on my
	so we this be have not are just with but at what do can was if all
	get like no your know about out up one time there will how they now
	good go see would think when right then from here well yes more
	really had did day going because want need let tomorrow tonight
	meeting dinner lunch call later today thanks love ok sure maybe work
	home train weekend friday monday project report doctor coffee`)
	r := rand.New(rand.NewPCG(1, 2))
	syll := []string{"ka", "lo", "mi", "ne", "pro", "tas", "ver", "qui", "ble", "dor", "sen", "ty", "ran", "mo", "zel", "cha"}
	var vocab []string
	vocab = append(vocab, common...)
	for len(vocab) < 30000 {
		k := 2 + r.IntN(3)
		var w strings.Builder
		for range k {
			w.WriteString(syll[r.IntN(len(syll))])
		}
		vocab = append(vocab, w.String())
	}
	zipf := rand.NewZipf(rand.New(rand.NewPCG(3, 4)), 1.1, 2, uint64(len(vocab)-1))
	peers := make([]string, convs)
	for i := range peers {
		peers[i] = newAID(b)
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var bt batch
	for i := range n {
		k := 3 + r.IntN(28)
		ws := make([]string, k)
		for j := range ws {
			ws[j] = vocab[zipf.Uint64()]
		}
		if i%20000 == 7 {
			ws[k/2] = "xylophone"
		}
		ws[0] = strings.ToUpper(ws[0][:1]) + ws[0][1:]
		m := &Message{ID: fmt.Sprintf("%032x", i), From: peers[i%convs], To: "me", Text: strings.Join(ws, " ") + ".",
			SentAt: start.Add(time.Duration(i) * time.Minute), State: StateRead}
		if i%2 == 0 {
			m.From, m.To, m.Outgoing = m.To, m.From, true
		}
		if err := saveMessageTo(&bt, m); err != nil {
			b.Fatal(err)
		}
		if len(bt.entries) >= 2000 || i == n-1 {
			if err := e.kv.PutMany(bt.entries); err != nil {
				b.Fatal(err)
			}
			bt.entries = nil
		}
	}
}

// BenchmarkSearch100k: 100,000 messages over 50 conversations in a real
// (encrypted SQLite) database. "build" reads them all and builds the
// in-memory index (s/build, and the MiB the index keeps); then full
// searches (index, plus reading the results back from the database):
// a rare word, the commonest word, a prefix of many words.
func BenchmarkSearch100k(b *testing.B) {
	e := newOfflineEngine(b)
	t0 := time.Now()
	searchCorpus(b, e, benchN(), 50)
	b.Logf("wrote 100,000 messages in %v", time.Since(t0).Round(time.Millisecond))

	b.Run("build", func(b *testing.B) {
		var heap uint64
		x := e.searchIdx()
		for b.Loop() {
			x.mu.Lock()
			x.built, x.docs, x.byID, x.postings, x.vocab = false, nil, map[string]uint32{}, map[string][]uint32{}, nil
			x.mu.Unlock()
			b.StopTimer()
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.StartTimer()
			if err := e.buildSearch(x); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			heap = after.HeapAlloc - before.HeapAlloc
			b.StartTimer()
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/build")
		b.ReportMetric(float64(heap)/(1<<20), "MiB")
		b.ReportMetric(float64(len(e.search.vocab)), "words")
	})
	for _, c := range []struct{ name, q string }{{"rare", "xylophone"}, {"common", "the"}, {"prefix", "pro"}, {"two-words", "meeting tom"}} {
		b.Run(c.name, func(b *testing.B) {
			if _, err := e.Search("warm", "", 1); err != nil { // builds the index if "build" did not run
				b.Fatal(err)
			}
			var n int
			for b.Loop() {
				rs, err := e.Search(c.q, "", 0)
				if err != nil {
					b.Fatal(err)
				}
				n = len(rs)
			}
			x := e.search
			x.mu.Lock()
			all := len(x.match(queryWords(c.q), "", 1<<30))
			x.mu.Unlock()
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/query")
			b.ReportMetric(float64(all), "matches")
			b.ReportMetric(float64(n), "shown")
		})
	}
}

func benchN() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("UMBRA_SEARCH_BENCH_N"), &n); err == nil && n > 0 {
		return n
	}
	return 100_000
}
