package privnet_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/privnet"
)

func opKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
}

func peerID(t testing.TB, seed byte) peer.ID {
	priv, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestAllowListSignOpen(t *testing.T) {
	key := opKey(1)
	pub := key.Public().(ed25519.PublicKey)
	a, b, c := peerID(t, 1), peerID(t, 2), peerID(t, 3)
	raw, err := privnet.NewAllowList("acme", 3, []peer.ID{b, a, b}).Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := privnet.OpenAllowList(raw, pub, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != 3 || !l.Allowed(a) || !l.Allowed(b) || l.Allowed(c) || len(l.IDs()) != 2 {
		t.Fatalf("list %+v", l)
	}
	if v, err := privnet.PeekVersion(raw); err != nil || v != 3 {
		t.Fatalf("peek %d %v", v, err)
	}
	// Wrong key, wrong network, tampered bytes: refused.
	if _, err := privnet.OpenAllowList(raw, opKey(2).Public().(ed25519.PublicKey), "acme"); !errors.Is(err, privnet.ErrInvalid) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := privnet.OpenAllowList(raw, pub, "other"); !errors.Is(err, privnet.ErrInvalid) {
		t.Fatalf("wrong network: %v", err)
	}
	bad := bytes.Clone(raw)
	bad[len(bad)/2] ^= 1
	if _, err := privnet.OpenAllowList(bad, pub, "acme"); err == nil {
		t.Fatal("tampered list accepted")
	}
	// A list signed for another network by the same key is refused too.
	other, _ := privnet.NewAllowList("beta", 9, []peer.ID{c}).Sign(key)
	if _, err := privnet.OpenAllowList(other, pub, "acme"); err == nil {
		t.Fatal("list of another network accepted")
	}
	var nilList *privnet.AllowList
	if nilList.Allowed(a) {
		t.Fatal("nil list allows")
	}
}

func TestAllowListBounds(t *testing.T) {
	key := opKey(1)
	ids := make([]peer.ID, privnet.MaxAllowNodes+1)
	for i := range ids {
		ids[i] = peer.ID([]byte{0, 4, byte(i >> 8), byte(i), 1, 2})
	}
	if _, err := privnet.NewAllowList("acme", 1, ids).Sign(key); err == nil {
		t.Fatal("oversize list signed")
	}
	huge := make([]byte, privnet.MaxAllowBytes+1)
	if _, err := privnet.OpenAllowList(huge, key.Public().(ed25519.PublicKey), "acme"); !errors.Is(err, privnet.ErrInvalid) || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("oversize raw: %v", err)
	}
	if _, err := privnet.PeekVersion(huge); err == nil {
		t.Fatal("oversize peek")
	}
}

func TestNetworkFile(t *testing.T) {
	key := opKey(1)
	f := &privnet.File{Network: "acme", Operator: key.Public().(ed25519.PublicKey),
		Addrs: []string{"/ip4/127.0.1.1/tcp/4001/p2p/" + peerID(t, 1).String()}}
	// Unsigned addresses in a private file are refused.
	if _, err := privnet.ParseFile(f.Format()); err == nil {
		t.Fatal("unsigned bootstrap list accepted")
	}
	if err := f.SignBootstrap(opKey(2)); err == nil {
		t.Fatal("signed with a foreign key")
	}
	if err := f.SignBootstrap(key); err != nil {
		t.Fatal(err)
	}
	g, err := privnet.ParseFile(f.Format())
	if err != nil {
		t.Fatal(err)
	}
	if !g.Private() || g.Network != "acme" || len(g.Addrs) != 1 || g.Addrs[0] != f.Addrs[0] {
		t.Fatalf("parsed %+v", g)
	}
	// An address added after signing breaks the signature.
	tampered := append(f.Format(), []byte("/ip4/127.0.9.9/tcp/1/p2p/"+peerID(t, 9).String()+"\n")...)
	if _, err := privnet.ParseFile(tampered); err == nil {
		t.Fatal("tampered bootstrap list accepted")
	}
	// A devnet's bootstrap.txt is a public network file.
	pub, err := privnet.ParseFile([]byte("# nodes\n/ip4/127.0.0.1/tcp/1/p2p/" + peerID(t, 1).String() + "\n\n"))
	if err != nil || pub.Private() || len(pub.Addrs) != 1 {
		t.Fatalf("public file: %+v %v", pub, err)
	}
	for _, bad := range []string{"bogus line\n", "network a\nnetwork b\n", "operator xx\n", "bootstrap-sig AAAA\n", "operator " + strings.Repeat("A", 44) + "\n"} {
		if _, err := privnet.ParseFile([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestOperatorKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "operator.key")
	k, err := privnet.NewOperatorKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	if _, err := privnet.NewOperatorKey(path); err == nil {
		t.Fatal("overwrote a key")
	}
	k2, err := privnet.LoadOperatorKey(path)
	if err != nil || !k.Equal(k2) {
		t.Fatalf("load: %v", err)
	}
	_ = os.Chmod(path, 0o644)
	if _, err := privnet.LoadOperatorKey(path); err == nil {
		t.Fatal("loaded a world-readable key")
	}
}

// FuzzOpenAllowList feeds arbitrary bytes to OpenAllowList and
// PeekVersion: no panic, every refusal wraps ErrInvalid, and whatever is
// accepted respects the limits and agrees with PeekVersion.
func FuzzOpenAllowList(f *testing.F) {
	key := opKey(1)
	pub := key.Public().(ed25519.PublicKey)
	raw, err := privnet.NewAllowList("acme", 7, []peer.ID{peerID(f, 1), peerID(f, 2)}).Sign(key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	for _, n := range []int{0, 1, 5, len(raw) / 2, len(raw) - 1} {
		f.Add(raw[:n])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, perr := privnet.PeekVersion(b)
		l, err := privnet.OpenAllowList(b, pub, "acme")
		if err != nil {
			if !errors.Is(err, privnet.ErrInvalid) {
				t.Fatalf("unwrapped error %v", err)
			}
			return
		}
		if perr != nil || v != l.Version {
			t.Fatalf("peek %d %v, open %d", v, perr, l.Version)
		}
		if len(b) > privnet.MaxAllowBytes || len(l.Nodes) > privnet.MaxAllowNodes || l.Network != "acme" {
			t.Fatalf("accepted out of bounds: %+v", l)
		}
	})
}

// FuzzParseFile feeds arbitrary text to ParseFile: no panic, and a private
// file it accepts with addresses carries a signature that verifies.
func FuzzParseFile(f *testing.F) {
	key := opKey(1)
	nf := &privnet.File{Network: "acme", Operator: key.Public().(ed25519.PublicKey),
		Addrs: []string{"/ip4/127.0.1.1/tcp/4001/p2p/" + peerID(f, 1).String()}}
	_ = nf.SignBootstrap(key)
	f.Add(nf.Format())
	f.Add([]byte("/ip4/127.0.0.1/tcp/1\n# c\n"))
	f.Add([]byte("network x\noperator AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := privnet.ParseFile(b)
		if err != nil {
			return
		}
		if len(g.Addrs) > privnet.MaxBootstrap {
			t.Fatalf("%d addresses", len(g.Addrs))
		}
		if g.Private() && len(g.Addrs) > 0 {
			h, err := privnet.ParseFile(g.Format())
			if err != nil || h.Network != g.Network || len(h.Addrs) != len(g.Addrs) {
				t.Fatalf("reformat: %v", err)
			}
		}
	})
}
