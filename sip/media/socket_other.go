//go:build !linux

package media

import (
	"net/netip"
	"time"
)

// pollers read sockets in rounds on Linux only; elsewhere every leg has
// its own reader.
type pollers struct{}

func newPollers(time.Duration) *pollers { return nil }

func (*pollers) open(ap netip.AddrPort, handle func([]byte, netip.AddrPort)) (legSocket, error) {
	return openNetSocket(ap, handle)
}
