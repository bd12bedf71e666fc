package client

import (
	"fmt"
	"slices"
	"testing"
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
