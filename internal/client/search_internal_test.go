package client

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/umbra-im/umbra/internal/identity"
)

const (
	peerA = "umbra1peeraaaa"
	peerB = "umbra1peerbbbb"
)

func testMsg(id, peer, text string, at int) *Message {
	return &Message{ID: id, From: peer, To: "umbra1me", Text: text, SentAt: time.UnixMilli(int64(at) * 1000), State: StateReceived}
}

// ids is what the index finds for q.
func (x *searchIndex) ids(q, peer string) []string {
	var out []string
	for _, n := range x.match(queryWords(q), peer, 1<<30) {
		out = append(out, x.docs[n].id)
	}
	return out
}

// TestSearchIndex: word prefixes in any case, every query word required,
// Unicode words (accents, Cyrillic, Greek, Han characters one by one),
// newest first, by peer; an edit replaces the words, a deletion drops them.
func TestSearchIndex(t *testing.T) {
	x := newSearchIndex()
	for _, m := range []*Message{
		testMsg("m1", peerA, "Hello World, see you at the café", 1),
		testMsg("m2", peerA, "hello again; the WORLD is big", 2),
		testMsg("m3", peerB, "Привет, мир! Ελληνικά κείμενα", 3),
		testMsg("m4", peerB, "我们明天见 at Straße 12", 4),
		testMsg("m5", peerB, "nothing to see: helicopter", 5),
	} {
		x.addLocked(m)
	}
	for _, c := range []struct {
		q, peer string
		want    []string
	}{
		{"hello", "", []string{"m2", "m1"}},
		{"HEL", "", []string{"m5", "m2", "m1"}},
		{"hel wor", "", []string{"m2", "m1"}},
		{"world again", "", []string{"m2"}},
		{"orld", "", nil}, // prefixes of words, not substrings
		{"CAFÉ", "", []string{"m1"}},
		{"caf", "", []string{"m1"}},
		{"привет", "", []string{"m3"}},
		{"МИР", "", []string{"m3"}},
		{"ελλ", "", []string{"m3"}},
		{"明天", "", []string{"m4"}},
		{"见", "", []string{"m4"}},
		{"straße", "", []string{"m4"}},
		{"12", "", []string{"m4"}},
		{"hel", peerB, []string{"m5"}},
		{"hello", peerB, nil},
		{"zebra", "", nil},
		{"...", "", nil},
	} {
		if got := x.ids(c.q, c.peer); !slices.Equal(got, c.want) {
			t.Errorf("search %q (peer %q): %v, want %v", c.q, c.peer, got, c.want)
		}
	}
	// An edit: the new words replace the old.
	x.addLocked(testMsg("m1", peerA, "Goodbye planet", 1))
	if got := x.ids("world", ""); !slices.Equal(got, []string{"m2"}) {
		t.Errorf("after editing m1, world: %v", got)
	}
	if got := x.ids("goodb", ""); !slices.Equal(got, []string{"m1"}) {
		t.Errorf("after editing m1, goodb: %v", got)
	}
	// A state change (same text) keeps the doc.
	docs := len(x.docs)
	x.addLocked(testMsg("m1", peerA, "Goodbye planet", 1))
	if len(x.docs) != docs {
		t.Errorf("re-adding an unchanged message made a new doc")
	}
	// A deletion, and an edit to no words at all.
	x.removeLocked("m2")
	x.addLocked(testMsg("m5", peerB, "   ", 5))
	if got := x.ids("hel", ""); got != nil {
		t.Errorf("after deleting m2 and blanking m5, hel: %v", got)
	}
}

// TestSearchCompact: once edits leave as many dead docs as live ones the
// index drops everything, to be built again by the next search; before
// that, the results stay right.
func TestSearchCompact(t *testing.T) {
	x := newSearchIndex()
	x.built = true
	edit := func(round, i int) {
		x.addLocked(testMsg(fmt.Sprintf("m%d", i), peerA, fmt.Sprintf("round%d word%d", round, i), i))
		x.compactLocked()
	}
	for i := range 1500 {
		edit(0, i)
	}
	for i := range 1499 {
		edit(1, i)
	}
	if !x.built || len(x.ids("round1", "")) != 1499 || len(x.ids("round0", "")) != 1 || x.dead != 1499 {
		t.Fatalf("after 1499 edits: built %v, round1 %d, round0 %d, dead %d", x.built, len(x.ids("round1", "")), len(x.ids("round0", "")), x.dead)
	}
	edit(1, 1499)
	if x.built || len(x.docs) != 0 || len(x.postings) != 0 {
		t.Errorf("after 1500 edits of 1500 messages: built %v, %d docs: not dropped", x.built, len(x.docs))
	}
}

// TestSnippet: the snippet is one line around the first match, with every
// matching word marked, ellipses where it was cut, and no control
// characters.
func TestSnippet(t *testing.T) {
	long := strings.Repeat("filler words here ", 10) + "the Needle\x1b[31m is\nhere and needles too " + strings.Repeat("more text ", 30)
	segs := snippet(long, queryWords("need"))
	var all strings.Builder
	var marked []string
	for _, s := range segs {
		all.WriteString(s.Text)
		if s.Match {
			marked = append(marked, s.Text)
		}
	}
	got := all.String()
	if !slices.Equal(marked, []string{"Needle", "needles"}) {
		t.Errorf("marked %q, want Needle and needles", marked)
	}
	if !strings.HasPrefix(got, "…") || !strings.HasSuffix(got, "…") {
		t.Errorf("snippet %q: want ellipses at both ends", got)
	}
	if strings.ContainsAny(got, "\x1b\n") {
		t.Errorf("snippet %q keeps control characters", got)
	}
	if n := utf8.RuneCountInString(got); n > snippetRunes+2 {
		t.Errorf("snippet of %d characters", n)
	}
	if s := snippet("short one", queryWords("one")); len(s) != 2 || s[1] != (Segment{"one", true}) || s[0].Text != "short " {
		t.Errorf("short snippet: %+v", s)
	}
}

// FuzzSearchText: any message text (a peer writes it) and query index,
// match and cut into snippets without panicking; a snippet's segments are
// valid UTF-8 and the marked ones are words matching the query.
func FuzzSearchText(f *testing.F) {
	f.Add("Hello World 我们 Straße", "hel")
	f.Add("\xff\xfe broken \x00 utf8", "br")
	f.Fuzz(func(t *testing.T, text, q string) {
		if len(text) > MaxTextBytes || len(q) > 1024 {
			return
		}
		x := newSearchIndex()
		x.addLocked(testMsg("m", peerA, text, 1))
		qs := queryWords(q)
		x.match(qs, "", 10)
		for _, s := range snippet(text, qs) {
			if !utf8.ValidString(s.Text) && !strings.Contains(text, s.Text) {
				t.Fatalf("segment %q", s.Text)
			}
			if s.Match {
				w := fold(s.Text)
				if !slices.ContainsFunc(qs, func(q string) bool { return strings.HasPrefix(w, q) }) {
					t.Fatalf("segment %q marked, query %q", s.Text, qs)
				}
			}
		}
	})
}

// TestSearchEngine: the engine's index is built at the first search from
// the database, follows message events (new, edited, deleted), drops a
// message removed without an event, and a contact event resyncs that
// conversation.
func TestSearchEngine(t *testing.T) {
	e := newOfflineEngine(t)
	alice, bob := newAID(t), newAID(t)
	if _, err := e.AddContact(alice, "Alice"); err != nil {
		t.Fatal(err)
	}
	save := func(m *Message) {
		t.Helper()
		if err := e.d.saveMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	save(testMsg("01", alice, "Lunch on Friday?", 1))
	save(testMsg("02", bob, "friday works for me", 2))
	if _, err := e.Search("  ", "", 0); err != ErrEmptySearch {
		t.Errorf("empty search: %v", err)
	}
	find := func(q, peer string) []string {
		t.Helper()
		rs, err := e.Search(q, peer, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.Message.ID)
		}
		return out
	}
	if got := find("fri", ""); !slices.Equal(got, []string{"02", "01"}) {
		t.Fatalf("fri: %v", got)
	}
	rs, _ := e.Search("lunch", "", 0)
	if len(rs) != 1 || rs[0].Name != "Alice" || rs[0].Peer != alice || rs[0].Snippet[0] != (Segment{"Lunch", true}) {
		t.Errorf("lunch: %+v", rs)
	}
	if got := find("fri", bob); !slices.Equal(got, []string{"02"}) {
		t.Errorf("fri with bob: %v", got)
	}
	// A new message, then an edit, each with its event.
	m3 := testMsg("03", alice, "Saturday then", 3)
	save(m3)
	e.bus.publish(Event{Type: EventMessage, Message: m3})
	if got := find("satur", ""); !slices.Equal(got, []string{"03"}) {
		t.Errorf("after a new message, satur: %v", got)
	}
	m3.Text = "Sunday then"
	save(m3)
	e.bus.publish(Event{Type: EventState, Message: m3})
	if got := find("satur", ""); got != nil {
		t.Errorf("after the edit, satur: %v", got)
	}
	if got := find("sun", ""); !slices.Equal(got, []string{"03"}) {
		t.Errorf("after the edit, sun: %v", got)
	}
	// A deletion with an event; one without (the result is checked).
	del := func(m *Message) {
		if err := e.kv.Delete(msgKey(m.Peer(), m.SentAt, m.ID)); err != nil {
			t.Fatal(err)
		}
		if err := e.kv.Delete(msgIndexKey(m.ID)); err != nil {
			t.Fatal(err)
		}
	}
	del(m3)
	e.bus.publish(Event{Type: EventMessage, Message: m3})
	if got := find("sun", ""); got != nil {
		t.Errorf("after deleting, sun: %v", got)
	}
	del(testMsg("01", alice, "", 1))
	if got := find("fri", ""); !slices.Equal(got, []string{"02"}) {
		t.Errorf("after deleting 01 silently, fri: %v", got)
	}
	// A conversation changed behind the index's back, then a contact event.
	save(testMsg("04", alice, "quiet arrival", 4))
	if got := find("quiet", ""); got != nil {
		t.Errorf("a message saved without an event is found: %v", got)
	}
	e.bus.publish(Event{Type: EventContact, Contact: &Contact{ID: alice}})
	if got := find("quiet", ""); !slices.Equal(got, []string{"04"}) {
		t.Errorf("after the contact event, quiet: %v", got)
	}
}

func newAID(t testing.TB) string {
	a, err := identity.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID().String()
}

// TestSearchBuildRacesEvents: messages saved (with their events) while the
// first search builds the index are all found after it.
func TestSearchBuildRacesEvents(t *testing.T) {
	e := newOfflineEngine(t)
	peer := newAID(t)
	var b batch
	for i := range 3000 {
		if err := saveMessageTo(&b, testMsg(fmt.Sprintf("old%d", i), peer, "older words", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.kv.PutMany(b.entries); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			m := testMsg(fmt.Sprintf("new%d", i), peer, fmt.Sprintf("fresh%d words", i), 5000+i)
			if err := e.d.saveMessage(m); err != nil {
				t.Error(err)
				return
			}
			e.bus.publish(Event{Type: EventMessage, Message: m})
		}
	}()
	if _, err := e.Search("older", "", 1); err != nil {
		t.Fatal(err)
	}
	<-done
	rs, err := e.Search("fresh", "", MaxSearchLimit)
	if err != nil || len(rs) != 200 {
		t.Fatalf("fresh: %d results, %v; want 200", len(rs), err)
	}
	if rs, _ := e.Search("OLDER", "", MaxSearchLimit); len(rs) != MaxSearchLimit {
		t.Errorf("older: %d results, want %d", len(rs), MaxSearchLimit)
	}
}
