package client

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestKVIndex: List answers from the in-memory name index, which Put and
// Delete keep in step with the database, and which a reopen rebuilds.
func TestKVIndex(t *testing.T) {
	home := t.TempDir()
	kv, closeKV, err := openKV(home, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := kv.Put(fmt.Sprintf("b/%02d", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "b0", "ba/1", "c/1", "b/07"} { // b/07 twice: no duplicate name
		if err := kv.Put(k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i += 2 {
		if err := kv.Delete(fmt.Sprintf("b/%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete("never-there"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	var want []string
	for i := 1; i < 50; i += 2 {
		want = append(want, fmt.Sprintf("b/%02d", i))
	}
	check := func(kv KV, when string) {
		t.Helper()
		got, err := kv.List("b/")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: List(b/) = %v, want %v", when, got, want)
		}
		all, _ := kv.List("")
		if len(all) != len(want)+5 {
			t.Fatalf("%s: List(\"\") has %d keys, want %d: %v", when, len(all), len(want)+5, all)
		}
		if got, _ := kv.List("zzz"); len(got) != 0 {
			t.Fatalf("%s: List(zzz) = %v", when, got)
		}
	}
	check(kv, "open")
	// The returned slice is a copy: changing it leaves the index alone.
	l, _ := kv.List("b/")
	l[0] = "mangled"
	check(kv, "after mangling a result")
	closeKV()
	kv, closeKV, err = openKV(home, "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeKV()
	check(kv, "reopened")
	if v, ok, _ := kv.Get("b/07"); !ok || string(v) != "x" {
		t.Fatalf("b/07 = %q, %v after reopen", v, ok)
	}
}

// TestPruneSeen: seen marks of expired messages go, the others stay.
func TestPruneSeen(t *testing.T) {
	home := t.TempDir() + "/u"
	if _, err := Init(home, "", []string{"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWSvTvVKFN3cFCBDDe5R82j8Dm16UiPSq1HQyKizdK6P6s"}, ""); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	e, err := Open(context.Background(), Config{Home: home, Offline: true, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	marks := map[byte]time.Time{
		1: now.Add(-48 * time.Hour), // long expired
		2: now.Add(-2 * time.Hour),  // expired past the slack
		3: now.Add(-30 * time.Minute),
		4: now.Add(14 * 24 * time.Hour),
	}
	for b, exp := range marks {
		if err := e.kv.Put(seenKey([32]byte{b}), seenValue(exp)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := e.pruneSeen(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("pruned %d marks (%v), want 2", n, err)
	}
	for b, keep := range map[byte]bool{1: false, 2: false, 3: true, 4: true} {
		if _, ok, _ := e.kv.Get(seenKey([32]byte{b})); ok != keep {
			t.Errorf("mark %d present=%v, want %v", b, ok, keep)
		}
	}
}
