package devnet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/identity"
)

// groupDaemon is one member's `umbra daemon` process, driven through its
// local API.
type groupDaemon struct {
	index   int
	home    string
	logPath string
	id      string // account ID
	api     *api.Client
	cmd     *exec.Cmd
	done    chan struct{}
}

// startGroupDaemon runs `umbra daemon` on a fresh home joined to the
// devnet's network file and creates an account without a passphrase on it
// through the API (as the web UI's onboarding does). The daemon is stopped
// (SIGTERM, then SIGKILL) when the test ends.
func startGroupDaemon(t *testing.T, ctx context.Context, network string, index int) (*groupDaemon, error) {
	dir := t.TempDir()
	p := &groupDaemon{index: index, home: filepath.Join(dir, "home"), logPath: filepath.Join(dir, "daemon.log"), done: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(umbraBin, "daemon", "--home", p.home, "--network", network, "--ui", "127.0.0.1:0",
		"--log-level", "warn", "--receipt-delay-max", "1s")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "UMBRA_") { // no passphrase or home of the caller's
			env = append(env, kv)
		}
	}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("member %d's daemon log:\n%s", index, p.logTail())
		}
	})
	for p.api == nil {
		b, err := os.ReadFile(filepath.Join(p.home, client.DaemonFile))
		var info api.DaemonInfo
		if err == nil && json.Unmarshal(b, &info) == nil && info.URL != "" && info.PID == p.cmd.Process.Pid {
			c := api.NewClient(info.URL, info.Token)
			var st api.AccountStatus
			if c.Do(ctx, http.MethodGet, "/api/v1/account", nil, &st) == nil {
				p.api = c
				break
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("member %d's daemon exited:\n%s", index, p.logTail())
		case <-ctx.Done():
			return nil, fmt.Errorf("member %d's daemon did not start: %w", index, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	acct, err := identity.New(nil)
	if err != nil {
		return nil, err
	}
	if err := p.api.Do(ctx, http.MethodPost, "/api/v1/account",
		map[string]any{"recovery_phrase": acct.Phrase(), "no_passphrase": true}, nil); err != nil {
		return nil, fmt.Errorf("member %d: create account: %w", index, err)
	}
	p.id = acct.ID().String()
	return p, nil
}

func (p *groupDaemon) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// call is one API call bounded by 30 s.
func (p *groupDaemon) call(ctx context.Context, method, path string, body, out any) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return p.api.Do(cctx, method, path, body, out)
}

func (p *groupDaemon) group(ctx context.Context, gid string) (*client.Group, error) {
	var g client.Group
	if err := p.call(ctx, http.MethodGet, "/api/v1/groups/"+gid, nil, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// texts is the member's group conversation without its system lines.
func (p *groupDaemon) texts(ctx context.Context, gid string) ([]client.Message, error) {
	var ms []client.Message
	if err := p.call(ctx, http.MethodGet, "/api/v1/groups/"+gid+"/messages", nil, &ms); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ms, func(m client.Message) bool { return m.Kind != "" || m.Notice != "" }), nil
}

// TestGroupTwentyMembersThroughKills is issue 13's real-process test: a
// 20-member group across 20 `umbra daemon` processes on a 12-node devnet;
// five members talk, 4 of the 12 node processes (the 4 that store the
// most messages: the group mailbox's replicas) are killed with SIGKILL
// mid-conversation and stay down, the talk goes on, and every member
// ends up holding every message exactly once (by message ID and text,
// attributed to its sender). It logs how long messages took to reach all
// members.
//
// The members are real daemons, one process each, not 20 engines in the
// test process: the daemon binary is built without the race detector,
// so 20 of them cost a 2-core machine less CPU than 20 engines under
// -race in one process would, and they are what users run (the issue asks
// for a group "across daemons"). Each idles in a long-poll; the test
// process only polls their APIs.
//
// Like the other devnet tests that run real processes, it runs under
// -short too.
func TestGroupTwentyMembersThroughKills(t *testing.T) {
	const (
		members  = 20
		senders  = 5  // members 0, 4, 8, 12, 16 talk
		rounds   = 20 // each sender sends one text a round
		killFrom = rounds / 2
		kills    = 4
	)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	d := devnet.StartForTest(t, devnet.Config{Dir: t.TempDir(), Nodes: 12, Binary: umbraBin})
	t.Logf("12 nodes ready after %s", time.Since(start).Round(time.Millisecond))

	// Start the daemons, a few at a time (account creation does key
	// derivation and publishes the account's card).
	ds := make([]*groupDaemon, members)
	errs := make([]error, members)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
			defer scancel()
			ds[i], errs[i] = startGroupDaemon(t, sctx, d.BootstrapFile(), i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d daemons with accounts after %s", members, time.Since(start).Round(time.Millisecond))

	// Every member has the creator as a contact, so the invitation makes
	// them members at once (no accepting).
	creator := ds[0]
	var ids []string
	for _, p := range ds[1:] {
		if err := p.call(ctx, http.MethodPost, "/api/v1/contacts", map[string]string{"id": creator.id, "name": "creator"}, nil); err != nil {
			t.Fatalf("member %d: add the creator as a contact: %v", p.index, err)
		}
		ids = append(ids, p.id)
	}
	var g client.Group
	if err := creator.call(ctx, http.MethodPost, "/api/v1/groups", map[string]any{"name": "twenty", "members": ids}, &g); err != nil {
		t.Fatal(err)
	}
	if g.Status != client.GroupJoined || len(g.Members) != members {
		t.Fatalf("created %+v", g)
	}
	gid := g.ID
	created := time.Now()
	waitUntil(t, ctx, 3*time.Minute, "every member to join the group", func() (bool, string) {
		joined := 0
		for _, p := range ds {
			if g, err := p.group(ctx, gid); err == nil && g.Status == client.GroupJoined && len(g.Members) == members {
				joined++
			}
		}
		return joined == members, fmt.Sprintf("%d of %d joined", joined, members)
	})
	t.Logf("all %d members joined %s after the group was created", members, time.Since(created).Round(time.Millisecond))

	// The conversation. A member can send once it holds the group's key
	// (its own sender-key chain is made then); before, the API says so
	// and the sender tries again.
	type sentMsg struct {
		id, from, text string
	}
	var sent []sentMsg
	var lastSend time.Time
	send := func(p *groupDaemon, text string) {
		t.Helper()
		var m client.Message
		var err error
		for try := 0; try < 60; try++ {
			if err = p.call(ctx, http.MethodPost, "/api/v1/groups/"+gid+"/messages", map[string]string{"text": text}, &m); err == nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("member %d: send %q: %v", p.index, text, err)
		}
		if m.ID == "" || m.Text != text {
			t.Fatalf("member %d: send %q answered %+v", p.index, text, m)
		}
		sent = append(sent, sentMsg{m.ID, p.id, text})
		lastSend = time.Now()
	}
	var killedAt time.Time
	var killed []int
	for r := 0; r < rounds; r++ {
		if r == killFrom {
			killed = busiestNodes(t, ctx, d, kills)
			for _, k := range killed {
				if err := d.Kill(k); err != nil {
					t.Fatal(err)
				}
			}
			killedAt = time.Now()
			t.Logf("killed nodes %v with SIGKILL after %d of %d texts", killed, len(sent), senders*rounds)
		}
		for s := 0; s < senders; s++ {
			p := ds[s*members/senders]
			send(p, fmt.Sprintf("m%d from %d, round %d", p.index, p.index, r))
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, k := range killed {
		if d.Nodes()[k-1].Running() {
			t.Fatalf("node %d runs again", k)
		}
	}

	// Every member holds every text once: by ID, by text and by sender.
	want := map[string]sentMsg{}
	for _, m := range sent {
		want[m.id] = m
	}
	check := func(p *groupDaemon) (have int, problem string, err error) {
		ms, err := p.texts(ctx, gid)
		if err != nil {
			return 0, "", err
		}
		seenID, seenText := map[string]int{}, map[string]int{}
		for _, m := range ms {
			seenID[m.ID]++
			seenText[m.Text]++
			w, ok := want[m.ID]
			switch {
			case !ok:
				return 0, fmt.Sprintf("member %d holds a text nobody sent: %+v", p.index, m), nil
			case m.Text != w.text || m.From != w.from:
				return 0, fmt.Sprintf("member %d holds %s as %q from %s, sent as %q from %s", p.index, m.ID, m.Text, m.From, w.text, w.from), nil
			case m.Outgoing != (w.from == p.id):
				return 0, fmt.Sprintf("member %d holds %s with outgoing=%v", p.index, m.ID, m.Outgoing), nil
			case !m.Outgoing && m.State != client.StateReceived:
				return 0, fmt.Sprintf("member %d holds %s in state %q", p.index, m.ID, m.State), nil
			case m.Outgoing && m.State == client.StateFailed:
				return 0, fmt.Sprintf("member %d's text %s failed: %s", p.index, m.ID, m.Error), nil
			}
		}
		for id, n := range seenID {
			if n > 1 {
				return 0, fmt.Sprintf("member %d holds %s %d times", p.index, id, n), nil
			}
		}
		for text, n := range seenText {
			if n > 1 {
				return 0, fmt.Sprintf("member %d holds %q %d times", p.index, text, n), nil
			}
		}
		return len(seenID), "", nil
	}
	waitUntil(t, ctx, 3*time.Minute, "every text at every member", func() (bool, string) {
		total, short := 0, []int{}
		for _, p := range ds {
			have, problem, err := check(p)
			if err != nil {
				return false, err.Error()
			}
			if problem != "" {
				t.Fatal(problem)
			}
			total += have
			if have < len(want) {
				short = append(short, p.index)
			}
		}
		return len(short) == 0, fmt.Sprintf("%d of %d held; members still missing some: %v", total, members*len(want), short)
	})
	allAt := time.Now()
	t.Logf("every member holds all %d texts %s after the last send, %s after the kill",
		len(want), allAt.Sub(lastSend).Round(time.Millisecond), allAt.Sub(killedAt).Round(time.Millisecond))

	// How long each text took to reach all 19 other members (sender's
	// clock to the last receiver's: one machine, one clock), before and
	// after the kill.
	reachedAll := map[string]time.Duration{}
	sentAt := map[string]time.Time{}
	for _, p := range ds {
		ms, err := p.texts(ctx, gid)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Outgoing {
				sentAt[m.ID] = m.SentAt
				continue
			}
			if lat := m.ReceivedAt.Sub(m.SentAt); lat > reachedAll[m.ID] {
				reachedAll[m.ID] = lat
			}
		}
	}
	var before, after []time.Duration
	for _, m := range sent {
		if sentAt[m.id].Before(killedAt) {
			before = append(before, reachedAll[m.id])
		} else {
			after = append(after, reachedAll[m.id])
		}
	}
	t.Logf("time for a text to reach all %d other members, before the kill: %s; after: %s", members-1, spread(before), spread(after))

	// Every sender learns that all 19 others got each of its texts
	// (delivered receipts, posted to the group's mailbox, through the
	// kill too).
	waitUntil(t, ctx, 2*time.Minute, "delivered receipts from every member", func() (bool, string) {
		short := 0
		for s := 0; s < senders; s++ {
			ms, err := ds[s*members/senders].texts(ctx, gid)
			if err != nil {
				return false, err.Error()
			}
			for _, m := range ms {
				if m.Outgoing && m.DeliveredCount < members-1 {
					short++
				}
			}
		}
		return short == 0, fmt.Sprintf("%d of %d texts with fewer than %d delivered receipts", short, len(want), members-1)
	})
	t.Logf("every sender holds %d delivered receipts for each text %s after the last send", members-1, time.Since(lastSend).Round(time.Millisecond))

	// Nothing arrives twice later either (a copy read again from another
	// replica of the mailbox, or posted again after a lost answer).
	time.Sleep(5 * time.Second)
	for _, p := range ds {
		have, problem, err := check(p)
		if err != nil {
			t.Fatal(err)
		}
		if problem != "" {
			t.Fatal(problem)
		}
		if have != len(want) {
			t.Fatalf("member %d holds %d of %d texts", p.index, have, len(want))
		}
	}
	t.Logf("%d members × %d texts, each held exactly once; test took %s", members, len(want), time.Since(start).Round(time.Millisecond))
}

// busiestNodes picks the n nodes that store the most messages. The
// group's mailbox, written with every text, chain and receipt, is the
// busiest of the devnet's mailboxes, so these are (most of) its replicas:
// killing them takes out the group's storage rather than nodes it may
// not use.
func busiestNodes(t *testing.T, ctx context.Context, d *devnet.Devnet, n int) []int {
	t.Helper()
	type load struct{ node, stored int }
	var loads []load
	var desc []string
	for _, p := range d.Nodes() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := d.Status(sctx, p.Index)
		cancel()
		if err != nil {
			t.Fatalf("node %d status: %v", p.Index, err)
		}
		loads = append(loads, load{p.Index, int(st.StoredMessages)})
		desc = append(desc, fmt.Sprintf("%d:%d", p.Index, st.StoredMessages))
	}
	slices.SortStableFunc(loads, func(a, b load) int { return b.stored - a.stored })
	var out []int
	for _, l := range loads[:n] {
		out = append(out, l.node)
	}
	slices.Sort(out)
	t.Logf("messages stored per node (node:count): %s", strings.Join(desc, " "))
	return out
}

// spread is "median M, max X over N".
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	slices.Sort(ds)
	return fmt.Sprintf("median %s, max %s over %d texts", ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), len(ds))
}

// waitUntil polls f every 500 ms until it holds, failing the test with
// f's progress after d (or when ctx ends). It logs progress every 15 s.
func waitUntil(t *testing.T, ctx context.Context, d time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	start := time.Now()
	lastLog := start
	for {
		ok, progress := f()
		if ok {
			return
		}
		if time.Since(start) > d || ctx.Err() != nil {
			t.Fatalf("timed out after %s waiting for %s: %s", time.Since(start).Round(time.Second), what, progress)
		}
		if time.Since(lastLog) > 15*time.Second {
			t.Logf("waiting %s for %s: %s", time.Since(start).Round(time.Second), what, progress)
			lastLog = time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
}
