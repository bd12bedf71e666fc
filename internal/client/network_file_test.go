package client

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/privnet"
)

// TestHomeKeepsPrivateNetwork: a home created for a private network keeps
// its operator key (the engine passes it to the swarm client, which then
// trusts only nodes on the operator's signed allow-list); a bootstrap list
// changed in the home is refused; an older home with bare addresses reads
// as a public network.
func TestHomeKeepsPrivateNetwork(t *testing.T) {
	t.Parallel()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	nf := &privnet.File{Network: "acme", Operator: key.Public().(ed25519.PublicKey),
		Addrs: []string{"/ip4/198.18.1.10/tcp/4001/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"}}
	if err := nf.SignBootstrap(key); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), "h")
	if _, err := InitNetwork(home, "", nf, ""); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNetwork(home)
	if err != nil {
		t.Fatal(err)
	}
	if got.Network != "acme" || !got.Operator.Equal(nf.Operator) || !slices.Equal(got.Addrs, nf.Addrs) {
		t.Fatalf("home's network %+v, want %+v", got, nf)
	}

	path := filepath.Join(home, networkFile)
	b, _ := os.ReadFile(path)
	evil := bytes.Replace(b, []byte("198.18.1.10"), []byte("198.18.9.10"), 1)
	if err := os.WriteFile(path, evil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadNetwork(home); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("changed bootstrap list read back: %v", err)
	}

	old := filepath.Join(t.TempDir(), "old")
	if _, err := Init(old, "", []string{nf.Addrs[0]}, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, networkFile), []byte(nf.Addrs[0]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := ReadNetwork(old)
	if err != nil || pub.Private() || !slices.Equal(pub.Addrs, nf.Addrs) {
		t.Fatalf("bare addresses: %+v %v", pub, err)
	}
}
