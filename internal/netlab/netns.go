//go:build linux

package netlab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every network namespace a lab creates:
// Prefix + "<pid>-<lab>-<role>", where pid is the creating process (so
// CleanStale can tell a crashed run's namespaces from a live one's).
const Prefix = "umbralab-"

// netnsDir is where `ip netns` keeps its named namespaces (bind mounts).
const netnsDir = "/run/netns"

// inNetns runs fn on an OS thread that has entered the named network
// namespace, then moves the thread back. Sockets fn opens stay in that
// namespace for their whole life, whichever goroutine uses them later; so
// this is how the switch opens its packet sockets and how a test listens
// or dials inside a host. Go 1.10+ never starts a new thread from a locked
// one, so the runtime's other threads are not affected. If the thread
// cannot go back it is left locked, and the runtime ends it with the
// goroutine.
func inNetns(name string, fn func() error) error {
	target, err := os.Open(filepath.Join(netnsDir, name))
	if err != nil {
		return fmt.Errorf("netlab: open netns %s: %w", name, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: open own netns: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: enter netns %s: %w", name, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Stay locked: the thread dies with this goroutine.
		return fmt.Errorf("netlab: leave netns %s: %w", name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// run runs a command (ip, tc, sysctl) and returns its error with its output.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: %s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// nsPids lists the processes inside a named namespace.
func nsPids(name string) []int {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil && p != os.Getpid() {
			pids = append(pids, p)
		}
	}
	return pids
}

// deleteNetns kills every process left inside a namespace (they belong to
// the lab) and deletes it; its veth ends go with it.
func deleteNetns(name string) error {
	for _, p := range nsPids(name) {
		_ = unix.Kill(p, unix.SIGKILL)
	}
	return run("ip", "netns", "del", name)
}

// listLabNetns returns the names of all namespaces that start with prefix.
func listLabNetns(prefix string) []string {
	ents, err := os.ReadDir(netnsDir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// ownerPid parses the creating pid out of a lab namespace's name.
func ownerPid(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return 0, false
	}
	pid, _, _ := strings.Cut(rest, "-")
	p, err := strconv.Atoi(pid)
	return p, err == nil && p > 0
}

// pidAlive reports whether a process with this pid exists.
func pidAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}

// CleanStale deletes the namespaces (and with them their veth links and
// any processes still inside) of labs whose creating process is gone: what
// a crashed or killed run left behind. Namespaces of live processes,
// including this one, are left alone. New calls it every time.
func CleanStale() error {
	var errs []string
	for _, name := range listLabNetns(Prefix) {
		pid, ok := ownerPid(name)
		if !ok || pid == os.Getpid() || pidAlive(pid) {
			continue
		}
		if err := deleteNetns(name); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("netlab: clean stale labs: %s", strings.Join(errs, "; "))
	}
	return nil
}
