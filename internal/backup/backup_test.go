package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"
)

func makeBackup(t testing.TB, pass string, entries map[string][]byte, order []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, pass, LightParams)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Meta(Meta{AccountID: "acct", CreatedAt: 1, Entries: uint64(len(order)), Network: "net"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range order {
		if err := w.Entry(k, entries[k]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(data []byte, pass string) (*Meta, map[string][]byte, error) {
	r, err := NewReader(bytes.NewReader(data), pass)
	if err != nil {
		return nil, nil, err
	}
	m, err := r.Meta()
	if err != nil {
		return nil, nil, err
	}
	out := map[string][]byte{}
	for {
		k, v, err := r.Next()
		if errors.Is(err, io.EOF) {
			return m, out, nil
		}
		if err != nil {
			return nil, nil, err
		}
		out[k] = v
	}
}

func sample() (map[string][]byte, []string) {
	entries := map[string][]byte{"empty": {}}
	order := []string{"empty"}
	for i := range 300 {
		k := fmt.Sprintf("msg/%04d", i)
		entries[k] = bytes.Repeat([]byte{byte(i)}, 700+i) // spans many chunks
		order = append(order, k)
	}
	entries["big"] = bytes.Repeat([]byte("x"), 3*ChunkSize+17)
	order = append(order, "big")
	return entries, order
}

func TestRoundTrip(t *testing.T) {
	entries, order := sample()
	data := makeBackup(t, "correct horse", entries, order)
	m, got, err := readAll(data, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if m.AccountID != "acct" || m.Network != "net" || m.Entries != uint64(len(order)) {
		t.Fatalf("meta %+v", m)
	}
	if len(got) != len(entries) {
		t.Fatalf("%d entries back, want %d", len(got), len(entries))
	}
	for k, v := range entries {
		if !bytes.Equal(got[k], v) {
			t.Fatalf("entry %q differs", k)
		}
	}
}

func TestWrongPassphrase(t *testing.T) {
	entries, order := sample()
	data := makeBackup(t, "correct horse", entries, order)
	if _, _, err := readAll(data, "wrong horse"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, _, err := readAll(data, ""); !errors.Is(err, ErrEmptyPassphrase) {
		t.Fatalf("empty passphrase: %v", err)
	}
	if _, err := NewWriter(io.Discard, "", LightParams); !errors.Is(err, ErrEmptyPassphrase) {
		t.Fatalf("writer with an empty passphrase: %v", err)
	}
}

func TestTamperedRefused(t *testing.T) {
	entries, order := sample()
	data := makeBackup(t, "pw", entries, order)
	// Every flipped payload byte, sampled, and truncations are refused.
	for _, i := range []int{HeaderSize, HeaderSize + 1, HeaderSize + ChunkSize, len(data) / 2, len(data) - 1} {
		bad := bytes.Clone(data)
		bad[i] ^= 0x40
		if _, _, err := readAll(bad, "pw"); !errors.Is(err, ErrDamaged) {
			t.Fatalf("flip at %d: %v", i, err)
		}
	}
	for _, n := range []int{HeaderSize + 10, HeaderSize + ChunkSize + tagSize, len(data) - 1} {
		if _, _, err := readAll(data[:n], "pw"); !errors.Is(err, ErrDamaged) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	// Appending or dropping a whole chunk is refused too.
	if _, _, err := readAll(append(bytes.Clone(data), data[HeaderSize:HeaderSize+ChunkSize+tagSize]...), "pw"); !errors.Is(err, ErrDamaged) {
		t.Fatalf("chunk appended: %v", err)
	}
	// A changed header (its salt) fails the header MAC: reported as a wrong
	// passphrase, since the two cannot be told apart.
	bad := bytes.Clone(data)
	bad[20] ^= 1
	if _, _, err := readAll(bad, "pw"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("header changed: %v", err)
	}
}

func TestHeaderChecks(t *testing.T) {
	data := makeBackup(t, "pw", map[string][]byte{}, nil)
	if _, err := ParseHeader([]byte("hello")); !errors.Is(err, ErrNotBackup) {
		t.Fatalf("not a backup: %v", err)
	}
	newer := bytes.Clone(data)
	newer[9] = Version + 1
	if _, err := ParseHeader(newer); !errors.Is(err, ErrVersion) {
		t.Fatalf("newer version: %v", err)
	}
	huge := bytes.Clone(data)
	copy(huge[15:19], []byte{0xff, 0xff, 0xff, 0xff}) // memory
	if _, err := ParseHeader(huge); !errors.Is(err, ErrDamaged) {
		t.Fatalf("huge argon2 memory: %v", err)
	}
	if _, err := ParseHeader(data[:HeaderSize-1]); !errors.Is(err, ErrDamaged) {
		t.Fatalf("short header: %v", err)
	}
}

// sealPlain encrypts arbitrary plaintext as a well-formed payload, so the
// fuzzer reaches the record parser behind the authentication.
func sealPlain(t testing.TB, pass string, plain []byte) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, pass, LightParams)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(true); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzReader feeds arbitrary files (header and payload) to the reader.
func FuzzReader(f *testing.F) {
	entries, order := sample()
	f.Add(makeBackup(f, "pw", entries, order[:3]))
	f.Add([]byte("UMBRABAK"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data)
		if err != nil {
			return
		}
		// Costly key derivations (up to 1 GiB, which ParseHeader allows)
		// would only slow the fuzzer down: what follows the header is
		// what it should explore.
		if h.Params.MemoryKiB > 1024 || h.Params.Time > 2 {
			return
		}
		readAll(data, "pw")
	})
}

// FuzzRecords feeds arbitrary decrypted payloads to the record parser.
func FuzzRecords(f *testing.F) {
	entries, order := sample()
	data := makeBackup(f, "pw", entries, order[:3])
	r, _ := NewReader(bytes.NewReader(data), "pw")
	var plain []byte
	for {
		if err := r.nextChunk(); err != nil {
			f.Fatal(err)
		}
		plain = append(plain, r.chunk...)
		if r.last {
			break
		}
	}
	f.Add(plain)
	f.Add([]byte{recMeta, 0, 0, 0, 2, '{', '}', recEnd, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{recMeta, 0, 0, 0, 2, '{', '}', recEntry, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, plain []byte) {
		m, _, err := readAll(sealPlain(t, "pw", plain), "pw")
		if err == nil && m.Entries > MaxEntries {
			t.Fatalf("meta of %d entries accepted", m.Entries)
		}
	})
}

// BenchmarkBackup writes and reads back a backup of 10,000 message-sized
// entries (about 5 MB) with the light key derivation, and reports the
// throughput of the encryption and the parser.
func BenchmarkBackup(b *testing.B) {
	entries := map[string][]byte{}
	var order []string
	for i := range 10000 {
		k := fmt.Sprintf("msg/peer/%016x/%032x", i, i)
		entries[k] = bytes.Repeat([]byte{'m'}, 500)
		order = append(order, k)
	}
	var size int
	for b.Loop() {
		data := makeBackup(b, "pw", entries, order)
		size = len(data)
		if _, got, err := readAll(data, "pw"); err != nil || len(got) != len(order) {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/1e6, "MB/backup")
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
}

// TestChunkBoundaries: backups whose records end just before, at and just
// after a chunk boundary read back.
func TestChunkBoundaries(t *testing.T) {
	meta, _ := json.Marshal(Meta{AccountID: "acct", CreatedAt: 1, Entries: 1, Network: "net"})
	const name = "k"
	fixed := 1 + 4 + len(meta) + 1 + 2 + len(name) + 4 + 9 // meta, entry head, end
	for _, chunks := range []int{1, 2} {
		exact := chunks*ChunkSize - fixed
		for v := exact - 2; v <= exact+2; v++ {
			entries := map[string][]byte{name: bytes.Repeat([]byte{7}, v)}
			data := makeBackup(t, "pw", entries, []string{name})
			if _, got, err := readAll(data, "pw"); err != nil || len(got[name]) != v {
				t.Fatalf("value of %d bytes (%d from the boundary): %v", v, v-exact, err)
			}
		}
	}
}
