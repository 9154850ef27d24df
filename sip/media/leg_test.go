package media

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func peer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addr(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// TestRelayContinuity: a caller peer talks to leg A; the agent peer hears,
// through leg B, first a prompt and then the caller relayed, as one stream.
func TestRelayContinuity(t *testing.T) {
	ports, err := NewPorts("40000-40999")
	if err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	a, err := ports.Open(lo, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ports.Open(lo, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if ports.InUse() != 2 || a.Addr().Port()%2 != 0 {
		t.Fatalf("ports in use %d, a %v", ports.InUse(), a.Addr())
	}
	caller, agent := peer(t), peer(t)
	pcma := Codec{Law: ALaw, PT: 8, DTMF: 101}
	pcmu := Codec{Law: ULaw, PT: 0, DTMF: -1}
	// A's SDP address is wrong on purpose: symmetric RTP must fix it.
	a.Configure(netip.MustParseAddrPort("127.0.0.1:9"), pcma, SendRecv)
	b.Configure(addr(agent), pcmu, SendRecv)

	// Prompt to B for 5 frames.
	ctx, cancel := context.WithCancel(context.Background())
	src := NewSource()
	tone := make([]int16, 160*5)
	if err := Play(ctx, tone, false, func(f []int16) error { return b.Write(src.Frame(f)) }); err != nil {
		t.Fatal(err)
	}
	cancel()
	// Then relay A → B.
	a.SetSink(func(f Frame) { _ = b.Write(f) })
	for i := 0; i < 10; i++ {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: 5000 + uint16(i), Timestamp: 777 + uint32(160*i), SSRC: 42}, Payload: make([]byte, 160)}
		raw, _ := p.Marshal()
		if _, err := caller.WriteToUDPAddrPort(raw, a.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	var got []rtp.Packet
	_ = agent.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for len(got) < 15 {
		n, err := agent.Read(buf)
		if err != nil {
			t.Fatalf("after %d packets: %v", len(got), err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	for i := 1; i < len(got); i++ {
		if got[i].SSRC != got[0].SSRC || got[i].SequenceNumber != got[i-1].SequenceNumber+1 || got[i].PayloadType != 0 {
			t.Fatalf("packet %d: ssrc %x seq %d after %d pt %d", i, got[i].SSRC, got[i].SequenceNumber, got[i-1].SequenceNumber, got[i].PayloadType)
		}
		if d := got[i].Timestamp - got[i-1].Timestamp; d%160 != 0 || d == 0 {
			t.Fatalf("packet %d: timestamp step %d", i, d)
		}
	}
	if !got[5].Marker {
		t.Error("no marker bit at the source switch")
	}
	// Symmetric RTP: A now sends to where the caller sent from.
	if err := a.Write(NewSource().Frame(make([]int16, 160))); err != nil {
		t.Fatal(err)
	}
	_ = caller.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := caller.Read(buf); err != nil {
		t.Fatalf("symmetric RTP: %v", err)
	}
	if rx, _ := a.Packets(); rx != 10 {
		t.Fatalf("A received %d, want 10", rx)
	}
	if _, tx := b.Packets(); tx != 15 {
		t.Fatalf("B sent %d, want 15", tx)
	}
	// A peer on hold (sendonly) gets nothing.
	b.Configure(addr(agent), pcmu, SendOnly)
	_ = b.Write(NewSource().Frame(make([]int16, 160)))
	if _, tx := b.Packets(); tx != 15 {
		t.Fatal("sent to a peer on hold")
	}
}

func TestLegDTMF(t *testing.T) {
	ports, _ := NewPorts("41000-41099")
	l, err := ports.Open(netip.MustParseAddr("127.0.0.1"), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Configure(netip.MustParseAddrPort("127.0.0.1:9"), Codec{Law: ALaw, PT: 8, DTMF: 96}, SendRecv)
	c := peer(t)
	for i, pl := range [][]byte{{4, 10, 0, 160}, {4, 0x8A, 3, 32}, {4, 0x8A, 3, 32}, {4, 0x8A, 3, 32}} {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: 1000, SSRC: 1}, Payload: pl}
		raw, _ := p.Marshal()
		_, _ = c.WriteToUDPAddrPort(raw, l.Addr())
	}
	select {
	case d := <-l.Digits():
		if d != '4' {
			t.Fatalf("digit %q", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no digit")
	}
	select {
	case d := <-l.Digits():
		t.Fatalf("second digit %q from repeated end packets", d)
	case <-time.After(100 * time.Millisecond):
	}
}
