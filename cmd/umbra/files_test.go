package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/client"
)

// TestFileCommands: 'send --file' without a daemon uploads the file and
// sends its message before it exits; bob's 'messages' shows the file and
// how to fetch it; 'files get' fetches it with a progress-free run (no
// terminal) and saves it, refusing to overwrite; errors are one line.
func TestFileCommands(t *testing.T) {
	aliceHome, bobHome, aliceID, _, _ := twoOnline(t)
	src := filepath.Join(t.TempDir(), "notes.bin")
	data := make([]byte, 1<<20+333)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := run(t, "send", "--home", aliceHome, "bob", "--file", src, "my notes")
	f := strings.Fields(out)
	if err != nil || len(f) != 4 || f[1] != client.StateSent || f[3] != "done)" {
		t.Fatalf("send --file: %q, %v\n%s", out, err, errOut)
	}
	id := f[0]
	m := waitMessage(t, bobHome, "alice", "bob gets the file's message", func(m client.Message) bool { return m.ID == id })
	if m.File == nil || m.File.Name != "notes.bin" || m.File.Size != int64(len(data)) || m.Text != "my notes" {
		t.Fatalf("bob sees %+v", m)
	}
	out, _, err = run(t, "messages", "--home", bobHome, "--with", "alice")
	if err != nil || !strings.Contains(out, "[file notes.bin") || !strings.Contains(out, "umbra files get "+id[:8]) {
		t.Errorf("messages shows:\n%s", out)
	}
	dst := filepath.Join(t.TempDir(), "got.bin")
	out, errOut, err = run(t, "files", "get", "--home", bobHome, id[:8], "--with", aliceID, "-o", dst)
	if err != nil || !strings.HasPrefix(out, "saved "+dst) {
		t.Fatalf("files get: %q, %v\n%s", out, err, errOut)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatalf("saved %d bytes that differ", len(got))
	}
	if _, _, err := run(t, "files", "get", "--home", bobHome, id, "-o", dst); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("overwrite: %v", err)
	}
	if _, _, err := run(t, "send", "--home", aliceHome, "bob", "--file", filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing file was sent")
	}
}
