//go:build !linux

package rawudp

import (
	"net"
	"net/netip"
)

// Conn is a *net.UDPConn; elsewhere than on Linux its reads and writes are
// the standard ones.
type Conn struct{ *net.UDPConn }

// Wrap wraps c.
func Wrap(c *net.UDPConn) (*Conn, error) { return &Conn{c}, nil }

// ReadFromAddrPort reads one datagram.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.ReadFromUDPAddrPort(b)
}

// WriteToAddrPort sends b to to.
func (c *Conn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	return c.WriteToUDPAddrPort(b, to)
}
