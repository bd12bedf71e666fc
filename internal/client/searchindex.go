package client

// Search over the local message history.
//
// The messages are in the encrypted KV store; an index on disk (SQLite
// FTS5, say) would hold every word of every message in clear, so the index
// lives in memory only: built from the KV at the first search after the
// engine opened (after unlock), then kept up to date by the engine's
// events. It maps each word (lower-cased, Unicode letters and digits; a
// Han, kana or Thai character is a word of its own, as those scripts put
// no spaces between words) to the messages holding it. A query's words
// each match as a prefix of a word of the message, and a message matches
// when all of them do. See docs/architecture.md for the figures.

import (
	"hash/fnv"
	mbits "math/bits"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Search limits.
const (
	DefaultSearchLimit = 50
	MaxSearchLimit     = 500
	maxQueryWords      = 16
	snippetRunes       = 120 // the longest snippet, in characters
	snippetBefore      = 20  // characters shown before the first match
)

// SearchResult is one message matching a search.
type SearchResult struct {
	Message Message `json:"message"`
	Peer    string  `json:"peer"`           // the other side of the conversation
	Name    string  `json:"name,omitempty"` // the peer's contact name, if any
	// Snippet is part of the text around the first match, cut in
	// segments: the matching words have Match set.
	Snippet []Segment `json:"snippet"`
}

// Segment is a piece of a snippet.
type Segment struct {
	Text  string `json:"text"`
	Match bool   `json:"match,omitempty"`
}

// searchDoc is one indexed message.
type searchDoc struct {
	id     string
	peer   string
	sentAt int64  // unix ms, for ordering
	sum    uint64 // a hash of the text, to skip reindexing an unchanged one
	dead   bool   // edited (a newer doc holds it) or deleted
}

// searchIndex is the in-memory index. Docs are never removed from docs:
// an edit or a deletion marks the old doc dead (its postings stay and are
// skipped), so posting lists only ever grow at their end and stay sorted.
type searchIndex struct {
	buildMu sync.Mutex // one build at a time

	mu       sync.Mutex
	built    bool
	building bool
	pending  []string // IDs changed while building, to re-read after
	docs     []searchDoc
	byID     map[string]uint32   // message ID -> live doc
	postings map[string][]uint32 // word -> docs, ascending
	vocab    []string            // the words of postings, sorted
	unsorted bool                // while building: vocab is sorted at the end
	buf      []byte              // scratch for folding words
	dead     int
}

func newSearchIndex() *searchIndex {
	return &searchIndex{byID: map[string]uint32{}, postings: map[string][]uint32{}}
}

// isSolo reports runes that are words by themselves.
func isSolo(r rune) bool {
	return r >= 0x0e00 && unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Thai)
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
}

// span is a word of a text: its byte offsets.
type span struct{ start, end int }

// wordSpans cuts text in words.
func wordSpans(text string) []span {
	var out []span
	start := -1
	for i, r := range text {
		switch {
		case isSolo(r):
			if start >= 0 {
				out = append(out, span{start, i})
				start = -1
			}
			out = append(out, span{i, i + utf8.RuneLen(r)})
		case isWordRune(r):
			if start < 0 {
				start = i
			}
		default:
			if start >= 0 {
				out = append(out, span{start, i})
				start = -1
			}
		}
	}
	if start >= 0 {
		out = append(out, span{start, len(text)})
	}
	return out
}

// fold is a word's indexed form.
func fold(w string) string { return strings.ToLower(w) }

// words is text's distinct folded words.
func words(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range wordSpans(text) {
		w := fold(text[s.start:s.end])
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// queryWords is a query's folded words, at most maxQueryWords.
func queryWords(q string) []string {
	ws := words(q)
	if len(ws) > maxQueryWords {
		ws = ws[:maxQueryWords]
	}
	return ws
}

func textSum(t string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(t))
	return h.Sum64()
}

// addLocked indexes m, replacing what was indexed for its ID.
func (x *searchIndex) addLocked(m *Message) {
	sum := textSum(m.Text)
	if n, ok := x.byID[m.ID]; ok && x.docs[n].sum == sum {
		return // a state change: the same words
	}
	x.removeLocked(m.ID)
	spans := wordSpans(m.Text)
	if len(spans) == 0 {
		return
	}
	n := uint32(len(x.docs))
	x.docs = append(x.docs, searchDoc{id: m.ID, peer: m.Peer(), sentAt: m.SentAt.UnixMilli(), sum: sum})
	x.byID[m.ID] = n
	for _, sp := range spans {
		x.buf = appendFold(x.buf[:0], m.Text[sp.start:sp.end])
		p, ok := x.postings[string(x.buf)] // no allocation for the lookup
		if ok && p[len(p)-1] == n {
			continue // a word met before in this message
		}
		w := string(x.buf)
		switch {
		case ok:
		case x.unsorted:
			x.vocab = append(x.vocab, w)
		default:
			i, _ := slices.BinarySearch(x.vocab, w)
			x.vocab = slices.Insert(x.vocab, i, w)
		}
		x.postings[w] = append(p, n)
	}
}

// appendFold appends w's folded form (fold) to b, without allocating for
// ASCII words.
func appendFold(b []byte, w string) []byte {
	for i := 0; i < len(w); i++ {
		if w[i] >= utf8.RuneSelf {
			return append(b, fold(w)...)
		}
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

func (x *searchIndex) removeLocked(id string) {
	if n, ok := x.byID[id]; ok {
		x.docs[n].dead = true
		delete(x.byID, id)
		x.dead++
	}
}

// compactLocked drops the whole index once dead docs (edited or deleted
// messages) are as many as the live ones, so that edits and deletions cost
// memory for a while only; the next search builds it again from the store
// (one pass, outside any engine lock; the hook may run under one).
func (x *searchIndex) compactLocked() {
	if x.dead < 1024 || x.dead < len(x.docs)-x.dead {
		return
	}
	x.built = false
	x.docs, x.byID, x.postings, x.vocab, x.dead = nil, map[string]uint32{}, map[string][]uint32{}, nil, 0
}

// match returns the live docs holding every query word as a word prefix,
// restricted to peer if set, newest first, at most limit.
func (x *searchIndex) match(qs []string, peer string, limit int) []uint32 {
	if len(qs) == 0 {
		return nil
	}
	// Each word's docs: the union of the postings of the words it is a
	// prefix of. Start with the rarest.
	sets := make([][]uint32, 0, len(qs))
	for _, q := range qs {
		sets = append(sets, x.prefixDocs(q))
	}
	slices.SortFunc(sets, func(a, b []uint32) int { return len(a) - len(b) })
	cur := sets[0]
	for _, s := range sets[1:] {
		if len(cur) == 0 {
			break
		}
		cur = intersect(cur, s)
	}
	// The newest limit docs: a min-heap of them by time, oldest on top.
	newer := func(a, b uint32) bool {
		da, db := &x.docs[a], &x.docs[b]
		if da.sentAt != db.sentAt {
			return da.sentAt > db.sentAt
		}
		return da.id > db.id
	}
	h := make([]uint32, 0, min(len(cur), limit))
	down := func(i int) {
		for {
			l, small := 2*i+1, i
			if l < len(h) && newer(h[small], h[l]) {
				small = l
			}
			if r := l + 1; r < len(h) && newer(h[small], h[r]) {
				small = r
			}
			if small == i {
				return
			}
			h[i], h[small] = h[small], h[i]
			i = small
		}
	}
	for _, n := range cur {
		d := &x.docs[n]
		if d.dead || (peer != "" && d.peer != peer) {
			continue
		}
		switch {
		case len(h) < limit:
			h = append(h, n)
			for i := len(h) - 1; i > 0 && newer(h[(i-1)/2], h[i]); i = (i - 1) / 2 {
				h[i], h[(i-1)/2] = h[(i-1)/2], h[i]
			}
		case newer(n, h[0]):
			h[0] = n
			down(0)
		}
	}
	slices.SortFunc(h, func(a, b uint32) int {
		switch {
		case newer(a, b):
			return -1
		case newer(b, a):
			return 1
		}
		return 0
	})
	return h
}

// prefixDocs is the sorted, distinct docs with a word starting with q.
func (x *searchIndex) prefixDocs(q string) []uint32 {
	i, _ := slices.BinarySearch(x.vocab, q)
	var lists [][]uint32
	total := 0
	for ; i < len(x.vocab) && strings.HasPrefix(x.vocab[i], q); i++ {
		p := x.postings[x.vocab[i]]
		lists = append(lists, p)
		total += len(p)
	}
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return lists[0]
	}
	if total > len(x.docs)/8 {
		// Many words: a bitmap over the docs beats sorting.
		seen := make([]uint64, (len(x.docs)+63)/64)
		for _, l := range lists {
			for _, n := range l {
				seen[n/64] |= 1 << (n % 64)
			}
		}
		out := make([]uint32, 0, total)
		for w, bits := range seen {
			for bits != 0 {
				b := uint32(mbits.TrailingZeros64(bits))
				out = append(out, uint32(w)*64+b)
				bits &= bits - 1
			}
		}
		return out
	}
	out := make([]uint32, 0, total)
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// intersect is the docs in both sorted lists.
func intersect(a, b []uint32) []uint32 {
	out := make([]uint32, 0, min(len(a), len(b)))
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// snippet cuts text around its first word matching a query word, in
// segments marking every matching word.
func snippet(text string, qs []string) []Segment {
	// One line, without control characters (a peer's escape sequences
	// must not reach a terminal).
	text = strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)), " ")
	spans := wordSpans(text)
	matches := func(s span) bool {
		w := fold(text[s.start:s.end])
		for _, q := range qs {
			if strings.HasPrefix(w, q) {
				return true
			}
		}
		return false
	}
	first := -1
	for _, s := range spans {
		if matches(s) {
			first = s.start
			break
		}
	}
	// The window, in bytes, on rune boundaries: from the text's start if
	// the first match is near it, else from a word start shortly before it.
	start := 0
	if utf8.RuneCountInString(text[:max(first, 0)]) > 2*snippetBefore {
		start = first
		for k := 0; k < snippetBefore && start > 0; k++ {
			_, size := utf8.DecodeLastRuneInString(text[:start])
			start -= size
		}
		if i := strings.IndexByte(text[start:first], ' '); i >= 0 {
			start += i + 1
		}
	}
	end := start
	for k := 0; k < snippetRunes && end < len(text); k++ {
		_, size := utf8.DecodeRuneInString(text[end:])
		end += size
	}
	var out []Segment
	add := func(s string, m bool) {
		if s != "" {
			out = append(out, Segment{Text: s, Match: m})
		}
	}
	if start > 0 {
		add("…", false)
	}
	at := start
	for _, s := range spans {
		if s.start < start || s.end > end || !matches(s) {
			continue
		}
		add(text[at:s.start], false)
		add(text[s.start:s.end], true)
		at = s.end
	}
	add(text[at:end], false)
	if end < len(text) {
		add("…", false)
	}
	return out
}
