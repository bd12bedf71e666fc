package node_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/umbra-im/umbra/internal/node"
)

// adminGet fetches path from a node's admin server.
func adminGet(t *testing.T, nd *node.Node, path string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + nd.AdminAddr() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// TestAdminPprofOnlyWhenAsked checks that the profiler is not served on the
// admin port unless the node was started with Pprof (--pprof), and is when
// it was.
func TestAdminPprofOnlyWhenAsked(t *testing.T) {
	paths := []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1", "/debug/pprof/symbol"}
	for _, on := range []bool{false, true} {
		cfg := fastConfig(t.TempDir(), 0, nil)
		cfg.Admin = "127.0.0.1:0"
		cfg.Pprof = on
		nd, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if code, body := adminGet(t, nd, "/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
			t.Errorf("pprof %v: /healthz %d %q", on, code, body)
		}
		for _, p := range paths {
			code, body := adminGet(t, nd, p)
			switch {
			case !on && code != http.StatusNotFound:
				t.Errorf("without --pprof: GET %s answered %d, want 404", p, code)
			case on && code != http.StatusOK:
				t.Errorf("with --pprof: GET %s answered %d, want 200", p, code)
			case on && p == "/debug/pprof/" && !strings.Contains(body, "goroutine"):
				t.Errorf("with --pprof: the index does not list the profiles: %.200q", body)
			}
		}
		if err := nd.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLoadIdentityCreatesPrivateDurableKey checks the identity key file: a
// new key is written with mode 0600 and no temporary file left behind, and
// the next load returns the same key.
func TestLoadIdentityCreatesPrivateDurableKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.key")
	k1, err := node.LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("identity key mode %v, want 0600", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("folder holds %d entries after creating the key, want only identity.key", len(ents))
	}
	k2, err := node.LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if !crypto.KeyEqual(k1, k2) {
		t.Error("the key loaded back differs from the one created")
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := node.LoadIdentity(path); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("an empty key file loads with %v, want a corrupt-key error", err)
	}
}

// TestAdminStoreQuotaMetrics checks the gauges an operator alerts on
// before the store is full: the limit, and what counts against it.
func TestAdminStoreQuotaMetrics(t *testing.T) {
	cfg := fastConfig(t.TempDir(), 0, nil)
	cfg.Admin = "127.0.0.1:0"
	cfg.MaxStoreBytes = 123456789
	nd, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	code, body := adminGet(t, nd, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{"\numbra_store_quota_bytes 1.23456789e+08\n", "\numbra_store_quota_used_bytes 0\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
}
