package replay

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func testKey(b byte) [32]byte {
	var k [32]byte
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func ltag(i int) [32]byte {
	var t [32]byte
	t[0], t[1], t[2], t[20] = byte(i), byte(i>>8), byte(i>>16), 0xaa
	return t
}

func mustAdd(t *testing.T, l *KeyLog, tag [32]byte, want bool) {
	t.Helper()
	got, err := l.Add(tag)
	if err != nil || got != want {
		t.Fatalf("Add = %v, %v; want %v", got, err, want)
	}
}

// TestKeyLogSurvivesKill: a tag is in the file when Add returns, with no
// Sync or Close: a second open of the file (what a node restarted after a
// kill -9 does; the page cache holds the write) knows it.
func TestKeyLogSurvivesKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.tags")
	key := testKey(1)
	l, err := CreateKeyLog(path, key, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 10; i++ {
		mustAdd(t, l, ltag(i), true)
	}
	mustAdd(t, l, ltag(3), false)
	st, err := os.Stat(path)
	if err != nil || st.Size() != int64(headerSize+10*TagSize) {
		t.Fatalf("file of %v bytes (%v), want %d", st.Size(), err, headerSize+10*TagSize)
	}
	l2, err := OpenKeyLog(path, key, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.Len() != 10 {
		t.Fatalf("reopened log holds %d tags, want 10", l2.Len())
	}
	for i := 0; i < 10; i++ {
		mustAdd(t, l2, ltag(i), false)
	}
	mustAdd(t, l2, ltag(10), true)
}

// TestKeyLogFull: a full log refuses new tags (never forgets one), still
// answers for the ones it has, and a file holding more than the maximum is
// not trusted.
func TestKeyLogFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.tags")
	key := testKey(2)
	l, err := CreateKeyLog(path, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		mustAdd(t, l, ltag(i), true)
	}
	if !l.Full() {
		t.Fatal("a log with its maximum is not Full")
	}
	if ok, err := l.Add(ltag(3)); ok || !errors.Is(err, ErrFull) {
		t.Fatalf("Add to a full log = %v, %v; want ErrFull", ok, err)
	}
	mustAdd(t, l, ltag(1), false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyLog(path, key, 2); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a 3-tag file opened with a maximum of 2: %v, want ErrCorrupt", err)
	}
	l, err = OpenKeyLog(path, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !l.Full() {
		t.Fatal("a full log reopened is not Full")
	}
}

// TestKeyLogTornRecord: a crash in the middle of a write leaves part of a
// tag; opening cuts it off so later records stay aligned.
func TestKeyLogTornRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.tags")
	key := testKey(3)
	l, err := CreateKeyLog(path, key, 10)
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, l, ltag(1), true)
	mustAdd(t, l, ltag(2), true)
	l.Close()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{1, 2, 3, 4, 5, 6, 7})
	f.Close()
	l, err = OpenKeyLog(path, key, 10)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2 {
		t.Fatalf("%d tags after a torn record, want 2", l.Len())
	}
	mustAdd(t, l, ltag(3), true)
	l.Close()
	l, err = OpenKeyLog(path, key, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 1; i <= 3; i++ {
		mustAdd(t, l, ltag(i), false)
	}
}

func TestKeyLogRefusesUntrustedFiles(t *testing.T) {
	dir := t.TempDir()
	key := testKey(4)
	good := append([]byte(magic), key[:]...)
	for name, content := range map[string][]byte{
		"empty":      {},
		"short":      good[:headerSize-1],
		"bad magic":  append([]byte("umbra-replay-v2\n"), key[:]...),
		"other key":  append([]byte(magic), make([]byte, 32)...),
		"huge claim": append(bytes.Clone(good), make([]byte, 11*TagSize)...),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenKeyLog(p, key, 10); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := OpenKeyLog(filepath.Join(dir, "missing"), key, 10); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing log: %v, want ErrNotExist", err)
	}
	p := filepath.Join(dir, "exists")
	os.WriteFile(p, good, 0o600)
	if _, err := CreateKeyLog(p, key, 10); err == nil {
		t.Fatal("CreateKeyLog over an existing file succeeded")
	}
}

// TestKeyLogWriteFailureCloses: a tag that could not be written is
// refused, and so is every later one.
func TestKeyLogWriteFailureCloses(t *testing.T) {
	l, err := CreateKeyLog(filepath.Join(t.TempDir(), "k.tags"), testKey(5), 10)
	if err != nil {
		t.Fatal(err)
	}
	l.f.Close() // the disk goes away
	if ok, err := l.Add(ltag(1)); ok || err == nil {
		t.Fatalf("Add with a failing write = %v, %v", ok, err)
	}
	if ok, err := l.Add(ltag(2)); ok || !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after a failed write = %v, %v; want ErrClosed", ok, err)
	}
}

// TestKeyLogConcurrent: each tag is new exactly once however many
// goroutines add it, with syncs running alongside (for -race).
func TestKeyLogConcurrent(t *testing.T) {
	l, err := CreateKeyLog(filepath.Join(t.TempDir(), "k.tags"), testKey(6), 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var fresh atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				ok, err := l.Add(ltag(i))
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					fresh.Add(1)
				}
				if i%50 == 0 {
					if err := l.Sync(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 200 {
		t.Fatalf("%d tags reported new, want 200", fresh.Load())
	}
}

// TestDirRetain: retiring keys closes and deletes their logs, and any
// other log file in the directory; other files are left alone.
func TestDirRetain(t *testing.T) {
	path := t.TempDir()
	d, err := OpenDir(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	k1, k2, k3 := testKey(10), testKey(20), testKey(30)
	for _, k := range [][32]byte{k1, k2, k3} {
		if err := d.Create(k); err != nil {
			t.Fatal(err)
		}
		if ok, err := d.Add(k, ltag(1)); !ok || err != nil {
			t.Fatalf("Add: %v, %v", ok, err)
		}
	}
	orphan := filepath.Join(path, "00ff.tags")
	other := filepath.Join(path, "notes.txt")
	os.WriteFile(orphan, nil, 0o600)
	os.WriteFile(other, nil, 0o600)
	if err := d.Retain(k2, k3); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Add(k1, ltag(2)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Add under a retired key: %v, want ErrUnknownKey", err)
	}
	for p, want := range map[string]bool{d.file(k1): false, orphan: false, other: true, d.file(k2): true, d.file(k3): true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	if ok, _ := d.Add(k2, ltag(1)); ok {
		t.Fatal("a retained key forgot its tag")
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	// Load after a restart; a key without a log is refused.
	d2, err := OpenDir(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if err := d2.Load(k2); err != nil {
		t.Fatal(err)
	}
	if ok, err := d2.Add(k2, ltag(1)); ok || err != nil {
		t.Fatalf("a tag from before the restart: %v, %v", ok, err)
	}
	if err := d2.Load(k1); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a retired key: %v", err)
	}
}

// FuzzOpenKeyLog: any file content opens to a log of at most max tags or
// an error, never a panic or an allocation beyond the bound; an accepted
// file holds exactly the whole records after a valid header, is cut to
// them, and keeps working.
func FuzzOpenKeyLog(f *testing.F) {
	key := testKey(7)
	good := append([]byte(magic), key[:]...)
	f.Add(good)
	f.Add(append(bytes.Clone(good), bytes.Repeat([]byte{9}, 3*TagSize)...))
	f.Add(append(bytes.Clone(good), bytes.Repeat([]byte{9}, 3*TagSize+5)...))
	f.Add(append(bytes.Clone(good), make([]byte, 65*TagSize)...))
	f.Add(good[:20])
	f.Add([]byte{})
	dir := f.TempDir()
	const max = 64
	f.Fuzz(func(t *testing.T, content []byte) {
		p := filepath.Join(dir, "fuzz.tags")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := OpenKeyLog(p, key, max)
		valid := len(content) >= headerSize && bytes.Equal(content[:headerSize], good) &&
			(len(content)-headerSize)/TagSize <= max
		if (err == nil) != valid {
			t.Fatalf("OpenKeyLog: %v; valid = %v", err, valid)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		defer l.Close()
		whole := headerSize + (len(content)-headerSize)/TagSize*TagSize
		want := map[Tag]struct{}{}
		for i := headerSize; i < whole; i += TagSize {
			want[Tag(content[i:i+TagSize])] = struct{}{}
		}
		if l.Len() != len(want) {
			t.Fatalf("%d tags, want %d", l.Len(), len(want))
		}
		if st, err := os.Stat(p); err != nil || st.Size() != int64(whole) {
			t.Fatalf("file not cut to its whole records: %v", err)
		}
		var fresh [32]byte
		fresh[0] = 0xfe
		if _, seen := want[Tag(fresh[:TagSize])]; !seen && l.Len() < max {
			if ok, err := l.Add(fresh); !ok || err != nil {
				t.Fatalf("Add to a loaded log: %v, %v", ok, err)
			}
			l.mu.Lock()
			l.dirty = false // no fsync per fuzz input
			l.mu.Unlock()
		}
	})
}

// FuzzLoadTags: the loader itself, from memory (fast), with a size that
// may disagree with the bytes (a file that shrinks while it is read).
func FuzzLoadTags(f *testing.F) {
	key := testKey(8)
	good := append([]byte(magic), key[:]...)
	f.Add(good, int64(0))
	f.Add(append(bytes.Clone(good), bytes.Repeat([]byte{9}, 5*TagSize+3)...), int64(0))
	f.Add(append(bytes.Clone(good), bytes.Repeat([]byte{9}, 5*TagSize)...), int64(-2*TagSize))
	f.Add(append(bytes.Clone(good), bytes.Repeat([]byte{9}, 5*TagSize)...), int64(1<<40))
	f.Add([]byte("umbra-replay-v1\n"), int64(0))
	const max = 64
	f.Fuzz(func(t *testing.T, content []byte, skew int64) {
		size := int64(len(content)) + skew
		seen, whole, err := loadTags(bytes.NewReader(content), size, key, max)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if len(seen) > max || whole < int64(headerSize) || whole > size || whole > int64(len(content)) ||
			(whole-int64(headerSize))%TagSize != 0 {
			t.Fatalf("%d tags, whole %d, of %d bytes (size %d)", len(seen), whole, len(content), size)
		}
		if !bytes.Equal(content[:headerSize], good) {
			t.Fatal("accepted a wrong header")
		}
		for i := int64(headerSize); i < whole; i += TagSize {
			if _, ok := seen[Tag(content[i:i+TagSize])]; !ok {
				t.Fatalf("record at %d not loaded", i)
			}
		}
	})
}
