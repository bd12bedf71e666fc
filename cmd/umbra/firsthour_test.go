package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/umbra-im/umbra/internal/client"
)

// offlineNetwork writes a valid network file listing n nodes that do not
// run: each a fresh peer ID at a 127.0.0.1 port nothing listens on (taken
// and released), so dialing them fails at once.
func offlineNetwork(t *testing.T, n int) string {
	t.Helper()
	var lines []string
	for range n {
		_, pub, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		lines = append(lines, "/ip4/127.0.0.1/tcp/"+strconv.Itoa(port)+"/p2p/"+id.String())
	}
	path := filepath.Join(t.TempDir(), "network.txt")
	if err := os.WriteFile(path, []byte("# test network\n"+strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runIn is run with stdin as the command's standard input.
func runIn(t *testing.T, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetIn(stdin)
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// writeFile writes content to a new file and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func homeAddrs(t *testing.T, home string) []string {
	t.Helper()
	nf, err := client.ReadNetwork(home)
	if err != nil {
		t.Fatalf("read the home's network: %v", err)
	}
	return nf.Addrs
}

func fileAddrs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "/") {
			out = append(out, l)
		}
	}
	return out
}

// TestInitNeedsNetwork: init refuses, creating nothing, without a network
// file, with one that does not parse, lists no address or an address
// without a peer ID, and says what a network file is; with a usable one
// it creates the account and keeps the file in the home.
func TestInitNeedsNetwork(t *testing.T) {
	t.Setenv("UMBRA_PASSPHRASE", "")
	t.Setenv("UMBRA_HOME", "")
	t.Setenv("UMBRA_NETWORK", "")
	home := filepath.Join(t.TempDir(), "home")
	bad := map[string][]string{
		"":                                       {"no network file given", "--network FILE"},
		writeFile(t, "garbage.txt", "hello\n"):   {"not a usable network file", "unknown entry"},
		writeFile(t, "empty.txt", "# nothing\n"): {"not a usable network file", "lists no node addresses"},
		writeFile(t, "nopeer.txt", "/ip4/127.0.0.1/tcp/4001\n"): {"not a usable network file", "/p2p/"},
		filepath.Join(t.TempDir(), "missing.txt"):               {"not a usable network file", "no such file"},
	}
	for file, wants := range bad {
		args := []string{"init", "--home", home}
		if file != "" {
			args = append(args, "--network", file)
		}
		_, _, err := run(t, args...)
		if err == nil {
			t.Fatalf("init --network %q succeeded", file)
		}
		for _, w := range append(wants, "network file lists node addresses") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("init --network %q: %v; want it to say %q", file, err, w)
			}
		}
		if client.Exists(home) {
			t.Fatalf("init --network %q created an account", file)
		}
	}
	netFile := offlineNetwork(t, 2)
	if _, errOut, err := run(t, "init", "--home", home, "--network", netFile, "--json"); err != nil {
		t.Fatalf("init with a usable network file: %v\n%s", err, errOut)
	}
	if got, want := homeAddrs(t, home), fileAddrs(t, netFile); !slices.Equal(got, want) {
		t.Errorf("the home's network %q, want %q", got, want)
	}
}

// TestUnreachableOneLine: when no node of the network file answers, init's
// warning and a command's error are one line naming the node count and the
// file; --log-level debug shows the dial errors.
func TestUnreachableOneLine(t *testing.T) {
	t.Setenv("UMBRA_PASSPHRASE", "")
	t.Setenv("UMBRA_HOME", "")
	home := filepath.Join(t.TempDir(), "home")
	netFile := offlineNetwork(t, 3)
	want := "can't reach any of the 3 nodes in " + client.NetworkPath(home)
	_, errOut, err := run(t, "init", "--home", home, "--network", netFile)
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	var warning string
	for _, l := range strings.Split(errOut, "\n") {
		if strings.Contains(l, "could not publish") {
			warning = l
		}
	}
	if !strings.Contains(warning, want) {
		t.Errorf("init stderr %q: want one line with %q", errOut, want)
	}
	if strings.Count(errOut, "\n") != 2 { // the unprotected warning and this one
		t.Errorf("init stderr has %d lines, want 2:\n%s", strings.Count(errOut, "\n"), errOut)
	}

	// 'messages' works offline, from the local history, after one line.
	_, errOut, err = run(t, "messages", "--home", home)
	wantLine := "umbra: warning: " + want + " (are they running? --log-level debug shows why): working offline, from local data\n"
	if err != nil || !strings.Contains(errOut, wantLine) {
		t.Errorf("messages on an unreachable network: %v, stderr %q; want the line %q", err, errOut, wantLine)
	}
	_, err = client.Open(context.Background(), client.Config{Home: home, Logger: quietTestLogger()})
	var ue *client.UnreachableError
	if !errors.As(err, &ue) || ue.Err == nil || ue.Error() != want+" (are they running? --log-level debug shows why)" {
		t.Errorf("the error %v is not one line keeping the dial errors", err)
	}
	_, errOut, err = run(t, "messages", "--home", home, "--log-level", "debug")
	if err != nil || !strings.Contains(errOut, "no node answered for the node list") {
		t.Errorf("--log-level debug: error %v, stderr %q: want the dial errors in the log", err, errOut)
	}
}

// TestNetworkSet: 'network set' refuses a bad file (keeping the home's),
// installs a good one, needs an account and a home no daemon holds, and
// the private-network subcommands still work.
func TestNetworkSet(t *testing.T) {
	t.Setenv("UMBRA_PASSPHRASE", "")
	t.Setenv("UMBRA_HOME", "")
	home := filepath.Join(t.TempDir(), "home")
	first, second := offlineNetwork(t, 1), offlineNetwork(t, 2)
	if _, errOut, err := run(t, "init", "--home", home, "--network", first); err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	garbage := writeFile(t, "garbage.txt", "not a network\n")
	if _, _, err := run(t, "network", "set", garbage, "--home", home); err == nil || !strings.Contains(err.Error(), "not a usable network file") {
		t.Errorf("network set of a garbage file: %v", err)
	}
	if got, want := homeAddrs(t, home), fileAddrs(t, first); !slices.Equal(got, want) {
		t.Errorf("after a refused set the home's network is %q, want %q", got, want)
	}
	out, errOut, err := run(t, "network", "set", second, "--home", home)
	if err != nil {
		t.Fatalf("network set: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "2 node addresses") {
		t.Errorf("network set printed %q", out)
	}
	if got, want := homeAddrs(t, home), fileAddrs(t, second); !slices.Equal(got, want) {
		t.Errorf("after set the home's network is %q, want %q", got, want)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if _, _, err := run(t, "network", "set", second, "--home", empty); !errors.Is(err, client.ErrNoAccount) {
		t.Errorf("network set on a home without an account: %v", err)
	}

	// An engine (a daemon's or a command's) holds the home: no change
	// under it.
	e, err := client.Open(context.Background(), client.Config{Home: home, Offline: true, Logger: quietTestLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "network", "set", first, "--home", home); !errors.Is(err, client.ErrLocked) {
		t.Errorf("network set while an engine runs: %v, want %v", err, client.ErrLocked)
	}
	e.Close()
	if got, want := homeAddrs(t, home), fileAddrs(t, second); !slices.Equal(got, want) {
		t.Errorf("after a set refused for the lock the home's network is %q, want %q", got, want)
	}

	op := filepath.Join(t.TempDir(), "acme")
	if _, errOut, err := run(t, "network", "create", "--name", "acme", "--out", op); err != nil {
		t.Fatalf("network create: %v\n%s", err, errOut)
	}
	if _, err := os.Stat(filepath.Join(op, "network.txt")); err != nil {
		t.Errorf("network create made no network file: %v", err)
	}
}

// TestDaemonNetworkFlag: 'daemon --network' on a home with an account
// installs the file before the engine starts, and refuses a bad one.
func TestDaemonNetworkFlag(t *testing.T) {
	t.Setenv("UMBRA_HOME", "")
	home := filepath.Join(t.TempDir(), "home")
	first, second := offlineNetwork(t, 1), offlineNetwork(t, 2)
	t.Setenv("UMBRA_PASSPHRASE", "pass")
	if _, errOut, err := run(t, "init", "--home", home, "--network", first); err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	garbage := writeFile(t, "garbage.txt", "/not/an/address\n")
	_, err := startDaemon(context.Background(), daemonConfig{Home: home, Listen: "127.0.0.1:0", Network: garbage, Passphrase: "pass", Log: quietTestLogger()})
	if err == nil || !strings.Contains(err.Error(), "not a usable network file") {
		t.Errorf("daemon --network with a bad file: %v", err)
	}
	if got, want := homeAddrs(t, home), fileAddrs(t, first); !slices.Equal(got, want) {
		t.Errorf("after a refused --network the home's network is %q, want %q", got, want)
	}
	// Without its passphrase the daemon waits to be unlocked; the new
	// network file is in place for the engine it will open.
	d, err := startDaemon(context.Background(), daemonConfig{Home: home, Listen: "127.0.0.1:0", Network: second, Log: quietTestLogger()})
	if err != nil {
		t.Fatalf("daemon --network: %v", err)
	}
	d.Stop()
	if got, want := homeAddrs(t, home), fileAddrs(t, second); !slices.Equal(got, want) {
		t.Errorf("daemon --network: the home's network is %q, want %q", got, want)
	}
	// With its passphrase it opens the engine on the new network's nodes.
	_, err = startDaemon(context.Background(), daemonConfig{Home: home, Listen: "127.0.0.1:0", Network: first, Passphrase: "pass", Log: quietTestLogger()})
	if err == nil || !strings.Contains(err.Error(), "can't reach the node in "+client.NetworkPath(home)) {
		t.Errorf("daemon --network with a file of one dead node: %v", err)
	}
	if got, want := homeAddrs(t, home), fileAddrs(t, first); !slices.Equal(got, want) {
		t.Errorf("daemon --network: the home's network is %q, want %q", got, want)
	}
}

// TestSendText: 'send ID -' reads the text from standard input, less one
// final newline; texts past client.MaxTextBytes are refused naming the
// limit, at the limit they pass; 'send --help' states the limit.
func TestSendText(t *testing.T) {
	for _, c := range []struct{ arg, in, want string }{
		{"hello", "ignored", "hello"},
		{"-", "line one\nline two\n", "line one\nline two"},
		{"-", "windows\r\n", "windows"},
		{"-", "two newlines\n\n", "two newlines\n"},
		{"-", strings.Repeat("x", client.MaxTextBytes) + "\n", strings.Repeat("x", client.MaxTextBytes)},
	} {
		got, err := messageText(c.arg, strings.NewReader(c.in))
		if err != nil || got != c.want {
			t.Errorf("messageText(%q, %.20q): %.20q, %v; want %.20q", c.arg, c.in, got, err, c.want)
		}
	}
	limit := "64 KiB (65536 bytes)"
	if client.MaxTextBytes != 65536 {
		t.Fatalf("client.MaxTextBytes is %d: update this test, the README and send --help", client.MaxTextBytes)
	}
	long := strings.Repeat("x", client.MaxTextBytes+1)
	for _, c := range []struct{ arg, in string }{{long, ""}, {"-", long}, {"-", long + strings.Repeat("y", 1<<20)}} {
		if _, err := messageText(c.arg, strings.NewReader(c.in)); err == nil || !strings.Contains(err.Error(), limit) {
			t.Errorf("a text of %d bytes: %v; want the limit %s named", len(c.arg)+len(c.in), err, limit)
		}
	}
	if _, err := messageText("-", strings.NewReader("  \n")); err == nil || !strings.Contains(err.Error(), "empty message") {
		t.Errorf("an empty text on stdin: %v", err)
	}
	// The command refuses before it opens the home (none exists here).
	_, _, err := runIn(t, strings.NewReader(long), "send", "--home", filepath.Join(t.TempDir(), "h"), "SOMEONE", "-")
	if err == nil || !strings.Contains(err.Error(), limit) {
		t.Errorf("send - with a long text: %v", err)
	}
	out, _, err := run(t, "send", "--help")
	if err != nil || !strings.Contains(strings.Join(strings.Fields(out), " "), "at most "+limit) {
		t.Errorf("send --help does not state the limit: %v\n%s", err, out)
	}
}

// TestPassphrasePrompt: with UMBRA_PASSPHRASE unset and standard input a
// terminal, a protected home's passphrase is asked for (on stderr) and
// read without echo; wrong, empty and no-terminal cases get their own
// errors, and a passphrase given to a home without one gets "no
// passphrase", not "wrong passphrase".
func TestPassphrasePrompt(t *testing.T) {
	t.Setenv("UMBRA_HOME", "")
	dir := t.TempDir()
	netFile := offlineNetwork(t, 1)
	protected, open := filepath.Join(dir, "protected"), filepath.Join(dir, "open")
	t.Setenv("UMBRA_PASSPHRASE", "right")
	idOut, errOut, err := run(t, "init", "--home", protected, "--network", netFile, "--json")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	t.Setenv("UMBRA_PASSPHRASE", "")
	if _, errOut, err := run(t, "init", "--home", open, "--network", netFile); err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}

	typed, isTerminal := "", false
	prompts := 0
	oldTerm, oldRead := terminalIn, readPassword
	t.Cleanup(func() { terminalIn, readPassword = oldTerm, oldRead })
	terminalIn = func(*cobra.Command) (int, bool) { return 0, isTerminal }
	readPassword = func(int) ([]byte, error) { prompts++; return []byte(typed), nil }

	// Not a terminal: the passphrase is required, nothing is asked.
	if _, _, err := run(t, "id", "--home", protected); !errors.Is(err, client.ErrPassphraseRequired) || prompts != 0 {
		t.Errorf("no terminal: %v after %d prompts; want %v and none", err, prompts, client.ErrPassphraseRequired)
	}
	isTerminal = true
	typed = "right"
	out, errOut, err := run(t, "id", "--home", protected)
	if err != nil || prompts != 1 || !strings.Contains(idOut, strings.TrimSpace(out)) || strings.TrimSpace(out) == "" {
		t.Errorf("typed the right passphrase: %q, %v after %d prompts", out, err, prompts)
	}
	if !strings.Contains(errOut, "Passphrase for "+protected) {
		t.Errorf("the prompt on stderr: %q", errOut)
	}
	typed = "wrong"
	if _, _, err := run(t, "contacts", "list", "--home", protected); !errors.Is(err, client.ErrWrongPassphrase) {
		t.Errorf("typed a wrong passphrase: %v, want %v", err, client.ErrWrongPassphrase)
	}
	typed = ""
	if _, _, err := run(t, "id", "--home", protected); !errors.Is(err, client.ErrPassphraseRequired) {
		t.Errorf("typed nothing: %v, want %v", err, client.ErrPassphraseRequired)
	}
	// The daemon takes a typed passphrase; with none typed it leaves the
	// home locked for its web UI instead of failing.
	cmd := &cobra.Command{}
	cmd.SetErr(io.Discard)
	for _, c := range []string{"right", ""} {
		typed = c
		if got, err := daemonPassphrase(cmd, protected); got != c || err != nil {
			t.Errorf("daemon, typed %q: %q, %v", c, got, err)
		}
	}
	// A home without a passphrase is not asked for one...
	prompts = 0
	if _, _, err := run(t, "id", "--home", open); err != nil || prompts != 0 {
		t.Errorf("unprotected home: %v after %d prompts", err, prompts)
	}
	// ...and one given to it is refused as "no passphrase".
	t.Setenv("UMBRA_PASSPHRASE", "anything")
	_, _, err = run(t, "id", "--home", open)
	if !errors.Is(err, client.ErrNoPassphrase) || strings.Contains(err.Error(), "wrong passphrase") {
		t.Errorf("a passphrase for a home without one: %v, want %v", err, client.ErrNoPassphrase)
	}
	t.Setenv("UMBRA_PASSPHRASE", "right")
	if _, _, err := run(t, "id", "--home", open); !errors.Is(err, client.ErrNoPassphrase) {
		t.Errorf("a passphrase for a home without one: %v", err)
	}
}

// TestMailboxUnreachableOneLine: the mailbox tool's failure to reach any
// node is one line too, the dial errors at --log-level debug.
func TestMailboxUnreachableOneLine(t *testing.T) {
	t.Setenv("UMBRA_NETWORK", "")
	netFile := offlineNetwork(t, 2)
	want := "can't reach any of the 2 nodes in " + netFile
	_, _, err := run(t, "mailbox", "get", "--network", netFile, "--secret", strings.Repeat("00", 32))
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("mailbox get on dead nodes: %q, want one line starting %q", err, want)
	}
	_, errOut, _ := run(t, "mailbox", "get", "--network", netFile, "--secret", strings.Repeat("00", 32), "--log-level", "debug")
	if !strings.Contains(errOut, "no node answered for the node list") {
		t.Errorf("--log-level debug stderr %q: want the dial errors", errOut)
	}
}

// TestFirstHourOnline walks the README's first hour on in-process nodes on
// 127.0.0.1: bob's account, made with a network file of dead nodes, joins
// the live network after 'network set'; alice takes bob's ID from 'umbra
// id' and sends a multi-line text with 'send ID -', which bob receives
// whole (less the final newline).
func TestFirstHourOnline(t *testing.T) {
	t.Setenv("UMBRA_HOME", "")
	t.Setenv("UMBRA_PASSPHRASE", "")
	dir := t.TempDir()
	addrs := inProcessNodes(t, 7)
	live := writeFile(t, "network.txt", strings.Join(addrs, "\n")+"\n")
	time.Sleep(time.Second) // the nodes learn of each other

	aliceHome, bobHome := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	if _, errOut, err := run(t, "init", "--home", aliceHome, "--network", live); err != nil {
		t.Fatalf("init alice: %v\n%s", err, errOut)
	}
	if _, errOut, err := run(t, "init", "--home", bobHome, "--network", offlineNetwork(t, 2)); err != nil {
		t.Fatalf("init bob: %v\n%s", err, errOut)
	}
	if _, errOut, err := run(t, "messages", "--home", bobHome); err != nil || !strings.Contains(errOut, "can't reach any of the 2 nodes") {
		t.Fatalf("bob on dead nodes: %v, stderr %q: want the offline warning", err, errOut)
	}
	if _, errOut, err := run(t, "network", "set", live, "--home", bobHome); err != nil {
		t.Fatalf("network set: %v\n%s", err, errOut)
	}
	if _, errOut, err := run(t, "messages", "--home", bobHome); err != nil { // publishes bob's prekeys
		t.Fatalf("bob after network set: %v\n%s", err, errOut)
	}
	bob, _, err := run(t, "id", "--home", bobHome)
	if err != nil {
		t.Fatal(err)
	}
	bob = strings.TrimSpace(bob)
	if _, errOut, err := run(t, "contacts", "add", "--home", aliceHome, bob, "--name", "bob"); err != nil {
		t.Fatalf("contacts add: %v\n%s", err, errOut)
	}
	const text = "line one\nline two"
	out, errOut, err := runIn(t, strings.NewReader(text+"\n"), "send", "--home", aliceHome, bob, "-")
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), " sent") {
		t.Fatalf("send -: %q, %v\n%s", out, err, errOut)
	}
	var got []client.Message
	for deadline := time.Now().Add(30 * time.Second); len(got) == 0 && time.Now().Before(deadline); {
		out, errOut, err := run(t, "messages", "--home", bobHome, "--wait", "5s", "--json")
		if err != nil {
			t.Fatalf("messages: %v\n%s", err, errOut)
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var m client.Message
			if l != "" && json.Unmarshal([]byte(l), &m) == nil {
				got = append(got, m)
			}
		}
	}
	if len(got) != 1 || got[0].Text != text {
		t.Fatalf("bob received %+v, want one message %q", got, text)
	}
}

// TestErrorText: a failed command's error is shown on one line unless
// --log-level debug asks for all of it.
func TestErrorText(t *testing.T) {
	multi := errors.New("open /umbra/store/2 to X: failed to dial: all dials failed\n  * [/ip4/127.0.0.1/tcp/1] connection refused")
	if got, want := errorText(multi, false), "open /umbra/store/2 to X: failed to dial: all dials failed (more with --log-level debug)"; got != want {
		t.Errorf("errorText: %q, want %q", got, want)
	}
	if got := errorText(multi, true); got != multi.Error() {
		t.Errorf("errorText at debug: %q, want the whole error", got)
	}
	one := errors.New("one line")
	if got := errorText(one, false); got != "one line" {
		t.Errorf("errorText of one line: %q", got)
	}
}
