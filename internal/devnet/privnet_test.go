package devnet_test

import (
	"context"
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/privnet"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

// privateNet prepares a private network's operator files for a devnet in
// dir whose nodes 1..n get identities now: the operator key, the network
// file and a signed allow-list of the nodes in allowed (1-based).
type privateNet struct {
	key      ed25519.PrivateKey
	name     string
	netFile  string
	ids      []peer.ID
	allowDir string
}

func newPrivateNet(t *testing.T, dir, name string, n int) *privateNet {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &privateNet{key: key, name: name, netFile: filepath.Join(dir, "network.txt"), allowDir: dir}
	f := &privnet.File{Network: name, Operator: key.Public().(ed25519.PublicKey)}
	if err := os.WriteFile(p.netFile, f.Format(), 0o644); err != nil {
		t.Fatal(err)
	}
	if p.ids, err = devnet.NodeIDs(dir, n); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeAllow signs version v of the allow-list with nodes (1-based) into file.
func (p *privateNet) writeAllow(t *testing.T, file string, v uint64, nodes ...int) {
	t.Helper()
	var ids []peer.ID
	for _, i := range nodes {
		ids = append(ids, p.ids[i-1])
	}
	raw, err := privnet.NewAllowList(p.name, v, ids).Sign(p.key)
	if err != nil {
		t.Fatal(err)
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// livePeers is node i's live set, from its admin endpoint.
func livePeers(ctx context.Context, d *devnet.Devnet, i int) ([]string, uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := d.Status(cctx, i)
	if err != nil {
		return nil, 0, err
	}
	return st.LivePeers, st.AllowVersion, nil
}

func idStrings(p *privateNet, nodes ...int) []string {
	var out []string
	for _, i := range nodes {
		out = append(out, p.ids[i-1].String())
	}
	slices.Sort(out)
	return out
}

// TestPrivateNetwork runs two private networks of real node processes on
// 127.0.x.1 addresses, both named "acme" but with different operators:
// (1) a node of A that is not on A's allow-list never enters A's tables;
// (2) removing a node from the list (handed to one node only) takes it out
// of every other node's live table within a minute; (3) B's nodes,
// bootstrapped at A's nodes, never appear in A's tables.
func TestPrivateNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 6 node processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dirA, dirB := t.TempDir(), t.TempDir()
	a := newPrivateNet(t, dirA, "acme", 4)
	b := newPrivateNet(t, dirB, "acme", 2)
	staticA := filepath.Join(dirA, "allow-static.list")
	opA := filepath.Join(dirA, "allow-operator.list")
	a.writeAllow(t, staticA, 1, 1, 2, 3) // node 4 is not on the list
	a.writeAllow(t, opA, 1, 1, 2, 3)
	allowB := filepath.Join(dirB, "allow.list")
	b.writeAllow(t, allowB, 1, 1, 2)

	// Node 1 of A reads the operator's file, which changes below; the
	// others keep version 1 in theirs and learn newer ones by gossip.
	cmdA := func(i int, name string, args ...string) *exec.Cmd {
		if i == 1 {
			args = slices.Clone(args)
			for j := range args {
				if args[j] == staticA {
					args[j] = opA
				}
			}
		}
		return exec.Command(name, args...)
	}
	da, err := devnet.Start(devnet.Config{Dir: dirA, Nodes: 4, Binary: umbraBin, Network: "acme", Command: cmdA,
		NodeArgs: []string{"--network-file", a.netFile, "--allow-list", staticA}})
	if err != nil {
		t.Fatal(err)
	}
	defer da.Stop()
	db, err := devnet.Start(devnet.Config{Dir: dirB, Nodes: 2, Binary: umbraBin, Network: "acme",
		NodeArgs: []string{"--network-file", b.netFile, "--allow-list", allowB, "--bootstrap", da.BootstrapFile()}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()

	// waitLive waits until nodes of A each see exactly want, and checks
	// on the way that no outsider ever appears.
	outsiders := append(idStrings(a, 4), idStrings(b, 1, 2)...)
	waitLive := func(nodes []int, want []string, minVersion uint64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			done := true
			for _, i := range nodes {
				live, v, err := livePeers(ctx, da, i)
				if err != nil {
					done = false
					continue
				}
				slices.Sort(live)
				for _, o := range outsiders {
					if slices.Contains(live, o) {
						t.Fatalf("node %d of A has outsider %s in its live table", i, o)
					}
				}
				if v < minVersion || !slices.Equal(live, want) {
					done = false
				}
			}
			if done {
				return
			}
			if time.Now().After(deadline) {
				for _, i := range nodes {
					live, v, err := livePeers(ctx, da, i)
					t.Logf("node %d: allow v%d live %v err %v", i, v, live, err)
				}
				t.Fatalf("A's nodes %v did not converge on %v within %s", nodes, want, within)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	waitLive([]int{1, 2, 3}, idStrings(a, 1, 2, 3), 1, time.Minute)
	// A few more gossip rounds: node 4 and B's nodes keep knocking.
	time.Sleep(3 * time.Second)
	waitLive([]int{1, 2, 3}, idStrings(a, 1, 2, 3), 1, time.Second)
	if live, _, err := livePeers(ctx, da, 4); err == nil && len(live) > 1 {
		t.Errorf("node 4, not on the list, has peers %v", live)
	}

	// (2) The operator removes node 3; only node 1 is handed the list.
	start := time.Now()
	a.writeAllow(t, opA, 2, 1, 2)
	waitLive([]int{1, 2}, idStrings(a, 1, 2), 2, time.Minute)
	t.Logf("node 3 gone from every table in %s", time.Since(start).Round(100*time.Millisecond))
	outsiders = append(outsiders, idStrings(a, 3)...)
	time.Sleep(3 * time.Second)
	waitLive([]int{1, 2}, idStrings(a, 1, 2), 2, time.Second)
	// A client of A with the operator key keeps only listed nodes, though
	// it bootstraps at node 4 too (which knows node 3's old record, if any).
	c, err := swarmclient.Dial(ctx, []string{da.Nodes()[3].Addr, da.Nodes()[0].Addr, da.Nodes()[1].Addr},
		swarmclient.Options{Direct: true, Operator: a.key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range c.Nodes() {
		got = append(got, n.ID.String())
	}
	c.Close()
	slices.Sort(got)
	if !slices.Equal(got, idStrings(a, 1, 2)) {
		t.Errorf("client of A sees %v, want %v", got, idStrings(a, 1, 2))
	}
	// B is its own network, undisturbed by A.
	for _, i := range []int{1, 2} {
		cctx, c := context.WithTimeout(ctx, time.Second)
		st, err := db.Status(cctx, i)
		c()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(st.LivePeers)
		if !slices.Equal(st.LivePeers, idStrings(b, 1, 2)) {
			t.Errorf("node %d of B sees %v", i, st.LivePeers)
		}
	}
}
