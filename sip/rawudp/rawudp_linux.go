package rawudp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sockaddr encodes ap as a socket address for a socket of family
// (unix.AF_INET or unix.AF_INET6; an IPv4 address becomes v4-mapped on an
// IPv6 socket) and returns it with its length.
func Sockaddr(ap netip.AddrPort, family int) (unix.RawSockaddrInet6, uint32, error) {
	var rsa unix.RawSockaddrInet6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&rsa.Port))[:], ap.Port())
	ip := ap.Addr()
	switch {
	case family == unix.AF_INET && ip.Unmap().Is4():
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		in4.Family = unix.AF_INET
		in4.Addr = ip.Unmap().As4()
		return rsa, unix.SizeofSockaddrInet4, nil
	case family == unix.AF_INET6 && ip.IsValid():
		rsa.Family = unix.AF_INET6
		rsa.Addr = ip.As16()
		return rsa, unix.SizeofSockaddrInet6, nil
	}
	return rsa, 0, fmt.Errorf("rawudp: cannot address %v from a socket of family %d", ap, family)
}

// AddrPort decodes a sockaddr_in or sockaddr_in6 as the kernel wrote it;
// a v4-mapped address comes back as IPv4.
func AddrPort(rsa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&rsa.Port))[:])
	if rsa.Family == unix.AF_INET {
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(rsa.Addr).Unmap(), port)
}

// Conn is a *net.UDPConn whose ReadFromAddrPort and WriteToAddrPort are
// raw system calls. Other methods are the UDPConn's.
type Conn struct {
	*net.UDPConn
	rc     syscall.RawConn
	family int
}

// Wrap wraps c; c stays usable on its own.
func Wrap(c *net.UDPConn) (*Conn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	family := unix.AF_INET6
	var serr error
	if err := rc.Control(func(fd uintptr) {
		var sa unix.Sockaddr
		sa, serr = unix.Getsockname(int(fd))
		if _, ok := sa.(*unix.SockaddrInet4); ok {
			family = unix.AF_INET
		}
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, fmt.Errorf("rawudp: %w", serr)
	}
	return &Conn{UDPConn: c, rc: rc, family: family}, nil
}

// ReadFromAddrPort reads one datagram, waiting in the runtime's poller
// while there is none. A datagram longer than b is truncated, as with
// net.UDPConn.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	if len(b) == 0 {
		return 0, netip.AddrPort{}, errors.New("rawudp: empty read buffer")
	}
	var (
		rsa   unix.RawSockaddrInet6
		n     uintptr
		errno syscall.Errno
	)
	err := c.rc.Read(func(fd uintptr) bool {
		rlen := uint32(unix.SizeofSockaddrInet6)
		n, _, errno = unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&rlen)))
		return errno != unix.EAGAIN
	})
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	if errno != 0 {
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: errno}
	}
	return int(n), AddrPort(&rsa), nil
}

// WriteToAddrPort sends b to to, waiting in the runtime's poller while the
// socket's buffer is full.
func (c *Conn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	rsa, rlen, err := Sockaddr(to, c.family)
	if err != nil {
		return 0, err
	}
	var (
		p     unsafe.Pointer
		n     uintptr
		errno syscall.Errno
	)
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	err = c.rc.Write(func(fd uintptr) bool {
		n, _, errno = unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(p), uintptr(len(b)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&rsa)), uintptr(rlen))
		return errno != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: net.UDPAddrFromAddrPort(to), Err: errno}
	}
	return int(n), nil
}
