package media

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

// TestPollerCloseUnderTraffic: legs closed while a peer keeps sending to
// them hear nothing once Close has returned, the ports are freed, and the
// pollers' goroutines end with the last leg.
func TestPollerCloseUnderTraffic(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ports, err := NewPorts("44000-44999", time.Millisecond)
	if err != nil || !ports.Batched() {
		t.Fatalf("batched ports: %v", err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	type sinkState struct {
		closed atomic.Bool
		got    atomic.Int64
	}
	legs := make([]*Leg, 32)
	states := make([]*sinkState, len(legs))
	for i := range legs {
		l, err := ports.Open(lo, slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		st := &sinkState{}
		l.SetSink(func(Frame) {
			if st.closed.Load() {
				t.Error("frame delivered after Close returned")
			}
			st.got.Add(1)
		})
		legs[i], states[i] = l, st
	}
	sender := peer(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SSRC: 1}, Payload: make([]byte, 160)}
		// One packet to every leg each millisecond, for at most a minute.
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for range 60_000 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, l := range legs {
				p.SequenceNumber++
				raw, _ := p.Marshal()
				_, _ = sender.WriteToUDPAddrPort(raw, l.Addr())
			}
		}
	}()
	// Every leg hears something before it is closed.
	deadline := time.Now().Add(10 * time.Second)
	for i, st := range states {
		for st.got.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("leg %d heard nothing", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i, l := range legs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		states[i].closed.Store(true)
	}
	close(stop)
	wg.Wait()
	if n := ports.InUse(); n != 0 {
		t.Fatalf("%d ports still in use", n)
	}
}

// TestPollerIPv6: a leg bound to ::1 learns a v6 peer and answers it.
func TestPollerIPv6(t *testing.T) {
	ports, _ := NewPorts("45000-45999", time.Millisecond)
	l, err := ports.Open(netip.MustParseAddr("::1"), slog.Default())
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer c.Close()
	l.Configure(netip.MustParseAddrPort("[::1]:9"), Codec{Law: ALaw, PT: 8, DTMF: -1}, SendRecv)
	heard := make(chan struct{}, 1)
	l.SetSink(func(Frame) {
		select {
		case heard <- struct{}{}:
		default:
		}
	})
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SSRC: 1}, Payload: make([]byte, 160)}
	raw, _ := p.Marshal()
	if _, err := c.WriteToUDPAddrPort(raw, l.Addr()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-heard:
	case <-time.After(5 * time.Second):
		t.Fatal("nothing heard")
	}
	if err := l.Write(NewSource().Frame(make([]int16, 160))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	if _, err := c.Read(buf); err != nil {
		t.Fatalf("no reply to the learned v6 address: %v", err)
	}
}
