package sip

import (
	"bytes"
	"net"
	"net/netip"
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

// lastPacket keeps what was last sent to it.
type lastPacket struct{ last []byte }

func (p *lastPacket) WriteToAddrPort(b []byte, _ netip.AddrPort) (int, error) {
	p.last = append(p.last[:0], b...)
	return len(b), nil
}

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
	conn := &lastPacket{}
	u := &udpRegister{reg: h.r, conn: conn, parser: gosip.NewParser(), sent: retransmits{keep: 64 * gosip.T1}}
	src := netip.MustParseAddrPort("127.0.0.1:5070")
	send := func(req *gosip.Request) *gosip.Response {
		if !u.serve(src, []byte(req.String())) {
			b.Fatal("not handled")
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
