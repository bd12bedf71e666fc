package sqlitedsn

import (
	"net/url"
	"testing"
)

// TestDSN: the path is escaped, pragmas keep their order, extras are kept.
func TestDSN(t *testing.T) {
	got := DSN("/tmp/a b/s?.db", url.Values{"_txlock": {"immediate"}}, "busy_timeout(5000)", "journal_mode(WAL)")
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "file" || u.Path != "/tmp/a b/s?.db" {
		t.Fatalf("DSN %q: scheme %q, path %q", got, u.Scheme, u.Path)
	}
	q := u.Query()
	if p := q["_pragma"]; len(p) != 2 || p[0] != "busy_timeout(5000)" || p[1] != "journal_mode(WAL)" || q.Get("_txlock") != "immediate" {
		t.Fatalf("DSN %q: query %v", got, q)
	}
}
