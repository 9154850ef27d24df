//go:build !linux

package rawudp

import (
	"net"
)

// Conn is a *net.UDPConn; elsewhere than on Linux its methods are the
// standard ones.
type Conn struct{ *net.UDPConn }

// Wrap wraps c.
func Wrap(c *net.UDPConn) (*Conn, error) { return &Conn{c}, nil }
