package ui_test

// The browser tests' harness: a devnet of node processes, `umbra daemon`
// processes for the users, and a headless Chromium driven by chromedp.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/devnet"
	"github.com/umbra-im/umbra/internal/identity"
)

// chromiumPath finds Debian's Chromium, failing the test (never skipping)
// when it is missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: the browser tests need Debian's Chromium on PATH.\n" +
		"Install it with: apt-get update && apt-get install -y chromium (.ci/run does this)")
	return ""
}

// artifactsDir is where screenshots go: $UMBRA_ARTIFACTS/screens, or
// artifacts/screens at the repository root.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "artifacts", "screens")
	if a := os.Getenv("UMBRA_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "screens")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func buildUmbra(t *testing.T) string {
	t.Helper()
	bin, err := devnet.BuildUmbra("../..", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func startNetwork(t *testing.T, bin string, n int) *devnet.Devnet {
	t.Helper()
	return devnet.StartForTest(t, devnet.Config{Dir: filepath.Join(t.TempDir(), "net"), Nodes: n, Binary: bin})
}

// daemonProc is a running `umbra daemon` process.
type daemonProc struct {
	name, home string
	bin, net   string
	url, token string
	cmd        *exec.Cmd
	done       chan struct{}
	logPath    string
}

// startDaemon runs `umbra daemon` for a new, empty home on network.
func startDaemon(t *testing.T, bin, name, network string) *daemonProc {
	t.Helper()
	dir := t.TempDir()
	p := &daemonProc{name: name, home: filepath.Join(dir, name), bin: bin, net: network, logPath: filepath.Join(dir, name+"-daemon.log")}
	p.start(t)
	t.Cleanup(func() { p.stop(t) })
	return p
}

// restart stops the daemon and starts a new one for the same home (which
// keeps its port and token), as after a reboot, without UMBRA_PASSPHRASE.
func (p *daemonProc) restart(t *testing.T) {
	t.Helper()
	p.stop(t)
	p.start(t)
}

// start runs the daemon and waits until its API answers.
func (p *daemonProc) start(t *testing.T) {
	t.Helper()
	name, bin, network := p.name, p.bin, p.net
	p.done = make(chan struct{})
	p.url, p.token = "", ""
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "daemon", "--home", p.home, "--network", network, "--ui", "127.0.0.1:0", "--log-level", "warn",
		"--receipt-delay-max", "1s") // receipts wait 40 ms to 1 s, not up to 2 min
	p.cmd.Env = hermeticEnv()
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = daemonProcAttr()
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s's daemon: %v", name, err)
	}
	done := p.done
	go func() {
		_ = p.cmd.Wait()
		logf.Close()
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(p.home, client.DaemonFile)); err == nil {
			var info api.DaemonInfo
			if json.Unmarshal(b, &info) == nil && info.URL != "" && info.PID == p.cmd.Process.Pid {
				p.url, p.token = info.URL, info.Token
				var st api.AccountStatus
				if err := p.get("/api/v1/account", &st); err == nil {
					return
				}
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s's daemon exited:\n%s", name, p.logTail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's daemon did not start within 30 s:\n%s", name, p.logTail())
		}
	}
}

// hermeticEnv is the environment without UMBRA_* settings of the caller.
func hermeticEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "UMBRA_") {
			env = append(env, kv)
		}
	}
	return env
}

// uiURL is the address a user opens: the page with the token in the
// fragment.
func (p *daemonProc) uiURL() string { return p.url + "/#token=" + url.QueryEscape(p.token) }

func (p *daemonProc) get(path string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return api.NewClient(p.url, p.token).Do(ctx, http.MethodGet, path, nil, out)
}

// call calls the daemon's API with a JSON body (body and out may be nil).
func (p *daemonProc) call(method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return api.NewClient(p.url, p.token).Do(ctx, method, path, body, out)
}

// post is call with POST.
func (p *daemonProc) post(path string, body, out any) error {
	return p.call(http.MethodPost, path, body, out)
}

// do is call that fails the test on an error.
func (p *daemonProc) do(t *testing.T, method, path string, body, out any) {
	t.Helper()
	if err := p.call(method, path, body, out); err != nil {
		t.Fatalf("%s: %s %s: %v", p.name, method, path, err)
	}
}

// newAccounts creates an account without a passphrase on each daemon,
// through the API, and returns their IDs in order.
func newAccounts(t *testing.T, procs ...*daemonProc) []string {
	t.Helper()
	var ids []string
	for _, p := range procs {
		acct, err := identity.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		p.do(t, http.MethodPost, "/api/v1/account", map[string]any{"recovery_phrase": acct.Phrase(), "no_passphrase": true}, nil)
		ids = append(ids, acct.ID().String())
	}
	return ids
}

func (p *daemonProc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (p *daemonProc) stop(t *testing.T) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // a no-op once it exited (a restarted daemon is stopped twice)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s's daemon did not stop within 15 s after SIGTERM; killed", p.name)
	}
	if t.Failed() {
		t.Logf("%s's daemon log:\n%s", p.name, p.logTail())
	}
}

// browser is a headless Chromium; each tab is a chromedp context.
type browser struct {
	t      *testing.T
	ctx    context.Context
	shots  string
	mu     sync.Mutex
	faults []string // JavaScript exceptions, CSP violations, off-host requests
}

// newBrowser starts Chromium; extra adds flags (a fake microphone).
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 800),
	)
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // start the browser, without a timeout
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, shots: artifactsDir(t)}
}

// tab is one browser tab showing one user's web UI.
type tab struct {
	b    *browser
	name string
	ctx  context.Context
}

// openTab opens a tab (the first call reuses the browser's first tab) at
// the given viewport and watches it for faults.
func (b *browser) openTab(name string, first bool, width, height int64, scale float64) *tab {
	b.t.Helper()
	ctx := b.ctx
	if !first {
		var cancel context.CancelFunc
		ctx, cancel = chromedp.NewContext(b.ctx)
		b.t.Cleanup(cancel)
	}
	tb := &tab{b: b, name: name, ctx: ctx}
	if err := chromedp.Listen(ctx, tb.watch); err != nil {
		b.t.Fatalf("watch %s's tab: %v", name, err)
	}
	tb.do("set the viewport", 10*time.Second, chromedp.EmulateViewport(width, height, chromedp.EmulateScale(scale)))
	return tb
}

// watch records what must not happen on the page: uncaught exceptions,
// console errors of the app or the CSP, requests off 127.0.0.1 and a token
// in a request URL.
func (tb *tab) watch(ev any) {
	fault := ""
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		fault = "exception: " + (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error()
	case *log.EventEntryAdded:
		// The network source logs the API's error answers (409, 400):
		// those are expected. The security source logs CSP violations.
		if e.Entry.Level == log.EntryLevelError && e.Entry.Source != log.EntrySourceNetwork {
			fault = "console (" + string(e.Entry.Source) + "): " + e.Entry.Text
		}
	case *network.EventRequestWillBeSent:
		fault = offHost(e.Request.URL)
	case *network.EventWebSocketCreated:
		fault = offHost(e.URL)
	}
	if fault != "" {
		tb.b.mu.Lock()
		tb.b.faults = append(tb.b.faults, tb.name+": "+fault)
		tb.b.mu.Unlock()
	}
}

func offHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "unparsable request URL " + raw
	}
	if u.Scheme == "data" || u.Scheme == "blob" || u.Scheme == "about" {
		return ""
	}
	if u.Hostname() != "127.0.0.1" {
		return "request outside 127.0.0.1: " + raw
	}
	if strings.Contains(strings.ToLower(u.RawQuery), "token") {
		return "a token in a request URL: " + raw
	}
	return ""
}

func (b *browser) checkFaults() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.faults {
		b.t.Error(f)
	}
}

// do runs actions with a timeout, failing the test with a screenshot.
func (tb *tab) do(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.fail(what, err)
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](tb *tab, what, expr string) T {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.fail(what, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is true.
func (tb *tab) waitJS(what string, d time.Duration, expr string) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, d+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+expr+")",
		chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		tb.fail("wait for "+what, err)
	}
}

// clickJS clicks the element sel finds, in one page evaluation (tried
// again until it is there): chromedp's Click resolves a node and clicks it
// in two steps, and a list re-rendered between them (an event came) fails
// with "Could not find node".
func (tb *tab) clickJS(what string, d time.Duration, sel string) {
	tb.b.t.Helper()
	tb.waitJS(what, d, `(() => { const e = document.querySelector(`+jsString(sel)+`); if (!e) return false; e.click(); return true; })()`)
}

// react picks emoji on message msg (a selector): opens its picker and
// clicks the emoji in one evaluation (see clickJS).
func (tb *tab) react(what string, d time.Duration, msg, emoji string) {
	tb.b.t.Helper()
	pick := msg + ` .pick[data-emoji="` + emoji + `"]`
	tb.waitJS(what, d, `(() => { let p = document.querySelector(`+jsString(pick)+`);
		if (!p) { document.querySelector(`+jsString(msg+" .act-react")+`)?.click(); p = document.querySelector(`+jsString(pick)+`); }
		if (!p) return false; p.click(); return true; })()`)
}

// fail ends the test with a screenshot and the page's text for diagnosis.
func (tb *tab) fail(what string, err error) {
	tb.b.t.Helper()
	tb.shot("FAILED-" + tb.name)
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 3000) : ""`))
	tb.b.checkFaults()
	tb.b.t.Fatalf("%s's tab: %s: %v\npage text:\n%s", tb.name, what, err, text)
}

// shot saves a PNG of the viewport as <name>.png in the artifacts folder.
func (tb *tab) shot(name string) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	// Let transitions (toasts, focus rings) settle.
	time.Sleep(250 * time.Millisecond)
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(tb.b.shots, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		tb.b.t.Errorf("save screenshot: %v", err)
		return
	}
	tb.b.t.Logf("screenshot: %s", path)
}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
