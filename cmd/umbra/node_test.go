package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeAnnounceRefused: `umbra node` refuses an announce address that
// others could not dial, from the flag or from UMBRA_ANNOUNCE, before it
// creates its data directory.
func TestNodeAnnounceRefused(t *testing.T) {
	t.Setenv("UMBRA_ANNOUNCE", "")
	dir := filepath.Join(t.TempDir(), "n")
	for _, c := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--announce", "/ip4/0.0.0.0/tcp/4001"}, "", "0.0.0.0 and ::"},
		{[]string{"--announce", "/ip4/203.0.113.7/tcp/4001", "--announce", "203.0.113.7:4001"}, "", "not a multiaddr"},
		{nil, "/ip4/203.0.113.7/udp/4001/quic-v1,/ip6/2001:db8::7/tcp/0", "port 0"},
	} {
		t.Setenv("UMBRA_ANNOUNCE", c.env)
		if c.env == "" {
			os.Unsetenv("UMBRA_ANNOUNCE")
		}
		_, _, err := run(t, append([]string{"node", "--data", dir}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), "announce address") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("umbra node %v (UMBRA_ANNOUNCE=%q) = %v, want an announce-address error mentioning %q", c.args, c.env, err, c.want)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the data directory was created (%v)", err)
	}
}
