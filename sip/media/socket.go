package media

import (
	"errors"
	"net"
	"net/netip"
)

// A legSocket is a leg's UDP socket: sending, and delivering each datagram
// received to the leg (handle), one at a time.
type legSocket interface {
	localAddr() netip.AddrPort
	writeTo(b []byte, to netip.AddrPort) error
	// close closes the socket; once it returns, handle is not called
	// again.
	close() error
}

// netSocket is the portable socket: a net.UDPConn and a goroutine that
// blocks reading it, woken by the runtime for every datagram.
type netSocket struct {
	conn *net.UDPConn
	done chan struct{}
}

func openNetSocket(ap netip.AddrPort, handle func([]byte, netip.AddrPort)) (*netSocket, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, err
	}
	s := &netSocket{conn: conn, done: make(chan struct{})}
	go s.read(handle)
	return s, nil
}

func (s *netSocket) read(handle func([]byte, netip.AddrPort)) {
	defer close(s.done)
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		handle(buf[:n], from)
	}
}

func (s *netSocket) localAddr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (s *netSocket) writeTo(b []byte, to netip.AddrPort) error {
	_, err := s.conn.WriteToUDPAddrPort(b, to)
	return err
}

func (s *netSocket) close() error {
	err := s.conn.Close()
	<-s.done
	return err
}

// maxDatagram is the largest RTP datagram read; longer ones are truncated
// and then fail to parse.
const maxDatagram = 1500
