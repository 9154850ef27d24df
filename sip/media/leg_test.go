package media

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
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

// eachReader runs a leg test with the sockets read both ways: a goroutine
// per leg, and in rounds (where the platform has them).
func eachReader(t *testing.T, test func(*testing.T, time.Duration)) {
	t.Run("per-leg", func(t *testing.T) { test(t, 0) })
	t.Run("batched", func(t *testing.T) {
		ports, _ := NewPorts("40000-40999", 2*time.Millisecond)
		if !ports.Batched() {
			t.Skip("no batched reads on this platform")
		}
		test(t, 2*time.Millisecond)
	})
}

// openLegs opens n legs on 127.0.0.1 from the port range spec, read as
// batch says; they are closed when the test ends.
func openLegs(t *testing.T, spec string, batch time.Duration, n int) (*Ports, []*Leg) {
	t.Helper()
	ports, err := NewPorts(spec, batch)
	if err != nil {
		t.Fatal(err)
	}
	legs := make([]*Leg, n)
	for i := range legs {
		l, err := ports.Open(netip.MustParseAddr("127.0.0.1"), slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		legs[i] = l
	}
	return ports, legs
}

func addr(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// TestRelayContinuity: a caller peer talks to leg A; the agent peer hears,
// through leg B, first a prompt and then the caller relayed, as one stream.
func TestRelayContinuity(t *testing.T) { eachReader(t, testRelayContinuity) }

func testRelayContinuity(t *testing.T, batch time.Duration) {
	ports, legs := openLegs(t, "40000-40999", batch, 2)
	a, b := legs[0], legs[1]
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
	for i := range tone {
		tone[i] = int16(i * 37)
	}
	var pacer Pacer
	if err := pacer.Play(ctx, []*Clip{NewClip(tone)}, ULaw, false, func(pcm []int16, payload []byte) error {
		f := src.Frame(pcm)
		f.Law, f.Payload = ULaw, payload
		return b.Write(f)
	}); err != nil {
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
		if err := p.Unmarshal(bytes.Clone(buf[:n])); err != nil { // the payload aliases the buffer
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
	if want := ULaw.Encode(nil, tone); !bytes.Equal(slices.Concat(got[0].Payload, got[1].Payload, got[2].Payload, got[3].Payload, got[4].Payload), want) {
		t.Error("the prompt's frames are not its samples in µ-law")
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

func TestLegDTMF(t *testing.T) { eachReader(t, testLegDTMF) }

func testLegDTMF(t *testing.T, batch time.Duration) {
	_, legs := openLegs(t, "41000-41099", batch, 1)
	l := legs[0]
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

// TestRelayTelephoneEvents: RFC 4733 events arriving on leg A (PT 101)
// are relayed on leg B with B's telephone-event type (PT 96), in B's
// stream: one sequence with the audio before and after, one timestamp per
// event with the marker on its first packet, the payload unchanged; and
// A still reports the digit.
func TestRelayTelephoneEvents(t *testing.T) { eachReader(t, testRelayTelephoneEvents) }

func testRelayTelephoneEvents(t *testing.T, batch time.Duration) {
	_, legs := openLegs(t, "41000-41999", batch, 2)
	a, b := legs[0], legs[1]
	caller, agent := peer(t), peer(t)
	a.Configure(addr(caller), Codec{Law: ALaw, PT: 8, DTMF: 101}, SendRecv)
	b.Configure(addr(agent), Codec{Law: ALaw, PT: 8, DTMF: 96}, SendRecv)
	a.SetSink(func(f Frame) { _ = b.Write(f) })
	a.SetEventSink(func(e Event) { _ = b.WriteEvent(e) })

	send := func(pt uint8, seq uint16, ts uint32, payload []byte) {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 42}, Payload: payload}
		raw, _ := p.Marshal()
		if _, err := caller.WriteToUDPAddrPort(raw, a.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	var got []rtp.Packet
	buf := make([]byte, 1500)
	recv := func(n int) {
		t.Helper()
		_ = agent.SetReadDeadline(time.Now().Add(5 * time.Second))
		for want := len(got) + n; len(got) < want; {
			k, err := agent.Read(buf)
			if err != nil {
				t.Fatalf("after %d packets: %v", len(got), err)
			}
			var p rtp.Packet
			if err := p.Unmarshal(buf[:k]); err != nil {
				t.Fatal(err)
			}
			p.Payload = append([]byte(nil), p.Payload...)
			got = append(got, p)
		}
	}
	// Audio, digit 7 (start, update, three end packets), audio.
	send(8, 100, 1000, make([]byte, 160))
	recv(1)
	ev := func(end bool, dur uint16) []byte {
		b := []byte{7, 10, byte(dur >> 8), byte(dur)}
		if end {
			b[1] |= 0x80
		}
		return b
	}
	send(101, 101, 1160, ev(false, 160))
	recv(1)
	send(101, 102, 1160, ev(false, 320))
	recv(1)
	for i := uint16(0); i < 3; i++ {
		send(101, 103+i, 1160, ev(true, 480))
		recv(1)
	}
	send(8, 106, 1640, make([]byte, 160))
	recv(1)
	select {
	case d := <-a.Digits():
		if d != '7' {
			t.Errorf("digit %q, want 7", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("leg A reported no digit")
	}

	for i, p := range got {
		if p.SSRC != got[0].SSRC || p.SequenceNumber != got[0].SequenceNumber+uint16(i) {
			t.Fatalf("packet %d: ssrc %x seq %d, want one stream numbered on", i, p.SSRC, p.SequenceNumber)
		}
	}
	events := got[1:6]
	for i, p := range events {
		if p.PayloadType != 96 || p.Timestamp != events[0].Timestamp || p.Marker != (i == 0) {
			t.Errorf("event packet %d: pt %d ts %d marker %v", i, p.PayloadType, p.Timestamp, p.Marker)
		}
		if p.Payload[0] != 7 || (p.Payload[1]&0x80 != 0) != (i >= 2) {
			t.Errorf("event packet %d: payload %x", i, p.Payload)
		}
	}
	if d := events[0].Timestamp - got[0].Timestamp; d != 160 {
		t.Errorf("event starts %d samples after the audio before it, want 160 as sent", d)
	}
	if last := got[6]; last.PayloadType != 8 || last.Timestamp-got[0].Timestamp != 640 {
		t.Errorf("audio after the event: pt %d, ts step %d (want 640)", last.PayloadType, last.Timestamp-got[0].Timestamp)
	}

	// A peer without telephone-event gets nothing and the caller is told.
	b.Configure(addr(agent), Codec{Law: ALaw, PT: 8, DTMF: -1}, SendRecv)
	if err := b.WriteEvent(Event{SSRC: 42, Seq: 200, TS: 1, Payload: [4]byte{1, 0x80, 0, 160}}); err != ErrNoTelephoneEvent {
		t.Errorf("WriteEvent without telephone-event: %v", err)
	}
}

// TestLegSilent: a sendrecv peer's silence is measured from its last
// packet; a peer on hold (sendonly, recvonly, inactive) is not watched,
// and unholding starts the count afresh.
func TestLegSilent(t *testing.T) { eachReader(t, testLegSilent) }

func testLegSilent(t *testing.T, batch time.Duration) {
	_, legs := openLegs(t, "42000-42999", batch, 1)
	l := legs[0]
	p := peer(t)
	pcma := Codec{Law: ALaw, PT: 8, DTMF: -1}
	l.Configure(addr(p), pcma, SendRecv)
	if d, watched := l.Silent(time.Now().Add(3 * time.Second)); !watched || d < 3*time.Second {
		t.Fatalf("silent %v watched %v, want ≥ 3s and watched", d, watched)
	}
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: 1, Timestamp: 1, SSRC: 9}, Payload: make([]byte, 160)}
	raw, _ := pkt.Marshal()
	sentAt := time.Now()
	if _, err := p.WriteToUDPAddrPort(raw, l.Addr()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rx, _ := l.Packets(); rx == 0; rx, _ = l.Packets() {
		if time.Now().After(deadline) {
			t.Fatal("packet not received")
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	if d, _ := l.Silent(sentAt.Add(time.Second)); d > time.Second {
		t.Errorf("silent %v one second after a packet", d)
	}
	for _, dir := range []Direction{SendOnly, RecvOnly, Inactive} {
		l.Configure(addr(p), pcma, dir)
		if _, watched := l.Silent(time.Now()); watched {
			t.Errorf("a %v peer is watched", dir)
		}
	}
	l.Configure(addr(p), pcma, SendRecv)
	if d, watched := l.Silent(time.Now()); !watched || d > time.Second {
		t.Errorf("after unhold: silent %v watched %v", d, watched)
	}
}

// TestRelayPassthrough: between legs of the same law the payload goes on
// as it came (µ-law 0x7F, a negative zero, would come back from encoding
// as 0xFF); to a leg of the other law it is transcoded.
func TestRelayPassthrough(t *testing.T) { eachReader(t, testRelayPassthrough) }

func testRelayPassthrough(t *testing.T, batch time.Duration) {
	_, legs := openLegs(t, "42000-42099", batch, 3)
	in, same, other := legs[0], legs[1], legs[2]
	caller, p1, p2 := peer(t), peer(t), peer(t)
	pcmu := Codec{Law: ULaw, PT: 0, DTMF: -1}
	in.Configure(addr(caller), pcmu, SendRecv)
	same.Configure(addr(p1), pcmu, SendRecv)
	other.Configure(addr(p2), Codec{Law: ALaw, PT: 8, DTMF: -1}, SendRecv)
	in.SetSink(func(f Frame) {
		_ = same.Write(f)
		_ = other.Write(f)
	})
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = 0x7F
	}
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, Timestamp: 1, SSRC: 9}, Payload: payload}
	raw, _ := pkt.Marshal()
	if _, err := caller.WriteToUDPAddrPort(raw, in.Addr()); err != nil {
		t.Fatal(err)
	}
	recv := func(c *net.UDPConn) rtp.Packet {
		buf := make([]byte, 1500)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := recv(p1); p.PayloadType != 0 || len(p.Payload) != 160 || p.Payload[0] != 0x7F || p.Payload[159] != 0x7F {
		t.Fatalf("same law: pt %d payload % x", p.PayloadType, p.Payload[:4])
	}
	if p := recv(p2); p.PayloadType != 8 || len(p.Payload) != 160 || p.Payload[0] != ALaw.Silence() {
		t.Fatalf("other law: pt %d payload % x", p.PayloadType, p.Payload[:4])
	}
}

// TestAppendHeader: our fixed header is what pion/rtp parses and writes.
func TestAppendHeader(t *testing.T) {
	for _, marker := range []bool{false, true} {
		b := appendHeader(nil, marker, 101, 0xBEEF, 0xDEADBEEF, 0x01020304)
		want, _ := (&rtp.Header{Version: 2, Marker: marker, PayloadType: 101, SequenceNumber: 0xBEEF, Timestamp: 0xDEADBEEF, SSRC: 0x01020304}).Marshal()
		if string(b) != string(want) {
			t.Fatalf("marker %v: % x, want % x", marker, b, want)
		}
	}
}
