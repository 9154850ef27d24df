package sip

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// udpRegister serves REGISTER requests that arrive over UDP as a stateless
// UAS (RFC 3261 §8.2.7), straight from the SIP socket's read loop, instead
// of through sipgo's transaction layer: a registration is then one parse,
// the registrar's work and one send, with no goroutine or timers per
// request. This is how Kamailio's registrar answers too (sl_send_reply).
//
// Being stateless it keeps, in place of transactions, the final responses
// other than challenges it sent for as long as a client may retransmit a
// request (64·T1): a
// retransmitted REGISTER gets the same response again instead of being
// handled twice (which the digest nonce-count check would take for a
// replay).
//
// REGISTERs over TCP and TLS, and every other request, still go through
// sipgo.
type udpRegister struct {
	reg    *Registrar
	conn   net.PacketConn
	parser *gosip.Parser // used only on the UDP read loop
	sent   retransmits
	buf    bytes.Buffer
}

// UDPFilter is the read filter (sip.WithTransportLayerReadFilter) for a
// sipgo transport layer serving the UDP socket conn: it drops what comes
// from banned sources (ReadFilter), and answers a REGISTER that arrives on
// conn itself statelessly, from the socket's read loop, so sipgo never sees
// it. The registrar's keep-alives to phones registered over UDP are sent
// from conn too. Use one filter, for one UDP listener.
func (r *Registrar) UDPFilter(conn net.PacketConn) gosip.TransportReadFilter {
	u := &udpRegister{reg: r, conn: conn, parser: gosip.NewParser(), sent: retransmits{keep: 64 * gosip.T1}}
	local := conn.LocalAddr()
	if ua, ok := local.(*net.UDPAddr); ok {
		r.udpLocal.Store(ua)
	}
	return func(info gosip.TransportReadProps, data []byte) ([]byte, error) {
		data, err := r.ReadFilter(info, data)
		if len(data) == 0 || err != nil || info.Transport != "UDP" {
			return data, err
		}
		src, ok := info.RemoteAddr.(*net.UDPAddr)
		if ok && sameAddr(info.LocalAddr, local) && u.serve(src, data) {
			return nil, nil
		}
		return data, nil
	}
}

// sameAddr compares two UDP addresses without formatting them.
func sameAddr(a, b net.Addr) bool {
	ua, ok1 := a.(*net.UDPAddr)
	ub, ok2 := b.(*net.UDPAddr)
	return ok1 && ok2 && ua.AddrPort() == ub.AddrPort()
}

// serve handles one datagram from src if it is a REGISTER and reports
// whether it did. It runs on the UDP socket's read loop, one datagram at a
// time. A datagram that does not parse is left to sipgo, which drops it.
func (u *udpRegister) serve(src *net.UDPAddr, data []byte) (handled bool) {
	if !bytes.HasPrefix(data, []byte("REGISTER ")) {
		return false
	}
	msg, err := u.parser.ParseSIP(data)
	if err != nil {
		return false
	}
	req, ok := msg.(*gosip.Request)
	if !ok {
		return false
	}
	source := src.String()
	req.SetTransport("UDP")
	req.SetSource(source)
	key := retransmitKey(req, source)
	if key != "" {
		if res, ok := u.sent.get(key, time.Now()); ok {
			_, _ = u.conn.WriteTo(res, src)
			return true
		}
	}
	tx := &statelessTx{u: u, to: src, key: key}
	defer func() {
		// A panic on malformed input must not stop the read loop.
		if p := recover(); p != nil {
			u.reg.log.Error("sip handler panic", "method", "REGISTER", "source", source, "panic", p)
			_ = tx.Respond(gosip.NewResponseFromRequest(req, gosip.StatusInternalServerError, "Server Internal Error", nil))
		}
	}()
	u.reg.HandleRegister(req, tx)
	return true
}

// retransmitKey names a request's transaction: the top Via's branch with
// the source, Call-ID and CSeq (RFC 3261 §17.2.3, with what a pre-3261
// client keeps the same on a retransmission). "" if it lacks one of them.
func retransmitKey(req *gosip.Request, source string) string {
	via, callID, cseq := req.Via(), req.CallID(), req.CSeq()
	if via == nil || callID == nil || cseq == nil {
		return ""
	}
	branch, _ := via.Params.Get("branch")
	return source + "\x00" + branch + "\x00" + callID.Value() + "\x00" + strconv.FormatUint(uint64(cseq.SeqNo), 10)
}

// statelessTx is the gosip.ServerTransaction a stateless REGISTER is
// handled with: Respond sends at once and remembers the response for
// retransmissions; there is nothing to terminate.
type statelessTx struct {
	u   *udpRegister
	to  *net.UDPAddr
	key string
}

func (t *statelessTx) Respond(res *gosip.Response) error {
	b := &t.u.buf
	b.Reset()
	res.StringWrite(b)
	out := b.Bytes()
	// A challenge is not kept: a retransmitted REGISTER without
	// credentials may as well get a fresh one.
	if t.key != "" && res.StatusCode >= 200 && res.StatusCode != gosip.StatusUnauthorized {
		out = t.u.sent.put(t.key, out, time.Now())
	}
	_, err := t.u.conn.WriteTo(out, t.to)
	return err
}

func (t *statelessTx) Terminate()                           {}
func (t *statelessTx) OnTerminate(gosip.FnTxTerminate) bool { return false }
func (t *statelessTx) Done() <-chan struct{}                { return closedChan }
func (t *statelessTx) Err() error                           { return nil }
func (t *statelessTx) Acks() <-chan *gosip.Request          { return nil }
func (t *statelessTx) OnCancel(gosip.FnTxCancel) bool       { return false }

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// retransmits keeps the responses sent in the last keep to at least
// 2·keep: two generations of a map, the older dropped whole when the
// newer is keep old, so expiry costs nothing per entry.
type retransmits struct {
	keep time.Duration

	mu       sync.Mutex // guards the fields below
	cur, old map[string][]byte
	since    time.Time // when cur was started
}

func (r *retransmits) rotate(now time.Time) {
	if r.cur == nil || now.Sub(r.since) >= r.keep {
		if now.Sub(r.since) >= 2*r.keep {
			r.old = nil
		} else {
			r.old = r.cur
		}
		r.cur, r.since = map[string][]byte{}, now
	}
}

func (r *retransmits) get(key string, now time.Time) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rotate(now)
	if b, ok := r.cur[key]; ok {
		return b, true
	}
	b, ok := r.old[key]
	return b, ok
}

// put stores a copy of res under key and returns the copy.
func (r *retransmits) put(key string, res []byte, now time.Time) []byte {
	b := bytes.Clone(res)
	r.mu.Lock()
	r.rotate(now)
	r.cur[key] = b
	r.mu.Unlock()
	return b
}

// size is how many responses are kept.
func (r *retransmits) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cur) + len(r.old)
}
