// Package devnet runs a local network of `umbra node` processes on
// 127.0.0.1 for development and tests: fixed ports chosen up front, node
// identities created before start so the bootstrap file is complete, and
// per-node kill -9 and restart.
package devnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/node"
)

// Config describes a devnet.
type Config struct {
	Dir      string   // root folder; node-<i>/ and bootstrap.txt go here
	Nodes    int      // how many nodes (default 12)
	Binary   string   // the umbra binary (default: this executable)
	Network  string   // network name (default "umbra-devnet")
	PoWBits  int      // admission difficulty (default 8: fast to solve)
	NodeArgs []string // extra flags for every node
	// BootstrapNodes is how many nodes bootstrap.txt lists (the first
	// ones; 0 for all): with 1, every node joins through node 1 only.
	BootstrapNodes int

	// The hooks below place nodes elsewhere than on this machine's
	// loopback, e.g. in the hosts of an internal/netlab lab; nil keeps the
	// defaults.
	//
	// HostIP is node i's (1-based) address. With it each node has a network
	// stack of its own: it listens on HostIP(i):4001 and serves its admin
	// endpoint on that stack's own 127.0.0.1:7001 (reach it with
	// HTTPClient).
	HostIP func(i int) string
	// Command makes the exec.Cmd that runs node i (default exec.Command).
	Command func(i int, name string, args ...string) *exec.Cmd
	// HTTPClient reaches node i's admin endpoint (default http.DefaultClient).
	HTTPClient func(i int) *http.Client
}

// MinAge is a devnet's minimum age before a node takes swarm seats (a
// public network's is a day): short, so a devnet is usable at once, long
// enough for tests to see a young node kept out of swarms.
const MinAge = 15 * time.Second

// Proc is one node process.
type Proc struct {
	Index     int
	Dir       string
	ID        peer.ID
	Addr      string // full multiaddr with /p2p/
	AdminAddr string // 127.0.0.1:port

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// AdminURL is the node's admin base URL.
func (p *Proc) AdminURL() string { return "http://" + p.AdminAddr }

// Pid is the running process ID, or 0.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Devnet is a running local network.
type Devnet struct {
	cfg   Config
	mu    sync.Mutex // guards Procs against AddNode
	Procs []*Proc
}

// Nodes returns the node processes (a snapshot: AddNode may add more).
func (d *Devnet) Nodes() []*Proc {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Proc(nil), d.Procs...)
}

// BootstrapFile is the path of the network file (one multiaddr per line).
func (d *Devnet) BootstrapFile() string { return filepath.Join(d.cfg.Dir, "bootstrap.txt") }

func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start prepares the folders and identities, writes bootstrap.txt and starts
// every node. It returns once all processes are started; use WaitReady to
// wait for the network to converge.
func Start(cfg Config) (*Devnet, error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 12
	}
	if cfg.Nodes > 254 {
		return nil, fmt.Errorf("devnet: at most 254 nodes")
	}
	if cfg.Network == "" {
		cfg.Network = "umbra-devnet"
	}
	if cfg.PoWBits == 0 {
		cfg.PoWBits = 8
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("devnet: find umbra binary: %w", err)
		}
		cfg.Binary = exe
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	d := &Devnet{cfg: cfg}
	for i := 1; i <= cfg.Nodes; i++ {
		p, err := d.prepare(i)
		if err != nil {
			return nil, err
		}
		d.Procs = append(d.Procs, p)
	}
	if err := d.writeBootstrap(); err != nil {
		return nil, err
	}
	for _, p := range d.Procs {
		if err := d.start(p); err != nil {
			d.Stop()
			return nil, err
		}
	}
	if err := d.retryPortClashes(); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

func (d *Devnet) writeBootstrap() error {
	var boot []string
	for _, p := range d.Procs {
		if d.cfg.BootstrapNodes > 0 && len(boot) >= d.cfg.BootstrapNodes {
			break
		}
		boot = append(boot, p.Addr)
	}
	if err := os.WriteFile(d.BootstrapFile(), []byte(strings.Join(boot, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("devnet: write bootstrap file: %w", err)
	}
	return nil
}

// retryPortClashes restarts, on fresh ports, nodes that died at start
// because another process took the port picked for them between the pick
// and the bind (other tests run devnets at the same time).
func (d *Devnet) retryPortClashes() error {
	for round := 0; round < 3; round++ {
		time.Sleep(700 * time.Millisecond)
		var clashed []*Proc
		for _, p := range d.Procs {
			if p.Running() {
				continue
			}
			log, _ := os.ReadFile(filepath.Join(p.Dir, "node.log"))
			if !strings.Contains(string(log), "address already in use") {
				return fmt.Errorf("devnet: node %d exited at start; see %s", p.Index, filepath.Join(p.Dir, "node.log"))
			}
			clashed = append(clashed, p)
		}
		if len(clashed) == 0 {
			return nil
		}
		for _, p := range clashed {
			_ = os.Remove(filepath.Join(p.Dir, "ports"))
			np, err := d.prepare(p.Index)
			if err != nil {
				return err
			}
			p.Addr, p.AdminAddr = np.Addr, np.AdminAddr
		}
		if err := d.writeBootstrap(); err != nil {
			return err
		}
		for _, p := range clashed {
			if err := d.start(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// prepare makes node i's folder, identity and ports.
func (d *Devnet) prepare(i int) (*Proc, error) {
	dir, id, err := nodeIdentity(d.cfg.Dir, i)
	if err != nil {
		return nil, err
	}
	// A restarted devnet keeps each node's ports, so bootstrap.txt stays
	// true. Each node gets a loopback address in a /24 of its own,
	// 127.0.<i>.1, so the network looks like separate hosts in separate
	// subnets to the diversity rules of paths and swarms.
	if d.cfg.HostIP != nil {
		ip := d.cfg.HostIP(i)
		return &Proc{Index: i, Dir: dir, ID: id,
			Addr:      fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", ip, id),
			AdminAddr: "127.0.0.1:7001"}, nil
	}
	ip := fmt.Sprintf("127.0.%d.1", i)
	port, admin, err := loadPorts(dir, ip)
	if err != nil {
		return nil, err
	}
	return &Proc{Index: i, Dir: dir, ID: id,
		Addr:      fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", ip, port, id),
		AdminAddr: fmt.Sprintf("127.0.0.1:%d", admin)}, nil
}

// AddNode prepares and starts one more node (index len(Procs)+1). It
// joins through the network file like the others but is not listed in it.
func (d *Devnet) AddNode() (*Proc, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := len(d.Procs) + 1
	if i > 254 {
		return nil, fmt.Errorf("devnet: at most 254 nodes")
	}
	p, err := d.prepare(i)
	if err != nil {
		return nil, err
	}
	d.Procs = append(d.Procs, p)
	if err := d.start(p); err != nil {
		return nil, err
	}
	return p, nil
}

func loadPorts(dir, ip string) (int, int, error) {
	path := filepath.Join(dir, "ports")
	if b, err := os.ReadFile(path); err == nil {
		var p2pPort, admin int
		if _, err := fmt.Sscanf(string(b), "%d %d", &p2pPort, &admin); err == nil {
			return p2pPort, admin, nil
		}
	}
	p2pPort, err := freePort(ip)
	if err != nil {
		return 0, 0, fmt.Errorf("devnet: pick port: %w", err)
	}
	admin, err := freePort("127.0.0.1")
	if err != nil {
		return 0, 0, fmt.Errorf("devnet: pick port: %w", err)
	}
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d %d\n", p2pPort, admin)), 0o644); err != nil {
		return 0, 0, fmt.Errorf("devnet: %w", err)
	}
	return p2pPort, admin, nil
}

func (d *Devnet) start(p *Proc) error {
	parts := strings.Split(p.Addr, "/")
	args := []string{"node",
		"--data", p.Dir,
		"--listen", "/ip4/" + parts[2] + "/tcp/" + parts[4],
		"--bootstrap", d.BootstrapFile(),
		"--admin", p.AdminAddr,
		"--network", d.cfg.Network,
		"--pow-bits", strconv.Itoa(d.cfg.PoWBits),
		"--gossip-interval", "500ms",
		"--sync-interval", "2s",
		"--probe-interval", "500ms",
		"--record-ttl", "30s",
		"--min-age", MinAge.String(),
	}
	if d.cfg.HostIP == nil {
		// All nodes share this machine's loopback as 127.x addresses:
		// dials must come from each node's own for per-address limits
		// (and attacks from one address) to mean what they do between
		// hosts. Nodes with a network stack each (HostIP) dial as in
		// production.
		args = append(args, "--test-dial-from-listen-addr")
	}
	args = append(args, d.cfg.NodeArgs...)
	logf, err := os.OpenFile(filepath.Join(p.Dir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("devnet: node log: %w", err)
	}
	var cmd *exec.Cmd
	if d.cfg.Command != nil {
		cmd = d.cfg.Command(p.Index, d.cfg.Binary, args...)
	} else {
		cmd = exec.Command(d.cfg.Binary, args...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = nodeProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("devnet: start node %d: %w", p.Index, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	_ = os.WriteFile(filepath.Join(p.Dir, "pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	return nil
}

// Kill sends SIGKILL to node i (1-based) and waits for it to die.
func (d *Devnet) Kill(i int) error { return d.signal(i, syscall.SIGKILL, 5*time.Second) }

// Terminate sends SIGTERM to node i and waits for it to exit. On Windows,
// which has no SIGTERM, it kills the node.
func (d *Devnet) Terminate(i int) error { return d.signal(i, syscall.SIGTERM, 15*time.Second) }

func (d *Devnet) signal(i int, sig syscall.Signal, wait time.Duration) error {
	p := d.Procs[i-1]
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		// Windows delivers no SIGTERM (only a kill): stop the node at once
		// rather than wait for an exit that will not come.
		_ = cmd.Process.Kill()
	}
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("devnet: node %d did not exit within %s after %s; killed", i, wait, sig)
	}
}

// Pause stops node i with SIGSTOP (it keeps its sockets and state but
// answers nothing); Resume continues it with SIGCONT.
// (Unix only: on Windows it returns an error.)
func (d *Devnet) Pause(i int) error { return d.signalNoWait(i, sigStop) }

// Resume continues a paused node i.
func (d *Devnet) Resume(i int) error { return d.signalNoWait(i, sigCont) }

func (d *Devnet) signalNoWait(i int, sig syscall.Signal) error {
	p := d.Procs[i-1]
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || !p.Running() {
		return fmt.Errorf("devnet: node %d is not running", i)
	}
	return cmd.Process.Signal(sig)
}

// Wipe deletes stopped node i's data folder except its identity key, its
// ports and its log: restarted, it is the same node with an empty disk.
func (d *Devnet) Wipe(i int) error {
	p := d.Procs[i-1]
	if p.Running() {
		return fmt.Errorf("devnet: node %d is running", i)
	}
	ents, err := os.ReadDir(p.Dir)
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	for _, e := range ents {
		switch e.Name() {
		case "identity.key", "ports", "node.log":
			continue
		}
		if err := os.RemoveAll(filepath.Join(p.Dir, e.Name())); err != nil {
			return fmt.Errorf("devnet: %w", err)
		}
	}
	return nil
}

// Restart starts node i again from its data folder.
func (d *Devnet) Restart(i int) error {
	p := d.Procs[i-1]
	if p.Running() {
		return fmt.Errorf("devnet: node %d is running", i)
	}
	return d.start(p)
}

// Stop terminates every node gracefully (SIGTERM, then SIGKILL after 15 s).
func (d *Devnet) Stop() error {
	var wg sync.WaitGroup
	errs := make([]error, len(d.Procs))
	for i := range d.Procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Terminate(i + 1)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Status fetches node i's /status.
func (d *Devnet) Status(ctx context.Context, i int) (*node.Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.Procs[i-1].AdminURL()+"/status", nil)
	if err != nil {
		return nil, err
	}
	client := http.DefaultClient
	if d.cfg.HTTPClient != nil {
		client = d.cfg.HTTPClient(i)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st node.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// WaitReady waits until every running node reports want live nodes
// (want <= 0 means the number of running nodes).
func (d *Devnet) WaitReady(ctx context.Context, want int) error {
	for {
		running, ready := 0, 0
		for _, p := range d.Procs {
			if !p.Running() {
				continue
			}
			running++
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := d.Status(cctx, p.Index)
			cancel()
			w := want
			if w <= 0 {
				w = d.runningCount()
			}
			if err == nil && st.LiveNodes == w {
				ready++
			}
		}
		if running > 0 && ready == running {
			return nil
		}
		if running == 0 {
			return errors.New("devnet: no node is running; see node-*/node.log")
		}
		select {
		case <-ctx.Done():
			var dead []string
			for _, p := range d.Procs {
				if !p.Running() {
					dead = append(dead, strconv.Itoa(p.Index))
				}
			}
			return fmt.Errorf("devnet: %d of %d running nodes ready (not running: %v): %w", ready, running, dead, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *Devnet) runningCount() int {
	n := 0
	for _, p := range d.Procs {
		if p.Running() {
			n++
		}
	}
	return n
}

// BuildUmbra compiles ./cmd/umbra from the module at root into dir and
// returns the binary's path (tests that run real node processes use it).
func BuildUmbra(root, dir string) (string, error) {
	bin := filepath.Join(dir, "umbra")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/umbra")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build umbra: %v\n%s", err, out)
	}
	return bin, nil
}

// nodeIdentity makes (or loads) the identity of node i of a devnet in dir
// and returns the node's folder and peer ID.
func nodeIdentity(dir string, i int) (string, peer.ID, error) {
	nd := filepath.Join(dir, fmt.Sprintf("node-%d", i))
	if err := os.MkdirAll(nd, 0o700); err != nil {
		return "", "", fmt.Errorf("devnet: %w", err)
	}
	key, err := node.LoadIdentity(filepath.Join(nd, "identity.key"))
	if err != nil {
		return "", "", err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	return nd, id, nil
}

// NodeIDs gives nodes 1..n of a devnet in dir their identities now (a
// devnet started later in dir uses them) and returns their peer IDs: an
// operator can allow them on a private network before they start.
func NodeIDs(dir string, n int) ([]peer.ID, error) {
	var ids []peer.ID
	for i := 1; i <= n; i++ {
		_, id, err := nodeIdentity(dir, i)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}
