package keystore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/umbra-im/umbra/internal/wire"
)

var ctx = context.Background()

func light() Option { return WithArgon2(LightArgon2) }

func openTemp(t *testing.T, pass string) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.db")
	s, err := Open(path, pass, light())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestPutGetDeleteList(t *testing.T) {
	s, _ := openTemp(t, "correct horse")
	if s.Unprotected() {
		t.Fatal("protected store reports unprotected")
	}
	entries := map[string][]byte{
		"identity/seed":     bytes.Repeat([]byte{1}, 32),
		"session/alice":     []byte("alice state"),
		"session/bob":       []byte("bob state"),
		"prekeys":           {},
		"session/bob/2":     make([]byte, 100000),
		"ünïcode/名前":        []byte("x"),
		"session/carol\x00": []byte("nul in name"),
	}
	for k, v := range entries {
		if err := s.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range entries {
		got, err := s.Get(ctx, k)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("get %q: %v", k, err)
		}
	}
	got, _ := s.Get(ctx, "prekeys")
	if got == nil {
		t.Fatal("empty value returned as nil")
	}
	if err := s.Put(ctx, "session/alice", []byte("newer")); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get(ctx, "session/alice"); string(v) != "newer" {
		t.Fatal("overwrite failed")
	}
	list, err := s.List(ctx, "session/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"session/alice", "session/bob", "session/bob/2", "session/carol\x00"}
	if !slices.Equal(list, want) {
		t.Fatalf("List = %q, want %q", list, want)
	}
	all, _ := s.List(ctx, "")
	if len(all) != len(entries) {
		t.Fatalf("%d entries listed", len(all))
	}
	if err := s.Delete(ctx, "session/bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "session/bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted entry: %v", err)
	}
	if err := s.Delete(ctx, "session/bob"); err != nil {
		t.Fatal("second delete failed")
	}
	if _, err := s.Get(ctx, "nothing"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	for _, bad := range []string{"", string(make([]byte, MaxNameSize+1))} {
		if err := s.Put(ctx, bad, nil); err == nil {
			t.Fatal("bad name accepted")
		}
	}
	if err := s.Put(ctx, "big", make([]byte, MaxValueSize+1)); err == nil {
		t.Fatal("oversized value accepted")
	}
}

func TestWrongPassphrase(t *testing.T) {
	s, path := openTemp(t, "right")
	if err := s.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, wrong := range []string{"wrong", "", "right ", "Right"} {
		_, err := Open(path, wrong, light())
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("passphrase %q: %v", wrong, err)
		}
	}
	s2, err := Open(path, "right", light())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if v, err := s2.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatal(err)
	}
}

func TestReopenKeepsDataAndParams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	p := Argon2Params{Time: 2, MemoryKiB: 128, Threads: 1}
	s, err := Open(path, "pw", WithArgon2(p))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := s.Put(ctx, fmt.Sprintf("k%02d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// Reopening with other options uses the stored parameters.
	s, err = Open(path, "pw", light())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, _ := s.Params(ctx)
	if got != p {
		t.Fatalf("params %+v, want %+v", got, p)
	}
	for i := range 50 {
		v, err := s.Get(ctx, fmt.Sprintf("k%02d", i))
		if err != nil || string(v) != fmt.Sprint(i) {
			t.Fatalf("k%02d: %v", i, err)
		}
	}
	if err := s.Put(ctx, "after reopen", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v", st.Mode().Perm())
	}
}

// Neither values nor names may appear in clear anywhere in the files.
func TestNotStoredInClear(t *testing.T) {
	for _, pass := range []string{"secret pass", ""} {
		s, path := openTemp(t, pass)
		value := []byte("PLAINTEXT-VALUE-marker-8c1f")
		name := "contact/PLAINTEXT-NAME-marker-77aa"
		if err := s.Put(ctx, name, value); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "other", bytes.Repeat(value, 100)); err != nil {
			t.Fatal(err)
		}
		check := func(stage string) {
			files, _ := filepath.Glob(path + "*")
			if len(files) == 0 {
				t.Fatal("no files")
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				for _, needle := range [][]byte{value, []byte("PLAINTEXT-NAME"), []byte(pass)} {
					if len(needle) > 0 && bytes.Contains(b, needle) {
						t.Fatalf("%s: %s contains %q in clear", stage, filepath.Base(f), needle)
					}
				}
			}
		}
		check("open (WAL)")
		s.Close()
		check("closed")
		// The check itself can fail: the plaintext written raw is found.
		db, err := sql.Open("sqlite", dsn(path))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("INSERT INTO meta (k, v) VALUES ('probe', ?)", value); err != nil {
			t.Fatal(err)
		}
		db.Close()
		b, _ := os.ReadFile(path)
		w, _ := os.ReadFile(path + "-wal")
		if !bytes.Contains(append(b, w...), value) {
			t.Fatal("the grep would not find plaintext")
		}
	}
}

func TestUnprotected(t *testing.T) {
	s, path := openTemp(t, "")
	if !s.Unprotected() {
		t.Fatal("empty passphrase not reported")
	}
	s.Put(ctx, "k", []byte("v"))
	s.Close()
	s2, err := Open(path, "", light())
	if err != nil || !s2.Unprotected() {
		t.Fatalf("reopen: %v", err)
	}
	s2.Close()
	_, err = Open(path, "something", light())
	if !errors.Is(err, ErrNoPassphrase) || errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("non-empty passphrase on an unprotected store: %v, want ErrNoPassphrase", err)
	}
	// After a passphrase is set, the empty one is just wrong, and so is
	// another one.
	s3, err := Open(path, "", light())
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.ChangePassphrase(ctx, "set now", light()); err != nil {
		t.Fatal(err)
	}
	s3.Close()
	for _, p := range []string{"", "something"} {
		if _, err := Open(path, p, light()); !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("passphrase %q on a protected store: %v, want ErrWrongPassphrase", p, err)
		}
	}
}

func TestChangePassphrase(t *testing.T) {
	s, path := openTemp(t, "")
	for i := range 10 {
		s.Put(ctx, fmt.Sprint("k", i), []byte(fmt.Sprint("v", i)))
	}
	if err := s.ChangePassphrase(ctx, "new pass", light()); err != nil {
		t.Fatal(err)
	}
	if s.Unprotected() {
		t.Fatal("still unprotected")
	}
	if v, _ := s.Get(ctx, "k3"); string(v) != "v3" {
		t.Fatal("value lost")
	}
	s.Close()
	if _, err := Open(path, "", light()); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("old passphrase: %v", err)
	}
	s, err := Open(path, "new pass", light())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	names, _ := s.List(ctx, "k")
	if len(names) != 10 {
		t.Fatalf("%d entries after change", len(names))
	}
	for i := range 10 {
		if v, err := s.Get(ctx, fmt.Sprint("k", i)); err != nil || string(v) != fmt.Sprint("v", i) {
			t.Fatal(err)
		}
	}
}

func TestTamperDetected(t *testing.T) {
	s, path := openTemp(t, "pw")
	s.Put(ctx, "a", []byte("value a"))
	s.Put(ctx, "b", []byte("value b"))
	s.Close()

	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	// Swap the two sealed values: each is bound to its name.
	var ids, vals [][]byte
	rows, _ := db.Query("SELECT id, value FROM entries ORDER BY id")
	for rows.Next() {
		var id, v []byte
		rows.Scan(&id, &v)
		ids, vals = append(ids, id), append(vals, v)
	}
	rows.Close()
	if len(ids) != 2 {
		t.Fatal("rows")
	}
	db.Exec("UPDATE entries SET value = ? WHERE id = ?", vals[1], ids[0])
	db.Exec("UPDATE entries SET value = ? WHERE id = ?", vals[0], ids[1])
	db.Close()

	s, err = Open(path, "pw", light())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if _, err := s.Get(ctx, k); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("swapped value %q: %v", k, err)
		}
	}
	// A flipped bit in one value.
	s.Put(ctx, "c", []byte("value c"))
	idC := s.keys.entryID("c")
	s.Close()
	db, _ = sql.Open("sqlite", dsn(path))
	var v []byte
	if err := db.QueryRow("SELECT value FROM entries WHERE id = ?", idC).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE entries SET value = ? WHERE id = ?", flipLast(v), idC); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(path, "pw", light())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "c"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped value: %v", err)
	}
	s.Close()
	// Damaged names.
	db, _ = sql.Open("sqlite", dsn(path))
	db.Exec("UPDATE entries SET name = x'00'")
	db.Close()
	s, err = Open(path, "pw", light())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.List(ctx, ""); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged names: %v", err)
	}
}

func flipLast(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-1] ^= 1
	return c
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	// Not an Umbra key store.
	other := filepath.Join(dir, "other.db")
	db, _ := sql.Open("sqlite", dsn(other))
	db.Exec("CREATE TABLE x (y)")
	db.Close()
	if _, err := Open(other, "pw", light()); err == nil {
		t.Fatal("foreign database opened")
	}
	// Not SQLite at all.
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, bytes.Repeat([]byte("junk"), 1000), 0o600)
	if _, err := Open(junk, "pw", light()); err == nil {
		t.Fatal("junk opened")
	}
	// A newer schema.
	newer := filepath.Join(dir, "newer.db")
	s, err := Open(newer, "pw", light())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, _ = sql.Open("sqlite", dsn(newer))
	db.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion+1))
	db.Close()
	if _, err := Open(newer, "pw", light()); err == nil {
		t.Fatal("newer schema opened")
	}
	// Hostile KDF parameters are refused before running argon2.
	hostile := filepath.Join(dir, "hostile.db")
	s, _ = Open(hostile, "pw", light())
	s.Close()
	db, _ = sql.Open("sqlite", dsn(hostile))
	rec, _ := wire.Marshal(kdfRecord{Algorithm: algArgon2id, Salt: make([]byte, saltSize), Time: 1, MemoryKiB: 1 << 31, Threads: 1})
	if _, err := parseKDFRecord(rec); err == nil {
		t.Fatal("test record should be refused")
	}
	db.Exec("UPDATE meta SET v = ? WHERE k = 'kdf'", rec)
	db.Close()
	if _, err := Open(hostile, "pw", light()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("hostile params: %v", err)
	}
	// Bad options.
	if _, err := Open(filepath.Join(dir, "x.db"), "pw", WithArgon2(Argon2Params{})); err == nil {
		t.Fatal("zero argon2 params accepted")
	}
}

func TestDefaults(t *testing.T) {
	if DefaultArgon2 != (Argon2Params{Time: 3, MemoryKiB: 64 * 1024, Threads: 2}) {
		t.Fatalf("DefaultArgon2 = %+v", DefaultArgon2)
	}
	if err := DefaultArgon2.validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentUse(t *testing.T) {
	s, _ := openTemp(t, "pw")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				k := fmt.Sprintf("g%d/%d", g, i)
				if err := s.Put(ctx, k, []byte(k)); err != nil {
					errs <- err
					return
				}
				if v, err := s.Get(ctx, k); err != nil || string(v) != k {
					errs <- fmt.Errorf("get %s: %v", k, err)
					return
				}
				if _, err := s.List(ctx, fmt.Sprintf("g%d/", g)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.ChangePassphrase(ctx, "pw2", light()); err != nil {
			errs <- err
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, _ := s.List(ctx, "")
	if len(all) != 100 {
		t.Fatalf("%d entries", len(all))
	}
	s.Close()
	if _, err := s.Get(ctx, "g0/0"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// TestPutMany: a batch is written whole, or, when one entry is refused,
// not at all.
func TestPutMany(t *testing.T) {
	s, path := openTemp(t, "pw")
	if err := s.Put(ctx, "a", []byte("old")); err != nil {
		t.Fatal(err)
	}
	batch := []Entry{{"a", []byte("new")}, {"b", []byte("2")}, {"c", nil}}
	if err := s.PutMany(ctx, batch); err != nil {
		t.Fatal(err)
	}
	bad := []Entry{{"a", []byte("newer")}, {"d", []byte("4")}, {"", []byte("no name")}}
	if err := s.PutMany(ctx, bad); err == nil {
		t.Fatal("a batch with an empty name was accepted")
	}
	big := []Entry{{"a", []byte("newer")}, {"e", make([]byte, MaxValueSize+1)}}
	if err := s.PutMany(ctx, big); err == nil {
		t.Fatal("a batch with an oversized value was accepted")
	}
	s.Close()
	s2, err := Open(path, "pw", light())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for name, want := range map[string]string{"a": "new", "b": "2", "c": ""} {
		got, err := s2.Get(ctx, name)
		if err != nil || string(got) != want {
			t.Fatalf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"d", "e"} {
		if _, err := s2.Get(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s from a refused batch: %v", name, err)
		}
	}
}
