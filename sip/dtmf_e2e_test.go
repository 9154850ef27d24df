package sip_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/taxline/taxline/sip/media"
)

// rtpCaller is a trunk call placed by a sipgo UAC with its own RTP socket,
// so a test sees and sends every packet.
type rtpCaller struct {
	dlg    *sipgo.DialogClientSession
	conn   *net.UDPConn
	remote media.Session // the gateway's answer
	mu     sync.Mutex    // guards got
	got    []rtp.Packet
	done   chan struct{}
}

func callIn(t *testing.T, d *desk) *rtpCaller {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dua := trunkUAC(t)
	body := pcmaOffer(t, conn.LocalAddr().(*net.UDPAddr).AddrPort())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dlg, err := dua.Invite(ctx, d.trunkURI(), body, gosip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := dlg.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	ans, err := media.ParseSDP(dlg.InviteResponse.Body())
	if err != nil {
		t.Fatal(err)
	}
	c := &rtpCaller{dlg: dlg, conn: conn, remote: ans, done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() {
		_ = conn.Close()
		<-c.done
		dlg.Close()
	})
	return c
}

// trunkUAC is a sipgo UAC playing the trunk, calling from 13800138000; its
// UA closes when the test ends.
func trunkUAC(t *testing.T) *sipgo.DialogUA {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("trunk"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return &sipgo.DialogUA{Client: cli, ContactHDR: gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: "13800138000", Host: "127.0.0.1"}}}
}

// pcmaOffer is an SDP offer of PCMA and telephone-event with its media at
// addr.
func pcmaOffer(t *testing.T, addr netip.AddrPort) []byte {
	t.Helper()
	body, err := media.Description{Addr: addr, Codecs: media.OfferCodecs([]string{"PCMA"}), SessionID: 1, Version: 1}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// trunkURI is the request URI of a trunk call to 12366 at the desk's
// gateway.
func (d *desk) trunkURI() gosip.Uri {
	return gosip.Uri{Scheme: "sip", User: "12366", Host: d.gw.Addr().Addr().String(), Port: int(d.gw.Addr().Port())}
}

func (c *rtpCaller) read() {
	defer close(c.done)
	buf := make([]byte, 1500)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			return
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		p.Payload = append([]byte(nil), p.Payload...)
		c.mu.Lock()
		c.got = append(c.got, p)
		c.mu.Unlock()
	}
}

// heardEvent reports whether a telephone-event packet (payload type pt)
// for the event arrived.
func (c *rtpCaller) heardEvent(pt uint8, event byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.got {
		if p.PayloadType == pt && len(p.Payload) >= 4 && p.Payload[0] == event {
			return true
		}
	}
	return false
}

// pressKey sends one RFC 4733 key press (60 ms, three end packets) after
// a few frames of audio, paced at 20 ms.
func (c *rtpCaller) pressKey(t *testing.T, event byte, seq *uint16, ts *uint32) {
	t.Helper()
	send := func(pt uint8, marker bool, stamp uint32, payload []byte) {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: *seq, Timestamp: stamp, SSRC: 0x7a11}, Payload: payload}
		*seq++
		raw, _ := p.Marshal()
		if _, err := c.conn.WriteToUDPAddrPort(raw, c.remote.Addr); err != nil {
			t.Fatal(err)
		}
	}
	tick := time.NewTicker(20 * time.Millisecond) // pacing, as a phone sends
	defer tick.Stop()
	for i := 0; i < 5; i++ {
		send(8, false, *ts, make([]byte, 160))
		*ts += 160
		<-tick.C
	}
	start := *ts
	for i, dur := range []uint16{160, 320, 480, 480, 480, 480} {
		end := byte(0)
		if i >= 3 {
			end = 0x80
		}
		send(101, i == 0, start, []byte{event, end | 10, byte(dur >> 8), byte(dur)})
		<-tick.C
	}
	*ts += 480
	for i := 0; i < 5; i++ {
		send(8, false, *ts, make([]byte, 160))
		*ts += 160
		<-tick.C
	}
}

// TestE2EDTMFRelay: while the caller talks to the agent, the caller's key
// presses (RFC 4733) reach the agent's baresip as DTMF, and the agent's
// (baresip sndcode) reach the caller as RFC 4733 events with the payload
// type the caller offered.
func TestE2EDTMFRelay(t *testing.T) {
	d := startDesk(t, "open")
	b := d.agent(t)
	events := b.WatchEvents(t)
	c := callIn(t, d)
	waitFor(t, 10*time.Second, "the call to be connected", func() bool { return d.logged("sip call connected") })
	seq, ts := uint16(1000), uint32(50000)
	c.pressKey(t, 4, &seq, &ts)
	waitFor(t, 5*time.Second, "baresip to receive DTMF 4", func() bool { return events.Seen("CALL_DTMF_START", "4") })

	if out, err := b.Command("sndcode", "5"); err != nil {
		t.Fatalf("sndcode: %v %s", err, out)
	}
	waitFor(t, 5*time.Second, "the caller to receive the agent's DTMF 5 as PT 101", func() bool { return c.heardEvent(101, 5) })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.dlg.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	d.callStats(t)
	if t.Failed() {
		t.Logf("baresip events: %q", events.All())
	}
}
