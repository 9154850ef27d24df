package sip

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/taxline/taxline/sip/rawudp"
)

// UDPListener wraps the SIP UDP listener for sipgo (Server.ServeUDP). Its
// reads and writes are raw system calls (rawudp), and it answers the
// REGISTERs that arrive on it itself, statelessly (udpRegister), so sipgo
// sees only the other datagrams. The registrar's keep-alives to phones
// registered over UDP are sent from conn too. Use it for one listener.
func (r *Registrar) UDPListener(conn *net.UDPConn) (net.PacketConn, error) {
	rc, err := rawudp.Wrap(conn)
	if err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		r.udpLocal.Store(ua)
	}
	u := &udpRegister{reg: r, conn: rc, parser: gosip.NewParser(), sent: retransmits{keep: 64 * gosip.T1}}
	return &udpListener{Conn: rc, reg: u}, nil
}

// udpListener is the UDP listener as sipgo sees it.
type udpListener struct {
	*rawudp.Conn
	reg *udpRegister
}

// ReadFrom returns the next datagram that is not a REGISTER answered on
// the way. A failed read of one datagram is skipped: sipgo stops reading
// the socket on any error but its closing.
func (l *udpListener) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := l.ReadFromAddrPort(b)
		if err != nil {
			var errno syscall.Errno
			if errors.As(err, &errno) {
				l.reg.reg.log.Debug("sip: UDP read failed", "err", err)
				continue
			}
			return 0, nil, err
		}
		if !l.reg.serve(from, b[:n]) {
			return n, net.UDPAddrFromAddrPort(from), nil
		}
	}
}

// WriteTo sends as WriteToAddrPort does.
func (l *udpListener) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return l.WriteToAddrPort(b, ua.AddrPort())
	}
	return l.UDPConn.WriteTo(b, addr)
}

// udpRegister serves REGISTER requests that arrive over UDP as a stateless
// UAS (RFC 3261 §8.2.7), straight from the SIP socket's read loop, instead
// of through sipgo's transaction layer: a registration is then one parse,
// the registrar's work and one send, with no goroutine or timers per
// request. This is how Kamailio's registrar answers too (sl_send_reply).
//
// Being stateless it keeps, in place of transactions, the final responses
// other than challenges it sent for as long as a client may retransmit a
// request (64·T1): a retransmitted REGISTER gets the same response again
// instead of being handled twice (which the digest nonce-count check would
// take for a replay).
//
// REGISTERs over TCP and TLS, and every other request, still go through
// sipgo.
type udpRegister struct {
	reg    *Registrar
	conn   addrPortWriter
	parser *gosip.Parser // used only on the UDP read loop
	sent   retransmits
	buf    bytes.Buffer
}

// addrPortWriter is where udpRegister sends its responses.
type addrPortWriter interface {
	WriteToAddrPort(b []byte, to netip.AddrPort) (int, error)
}

// serve handles one datagram from src if it is a REGISTER and reports
// whether it did. It runs on the UDP socket's read loop, one datagram at a
// time. A REGISTER from a banned source is dropped before it is parsed; one
// that does not parse is left to sipgo, which drops it.
func (u *udpRegister) serve(src netip.AddrPort, data []byte) (handled bool) {
	if !bytes.HasPrefix(data, []byte("REGISTER ")) {
		return false
	}
	if u.reg.ipBanned(src.Addr()) {
		return true
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
			_, _ = u.conn.WriteToAddrPort(res, src)
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
	to  netip.AddrPort
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
	_, err := t.u.conn.WriteToAddrPort(out, t.to)
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
