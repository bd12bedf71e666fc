package client

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/privnet"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

// TestForgetOtherNetwork: the node list and guards kept from one network
// file survive a start with the same file and are dropped at the first
// start with another ('umbra network set').
func TestForgetOtherNetwork(t *testing.T) {
	home := t.TempDir()
	a := &privnet.File{Addrs: []string{"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWA"}}
	b := &privnet.File{Addrs: []string{"/ip4/127.0.0.1/tcp/2/p2p/12D3KooWB"}}
	if _, err := InitNetwork(home, "", a, ""); err != nil {
		t.Fatal(err)
	}
	e, err := Open(context.Background(), Config{Home: home, Offline: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	has := func(k string) bool {
		_, ok, err := e.kv.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	e.forgetOtherNetwork(a) // first start: records a's hash
	for _, k := range []string{keyNodes, keyGuards} {
		if err := e.kv.Put(k, []byte(`[]`)); err != nil {
			t.Fatal(err)
		}
	}
	e.forgetOtherNetwork(a)
	if !has(keyNodes) || !has(keyGuards) {
		t.Fatal("a start with the same network file dropped the node list or guards")
	}
	e.forgetOtherNetwork(b)
	if has(keyNodes) || has(keyGuards) {
		t.Fatal("a start with another network file kept the old node list or guards")
	}
}

// TestUnreachableError: no answer from any node gives one line naming the
// file and how many nodes it lists (or were tried), keeping the details.
func TestUnreachableError(t *testing.T) {
	detail := errors.New("dial: line one\n  line two")
	e := &Engine{cfg: Config{Home: "/h"}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, c := range []struct {
		addrs, asked int
		want         string
	}{
		{1, 1, "can't reach the node in /h/network.txt"},
		{12, 12, "can't reach any of the 12 nodes in /h/network.txt"},
		{12, 8, "can't reach any of the 8 nodes tried of the 12 in /h/network.txt"},
	} {
		nf := &privnet.File{Addrs: make([]string, c.addrs)}
		err := e.dialError(nf, &swarmclient.NoAnswerError{Asked: c.asked, Err: detail})
		if !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || !errors.Is(err, detail) {
			t.Errorf("%d nodes, %d asked: %q; want one line starting %q, wrapping the details", c.addrs, c.asked, err, c.want)
		}
	}
	other := errors.New("bad address")
	if err := e.dialError(&privnet.File{}, other); !errors.Is(err, other) || !strings.Contains(err.Error(), "bad address") {
		t.Errorf("another dial error: %v", err)
	}
}
