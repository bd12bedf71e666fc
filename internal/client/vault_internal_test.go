package client

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestRestoreBigHistory: a history of 12,000 messages goes through a
// backup whole, and the restore reports its progress along the way.
func TestRestoreBigHistory(t *testing.T) {
	LightVaultForTest(t)
	home := filepath.Join(t.TempDir(), "a")
	acct, err := Init(home, "", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	e, err := openOffline(home, "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 12000
	peer := acct.ID().String() // any valid ID: the history is not checked against contacts
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b batch
	for i := range n {
		m := &Message{ID: fmt.Sprintf("%032x", i), From: peer, To: peer, Text: fmt.Sprintf("message %d", i),
			SentAt: t0.Add(time.Duration(i) * time.Second), State: StateRead}
		if err := saveMessageTo(&b, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.kv.PutMany(b.entries); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	written, err := e.WriteBackup(context.Background(), &buf, "pw")
	e.Close()
	if err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "b")
	var calls []uint64
	if _, err := RestoreBackup(fresh, &buf, "pw", "", RestoreOptions{Progress: func(done, total uint64) {
		if total != written {
			t.Errorf("progress total %d, want %d", total, written)
		}
		calls = append(calls, done)
	}}); err != nil {
		t.Fatal(err)
	}
	if len(calls) < 2*n/restoreBatch || calls[len(calls)-1] != written {
		t.Fatalf("progress reported %d times, last %v; want at least %d, ending at %d", len(calls), calls[len(calls)-1:], 2*n/restoreBatch, written)
	}
	r, err := openOffline(fresh, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ms, err := r.Messages("")
	if err != nil || len(ms) != n || ms[n-1].Text != fmt.Sprintf("message %d", n-1) {
		t.Fatalf("restored %d messages (%v), want %d", len(ms), err, n)
	}
}
