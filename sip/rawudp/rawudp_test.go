package rawudp

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func listen(t *testing.T, network, addr string) *Conn {
	t.Helper()
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP(network, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w, err := Wrap(c)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestRoundTrip: datagrams go both ways between raw and standard sockets,
// with the sender's address reported, on IPv4, IPv6, and an IPv6 wildcard
// socket talking to an IPv4 peer.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, network, bind, peer string
		v6                        bool
	}{
		{"ipv4", "udp4", "127.0.0.1:0", "127.0.0.1", false},
		{"ipv6", "udp6", "[::1]:0", "::1", true},
		{"dual-stack to ipv4", "udp", "[::]:0", "127.0.0.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.v6 && !ipv6Loopback() {
				t.Skip("this host has no IPv6 loopback (::1)")
			}
			c := listen(t, tc.network, tc.bind)
			peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(tc.peer)})
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			port := c.LocalAddr().(*net.UDPAddr).Port
			to := netip.AddrPortFrom(netip.MustParseAddr(tc.peer), uint16(port))
			if _, err := peer.WriteToUDPAddrPort([]byte("ping"), to); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := c.ReadFromAddrPort(buf)
			if err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("read %q %v", buf[:n], err)
			}
			if want := peer.LocalAddr().(*net.UDPAddr).AddrPort(); from.Addr() != want.Addr().Unmap() || from.Port() != want.Port() {
				t.Fatalf("from %v, want %v", from, want)
			}
			if _, err := c.WriteToAddrPort([]byte("pong"), from); err != nil {
				t.Fatal(err)
			}
			_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err = peer.Read(buf)
			if err != nil || string(buf[:n]) != "pong" {
				t.Fatalf("reply %q %v", buf[:n], err)
			}
		})
	}
}

// ipv6Loopback reports whether a UDP socket can bind ::1 here (a network
// namespace or container may have IPv6 off).
func ipv6Loopback() bool {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestCloseEndsRead: a read waiting for a datagram returns net.ErrClosed
// when the socket is closed, as the standard one does (sipgo's read loop
// depends on it).
func TestCloseEndsRead(t *testing.T) {
	c := listen(t, "udp4", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFromAddrPort(make([]byte, 64))
		done <- err
	}()
	// Closing before the read starts is fine too: it fails the same way.
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("err %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read not ended by Close")
	}
}

// TestReadDeadline: the UDPConn's deadlines still apply.
func TestReadDeadline(t *testing.T) {
	c := listen(t, "udp4", "127.0.0.1:0")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, _, err := c.ReadFromAddrPort(make([]byte, 64))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
}
