package sip

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// TestStatelessRegisterRetransmission: over UDP a registration is answered
// without sipgo's transactions; a retransmitted authenticated REGISTER
// gets the very same 200 again, and is neither handled twice nor taken
// for a replay.
func TestStatelessRegisterRetransmission(t *testing.T) {
	s := startRegServer(t, nil, nil)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server, err := net.ResolveUDPAddr("udp", s.udp)
	if err != nil {
		t.Fatal(err)
	}
	exchange := func(raw []byte) ([]byte, *gosip.Response) {
		t.Helper()
		if _, err := c.WriteToUDP(raw, server); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		msg, err := gosip.ParseMessage(buf[:n])
		if err != nil {
			t.Fatalf("unparsable response: %v\n%s", err, buf[:n])
		}
		res, ok := msg.(*gosip.Response)
		if !ok {
			t.Fatalf("not a response: %s", buf[:n])
		}
		return buf[:n], res
	}
	h := newHarness(t, nil) // builds the requests
	src := c.LocalAddr().String()
	_, chal := exchange([]byte(h.register(src, "1001", "sip:1001@"+src, 300).String()))
	if chal.StatusCode != 401 {
		t.Fatalf("first REGISTER: %s", chal.Short())
	}
	req := h.register(src, "1001", "sip:1001@"+src, 300)
	authed := []byte(withAuth(req, answer(t, req, chal, 0, "1001", "demo-1001", 1)).String())
	first, res := exchange(authed)
	if res.StatusCode != 200 {
		t.Fatalf("authenticated REGISTER: %s", res.Short())
	}
	again, _ := exchange(authed)
	if !bytes.Equal(first, again) {
		t.Fatalf("retransmission answered differently:\n%s\n---\n%s", first, again)
	}
	if strings.Contains(s.logs.String(), "sip auth failure") {
		t.Fatalf("retransmission logged as an auth failure:\n%s", s.logs.String())
	}
	if b, ok := s.r.Lookup("1001"); !ok || !strings.EqualFold(b.Transport, "UDP") {
		t.Fatalf("Lookup = %+v, %v", b, ok)
	}
}

// TestRetransmitsExpire: responses are kept at least keep and at most
// twice that.
func TestRetransmitsExpire(t *testing.T) {
	r := retransmits{keep: 32 * time.Second}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	r.put("a", []byte("200"), t0)
	for _, d := range []time.Duration{0, 31 * time.Second, 32 * time.Second, 63 * time.Second} {
		if b, ok := r.get("a", t0.Add(d)); !ok || string(b) != "200" {
			t.Fatalf("after %v: gone", d)
		}
	}
	r.put("b", []byte("401"), t0.Add(63*time.Second))
	if _, ok := r.get("a", t0.Add(65*time.Second)); ok {
		t.Fatal("kept beyond twice keep")
	}
	if _, ok := r.get("b", t0.Add(65*time.Second)); !ok || r.size() != 1 {
		t.Fatalf("b lost or stale entries kept (size %d)", r.size())
	}
}

// lastPacket is a net.PacketConn that keeps what was last written to it.
type lastPacket struct {
	net.PacketConn // nil: only WriteTo and LocalAddr are used
	local          *net.UDPAddr
	last           []byte
}

func (p *lastPacket) WriteTo(b []byte, _ net.Addr) (int, error) {
	p.last = append(p.last[:0], b...)
	return len(b), nil
}

func (p *lastPacket) LocalAddr() net.Addr { return p.local }

// BenchmarkStatelessRegister is one whole digest registration over the
// stateless UDP path (REGISTER → 401 → REGISTER with credentials → 200),
// as the read loop runs it: parse, registrar, response, retransmission
// cache. Building the two requests and the client's digest are in the
// loop too.
func BenchmarkStatelessRegister(b *testing.B) {
	cfg := testConfig(b)
	cfg.SIP.Trunks[0].Sources = []string{"127.0.0.1/32"} // no rate limit for the load source
	h := newHarness(b, cfg)
	h.r.now = time.Now
	conn := &lastPacket{local: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}}
	filter := h.r.UDPFilter(conn)
	src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5070}
	props := gosip.TransportReadProps{Transport: "UDP", LocalAddr: conn.local, RemoteAddr: src}
	send := func(req *gosip.Request) *gosip.Response {
		if out, err := filter(props, []byte(req.String())); err != nil || out != nil {
			b.Fatalf("not handled: %v", err)
		}
		msg, err := gosip.ParseMessage(conn.last)
		if err != nil {
			b.Fatal(err)
		}
		return msg.(*gosip.Response)
	}
	b.ReportAllocs()
	for b.Loop() {
		req := h.register(src.String(), "1001", "sip:1001@127.0.0.1:5070", 300)
		req.AppendHeader(gosip.NewHeader("User-Agent", "SIPp load"))
		chal := send(req)
		req = h.register(src.String(), "1001", "sip:1001@127.0.0.1:5070", 300)
		if res := send(withAuth(req, answer(b, req, chal, 0, "1001", "demo-1001", 1))); res.StatusCode != 200 {
			b.Fatal(res.Short())
		}
	}
}

// TestKeepAliveFromListener: a phone registered over UDP gets its OPTIONS
// keep-alives from the address it registered to (its NAT lets nothing
// else in), although sipgo never saw the REGISTER.
func TestKeepAliveFromListener(t *testing.T) {
	s := startRegServer(t, nil, func(r *Registrar) {
		r.keepAlive = 100 * time.Millisecond
		r.keepAliveTimeout = time.Second
	})
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server, _ := net.ResolveUDPAddr("udp", s.udp)
	h := newHarness(t, nil)
	src := c.LocalAddr().String()
	buf := make([]byte, 4096)
	read := func() (*gosip.Request, *gosip.Response, *net.UDPAddr) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("nothing received: %v", err)
		}
		msg, err := gosip.ParseMessage(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		req, _ := msg.(*gosip.Request)
		res, _ := msg.(*gosip.Response)
		return req, res, from
	}
	send := func(m interface{ String() string }) {
		t.Helper()
		if _, err := c.WriteToUDP([]byte(m.String()), server); err != nil {
			t.Fatal(err)
		}
	}
	send(h.register(src, "1001", "sip:1001@"+src, 300))
	_, chal, _ := read()
	req := h.register(src, "1001", "sip:1001@"+src, 300)
	send(withAuth(req, answer(t, req, chal, 0, "1001", "demo-1001", 1)))
	if _, res, _ := read(); res == nil || res.StatusCode != 200 {
		t.Fatalf("registration: %v", res)
	}
	opt, _, from := read()
	if opt == nil || opt.Method != gosip.OPTIONS {
		t.Fatalf("want an OPTIONS keep-alive, got %v", opt)
	}
	if from.String() != s.udp {
		t.Fatalf("keep-alive from %v, want the listener %s", from, s.udp)
	}
	send(gosip.NewResponseFromRequest(opt, 200, "OK", nil))
}
