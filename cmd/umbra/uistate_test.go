package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
)

// TestDaemonStableUI: a daemon started twice on one home, with the default
// --ui, listens on the same 127.0.0.1 port with the same token, so a tab
// holding the old address and token is answered by the new daemon; the
// token is kept in a 0600 file. If the remembered port is taken the daemon
// takes another (and remembers it); an explicit port is used as given and
// does not replace the remembered one.
func TestDaemonStableUI(t *testing.T) {
	t.Setenv("UMBRA_HOME", "")
	home := filepath.Join(t.TempDir(), "home")
	// A protected home and a daemon without its passphrase: the daemon
	// serves (locked) without opening the engine or joining a network.
	t.Setenv("UMBRA_PASSPHRASE", "the home's passphrase")
	if _, errOut, err := run(t, "init", "--home", home, "--network", offlineNetwork(t, 1), "--json"); err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	t.Setenv("UMBRA_PASSPHRASE", "")
	start := func(listen string) *daemon {
		t.Helper()
		d, err := startDaemon(context.Background(), daemonConfig{Home: home, Listen: listen, Log: quietTestLogger()})
		if err != nil {
			t.Fatalf("start the daemon (--ui %q): %v", listen, err)
		}
		if !strings.HasPrefix(d.srv.URL(), "http://127.0.0.1:") {
			d.Stop()
			t.Fatalf("the daemon listens on %s, want 127.0.0.1", d.srv.URL())
		}
		return d
	}
	answers := func(url, token string) bool {
		c := api.NewClient(url, token)
		var st api.AccountStatus
		return c.Do(context.Background(), http.MethodGet, "/api/v1/account", nil, &st) == nil && st.Exists
	}

	d := start(defaultUI)
	url, token, uiURL := d.srv.URL(), d.srv.Token(), d.UIURL()
	d.Stop()
	fi, err := os.Stat(filepath.Join(home, client.UIFile))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", client.UIFile, fi.Mode().Perm())
	}

	// Restarted (with --ui given as default and as empty): same address,
	// same token; the old tab's token works.
	for _, listen := range []string{defaultUI, ""} {
		d = start(listen)
		if d.srv.URL() != url || d.srv.Token() != token || d.UIURL() != uiURL || d.movedFrom != 0 {
			t.Errorf("restart with --ui %q: %s token same=%v moved=%d; want %s with the same token", listen, d.srv.URL(), d.srv.Token() == token, d.movedFrom, url)
		}
		if !answers(url, token) {
			t.Errorf("restart with --ui %q: the old address and token are not answered", listen)
		}
		d.Stop()
	}

	// The remembered port taken: another one, said, and remembered.
	taken, err := net.Listen("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	d = start(defaultUI)
	moved := d.srv.URL()
	if moved == url || d.movedFrom != portOf(t, url) || d.srv.Token() != token {
		t.Errorf("with port %d taken: %s, movedFrom %d, token same=%v; want another port, movedFrom the old one, the same token",
			portOf(t, url), moved, d.movedFrom, d.srv.Token() == token)
	}
	d.Stop()
	taken.Close()

	// An explicit port: used, not remembered.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	explicit := free.Addr().String()
	free.Close()
	d = start(explicit)
	if d.srv.URL() != "http://"+explicit || d.srv.Token() != token {
		t.Errorf("--ui %s: listens on %s (token same=%v)", explicit, d.srv.URL(), d.srv.Token() == token)
	}
	d.Stop()
	d = start(defaultUI)
	if d.srv.URL() != moved || d.movedFrom != 0 {
		t.Errorf("after an explicit port, the default --ui listens on %s, want the remembered %s", d.srv.URL(), moved)
	}
	d.Stop()
}

func portOf(t *testing.T, url string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDaemonCommandSaysPortMoved: 'umbra daemon' whose remembered web UI
// port is taken says so on stderr, naming both ports, and prints the new
// web UI address with the kept token.
func TestDaemonCommandSaysPortMoved(t *testing.T) {
	t.Setenv("UMBRA_HOME", "")
	home := filepath.Join(t.TempDir(), "home")
	t.Setenv("UMBRA_PASSPHRASE", "the home's passphrase")
	if _, errOut, err := run(t, "init", "--home", home, "--network", offlineNetwork(t, 1), "--json"); err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	t.Setenv("UMBRA_PASSPHRASE", "")
	d, err := startDaemon(context.Background(), daemonConfig{Home: home, Listen: defaultUI, Log: quietTestLogger()})
	if err != nil {
		t.Fatal(err)
	}
	oldAddr, token := strings.TrimPrefix(d.srv.URL(), "http://"), d.srv.Token()
	d.Stop()
	taken, err := net.Listen("tcp", oldAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	root := newRoot()
	var out, errOut syncBuffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"daemon", "--home", home, "--log-level", "error"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "web UI:") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v\n%s", err, errOut.String())
	}
	_, oldPort, _ := net.SplitHostPort(oldAddr)
	if e := errOut.String(); !strings.Contains(e, "port "+oldPort+" (from the last start) is taken: now on port ") {
		t.Errorf("stderr %q: want the note that port %s is taken", e, oldPort)
	}
	if o := out.String(); !strings.Contains(o, "#token="+token) || strings.Contains(o, oldAddr) {
		t.Errorf("stdout %q: want a new web UI address with the kept token", o)
	}
}
