package media

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/taxline/taxline/sip/rawudp"
)

// pollers read the legs' sockets in rounds, rtpengine-style, instead of a
// goroutine per leg that the Go runtime wakes for every datagram: one
// poller per CPU, each with its own epoll instance (level-triggered, never
// registered with the runtime's netpoller), wakes every interval, asks
// epoll which of its sockets have data and takes up to recvBatch
// datagrams from each with one recvmmsg. Sends are plain sendto calls
// from whoever writes the leg. The cost of waking up is paid once a round
// rather than once a packet; the price is that a datagram waits up to one
// interval before it is relayed.
type pollers struct {
	all  []*poller
	next atomic.Uint32
}

func newPollers(interval time.Duration) *pollers {
	ps := &pollers{}
	for range runtime.GOMAXPROCS(0) {
		ps.all = append(ps.all, &poller{interval: interval, socks: map[uint64]*pollSocket{}})
	}
	return ps
}

// open binds a non-blocking UDP socket at ap and hands it to the next
// poller.
func (ps *pollers) open(ap netip.AddrPort, handle func([]byte, netip.AddrPort)) (legSocket, error) {
	fd, family, err := bindUDP(ap)
	if err != nil {
		return nil, err
	}
	p := ps.all[int(ps.next.Add(1))%len(ps.all)]
	s := &pollSocket{p: p, fd: fd, family: family, local: ap, handle: handle}
	if err := p.add(s); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return s, nil
}

// bindUDP opens a non-blocking UDP socket bound to ap: IPv4 for an IPv4
// address, otherwise IPv6 accepting IPv4 too.
func bindUDP(ap netip.AddrPort) (int, int, error) {
	ip := ap.Addr().Unmap()
	family := unix.AF_INET6
	var sa unix.Sockaddr
	if ip.Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, 0, fmt.Errorf("media: socket: %w", err)
	}
	if family == unix.AF_INET6 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return -1, 0, fmt.Errorf("media: bind %v: %w", ap, err)
	}
	return fd, family, nil
}

// recvBatch is how many datagrams one recvmmsg takes from a socket in a
// round: at 20 ms packetisation a socket rarely holds more than one.
const recvBatch = 8

// pollEvents is how many ready sockets one epoll_wait returns; a round
// asks again while the answer is full.
const pollEvents = 256

// A poller serves a set of sockets from one goroutine that runs while the
// set is not empty.
type poller struct {
	interval time.Duration

	mu     sync.Mutex // guards socks, nextID and run
	socks  map[uint64]*pollSocket
	nextID uint64
	run    *pollRun // nil when no socket is open

	// round is held while a round delivers datagrams; a socket is closed
	// only after taking it, so a round never reads a closed (or reused)
	// descriptor and a leg hears nothing once its Close has returned.
	round sync.Mutex
	// Used under round only.
	events [pollEvents]unix.EpollEvent
	msgs   [recvBatch]unix.Mmsghdr
	iovs   [recvBatch]unix.Iovec
	names  [recvBatch]unix.RawSockaddrInet6
	bufs   [recvBatch][maxDatagram]byte
}

// pollRun is one life of a poller's goroutine: its epoll instance and
// what stops it.
type pollRun struct {
	epfd int
	stop chan struct{}
}

func (p *poller) add(s *pollSocket) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == nil {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return fmt.Errorf("media: epoll: %w", err)
		}
		p.run = &pollRun{epfd: epfd, stop: make(chan struct{})}
		go p.loop(p.run)
	}
	p.nextID++
	s.id, s.run = p.nextID, p.run
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	binary.NativeEndian.PutUint64((*[8]byte)(unsafe.Pointer(&ev.Fd))[:], s.id)
	if err := unix.EpollCtl(s.run.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
		p.stopIfIdle()
		return fmt.Errorf("media: epoll add: %w", err)
	}
	p.socks[s.id] = s
	return nil
}

// remove takes s out of the poller and closes its descriptor once no round
// is using it.
func (p *poller) remove(s *pollSocket) error {
	p.mu.Lock()
	delete(p.socks, s.id)
	_ = unix.EpollCtl(s.run.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	p.stopIfIdle()
	p.mu.Unlock()
	p.round.Lock()
	err := unix.Close(s.fd)
	p.round.Unlock()
	return err
}

// stopIfIdle ends the goroutine when no socket is left; p.mu is held.
func (p *poller) stopIfIdle() {
	if len(p.socks) == 0 && p.run != nil {
		close(p.run.stop)
		p.run = nil
	}
}

func (p *poller) loop(run *pollRun) {
	defer func() { _ = unix.Close(run.epfd) }()
	t := time.NewTimer(p.interval)
	defer t.Stop()
	next := time.Now()
	for {
		select {
		case <-run.stop:
			return
		case <-t.C:
		}
		p.serve(run.epfd)
		// Rounds keep to a schedule while they keep up; after a long
		// round the next one starts at once.
		next = next.Add(p.interval)
		if now := time.Now(); next.Before(now) {
			next = now
		}
		t.Reset(time.Until(next))
	}
}

// serve runs one round: every socket with data, up to recvBatch datagrams
// each.
func (p *poller) serve(epfd int) {
	p.round.Lock()
	defer p.round.Unlock()
	for {
		// With a zero timeout epoll_wait does not block: no hand-off to
		// the scheduler (which would wake the runtime's monitor thread).
		r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(epfd), uintptr(unsafe.Pointer(&p.events[0])),
			uintptr(len(p.events)), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		n := int(r)
		if errno != 0 || n <= 0 {
			return
		}
		for i := range n {
			id := binary.NativeEndian.Uint64((*[8]byte)(unsafe.Pointer(&p.events[i].Fd))[:])
			p.mu.Lock()
			s := p.socks[id]
			p.mu.Unlock()
			if s != nil {
				p.drain(s)
			}
		}
		if n < len(p.events) {
			return
		}
	}
}

// drain takes what s holds, up to recvBatch datagrams, with one recvmmsg.
func (p *poller) drain(s *pollSocket) {
	for i := range p.msgs {
		p.iovs[i] = unix.Iovec{Base: &p.bufs[i][0]}
		p.iovs[i].SetLen(maxDatagram)
		p.msgs[i] = unix.Mmsghdr{Hdr: unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&p.names[i])),
			Namelen: unix.SizeofSockaddrInet6,
			Iov:     &p.iovs[i],
		}}
		p.msgs[i].Hdr.SetIovlen(1)
	}
	// recvmmsg on a non-blocking socket does not block, so it needs no
	// hand-off to the scheduler.
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&p.msgs[0])),
		recvBatch, unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return
	}
	for i := range int(n) {
		m := &p.msgs[i]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			continue
		}
		s.handle(p.bufs[i][:m.Len], rawudp.AddrPort(&p.names[i]))
	}
}

// pollSocket is a leg's socket served by a poller.
type pollSocket struct {
	p      *poller
	run    *pollRun
	id     uint64
	fd     int
	family int
	local  netip.AddrPort
	handle func([]byte, netip.AddrPort)

	// The last destination as the kernel takes it, so a send converts
	// nothing; writeTo's callers serialise (the leg's lock).
	to    netip.AddrPort
	toRaw unix.RawSockaddrInet6
	toLen uint32
}

func (s *pollSocket) localAddr() netip.AddrPort { return s.local }

func (s *pollSocket) writeTo(b []byte, to netip.AddrPort) error {
	if len(b) == 0 {
		return nil
	}
	if to != s.to || s.toLen == 0 {
		if err := s.setDest(to); err != nil {
			return err
		}
	}
	// sendto on a non-blocking socket does not block (a full buffer is
	// EAGAIN), so it needs no hand-off to the scheduler either.
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		0, uintptr(unsafe.Pointer(&s.toRaw)), uintptr(s.toLen))
	if errno != 0 {
		return fmt.Errorf("media: sendto %v: %w", to, errno)
	}
	return nil
}

// setDest converts to once, for the sends that follow.
func (s *pollSocket) setDest(to netip.AddrPort) error {
	rsa, n, err := rawudp.Sockaddr(to, s.family)
	if err != nil {
		s.toLen = 0
		return err
	}
	s.to, s.toRaw, s.toLen = to, rsa, n
	return nil
}

func (s *pollSocket) close() error { return s.p.remove(s) }
