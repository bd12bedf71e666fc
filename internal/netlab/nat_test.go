//go:build linux

package netlab_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/netlab"
)

// TestManyClientsOneAddress is issue 11's lab finding 1: 50 clients
// behind one address (an office or a carrier NAT) each run a command that
// stores a message (a CLI run opens about four connections). With
// libp2p's default limits (8 connections per address; a burst of 16 new
// connections, then one per 5 s) the commands failed after ~36; every
// one must succeed at the first try.
func TestManyClientsOneAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("builds umbra and runs 6 nodes and 50 client processes")
	}
	const nodes, clients, parallel = 6, 50, 10
	lab := netlab.NewForTest(t, netlab.Config{Hosts: make([]netlab.HostConfig, nodes+1)})
	bin, err := devnet.BuildUmbra("../..", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := StartNodes(t, lab, bin, nodes)
	nat := lab.Host(nodes + 1)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "mailbox", "new").Output()
	if err != nil {
		t.Fatal(err)
	}
	var mb struct{ Mailbox, Secret string }
	if err := json.Unmarshal(out, &mb); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var (
		mu     sync.Mutex
		failed []string
		wg     sync.WaitGroup
	)
	sem := make(chan struct{}, parallel)
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := runIn(ctx, lab, nat, bin, "mailbox", "put", "--network", d.BootstrapFile(), "--mailbox", mb.Mailbox, "from client "+string(rune('A'+i%26))); err != nil {
				mu.Lock()
				failed = append(failed, err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d clients from %s, %d at a time: %d failed in %v", clients, nat.Addr(), parallel, len(failed), time.Since(start).Round(time.Millisecond))
	for i, f := range failed {
		if i == 3 {
			break
		}
		t.Logf("failure: %s", strings.TrimSpace(f))
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d clients behind one address failed", len(failed), clients)
	}
}
