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
	network string
	logPath string
	id      string // account ID
	api     *api.Client

	mu   sync.Mutex // guards cmd and done across restarts
	cmd  *exec.Cmd
	done chan struct{}
}

// startGroupDaemon runs `umbra daemon` on a fresh home joined to the
// devnet's network file and creates an account without a passphrase on it
// through the API (as the web UI's onboarding does). The daemon is stopped
// (SIGTERM, then SIGKILL) when the test ends.
func startGroupDaemon(t *testing.T, ctx context.Context, network string, index int) (*groupDaemon, error) {
	dir := t.TempDir()
	p := &groupDaemon{index: index, home: filepath.Join(dir, "home"), network: network, logPath: filepath.Join(dir, "daemon.log")}
	t.Cleanup(func() {
		p.stop(os.Interrupt, 15*time.Second)
		if t.Failed() {
			t.Logf("member %d's daemon log:\n%s", index, p.logTail())
		}
	})
	if err := p.run(ctx); err != nil {
		return nil, err
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

// run starts the daemon process for the home and waits until its API
// answers.
func (p *groupDaemon) run(ctx context.Context) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(umbraBin, "daemon", "--home", p.home, "--network", p.network, "--ui", "127.0.0.1:0",
		"--log-level", "warn", "--receipt-delay-max", "1s")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "UMBRA_") { // no passphrase or home of the caller's
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	for {
		b, err := os.ReadFile(filepath.Join(p.home, client.DaemonFile))
		var info api.DaemonInfo
		if err == nil && json.Unmarshal(b, &info) == nil && info.URL != "" && info.PID == cmd.Process.Pid {
			c := api.NewClient(info.URL, info.Token)
			var st api.AccountStatus
			if c.Do(ctx, http.MethodGet, "/api/v1/account", nil, &st) == nil {
				p.mu.Lock()
				p.api = c
				p.mu.Unlock()
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("member %d's daemon exited:\n%s", p.index, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("member %d's daemon did not start: %w", p.index, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop signals the running daemon and waits for it to exit, killing it
// after wait.
func (p *groupDaemon) stop(sig os.Signal, wait time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
	}
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
	p.mu.Lock()
	c := p.api
	p.mu.Unlock()
	return c.Do(cctx, method, path, body, out)
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

// groupLab is a devnet, a daemon per member and one group they are all
// in.
type groupLab struct {
	d     *devnet.Devnet
	ds    []*groupDaemon
	gid   string
	start time.Time

	mu       sync.Mutex
	sent     map[string]sentMsg // by message ID
	lastSend time.Time
	lacks    map[int][]string // by member, at its last check: the texts it must hold and lacks

	// expect says whether member p must hold m, must not, or may (nil:
	// every member must hold every text).
	expect func(p *groupDaemon, m sentMsg) expectation
}

type sentMsg struct {
	id, from, text string
	at             time.Time // when the daemon accepted it
}

type expectation int

const (
	mustHold expectation = iota
	mayHold
	mustNotHold
)

// newGroupLab starts 12 nodes and n daemons with accounts; member 0 makes
// a group of the first inGroup, and newGroupLab waits until they are all
// in it. Every member has the creator as a contact first, so an
// invitation makes them members at once (no accepting).
func newGroupLab(t *testing.T, ctx context.Context, n, inGroup int) *groupLab {
	l := &groupLab{start: time.Now(), sent: map[string]sentMsg{}, lacks: map[int][]string{}}
	l.d = devnet.StartForTest(t, devnet.Config{Dir: t.TempDir(), Nodes: 12, Binary: umbraBin})
	t.Logf("12 nodes ready after %s", time.Since(l.start).Round(time.Millisecond))

	// A few daemons at a time (account creation publishes the account's
	// card through the network).
	l.ds = make([]*groupDaemon, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range l.ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
			defer scancel()
			l.ds[i], errs[i] = startGroupDaemon(t, sctx, l.d.BootstrapFile(), i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d daemons with accounts after %s", n, time.Since(l.start).Round(time.Millisecond))

	creator := l.ds[0]
	var ids []string
	for _, p := range l.ds[1:] {
		if err := p.call(ctx, http.MethodPost, "/api/v1/contacts", map[string]string{"id": creator.id, "name": "creator"}, nil); err != nil {
			t.Fatalf("member %d: add the creator as a contact: %v", p.index, err)
		}
		if p.index < inGroup {
			ids = append(ids, p.id)
		}
	}
	var g client.Group
	if err := creator.call(ctx, http.MethodPost, "/api/v1/groups", map[string]any{"name": "lab", "members": ids}, &g); err != nil {
		t.Fatal(err)
	}
	if g.Status != client.GroupJoined || len(g.Members) != inGroup {
		t.Fatalf("created %+v", g)
	}
	l.gid = g.ID
	created := time.Now()
	l.waitMembers(t, ctx, l.ds[:inGroup], g.Epoch)
	t.Logf("all %d members joined %s after the group was created", inGroup, time.Since(created).Round(time.Millisecond))
	return l
}

// waitMembers waits until each of ps is in the group, sees all of ps (and
// no one else) as members and is at epoch.
func (l *groupLab) waitMembers(t *testing.T, ctx context.Context, ps []*groupDaemon, epoch uint64) {
	t.Helper()
	waitUntil(t, ctx, 3*time.Minute, fmt.Sprintf("%d members in the group at epoch %d", len(ps), epoch), func() (bool, string) {
		joined := 0
		for _, p := range ps {
			if g, err := p.group(ctx, l.gid); err == nil && g.Status == client.GroupJoined && len(g.Members) == len(ps) && g.Epoch == epoch {
				joined++
			}
		}
		return joined == len(ps), fmt.Sprintf("%d of %d there", joined, len(ps))
	})
}

// send queues a text from p. A member can send once it holds the group's
// key (its own sender-key chain is made then); before, the API says so
// and send tries again. It is safe to call from several goroutines; it
// fails with t.Error (not Fatal) and returns false.
func (l *groupLab) send(t *testing.T, ctx context.Context, p *groupDaemon, text string) bool {
	var m client.Message
	var err error
	for try := 0; try < 60; try++ {
		if err = p.call(ctx, http.MethodPost, "/api/v1/groups/"+l.gid+"/messages", map[string]string{"text": text}, &m); err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("member %d: send %q: %v", p.index, text, err)
		return false
	}
	if m.ID == "" || m.Text != text {
		t.Errorf("member %d: send %q answered %+v", p.index, text, m)
		return false
	}
	l.mu.Lock()
	l.sent[m.ID] = sentMsg{m.ID, p.id, text, time.Now()}
	l.lastSend = time.Now()
	l.mu.Unlock()
	return true
}

// check compares what p holds with what was sent: every text it holds
// was sent, by whom it says, once (by ID and by text), received (or, its
// own, not failed), and is one it may hold. It returns how many of the
// texts p must hold it lacks, or what is wrong.
func (l *groupLab) check(ctx context.Context, p *groupDaemon) (missing int, problem string, err error) {
	ms, err := p.texts(ctx, l.gid)
	if err != nil {
		return 0, "", err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	expect := func(m sentMsg) expectation {
		if l.expect == nil {
			return mustHold
		}
		return l.expect(p, m)
	}
	seenID, seenText := map[string]int{}, map[string]int{}
	for _, m := range ms {
		seenID[m.ID]++
		seenText[m.Text]++
		w, ok := l.sent[m.ID]
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
		case expect(w) == mustNotHold:
			return 0, fmt.Sprintf("member %d holds %q, which it must not read", p.index, m.Text), nil
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
	var lacks []string
	for id, m := range l.sent {
		if seenID[id] == 0 && expect(m) == mustHold {
			missing++
			lacks = append(lacks, fmt.Sprintf("%q (%s)", m.text, id[:8]))
		}
	}
	slices.Sort(lacks)
	l.lacks[p.index] = lacks
	return missing, "", nil
}

// waitAllHeld waits until every member holds every sent text it must,
// failing at once on a wrong, unknown, forbidden or duplicated one. It
// returns when they did.
func (l *groupLab) waitAllHeld(t *testing.T, ctx context.Context, d time.Duration) time.Time {
	t.Helper()
	waitUntil(t, ctx, d, "every text at every member", func() (bool, string) {
		total, short := 0, []int{}
		for _, p := range l.ds {
			missing, problem, err := l.check(ctx, p)
			if err != nil {
				return false, err.Error()
			}
			if problem != "" {
				t.Fatal(problem)
			}
			total += missing
			if missing > 0 {
				short = append(short, p.index)
			}
		}
		var detail []string
		l.mu.Lock()
		for _, i := range short[:min(len(short), 4)] {
			detail = append(detail, fmt.Sprintf("member %d lacks %s", i, strings.Join(l.lacks[i][:min(len(l.lacks[i]), 5)], ", ")))
		}
		l.mu.Unlock()
		return len(short) == 0, fmt.Sprintf("%d texts missing; members still missing some: %v; %s", total, short, strings.Join(detail, "; "))
	})
	return time.Now()
}

// checkAllOnce checks, some seconds after waitAllHeld, that nothing
// arrived twice later either (a copy read again from another replica of
// the mailbox, or posted again after a lost answer or a restart).
func (l *groupLab) checkAllOnce(t *testing.T, ctx context.Context) {
	t.Helper()
	time.Sleep(5 * time.Second)
	for _, p := range l.ds {
		missing, problem, err := l.check(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if problem != "" {
			t.Fatal(problem)
		}
		if missing != 0 {
			t.Fatalf("member %d lacks %d texts", p.index, missing)
		}
	}
}

// waitReceipts waits until each sender holds a delivered receipt from
// every other member for each of its texts.
func (l *groupLab) waitReceipts(t *testing.T, ctx context.Context, d time.Duration, senders []*groupDaemon) {
	t.Helper()
	others := len(l.ds) - 1
	waitUntil(t, ctx, d, "delivered receipts from every member", func() (bool, string) {
		short := 0
		for _, p := range senders {
			ms, err := p.texts(ctx, l.gid)
			if err != nil {
				return false, err.Error()
			}
			for _, m := range ms {
				if m.Outgoing && m.DeliveredCount > others {
					t.Fatalf("member %d's text %q counts %d delivered receipts from %d others", p.index, m.Text, m.DeliveredCount, others)
				}
				if m.Outgoing && m.DeliveredCount < others {
					short++
				}
			}
		}
		return short == 0, fmt.Sprintf("%d of %d texts with fewer than %d delivered receipts", short, len(l.sent), others)
	})
}

// latencies logs how long each text took to reach all other members who
// hold it (sender's clock to the last receiver's: one machine, one clock),
// for texts sent before and after at.
func (l *groupLab) latencies(t *testing.T, ctx context.Context, at time.Time) {
	t.Helper()
	reachedAll := map[string]time.Duration{}
	sentAt := map[string]time.Time{}
	for _, p := range l.ds {
		ms, err := p.texts(ctx, l.gid)
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
	for id := range l.sent {
		if sentAt[id].Before(at) {
			before = append(before, reachedAll[id])
		} else {
			after = append(after, reachedAll[id])
		}
	}
	t.Logf("time for a text to reach all who hold it, sent before %s: %s; after: %s", at.Format("15:04:05.000"), spread(before), spread(after))
}

// killBusiest kills the n busiest nodes (see busiestNodes) with SIGKILL.
func (l *groupLab) killBusiest(t *testing.T, ctx context.Context, n int) []int {
	t.Helper()
	killed := busiestNodes(t, ctx, l.d, n)
	for _, k := range killed {
		if err := l.d.Kill(k); err != nil {
			t.Fatal(err)
		}
	}
	return killed
}

// TestGroupTwentyMembersThroughKills is issue 13's real-process test: a
// 20-member group across 20 `umbra daemon` processes on a 12-node devnet;
// five members talk, 4 of the 12 node processes (the 4 that store the
// most messages: the group mailbox's replicas) are killed with SIGKILL
// mid-conversation and stay down, the talk goes on, and every member
// ends up holding every message exactly once (by message ID and text,
// attributed to its sender); every sender gets a delivered receipt from
// each of the 19 others. It logs how long messages took to reach all
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
	)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	l := newGroupLab(t, ctx, members, members)
	var talkers []*groupDaemon
	for s := 0; s < senders; s++ {
		talkers = append(talkers, l.ds[s*members/senders])
	}
	var killedAt time.Time
	var killed []int
	for r := 0; r < rounds; r++ {
		if r == killFrom {
			killed = l.killBusiest(t, ctx, 4)
			killedAt = time.Now()
			t.Logf("killed nodes %v with SIGKILL after %d of %d texts", killed, len(l.sent), senders*rounds)
		}
		for _, p := range talkers {
			if !l.send(t, ctx, p, fmt.Sprintf("m%d from %d, round %d", p.index, p.index, r)) {
				t.FailNow()
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, k := range killed {
		if l.d.Nodes()[k-1].Running() {
			t.Fatalf("node %d runs again", k)
		}
	}
	allAt := l.waitAllHeld(t, ctx, 3*time.Minute)
	t.Logf("every member holds all %d texts %s after the last send, %s after the kill",
		len(l.sent), allAt.Sub(l.lastSend).Round(time.Millisecond), allAt.Sub(killedAt).Round(time.Millisecond))
	l.latencies(t, ctx, killedAt)
	l.waitReceipts(t, ctx, 2*time.Minute, talkers)
	t.Logf("every sender holds %d delivered receipts for each text %s after the last send", members-1, time.Since(l.lastSend).Round(time.Millisecond))
	l.checkAllOnce(t, ctx)
	t.Logf("%d members × %d texts, each held exactly once; test took %s", members, len(l.sent), time.Since(l.start).Round(time.Millisecond))
}

// TestGroupAllTalkThroughNodeAndDaemonKills: all 20 members of a group
// talk at once, each from a goroutine of its own; mid-conversation 4 of
// the 12 nodes (the busiest, see busiestNodes) and 3 of the members'
// daemons (the creator among them) are killed with SIGKILL, the daemons
// started again from their homes a few seconds later, and the talk goes
// on. Every member, the restarted ones too, ends up with every text once:
// texts a killed daemon had accepted (answered "queued") go out after its
// restart, and nothing it read before the kill is read twice.
func TestGroupAllTalkThroughNodeAndDaemonKills(t *testing.T) {
	const (
		members = 20
		each    = 6 // texts per member
	)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	l := newGroupLab(t, ctx, members, members)
	crashed := []*groupDaemon{l.ds[0], l.ds[7], l.ds[13]}

	var wg sync.WaitGroup
	half := make(chan struct{})    // closed when every member sent half its texts
	resumed := make(chan struct{}) // closed when the kills are over
	var halfway sync.WaitGroup
	halfway.Add(members)
	for _, p := range l.ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if i == each/2 {
					halfway.Done()
					<-resumed
				}
				if !l.send(t, ctx, p, fmt.Sprintf("text %d of member %d", i, p.index)) {
					return
				}
				time.Sleep(time.Duration(100+50*p.index%300) * time.Millisecond)
			}
		}()
	}
	go func() { halfway.Wait(); close(half) }()
	select {
	case <-half:
	case <-ctx.Done():
		t.Fatal("members did not send half their texts")
	}
	// The last texts before the kill are still in flight.
	killed := l.killBusiest(t, ctx, 4)
	for _, p := range crashed {
		p.stop(os.Kill, 5*time.Second)
	}
	killedAt := time.Now()
	t.Logf("killed nodes %v and the daemons of members 0, 7 and 13 with SIGKILL after %d texts", killed, len(l.sent))
	time.Sleep(3 * time.Second)
	for _, p := range crashed {
		if err := p.run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("restarted the 3 daemons %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	close(resumed)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	allAt := l.waitAllHeld(t, ctx, 3*time.Minute)
	t.Logf("every member holds all %d texts %s after the last send, %s after the kill",
		len(l.sent), allAt.Sub(l.lastSend).Round(time.Millisecond), allAt.Sub(killedAt).Round(time.Millisecond))
	l.latencies(t, ctx, killedAt)
	l.waitReceipts(t, ctx, 2*time.Minute, l.ds)
	t.Logf("every member holds %d delivered receipts for each of its texts %s after the last send", members-1, time.Since(l.lastSend).Round(time.Millisecond))
	l.checkAllOnce(t, ctx)
	t.Logf("%d members × %d texts, each held exactly once; test took %s", members, len(l.sent), time.Since(l.start).Round(time.Millisecond))
}

// TestGroupAddMembersThroughKills: a group of 16 talks; mid-conversation
// the 4 busiest nodes are killed with SIGKILL and, with them down, the
// creator adds 4 more members (a new epoch secret, a new mailbox) while
// the talk goes on. The 16 hold every text exactly once, those sent into
// the old epoch by senders who had not yet heard of the addition too; the
// 4 newcomers read nothing sent before they were added, and every text
// sent once all 20 know of the addition, their own included, exactly once.
func TestGroupAddMembersThroughKills(t *testing.T) {
	const (
		members = 20
		first   = 16
		rounds  = 5 // per phase
	)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	l := newGroupLab(t, ctx, members, first)
	talkers := []*groupDaemon{l.ds[0], l.ds[5], l.ds[10], l.ds[15]}
	newcomers := l.ds[first:]
	var addAt, allKnowAt time.Time // guarded by l.mu once talk goes on
	l.expect = func(p *groupDaemon, m sentMsg) expectation {
		if p.index < first {
			return mustHold
		}
		switch {
		case m.at.Before(addAt):
			return mustNotHold
		case !allKnowAt.IsZero() && m.at.After(allKnowAt):
			return mustHold
		}
		return mayHold
	}
	talk := func(phase string, ps []*groupDaemon) {
		for r := 0; r < rounds; r++ {
			for _, p := range ps {
				if !l.send(t, ctx, p, fmt.Sprintf("%s round %d from %d", phase, r, p.index)) {
					t.FailNow()
				}
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	talk("before", talkers)
	killed := l.killBusiest(t, ctx, 4)
	killedAt := time.Now()
	t.Logf("killed nodes %v with SIGKILL after %d texts", killed, len(l.sent))

	// The addition, with the talk going on around it.
	added := make(chan *client.Group, 1)
	go func() {
		var ids []string
		for _, p := range newcomers {
			ids = append(ids, p.id)
		}
		l.mu.Lock()
		addAt = time.Now()
		l.mu.Unlock()
		var g client.Group
		if err := l.ds[0].call(ctx, http.MethodPost, "/api/v1/groups/"+l.gid+"/add", map[string]any{"members": ids}, &g); err != nil {
			t.Errorf("add: %v", err)
			added <- nil
			return
		}
		added <- &g
	}()
	talk("during", talkers)
	g := <-added
	if g == nil {
		t.FailNow()
	}
	if len(g.Members) != members {
		t.Fatalf("after the addition the creator sees %d members", len(g.Members))
	}
	l.waitMembers(t, ctx, l.ds, g.Epoch)
	l.mu.Lock()
	allKnowAt = time.Now()
	l.mu.Unlock()
	t.Logf("all %d members at epoch %d %s after the addition", members, g.Epoch, time.Since(addAt).Round(time.Millisecond))
	talk("after", append(talkers, newcomers[0], newcomers[2]))

	allAt := l.waitAllHeld(t, ctx, 3*time.Minute)
	t.Logf("every member holds all the texts it must (%d sent) %s after the last send, %s after the kill",
		len(l.sent), allAt.Sub(l.lastSend).Round(time.Millisecond), allAt.Sub(killedAt).Round(time.Millisecond))
	l.latencies(t, ctx, allKnowAt)
	l.checkAllOnce(t, ctx)
	for _, p := range newcomers {
		ms, err := p.texts(ctx, l.gid)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("newcomer %d holds %d texts", p.index, len(ms))
	}
	t.Logf("test took %s", time.Since(l.start).Round(time.Millisecond))
}

// TestGroupRemoveMembersThroughKills: a group of 20 talks; mid-conversation
// the 4 busiest nodes are killed with SIGKILL and, with them down, the
// creator removes 3 members (every remaining member then makes a new
// chain, and an admin a new epoch secret) while the talk goes on. The 17
// hold every text exactly once; the removed read nothing sent once all 17
// know of the removal, and learn that they were removed.
func TestGroupRemoveMembersThroughKills(t *testing.T) {
	const (
		members = 20
		rounds  = 5 // per phase
	)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	l := newGroupLab(t, ctx, members, members)
	removed := []*groupDaemon{l.ds[3], l.ds[11], l.ds[17]}
	stay := slices.DeleteFunc(slices.Clone(l.ds), func(p *groupDaemon) bool { return slices.Contains(removed, p) })
	talkers := []*groupDaemon{l.ds[0], l.ds[5], l.ds[10], l.ds[15]}
	var allKnowAt time.Time // guarded by l.mu once talk goes on
	l.expect = func(p *groupDaemon, m sentMsg) expectation {
		if !slices.Contains(removed, p) {
			return mustHold
		}
		if !allKnowAt.IsZero() && m.at.After(allKnowAt) {
			return mustNotHold
		}
		return mayHold
	}
	talk := func(phase string, ps []*groupDaemon) {
		for r := 0; r < rounds; r++ {
			for _, p := range ps {
				if !l.send(t, ctx, p, fmt.Sprintf("%s round %d from %d", phase, r, p.index)) {
					t.FailNow()
				}
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	// One of the removed talks before its removal. What a member sent
	// while it was one counts up to where the remover had read its chain
	// (the cutoff that goes with the new secret), for every member alike,
	// however late a text reaches it: so once the remover holds them,
	// every member must hold them too.
	talk("before", append(slices.Clone(talkers), removed[0]))
	waitUntil(t, ctx, 2*time.Minute, "the remover to hold the removed member's texts", func() (bool, string) {
		ms, err := l.ds[0].texts(ctx, l.gid)
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, m := range ms {
			if m.From == removed[0].id {
				n++
			}
		}
		return n == rounds, fmt.Sprintf("%d of %d", n, rounds)
	})
	killed := l.killBusiest(t, ctx, 4)
	killedAt := time.Now()
	t.Logf("killed nodes %v with SIGKILL after %d texts", killed, len(l.sent))

	done := make(chan *client.Group, 1)
	go func() {
		var ids []string
		for _, p := range removed {
			ids = append(ids, p.id)
		}
		var g client.Group
		if err := l.ds[0].call(ctx, http.MethodPost, "/api/v1/groups/"+l.gid+"/remove", map[string]any{"members": ids}, &g); err != nil {
			t.Errorf("remove: %v", err)
			done <- nil
			return
		}
		done <- &g
	}()
	talk("during", talkers)
	g := <-done
	if g == nil {
		t.FailNow()
	}
	if len(g.Members) != len(stay) {
		t.Fatalf("after the removal the creator sees %d members", len(g.Members))
	}
	// The removal's rekey may come as an op of its own: wait for the
	// creator's latest epoch to be everyone's.
	waitUntil(t, ctx, 3*time.Minute, "the 17 to agree on members and epoch", func() (bool, string) {
		cg, err := l.ds[0].group(ctx, l.gid)
		if err != nil {
			return false, err.Error()
		}
		agree := 0
		for _, p := range stay {
			if g, err := p.group(ctx, l.gid); err == nil && g.Status == client.GroupJoined && len(g.Members) == len(stay) && g.Epoch == cg.Epoch {
				agree++
			}
		}
		return agree == len(stay), fmt.Sprintf("%d of %d at epoch %d", agree, len(stay), cg.Epoch)
	})
	waitUntil(t, ctx, 3*time.Minute, "the removed to learn it", func() (bool, string) {
		n := 0
		for _, p := range removed {
			if g, err := p.group(ctx, l.gid); err == nil && g.Status == client.GroupRemoved {
				n++
			}
		}
		return n == len(removed), fmt.Sprintf("%d of %d know", n, len(removed))
	})
	l.mu.Lock()
	allKnowAt = time.Now()
	l.mu.Unlock()
	t.Logf("the 17 agree and the 3 know they were removed %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	talk("after", talkers)
	for _, p := range removed {
		var m client.Message
		if err := p.call(ctx, http.MethodPost, "/api/v1/groups/"+l.gid+"/messages", map[string]string{"text": "still here?"}, &m); err == nil {
			t.Fatalf("removed member %d could send: %+v", p.index, m)
		}
	}

	allAt := l.waitAllHeld(t, ctx, 3*time.Minute)
	t.Logf("every member holds all the texts it must (%d sent) %s after the last send, %s after the kill",
		len(l.sent), allAt.Sub(l.lastSend).Round(time.Millisecond), allAt.Sub(killedAt).Round(time.Millisecond))
	l.checkAllOnce(t, ctx)
	for _, p := range removed {
		ms, err := p.texts(ctx, l.gid)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("removed member %d holds %d of %d texts", p.index, len(ms), len(l.sent))
	}
	t.Logf("test took %s", time.Since(l.start).Round(time.Millisecond))
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
