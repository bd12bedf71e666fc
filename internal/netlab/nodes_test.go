//go:build linux

package netlab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/netlab"
)

// StartNodes starts a devnet of n real `umbra node` processes in hosts 1..n
// of the lab, each listening on its host's address only, stopped when the
// test ends (before the lab closes), and waits until every node sees all
// the others. Each node's admin endpoint is on its host's loopback.
func StartNodes(tb testing.TB, lab *netlab.Lab, bin string, n int) *devnet.Devnet {
	return startNodesWith(tb, lab, bin, n, nil)
}

// startNodesWith is StartNodes with a hook that adjusts the devnet's
// configuration (extra node flags, bootstrap list).
func startNodesWith(tb testing.TB, lab *netlab.Lab, bin string, n int, adjust func(*devnet.Config)) *devnet.Devnet {
	tb.Helper()
	return startNodes(tb, lab, bin, n, nil, adjust, 90*time.Second)
}

// StartNodesEnv is StartNodes with extra environment for node i's process
// (env(i), read at each start and restart; nil for none) and a longer or
// shorter wait for the network to converge.
func StartNodesEnv(tb testing.TB, lab *netlab.Lab, bin string, n int, env func(i int) []string, wait time.Duration) *devnet.Devnet {
	tb.Helper()
	return startNodes(tb, lab, bin, n, env, nil, wait)
}

// startNodes is the one start-up behind StartNodes, startNodesWith and
// StartNodesEnv.
func startNodes(tb testing.TB, lab *netlab.Lab, bin string, n int, env func(i int) []string, adjust func(*devnet.Config), wait time.Duration) *devnet.Devnet {
	tb.Helper()
	dir := tb.TempDir()
	cfg := devnet.Config{
		Dir: dir, Nodes: n, Binary: bin,
		HostIP: func(i int) string { return lab.Host(i).Addr() },
		Command: func(i int, name string, args ...string) *exec.Cmd {
			cmd := lab.Command(lab.Host(i), name, args...)
			if env != nil {
				if e := env(i); len(e) > 0 {
					cmd.Env = append(os.Environ(), e...)
				}
			}
			return cmd
		},
		HTTPClient: func(i int) *http.Client { return lab.Host(i).HTTPClient() },
	}
	if adjust != nil {
		adjust(&cfg)
	}
	d, err := devnet.Start(cfg)
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(dir, "node-*", "node.log"))
		for _, f := range logs {
			b, _ := os.ReadFile(f)
			tb.Logf("%s:\n%s", f, b[max(0, len(b)-2000):])
		}
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := d.WaitReady(ctx, n); err != nil {
		for _, p := range d.Procs {
			sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			st, serr := d.Status(sctx, p.Index)
			c()
			if serr == nil {
				tb.Logf("node %d: %d live: %v", p.Index, st.LiveNodes, st.LivePeers)
			}
			b, _ := os.ReadFile(filepath.Join(p.Dir, "node.log"))
			tb.Logf("node %d log:\n%s", p.Index, b[max(0, len(b)-1500):])
		}
		tb.Fatal(err)
	}
	return d
}

// runIn runs the umbra binary in host h and returns its standard output.
func runIn(ctx context.Context, lab *netlab.Lab, h *netlab.Host, bin string, args ...string) (string, error) {
	cmd := lab.Command(h, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return out.String(), fmt.Errorf("%v: %s", err, errb.String())
		}
		return out.String(), nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("%w: %s", ctx.Err(), errb.String())
	}
}

// TestNodesOverSlowLinks: 8 real nodes in 8 hosts and a client in a ninth,
// every access link 40 ms one way (80 ms between any two hosts): the
// client stores a message through onion paths and reads it back.
func TestNodesOverSlowLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds umbra and runs 8 nodes")
	}
	hosts := make([]netlab.HostConfig, 9)
	for i := range hosts {
		hosts[i].Delay = 40 * time.Millisecond
	}
	lab := netlab.NewForTest(t, netlab.Config{Hosts: hosts})
	bin, err := devnet.BuildUmbra("../..", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const nodes = 8
	d := StartNodes(t, lab, bin, nodes)
	t.Logf("%d nodes ready in %v", nodes, time.Since(start).Round(time.Millisecond))

	// Nodes listen on their lab address only (and the admin endpoint on
	// the host's own loopback).
	for i := 1; i <= nodes; i++ {
		h := lab.Host(i)
		out, err := lab.Command(h, "ss", "-Hltnu").CombinedOutput()
		if err != nil {
			t.Fatalf("ss: %v %s", err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 || !strings.HasPrefix(f[4], h.Addr()+":") && f[4] != "127.0.0.1:7001" {
				t.Errorf("host %d: a socket listens outside %s: %q", i, h.Addr(), line)
			}
		}
	}

	client := lab.Host(nodes + 1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	storeAndRead(ctx, t, lab, client, bin, d.BootstrapFile(), "hello through the lab", 5)
	for i := 1; i <= nodes+1; i++ {
		st := lab.Stats(lab.Host(i))
		if i == nodes+1 || i == 1 {
			t.Logf("host %d port: %+v", i, st)
		}
	}
}

// storeAndRead stores text in a new mailbox from host h with `umbra
// mailbox put` (up to tries attempts, 2 s apart: nodes take swarm seats
// devnet.MinAge after start), reads it back with `umbra mailbox get`, and
// fails the test unless the text comes back.
func storeAndRead(ctx context.Context, t *testing.T, lab *netlab.Lab, h *netlab.Host, bin, network, text string, tries int) {
	t.Helper()
	out, err := exec.CommandContext(ctx, bin, "mailbox", "new").Output()
	if err != nil {
		t.Fatal(err)
	}
	var mb struct{ Mailbox, Secret string }
	if err := json.Unmarshal(out, &mb); err != nil {
		t.Fatal(err)
	}
	var put string
	t0 := time.Now()
	for try := 1; ; try++ {
		put, err = runIn(ctx, lab, h, bin, "mailbox", "put", "--network", network, "--mailbox", mb.Mailbox, text)
		if err == nil || try == tries || ctx.Err() != nil {
			break
		}
		t.Logf("put try %d: %v", try, err)
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("put in %v: %s", time.Since(t0).Round(time.Millisecond), strings.TrimSpace(put))
	t0 = time.Now()
	got, err := runIn(ctx, lab, h, bin, "mailbox", "get", "--network", network, "--secret", mb.Secret, "--wait", "20s")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("get in %v", time.Since(t0).Round(time.Millisecond))
	if !strings.Contains(got, text) {
		t.Fatalf("get returned %q", got)
	}
}
