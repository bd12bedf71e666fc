package fsutil

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// hook replaces the sync calls for one test.
func hook(t *testing.T, file func(*os.File) error, dir func(string) error) {
	t.Helper()
	oldFile, oldDir := syncFile, syncDir
	syncFile, syncDir = file, dir
	t.Cleanup(func() { syncFile, syncDir = oldFile, oldDir })
}

// TestWriteFileAtomicSyncs checks the order that makes the write durable:
// the temporary file is flushed with its full content before it replaces
// the target, and the folder is flushed after the rename.
func TestWriteFileAtomicSyncs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.key")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := []byte("the new key bytes")
	var events []string
	hook(t, func(f *os.File) error {
		got, err := os.ReadFile(f.Name())
		if err != nil {
			t.Errorf("read the file being synced: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("file synced with %q, want the whole new content", got)
		}
		if cur, _ := os.ReadFile(path); string(cur) != "old" {
			t.Errorf("the target was replaced (%q) before its content was synced", cur)
		}
		if filepath.Dir(f.Name()) != dir {
			t.Errorf("temporary file %s is not in the target's folder", f.Name())
		}
		events = append(events, "file")
		return f.Sync()
	}, func(d string) error {
		if cur, _ := os.ReadFile(path); !bytes.Equal(cur, data) {
			t.Errorf("folder synced before the rename: target holds %q", cur)
		}
		if filepath.Clean(d) != dir {
			t.Errorf("synced folder %s, want %s", d, dir)
		}
		events = append(events, "dir")
		f, err := os.Open(d)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
	if err := WriteFileAtomic(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0] != "file" || events[1] != "dir" {
		t.Fatalf("sync calls %v, want [file dir]", events)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after the write: %q, %v", got, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	assertOnly(t, dir, "identity.key")
}

// TestWriteFileAtomicSyncFailure checks that a failed flush leaves the old
// file in place and no temporary file behind.
func TestWriteFileAtomicSyncFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "addr")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk gone")
	dirSynced := false
	hook(t, func(*os.File) error { return boom }, func(string) error { dirSynced = true; return nil })
	err := WriteFileAtomic(path, []byte("new"), 0o644)
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want the sync error", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("target %q after a failed sync, want the old content", got)
	}
	if dirSynced {
		t.Error("the folder was synced although the write failed")
	}
	assertOnly(t, dir, "addr")
}

func TestWriteFileAtomicModes(t *testing.T) {
	dir := t.TempDir()
	for _, perm := range []os.FileMode{0o600, 0o644} {
		path := filepath.Join(dir, "f")
		if err := WriteFileAtomic(path, []byte("x"), perm); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != perm {
			t.Errorf("mode %v, want %v", st.Mode().Perm(), perm)
		}
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("a write into a missing folder succeeded")
	}
}

func TestSyncDir(t *testing.T) {
	var got string
	hook(t, syncFile, func(d string) error { got = d; return nil })
	if err := SyncDir("/some/dir"); err != nil || got != "/some/dir" {
		t.Errorf("SyncDir: %v, synced %q", err, got)
	}
	hook(t, syncFile, func(string) error { return errors.New("eio") })
	if err := SyncDir("/x"); err == nil {
		t.Error("a failed folder sync returned no error")
	}
}

// assertOnly checks that dir holds exactly the one file name.
func assertOnly(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != name {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v, want only %s", names, name)
	}
}
