package keystore

import (
	"errors"
	"fmt"
	"testing"
)

// TestScan: Scan gives every entry under the prefix once, with its value,
// and stops at fn's first error.
func TestScan(t *testing.T) {
	s, _ := openTemp(t, "pass")
	want := map[string]string{}
	var entries []Entry
	for i := range 50 {
		name, val := fmt.Sprintf("msg/p/%03d", i), fmt.Sprintf("value %d", i)
		want[name] = val
		entries = append(entries, Entry{Name: name, Value: []byte(val)})
		entries = append(entries, Entry{Name: fmt.Sprintf("other/%03d", i), Value: []byte("x")})
	}
	entries = append(entries, Entry{Name: "msg/p/empty", Value: nil})
	want["msg/p/empty"] = ""
	if err := s.PutMany(ctx, entries); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err := s.Scan(ctx, "msg/", func(name string, v []byte) error {
		if _, dup := got[name]; dup {
			t.Errorf("%s given twice", name)
		}
		if v == nil {
			t.Errorf("%s: nil value", name)
		}
		got[name] = string(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("scan gave %d entries, want %d: %v", len(got), len(want), got)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.Scan(ctx, "", func(string, []byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("fn's error: %v after %d calls", err, n)
	}
	// The store is usable after a stopped scan.
	if _, err := s.Get(ctx, "msg/p/001"); err != nil {
		t.Errorf("get after a stopped scan: %v", err)
	}
}
