//go:build linux

package netlab

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The switch is the lab's Ethernet segment, in user space because this
// kernel has no netem: one AF_PACKET socket per host port in the lab
// namespace, a MAC table learned from source addresses, and per output
// port a queue ordered by delivery time. A frame from host a to host b
// leaves a's port and waits delay(a)+delay(b) before it is written to b's
// port, unless the loss draw of either access link drops it or b's queue
// is full.
//
// The sockets use PACKET_VNET_HDR: each frame comes with the virtio-net
// header the kernel keeps for checksum offload and GSO, and goes out with
// it unchanged, so frames whose checksum the sending stack left to the
// "hardware" (every frame a veth carries) still arrive valid.

const vnetHdrLen = 10 // struct virtio_net_hdr

// DefaultQueueLimit is the frames an output port holds before it drops.
const DefaultQueueLimit = 4096

// PortStats counts what one port's host sent and what reached it.
type PortStats struct {
	Received  uint64 // frames the host sent into the switch
	Delivered uint64 // frames written to the host
	Lost      uint64 // frames dropped by the loss draw on the way to the host
	QueueDrop uint64 // frames dropped because the host's queue was full
	WriteErr  uint64 // frames the kernel refused
	Cut       uint64 // frames dropped on the way to the host by a partition
}

type frame struct {
	at   time.Time
	seq  uint64
	data []byte // virtio-net header + Ethernet frame
}

type frameHeap []*frame

func (h frameHeap) Len() int { return len(h) }
func (h frameHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h frameHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *frameHeap) Push(x any)   { *h = append(*h, x.(*frame)) }
func (h *frameHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return f
}

type port struct {
	idx  int
	name string
	file *os.File
	raw  syscall.RawConn

	delay atomic.Int64  // one-way access-link delay, ns
	loss  atomic.Uint64 // math.Float64bits of the loss probability
	group atomic.Int64  // partition group: frames cross only within one (0 for all when healed)

	mu    sync.Mutex
	queue frameHeap
	seq   uint64
	wake  chan struct{}

	received, delivered, lost, queueDrop, writeErr, cut atomic.Uint64
}

func (p *port) setLink(delay time.Duration, loss float64) {
	p.delay.Store(int64(delay))
	p.loss.Store(math.Float64bits(loss))
}

func (p *port) lossProb() float64 { return math.Float64frombits(p.loss.Load()) }

type labSwitch struct {
	ports      []*port
	queueLimit int

	macMu sync.RWMutex
	macs  map[[6]byte]*port

	stop chan struct{}
	wg   sync.WaitGroup
}

// openPort opens a packet socket on ifname; call it inside the lab
// namespace.
func openPort(idx int, ifname string) (*port, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("netlab: switch port %s: %w", ifname, err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("netlab: packet socket: %w", err)
	}
	setup := func() error {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return fmt.Errorf("PACKET_VNET_HDR: %w", err)
		}
		// Frames the switch writes to the port would otherwise come back
		// on this socket as PACKET_OUTGOING copies: under a broadcast storm
		// they fill the receive buffer and the kernel drops the host's own
		// frames (ARP replies) behind them.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			return fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fmt.Errorf("promiscuous: %w", err)
		}
		return nil
	}
	if err := setup(); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlab: switch port %s: %w", ifname, err)
	}
	f := os.NewFile(uintptr(fd), "packet:"+ifname)
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &port{idx: idx, name: ifname, file: f, raw: raw, wake: make(chan struct{}, 1)}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func newSwitch(ports []*port, queueLimit int) *labSwitch {
	if queueLimit <= 0 {
		queueLimit = DefaultQueueLimit
	}
	s := &labSwitch{ports: ports, queueLimit: queueLimit, macs: map[[6]byte]*port{}, stop: make(chan struct{})}
	for _, p := range ports {
		s.macs[[6]byte(HostMAC(p.idx))] = p // known from the start: no flooding
	}
	for _, p := range ports {
		s.wg.Add(2)
		go s.readLoop(p)
		go s.writeLoop(p)
	}
	return s
}

// close stops every goroutine of the switch and closes its sockets.
func (s *labSwitch) close() {
	close(s.stop)
	for _, p := range s.ports {
		p.file.Close() // unblocks readLoop
	}
	s.wg.Wait()
}

func (s *labSwitch) readLoop(in *port) {
	defer s.wg.Done()
	buf := make([]byte, vnetHdrLen+65536+64)
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := in.raw.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return // socket closed
		}
		if rerr != nil {
			if errors.Is(rerr, unix.EINTR) || errors.Is(rerr, unix.ENETDOWN) {
				continue
			}
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // a frame this switch wrote to the port
		}
		if n < vnetHdrLen+14 {
			continue
		}
		in.received.Add(1)
		data := make([]byte, n)
		copy(data, buf[:n])
		s.forward(in, data)
	}
}

func (s *labSwitch) forward(in *port, data []byte) {
	eth := data[vnetHdrLen:]
	var dst, src [6]byte
	copy(dst[:], eth[0:6])
	copy(src[:], eth[6:12])
	if src[0]&1 == 0 {
		s.macMu.RLock()
		known := s.macs[src]
		s.macMu.RUnlock()
		if known != in {
			s.macMu.Lock()
			s.macs[src] = in
			s.macMu.Unlock()
		}
	}
	now := time.Now()
	if dst[0]&1 == 0 { // unicast
		s.macMu.RLock()
		out := s.macs[dst]
		s.macMu.RUnlock()
		if out != nil {
			if out != in {
				s.enqueue(in, out, data, now)
			}
			return
		}
	}
	for _, out := range s.ports { // broadcast, multicast, unknown unicast
		if out != in {
			s.enqueue(in, out, data, now)
		}
	}
}

func (s *labSwitch) enqueue(in, out *port, data []byte, now time.Time) {
	if in.group.Load() != out.group.Load() {
		out.cut.Add(1)
		return
	}
	if l := in.lossProb(); l > 0 && rand.Float64() < l {
		out.lost.Add(1)
		return
	}
	if l := out.lossProb(); l > 0 && rand.Float64() < l {
		out.lost.Add(1)
		return
	}
	at := now.Add(time.Duration(in.delay.Load() + out.delay.Load()))
	out.mu.Lock()
	if len(out.queue) >= s.queueLimit {
		out.mu.Unlock()
		out.queueDrop.Add(1)
		return
	}
	out.seq++
	heap.Push(&out.queue, &frame{at: at, seq: out.seq, data: data})
	out.mu.Unlock()
	select {
	case out.wake <- struct{}{}:
	default:
	}
}

func (s *labSwitch) writeLoop(out *port) {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due [][]byte
	for {
		due = due[:0]
		out.mu.Lock()
		now := time.Now()
		for len(out.queue) > 0 && !out.queue[0].at.After(now) {
			due = append(due, heap.Pop(&out.queue).(*frame).data)
		}
		wait := time.Duration(-1)
		if len(out.queue) > 0 {
			wait = out.queue[0].at.Sub(now)
		}
		out.mu.Unlock()
		for _, d := range due {
			s.write(out, d)
		}
		if len(due) > 0 {
			continue
		}
		var tc <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-s.stop:
			return
		case <-out.wake:
		case <-tc:
		}
	}
}

func (s *labSwitch) write(out *port, data []byte) {
	var werr error
	err := out.raw.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), data)
		return werr != unix.EAGAIN
	})
	if err != nil || werr != nil {
		out.writeErr.Add(1)
		return
	}
	out.delivered.Add(1)
}

func (p *port) stats() PortStats {
	return PortStats{
		Received:  p.received.Load(),
		Delivered: p.delivered.Load(),
		Lost:      p.lost.Load(),
		QueueDrop: p.queueDrop.Load(),
		WriteErr:  p.writeErr.Load(),
		Cut:       p.cut.Load(),
	}
}
