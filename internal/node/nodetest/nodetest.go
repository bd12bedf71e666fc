// Package nodetest is for tests that run in-process node networks on this
// machine's loopback.
package nodetest

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/wire"
)

// Config is the configuration of node i (0-based) of a fast in-process
// test network in dir: it listens on 127.0.<i+1>.1, a "host" and /24 of
// its own for the diversity rules of paths and swarms, and dials from
// that address (node.Config.DialFromListenAddr) so per-address limits see
// it as a host too; short gossip, sync and probe intervals; no log.
func Config(dir string, i int, boot []string) node.Config {
	return node.Config{
		DataDir:            filepath.Join(dir, fmt.Sprintf("node-%d", i)),
		Listen:             []string{fmt.Sprintf("/ip4/127.0.%d.1/tcp/0", i+1)},
		DialFromListenAddr: true,
		Bootstrap:          boot,
		Params:             wire.Params{Network: "test", Replication: 5, PoWBits: 4},
		GossipInterval:     100 * time.Millisecond,
		SyncInterval:       500 * time.Millisecond,
		ProbeInterval:      200 * time.Millisecond,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}
