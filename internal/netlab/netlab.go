//go:build linux

// Package netlab is a multi-host lab on one Linux machine: each host is a
// network namespace with one address in 198.18.0.0/15 (a /24 of its own,
// so the subnet-diversity rules see distinct subnets), all on one Ethernet
// segment served by a user-space switch in a namespace of the lab's own.
// The switch adds each host's access-link delay and loss; tc tbf on a
// host's interface limits its bandwidth. No namespace has a default route,
// so nothing in the lab can reach outside it. It needs root and iproute2.
package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// HostConfig is one host's access link.
type HostConfig struct {
	Delay time.Duration // one-way delay of the access link (each direction)
	Loss  float64       // probability a frame is lost crossing the link (each direction)
	Rate  string        // tc tbf rate of the host's egress, e.g. "2mbit"; "" for none
}

// Config describes a lab.
type Config struct {
	Hosts      []HostConfig
	QueueLimit int // frames a switch output port holds (default DefaultQueueLimit)
	// CloseOnSignal closes the lab on SIGINT or SIGTERM and then lets the
	// signal take its default course (for command-line users).
	CloseOnSignal bool
}

// MaxHosts is how many hosts a lab can have: 198.18.1.10 to 198.19.255.10.
const MaxHosts = 511

// Host is one namespace of the lab.
type Host struct {
	Index int    // 1-based
	Netns string // namespace name
	IP    net.IP // its address; the lab is one /15
	Iface string // its interface, "eth0"
	port  *port
}

// Addr is IP as a string.
func (h *Host) Addr() string { return h.IP.String() }

// Lab is a running lab.
type Lab struct {
	id     string // Prefix + "<pid>-<n>"
	swNs   string
	hosts  []*Host
	sw     *labSwitch
	closed chan struct{}
	once   sync.Once
	err    error
}

var labSeq atomic.Int64

// HostIP is the address of host i (1-based): 198.18.i.10 for i < 256 and
// 198.19.(i-256).10 above, each in a /24 of its own.
func HostIP(i int) net.IP {
	return net.IPv4(198, byte(18+i/256), byte(i%256), 10).To4()
}

// New builds a lab: it first removes stale labs (CleanStale), then creates
// the switch namespace, one namespace per host with a veth pair to the
// switch, and starts the switch. On error everything made so far is
// removed.
func New(cfg Config) (*Lab, error) {
	if len(cfg.Hosts) == 0 || len(cfg.Hosts) > MaxHosts {
		return nil, fmt.Errorf("netlab: 1 to %d hosts, not %d", MaxHosts, len(cfg.Hosts))
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("netlab: needs root (network namespaces)")
	}
	if err := CleanStale(); err != nil {
		return nil, err
	}
	id := fmt.Sprintf("%s%d-%d", Prefix, os.Getpid(), labSeq.Add(1))
	l := &Lab{id: id, swNs: id + "-sw", closed: make(chan struct{})}
	if err := l.build(cfg); err != nil {
		l.Close()
		return nil, err
	}
	if cfg.CloseOnSignal {
		// Notify before New returns: a signal that arrives the moment the
		// caller has its lab must already close it.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go l.closeOnSignal(ch)
	}
	return l, nil
}

func (l *Lab) build(cfg Config) error {
	if err := l.addNetns(l.swNs); err != nil {
		return err
	}
	for i, hc := range cfg.Hosts {
		idx := i + 1
		h := &Host{Index: idx, Netns: fmt.Sprintf("%s-h%d", l.id, idx), IP: HostIP(idx), Iface: "eth0"}
		if err := l.addNetns(h.Netns); err != nil {
			return err
		}
		l.hosts = append(l.hosts, h)
		swIf := "h" + strconv.Itoa(idx)
		steps := [][]string{
			{"ip", "-n", l.swNs, "link", "add", swIf, "type", "veth", "peer", "name", h.Iface,
				"address", HostMAC(idx).String(), "netns", h.Netns},
			{"ip", "-n", h.Netns, "link", "set", h.Iface, "gso_max_segs", "1"},
			{"ip", "-n", h.Netns, "addr", "add", h.Addr() + "/15", "dev", h.Iface},
			{"ip", "-n", h.Netns, "link", "set", h.Iface, "up"},
			{"ip", "-n", l.swNs, "link", "set", swIf, "gso_max_segs", "1"},
			{"ip", "-n", l.swNs, "link", "set", swIf, "up"},
		}
		if hc.Rate != "" {
			steps = append(steps, []string{"tc", "-n", h.Netns, "qdisc", "add", "dev", h.Iface, "root",
				"tbf", "rate", hc.Rate, "burst", "16kb", "latency", "200ms"})
		}
		for _, s := range steps {
			if err := run(s[0], s[1:]...); err != nil {
				return err
			}
		}
	}
	if err := l.staticNeighbours(); err != nil {
		return err
	}
	var ports []*port
	err := inNetns(l.swNs, func() error {
		for _, h := range l.hosts {
			p, err := openPort(h.Index, "h"+strconv.Itoa(h.Index))
			if err != nil {
				return err
			}
			h.port = p
			ports = append(ports, p)
		}
		return nil
	})
	if err != nil {
		for _, p := range ports {
			p.file.Close()
		}
		return err
	}
	for i, h := range l.hosts {
		h.port.setLink(cfg.Hosts[i].Delay, cfg.Hosts[i].Loss)
	}
	l.sw = newSwitch(ports, cfg.QueueLimit)
	return nil
}

// staticNeighbours gives every host a permanent ARP entry for every other
// host. The lab is one Ethernet segment of up to 511 hosts; left to ARP,
// the start-up of 100 hosts that all dial each other is a storm of
// broadcasts, each copied to every port, and in it hosts lost frames of
// some peers for good (a peer's SYNs reached the host and went
// unanswered for the whole 10 s of a dial). Fixed entries, as a
// datacentre's configuration management would set, take ARP out of what
// the lab tests; the switch knows every host's MAC from the start too.
func (l *Lab) staticNeighbours() error {
	for _, h := range l.hosts {
		var b strings.Builder
		for _, o := range l.hosts {
			if o != h {
				fmt.Fprintf(&b, "neigh replace %s lladdr %s dev %s nud permanent\n", o.Addr(), HostMAC(o.Index), h.Iface)
			}
		}
		if b.Len() == 0 {
			continue
		}
		cmd := exec.Command("ip", "-n", h.Netns, "-batch", "-")
		cmd.Stdin = strings.NewReader(b.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("netlab: neighbours of %s: %v: %s", h.Netns, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// HostMAC is host i's Ethernet address: locally administered, derived
// from i like its IP.
func HostMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x6c, 0x61, 0x62, byte(i >> 8), byte(i)}
}

// addNetns creates a namespace with loopback up and IPv6 off (the lab is
// IPv4 only; no router solicitations or DAD frames cross the switch).
func (l *Lab) addNetns(name string) error {
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	if err := run("ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		return err
	}
	return run("ip", "netns", "exec", name, "sysctl", "-q", "-w",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
}

// ID is the lab's name prefix: every namespace of the lab starts with it.
func (l *Lab) ID() string { return l.id }

// Hosts returns the hosts, Hosts()[i] being host i+1.
func (l *Lab) Hosts() []*Host { return append([]*Host(nil), l.hosts...) }

// Host returns host i (1-based).
func (l *Lab) Host(i int) *Host { return l.hosts[i-1] }

// SetLink changes a host's access-link delay and loss while the lab runs
// (a loss of 1 cuts the host off: a partition).
func (l *Lab) SetLink(h *Host, delay time.Duration, loss float64) {
	h.port.setLink(delay, loss)
}

// Partition splits the lab: frames cross only between hosts of the same
// group. Hosts named in no group form one more group of their own. Heal
// joins everything again. Each call replaces the previous partition.
func (l *Lab) Partition(groups ...[]*Host) {
	for _, h := range l.hosts {
		h.port.group.Store(int64(len(groups) + 1))
	}
	for i, g := range groups {
		for _, h := range g {
			h.port.group.Store(int64(i + 1))
		}
	}
}

// Heal ends any partition.
func (l *Lab) Heal() {
	for _, h := range l.hosts {
		h.port.group.Store(0)
	}
}

// Stats returns the switch counters of a host's port.
func (l *Lab) Stats(h *Host) PortStats { return h.port.stats() }

// Command returns a command that runs inside host h's namespace (through
// `ip netns exec`, which execs the program in place: cmd.Process is the
// program itself). Close kills whatever is still running in the lab.
func (l *Lab) Command(h *Host, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.Netns, name}, args...)...)
}

// Run runs fn on a thread inside host h's namespace: sockets fn opens
// (net.Listen, net.Dial) belong to the host for their whole life.
func (h *Host) Run(fn func() error) error { return inNetns(h.Netns, fn) }

// Listen listens inside the host.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.Run(func() (err error) { ln, err = net.Listen(network, addr); return })
	return ln, err
}

// ListenPacket opens a packet connection inside the host.
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Run(func() (err error) { pc, err = net.ListenPacket(network, addr); return })
	return pc, err
}

// Dial dials from inside the host.
func (h *Host) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := h.Run(func() (err error) { c, err = net.DialTimeout(network, addr, timeout); return })
	return c, err
}

// DialContext dials from inside the host.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	var d net.Dialer
	err := h.Run(func() (err error) { c, err = d.DialContext(ctx, network, addr); return })
	return c, err
}

// HTTPClient is an HTTP client whose connections start inside host h (to
// reach an admin endpoint that listens on a lab address).
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}}
}

// Close stops the switch, kills every process left in the lab's
// namespaces and deletes them (their veth pairs go with them). It is safe
// to call more than once and from a signal handler goroutine.
func (l *Lab) Close() error {
	l.once.Do(func() {
		close(l.closed)
		var errs []error
		for _, h := range l.hosts {
			for _, p := range nsPids(h.Netns) {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		if l.sw != nil {
			l.sw.close()
		}
		for _, name := range listLabNetns(l.id + "-") {
			if err := deleteNetns(name); err != nil {
				errs = append(errs, err)
			}
		}
		l.err = errors.Join(errs...)
	})
	return l.err
}

func (l *Lab) closeOnSignal(ch chan os.Signal) {
	defer signal.Stop(ch)
	select {
	case <-l.closed:
	case sig := <-ch:
		l.Close()
		signal.Stop(ch)
		p, _ := os.FindProcess(os.Getpid())
		_ = p.Signal(sig) // default action now: the process ends as it would have
	}
}
