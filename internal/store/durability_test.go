package store

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const crashEnv = "UMBRA_STORE_CRASH_CHILD_DB"

// crashChild runs in the subprocess: it Puts messages from several
// goroutines forever and prints "acked <hash>" for every acknowledged one.
func crashChild(path string) {
	s, err := Open(Config{Path: path, Logger: quietLogger})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	exp := time.Now().Add(time.Hour).UnixMilli()
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				m := mkMsg(mbox(w), fmt.Sprintf("crash-%d-%d", w, i), exp)
				res, err := s.Put(context.Background(), m)
				if err != nil || res[0].Status != Stored {
					fmt.Println("put failed:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "acked %x\n", m.Hash)
				out.Flush() // the parent must see an ack only after Put returned
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestDurabilityKill puts messages in a subprocess, SIGKILLs it right after
// reading a number of "acked" lines, and checks that every acknowledged
// message is in the database. (SIGKILL leaves the OS page cache intact, so
// this verifies the commit-before-ack protocol, not fsync itself; fsync is
// requested by synchronous=FULL, which Open verifies.)
func TestDurabilityKill(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a subprocess")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const want = 400
	var acked []Hash
	sc := bufio.NewScanner(stdout)
	for len(acked) < want && sc.Scan() {
		line := sc.Text()
		hx, ok := strings.CutPrefix(line, "acked ")
		if !ok {
			t.Logf("child: %s", line)
			continue
		}
		b, err := hex.DecodeString(hx)
		if err != nil || len(b) != 32 {
			t.Fatalf("bad ack line %q", line)
		}
		acked = append(acked, Hash(b))
	}
	// Kill while the child is still writing.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) < want {
		t.Fatalf("child produced only %d acks (scan err %v)", len(acked), sc.Err())
	}

	s, err := Open(Config{Path: path, Logger: quietLogger})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	for start := 0; start < len(acked); start += MaxGetLimit {
		part := acked[start:min(start+MaxGetLimit, len(acked))]
		got, err := s.GetByHash(part)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(part) {
			t.Fatalf("%d of %d acknowledged messages missing after SIGKILL", len(part)-len(got), len(part))
		}
	}
	st := s.Stats()
	if st.Messages < int64(len(acked)) {
		t.Fatalf("Stats.Messages = %d < %d acked", st.Messages, len(acked))
	}
	for w := range 8 {
		checkDigest(t, s, mbox(w))
	}
	t.Logf("%d acked before SIGKILL, %d on disk", len(acked), st.Messages)
}
