package node_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/onion"
)

// replayLogs lists the replay log files of a node's data dir and their
// total size.
func replayLogs(t *testing.T, dataDir string) (names []string, size int64) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dataDir, "onion-replay"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, e.Name())
		size += info.Size()
	}
	return names, size
}

func logName(key []byte) string { return hex.EncodeToString(key) + ".tags" }

// TestOnionReplayRefusedAfterRestart: a packet a guard relayed before it
// restarted is refused after the restart (the replay cache was memory-only
// before, so it was relayed again and its reply sealed a second time under
// the same key). The tag is in the guard's log file before the node
// stops, so a killed process (whose page cache survives) keeps it too; the
// onion key survives the restart, so fresh packets still pass.
func TestOnionReplayRefusedAfterRestart(t *testing.T) {
	rec := &recorder{}
	tn := startNetCfg(t, 5, func(_ int, c *node.Config) { c.OnionObserver = rec.add })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := tn.client(ctx)
	key, _ := mailbox.NewKey()
	if _, err := c.Put(ctx, key.ID(), 0, time.Hour, []byte("once")); err != nil {
		t.Fatal(err)
	}
	var first node.OnionEvent
	for _, ev := range rec.all() {
		if ev.From == c.Host().ID() {
			first = ev
			break
		}
	}
	if first.In == nil {
		t.Fatal("no guard event recorded")
	}
	gi := slices.IndexFunc(tn.nodes, func(nd *node.Node) bool { return nd.ID() == first.Node })
	oc := newOnionClient(t)
	keyBefore := oc.hop(t, tn.nodes[gi]).OnionKey
	names, size := replayLogs(t, tn.cfgs[gi].DataDir)
	if !slices.Contains(names, logName(keyBefore)) {
		t.Fatalf("no replay log for the guard's key among %v", names)
	}
	if size <= int64(len(names))*48 {
		t.Fatalf("the guard's replay logs hold no tag before it stops (%d bytes in %d files)", size, len(names))
	}

	if err := tn.nodes[gi].Close(); err != nil {
		t.Fatal(err)
	}
	nd, err := node.New(tn.cfgs[gi])
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	tn.nodes[gi] = nd
	hop := oc.hop(t, nd)
	if !bytes.Equal(hop.OnionKey, keyBefore) {
		t.Fatal("the onion key changed across a restart; this test wants it kept")
	}
	before := len(rec.all())
	_, err = oc.send(ctx, nd.ID(), first.In)
	if wireCode(err) != 401 {
		t.Fatalf("packet replayed after a restart: %v, want a 401 refusal", err)
	}
	if after := len(rec.all()); after != before {
		t.Fatalf("the replayed packet was relayed after the restart (%d new hop events)", after-before)
	}
	// A fresh packet to the same key is served.
	if _, err := oc.roundTrip(ctx, t, []onion.Hop{hop}, junkRequest()); err != nil {
		t.Fatalf("fresh packet after the restart: %v", err)
	}
}

// TestOnionKeyRotatesWhenReplayLogFull: a key whose replay log is full is
// rotated at once; packets to it are refused (503), never relayed with
// their tag forgotten; its log is kept while it is the previous key (a
// replay is still refused) and deleted when it retires.
func TestOnionKeyRotatesWhenReplayLogFull(t *testing.T) {
	const perKey = 4
	tn := startNetCfg(t, 3, func(i int, c *node.Config) {
		if i == 0 {
			c.Onion.ReplayTagsPerKey = perKey
		}
	})
	nd := tn.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	oc := newOnionClient(t)
	h0 := oc.hop(t, nd)
	var sent [][]byte
	for i := 0; i < perKey; i++ {
		pkt, circ, err := onion.Build([]onion.Hop{h0}, junkRequest())
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, bytes.Clone(pkt))
		reply, err := oc.send(ctx, nd.ID(), pkt)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if _, err := circ.Open(reply); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := oc.roundTrip(ctx, t, []onion.Hop{h0}, junkRequest()); wireCode(err) != 503 {
		t.Fatalf("packet to a key with a full replay log: %v, want 503", err)
	}
	var h1 onion.Hop
	waitFor(t, 10*time.Second, func() bool {
		h1 = oc.hop(t, nd)
		return !bytes.Equal(h1.OnionKey, h0.OnionKey)
	}, "an early rotation")
	if _, err := oc.roundTrip(ctx, t, []onion.Hop{h1}, junkRequest()); err != nil {
		t.Fatalf("packet to the new key: %v", err)
	}
	if _, err := oc.send(ctx, nd.ID(), sent[0]); wireCode(err) != 401 {
		t.Fatalf("replay to the previous key: %v, want 401", err)
	}
	if _, err := oc.roundTrip(ctx, t, []onion.Hop{h0}, junkRequest()); wireCode(err) != 503 {
		t.Fatalf("new packet to the full previous key: %v, want 503", err)
	}
	names, _ := replayLogs(t, tn.cfgs[0].DataDir)
	slices.Sort(names)
	want := []string{logName(h0.OnionKey), logName(h1.OnionKey)}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("replay logs %v, want the current and previous keys' %v", names, want)
	}
	// Fill the new key: it rotates too, and the first key retires.
	for i := 1; i < perKey; i++ {
		if _, err := oc.roundTrip(ctx, t, []onion.Hop{h1}, junkRequest()); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = oc.roundTrip(ctx, t, []onion.Hop{h1}, junkRequest())
	var h2 onion.Hop
	waitFor(t, 10*time.Second, func() bool {
		h2 = oc.hop(t, nd)
		return !bytes.Equal(h2.OnionKey, h1.OnionKey)
	}, "a second early rotation")
	waitFor(t, 5*time.Second, func() bool {
		names, _ := replayLogs(t, tn.cfgs[0].DataDir)
		return len(names) == 2 && !slices.Contains(names, logName(h0.OnionKey))
	}, "the retired key's log to go")
	if _, err := oc.send(ctx, nd.ID(), sent[0]); wireCode(err) != 400 {
		t.Fatalf("packet to a retired key: %v, want 400 (cannot peel)", err)
	}
}

// TestOnionCorruptReplayLog: a node whose replay log was torn by a crash
// keeps its key (the torn record is cut); one whose log cannot be trusted
// (garbage, or gone) starts with a new key, since packets the old key
// accepted could be replayed: they are refused (the key is retired).
func TestOnionCorruptReplayLog(t *testing.T) {
	tn := startNet(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	oc := newOnionClient(t)
	restart := func(damage func(log string)) (before, after onion.Hop, sent []byte) {
		t.Helper()
		before = oc.hop(t, tn.nodes[0])
		pkt, _, err := onion.Build([]onion.Hop{before}, junkRequest())
		if err != nil {
			t.Fatal(err)
		}
		sent = bytes.Clone(pkt)
		if _, err := oc.send(ctx, tn.nodes[0].ID(), pkt); err != nil {
			t.Fatal(err)
		}
		if err := tn.nodes[0].Close(); err != nil {
			t.Fatal(err)
		}
		damage(filepath.Join(tn.cfgs[0].DataDir, "onion-replay", logName(before.OnionKey)))
		nd, err := node.New(tn.cfgs[0])
		if err != nil {
			t.Fatalf("restart with a damaged replay log: %v", err)
		}
		tn.nodes[0] = nd
		return before, oc.hop(t, nd), sent
	}

	// Torn: half a tag appended.
	before, after, sent := restart(func(log string) {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte{1, 2, 3, 4, 5, 6, 7, 8})
		f.Close()
	})
	if !bytes.Equal(before.OnionKey, after.OnionKey) {
		t.Fatal("a torn replay log retired the key")
	}
	if _, err := oc.send(ctx, tn.nodes[0].ID(), sent); wireCode(err) != 401 {
		t.Fatalf("replay after a torn log: %v, want 401", err)
	}

	for name, damage := range map[string]func(string){
		"garbage": func(log string) { os.WriteFile(log, []byte("not a replay log at all, not at all"), 0o600) },
		"deleted": func(log string) { os.Remove(log) },
	} {
		before, after, sent := restart(damage)
		if bytes.Equal(before.OnionKey, after.OnionKey) {
			t.Fatalf("%s replay log: the key was kept", name)
		}
		if _, err := oc.send(ctx, tn.nodes[0].ID(), sent); wireCode(err) != 400 {
			t.Fatalf("%s replay log: a packet to the old key: %v, want 400 (retired)", name, err)
		}
		if _, err := oc.roundTrip(ctx, t, []onion.Hop{after}, junkRequest()); err != nil {
			t.Fatalf("%s replay log: a packet to the new key: %v", name, err)
		}
		names, _ := replayLogs(t, tn.cfgs[0].DataDir)
		if len(names) != 1 || names[0] != logName(after.OnionKey) {
			t.Fatalf("%s replay log: logs %v, want only the new key's", name, names)
		}
	}
}
