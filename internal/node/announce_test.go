package node_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/p2p"
)

func TestParseAnnounce(t *testing.T) {
	good := []string{
		"/ip4/203.0.113.7/tcp/4001",
		"/ip4/203.0.113.7/udp/4001/quic-v1",
		"/ip6/2001:db8::7/tcp/4001",
		"/ip6/2001:db8::7/udp/4001/quic-v1",
		"/ip4/127.0.0.1/tcp/4001", // loopback is accepted (tests, single-host setups)
		"/ip6/::1/udp/9/quic-v1",
		"/ip4/10.1.2.3/tcp/65535",
	}
	for _, s := range good {
		m, err := node.ParseAnnounce(s)
		if err != nil {
			t.Errorf("ParseAnnounce(%q): %v", s, err)
		} else if m.String() != s {
			t.Errorf("ParseAnnounce(%q) = %s", s, m)
		}
	}
	bad := map[string]string{
		"":                                               "not a multiaddr",
		"203.0.113.7:4001":                               "not a multiaddr",
		"/ip4/203.0.113/tcp/4001":                        "not a multiaddr",
		"/ip4/203.0.113.7/tcp/99999":                     "not a multiaddr",
		"/ip4/0.0.0.0/tcp/4001":                          "0.0.0.0 and ::",
		"/ip6/::/udp/4001/quic-v1":                       "0.0.0.0 and ::",
		"/ip4/203.0.113.7/tcp/0":                         "port 0",
		"/ip4/203.0.113.7/udp/0/quic-v1":                 "port 0",
		"/ip4/203.0.113.7":                               "must start with",
		"/tcp/4001":                                      "must start with",
		"/dns4/node.example/tcp/4001":                    "must start with",
		"/ip4/203.0.113.7/udp/4001":                      "want /tcp/PORT or /udp/PORT/quic-v1",
		"/ip4/203.0.113.7/udp/4001/quic":                 "want /tcp/PORT or /udp/PORT/quic-v1",
		"/ip4/203.0.113.7/tcp/4001/ws":                   "want /tcp/PORT or /udp/PORT/quic-v1",
		"/ip4/203.0.113.7/udp/4001/quic-v1/webtransport": "want /tcp/PORT or /udp/PORT/quic-v1",
		"/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN": "want /tcp/PORT or /udp/PORT/quic-v1",
	}
	for s, want := range bad {
		_, err := node.ParseAnnounce(s)
		if err == nil {
			t.Errorf("ParseAnnounce(%q) accepted", s)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "announce address") {
			t.Errorf("ParseAnnounce(%q) = %v, want an announce-address error mentioning %q", s, err, want)
		}
	}
}

func TestValidateAnnounce(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	if len(cfg.Announce) != 0 {
		t.Fatalf("default announce = %v, want none", cfg.Announce)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cfg.Announce = []string{"/ip4/203.0.113.7/tcp/4001", "/ip4/0.0.0.0/tcp/4001"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "0.0.0.0/tcp/4001") {
		t.Fatalf("Validate with an unspecified announce = %v", err)
	}
	cfg.Announce = nil
	for i := range 9 {
		cfg.Announce = append(cfg.Announce, fmt.Sprintf("/ip4/203.0.113.%d/tcp/4001", i+1))
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "at most 8") {
		t.Fatalf("Validate with 9 announce addresses = %v", err)
	}
	// node.New refuses it before touching the data directory's contents.
	cfg = fastConfig(t.TempDir(), 0, nil)
	cfg.Announce = []string{"/ip4/0.0.0.0/tcp/4001"}
	if nd, err := node.New(cfg); err == nil {
		nd.Close()
		t.Fatal("node.New accepted an unspecified announce address")
	}
}

// TestAnnounceInRecord starts a node listening on 127.0.0.1:0 and
// announcing two other addresses: its signed record, its Addrs and its
// addr file carry the announced addresses only, and it still listens
// where told.
func TestAnnounceInRecord(t *testing.T) {
	cfg := fastConfig(t.TempDir(), 0, nil)
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	announce := []string{"/ip4/127.0.0.9/tcp/4001", "/ip4/127.0.0.9/udp/4001/quic-v1"}
	cfg.Announce = announce
	nd, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()

	rec, ok := nd.Table().Get(nd.ID())
	if !ok {
		t.Fatal("node has no record of itself")
	}
	var got []string
	for _, a := range rec.Addrs {
		got = append(got, a.String())
	}
	if !sameSet(got, announce) {
		t.Fatalf("record addrs = %v, want %v", got, announce)
	}
	var want []string
	for _, a := range announce {
		want = append(want, a+"/p2p/"+nd.ID().String())
	}
	if !sameSet(nd.Addrs(), want) {
		t.Fatalf("Addrs = %v, want %v", nd.Addrs(), want)
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, "addr"))
	if err != nil {
		t.Fatal(err)
	}
	if file := strings.Fields(string(b)); !sameSet(file, want) {
		t.Fatalf("addr file = %v, want %v", file, want)
	}
	listening := false
	for _, a := range nd.Host().Network().ListenAddresses() {
		if strings.HasPrefix(a.String(), "/ip4/127.0.0.1/tcp/") && !strings.HasSuffix(a.String(), "/tcp/0") {
			listening = true
		}
	}
	if !listening {
		t.Fatalf("listen addresses = %v, want one on 127.0.0.1", nd.Host().Network().ListenAddresses())
	}
}

// TestAnnouncedAddrReachesPeers starts a node that listens on two
// addresses and announces one: another node learns only the announced
// address from its record, and finds the node live there.
func TestAnnouncedAddrReachesPeers(t *testing.T) {
	port := freePort(t, "127.0.2.1")
	announced := fmt.Sprintf("/ip4/127.0.2.1/tcp/%d", port)
	tn := startNetCfg(t, 2, func(i int, c *node.Config) {
		if i == 1 {
			c.Listen = []string{announced, "/ip4/127.0.2.2/tcp/0"}
			c.Announce = []string{announced}
		}
	})
	a, b := tn.nodes[0], tn.nodes[1]
	rec, ok := a.Table().Get(b.ID())
	if !ok {
		t.Fatal("node 0 has no record of node 1")
	}
	if len(rec.Addrs) != 1 || rec.Addrs[0].String() != announced {
		t.Fatalf("node 0 knows node 1 at %v, want only %s", rec.Addrs, announced)
	}
	if len(b.Host().Network().ListenAddresses()) != 2 {
		t.Fatalf("node 1 listens on %v, want 2 addresses", b.Host().Network().ListenAddresses())
	}
	// A fresh dial from a third party through the announced address works.
	h, err := p2p.NewClientHost()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ai, err := peer.AddrInfoFromString(b.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ai.Addrs, func(m ma.Multiaddr) bool { return m.String() == announced }) {
		t.Fatalf("node 1 Addrs = %v", b.Addrs())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, *ai); err != nil {
		t.Fatalf("dial the announced address: %v", err)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// freePort finds a TCP port free on ip (a loopback address) by listening
// on port 0 and closing.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
