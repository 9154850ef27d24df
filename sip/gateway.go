package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/sip/media"
	"github.com/taxline/taxline/storage"
)

// Store is what the gateway needs from storage: a place for the events it
// originates (recordings, survey scores) and for the recordings themselves.
// *storage.DB satisfies it.
type Store interface {
	Emit(interaction.Event)
	Blobs() storage.Blobs
}

// Router is what a call needs from the router; *queue.Router satisfies it.
type Router interface {
	Presence
	Offer(ctx context.Context, o queue.Offer) (queue.Admission, error)
	Transfer(ctx context.Context, id interaction.ID, target, reason, actor string) error
	Abandon(ctx context.Context, id interaction.ID) error
	Answer(ctx context.Context, id interaction.ID, agent string) error
	RingFailed(ctx context.Context, id interaction.ID, agent string, cause queue.RingCause) error
	End(ctx context.Context, id interaction.ID, e queue.End) error
	CreateTicket(ctx context.Context, t queue.Ticket) (queue.TicketInfo, error)
}

var _ Router = (*queue.Router)(nil)

// Gateway is the SIP side of taxline: one sipgo UserAgent with a server
// listening on UDP and TCP at server.sip, a client for the agent legs, the
// registrar, and one goroutine per call.
type Gateway struct {
	log    *slog.Logger
	router Router
	store  Store
	reg    *Registrar
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	cli    *sipgo.Client
	dua    *sipgo.DialogUA
	udp    *net.UDPConn
	udpl   net.PacketConn // udp as sipgo serves it: REGISTERs answered on the way (Registrar.UDPListener)
	tcp    net.Listener
	tls    net.Listener // nil unless sip.tls.listen is set
	// laddr is the UDP and TCP listeners' bound address (its IP may be
	// unspecified); addr is the advertised one: sip.media_address (or
	// its default) with the listening port.
	laddr netip.AddrPort
	addr  netip.AddrPort
	ports *media.Ports
	pacer media.Pacer // every prompt and hold music, on one 20 ms clock
	set   atomic.Pointer[gwSettings]

	// Lookup finds the phone to ring for an agent. It defaults to the
	// registrar's; tests may point it elsewhere before Run.
	Lookup func(agent string) (Binding, bool)
	// CallEnded, if set before Run, hears each call's RTP packet counts as
	// it ends (tests, metrics). It runs on the call's goroutine.
	CallEnded func(CallStats)

	mu       sync.Mutex // guards ctx, stopping, calls and wg.Add
	ctx      context.Context
	stopping bool
	calls    map[string]*call // by the Call-ID of either leg
	wg       sync.WaitGroup
}

// CallStats are one finished call's RTP packet counts, per leg and
// direction as the gateway saw them.
type CallStats struct {
	ID                 interaction.ID
	Agent              string
	CallerRx, CallerTx uint64
	AgentRx, AgentTx   uint64
	// Cause is why the gateway ended the call itself, if it did.
	Cause Cause
}

// gwSettings are derived from the config; Reload swaps them whole. A call
// keeps the settings it started with.
type gwSettings struct {
	cfg     *config.Config
	trunks  []trunk
	prompts prompts
}

type trunk struct {
	config.Trunk
	prefixes []netip.Prefix
}

func newSettings(cfg *config.Config, log *slog.Logger) (*gwSettings, error) {
	p, err := loadPrompts(cfg, log)
	if err != nil {
		return nil, err
	}
	s := &gwSettings{cfg: cfg, prompts: p}
	for _, t := range cfg.SIP.Trunks {
		tr := trunk{Trunk: t}
		for _, src := range t.Sources {
			if pf, err := netip.ParsePrefix(src); err == nil {
				tr.prefixes = append(tr.prefixes, pf.Masked())
			} else if a, err := netip.ParseAddr(src); err == nil {
				tr.prefixes = append(tr.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			} else {
				return nil, fmt.Errorf("sip: trunk %q: bad source %q", t.Name, src)
			}
		}
		s.trunks = append(s.trunks, tr)
	}
	return s, nil
}

// NewGateway binds the SIP listeners (UDP and TCP on the same port, so
// server.sip may name port 0), prepares the registrar and repairs
// recordings a crash left unfinished. Nothing is served until Run.
func NewGateway(cfg *config.Config, router Router, store Store, log *slog.Logger) (*Gateway, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	set, err := newSettings(cfg, log)
	if err != nil {
		return nil, err
	}
	ports, err := media.NewPorts(cfg.SIP.RTPPorts, cfg.SIP.Batch())
	if err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	g := &Gateway{log: log, router: router, store: store, ports: ports, calls: map[string]*call{}}
	g.set.Store(set)
	if err := g.listen(cfg.Server.SIP, cfg.SIP.MediaAddress); err != nil {
		return nil, err
	}
	if t := cfg.SIP.TLS; t.Listen != "" {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err == nil {
			var l net.Listener
			l, err = net.Listen("tcp", t.Listen)
			if err == nil {
				g.tls = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
			}
		}
		if err != nil {
			g.closeListeners()
			return nil, fmt.Errorf("sip: TLS listener: %w", err)
		}
	}
	g.reg = NewRegistrar(cfg, router, log)
	g.Lookup = g.reg.Lookup
	if g.udpl, err = g.reg.UDPListener(g.udp); err != nil {
		g.closeListeners()
		return nil, err
	}
	// sipgo logs what it cannot parse at ERROR, with the raw bytes: from
	// the Internet that is noise an attacker controls, so it goes to DEBUG.
	quiet := slog.New(demote{log.Handler()}).With("component", "sipgo")
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("taxline"),
		sipgo.WithUserAgentTransportLayerOptions(gosip.WithTransportLayerReadFilter(g.reg.ReadFilter),
			gosip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(gosip.WithTransactionLayerLogger(quiet)))
	if err != nil {
		g.closeListeners()
		return nil, fmt.Errorf("sip: %w", err)
	}
	g.ua = ua
	g.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err == nil {
		g.cli, err = sipgo.NewClient(ua, sipgo.WithClientHostname(g.addr.Addr().String()), sipgo.WithClientLogger(quiet))
	}
	if err != nil {
		_ = ua.Close()
		g.closeListeners()
		return nil, fmt.Errorf("sip: %w", err)
	}
	g.dua = &sipgo.DialogUA{
		Client: g.cli,
		ContactHDR: gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: "taxline",
			Host: g.addr.Addr().String(), Port: int(g.addr.Port())}},
		RewriteContact: true,
	}
	g.repairRecordings(time.Now())
	g.srv.OnRegister(g.guarded(g.reg.HandleRegister))
	g.srv.OnInvite(g.guarded(g.onInvite))
	g.srv.OnAck(g.guarded(g.onAck))
	g.srv.OnBye(g.guarded(g.inDialog))
	g.srv.OnInfo(g.guarded(g.inDialog))
	g.srv.OnUpdate(g.guarded(g.inDialog))
	g.srv.OnNotify(g.guarded(g.inDialog))
	g.srv.OnRefer(g.guarded(g.inDialog))
	g.srv.OnOptions(g.guarded(func(req *gosip.Request, tx gosip.ServerTransaction) {
		respond(tx, req, gosip.StatusOK, "OK")
	}))
	g.srv.OnNoRoute(g.guarded(func(req *gosip.Request, tx gosip.ServerTransaction) {
		if req.IsAck() {
			return
		}
		respond(tx, req, gosip.StatusMethodNotAllowed, "Method Not Allowed")
	}))
	return g, nil
}

// demote is a slog.Handler that passes everything on at DEBUG.
type demote struct{ h slog.Handler }

func (d demote) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d demote) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return d.h.Handle(ctx, r)
}

func (d demote) WithAttrs(as []slog.Attr) slog.Handler { return demote{d.h.WithAttrs(as)} }
func (d demote) WithGroup(name string) slog.Handler    { return demote{d.h.WithGroup(name)} }

// guarded drops requests from banned sources and turns a panic in a
// handler into a 500 so malformed input never takes the process down.
func (g *Gateway) guarded(h func(*gosip.Request, gosip.ServerTransaction)) func(*gosip.Request, gosip.ServerTransaction) {
	return func(req *gosip.Request, tx gosip.ServerTransaction) {
		if g.reg.Banned(req.Source()) {
			return
		}
		defer func() {
			if p := recover(); p != nil {
				g.log.Error("sip handler panic", "method", req.Method.String(), "source", req.Source(), "panic", p)
				if !req.IsAck() {
					respond(tx, req, gosip.StatusInternalServerError, "Server Internal Error")
				}
			}
		}()
		h(req, tx)
	}
}

func (g *Gateway) listen(addr, media string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("sip: listen address %q: %w", addr, err)
	}
	for try := 0; try < 20; try++ {
		udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return fmt.Errorf("sip: %w", err)
		}
		bound := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		tcp, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(bound))
		if err != nil {
			_ = udp.Close()
			if ap.Port() == 0 {
				continue // the TCP twin of a random UDP port was taken
			}
			return fmt.Errorf("sip: %w", err)
		}
		g.udp, g.tcp = udp, tcp
		g.laddr = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
		adv, err := advertised(ap.Addr().Unmap(), media)
		if err != nil {
			g.closeListeners()
			return err
		}
		g.addr = netip.AddrPortFrom(adv, bound.Port())
		return nil
	}
	return fmt.Errorf("sip: no port free on UDP and TCP at %s", addr)
}

// advertised is the address to put in SDP and headers: media if set,
// else the configured listen IP, else (listening on every interface) the
// first non-loopback address of that family on an interface that is up,
// else loopback.
func advertised(listen netip.Addr, media string) (netip.Addr, error) {
	if media != "" {
		a, err := netip.ParseAddr(media)
		if err != nil || a.IsUnspecified() {
			return netip.Addr{}, fmt.Errorf("sip: media_address %q is not a unicast IP address", media)
		}
		return a.Unmap(), nil
	}
	if !listen.IsUnspecified() {
		return listen, nil
	}
	ifs, err := net.Interfaces()
	if err == nil {
		for _, ifc := range ifs {
			if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
				continue
			}
			addrs, err := ifc.Addrs()
			if err != nil {
				continue
			}
			for _, a := range addrs {
				pf, err := netip.ParsePrefix(a.String())
				if err != nil {
					continue
				}
				if ip := pf.Addr().Unmap(); ip.Is4() == listen.Is4() && ip.IsGlobalUnicast() {
					return ip, nil
				}
			}
		}
	}
	if listen.Is4() {
		return netip.MustParseAddr("127.0.0.1"), nil
	}
	return netip.IPv6Loopback(), nil
}

func (g *Gateway) closeListeners() {
	if g.udp != nil {
		_ = g.udp.Close()
	}
	if g.tcp != nil {
		_ = g.tcp.Close()
	}
	if g.tls != nil {
		_ = g.tls.Close()
	}
}

// TLSAddr is the SIP-over-TLS listener's address, if there is one.
func (g *Gateway) TLSAddr() net.Addr {
	if g.tls == nil {
		return nil
	}
	return g.tls.Addr()
}

// Addr is the address the gateway advertises (sip.media_address, or its
// default, with the SIP port): where peers reach it over UDP and TCP.
func (g *Gateway) Addr() netip.AddrPort { return g.addr }

// ListenAddr is the address the UDP and TCP listeners are bound to; its IP
// is unspecified when server.sip listens on every interface.
func (g *Gateway) ListenAddr() netip.AddrPort { return g.laddr }

// Registrar is the gateway's registrar.
func (g *Gateway) Registrar() *Registrar { return g.reg }

// Reload applies a new config to new calls and to the registrar; calls in
// progress keep the settings they started with. A config whose prompts
// cannot be read is refused and the old one stays.
func (g *Gateway) Reload(cfg *config.Config) error {
	set, err := newSettings(cfg, g.log)
	if err != nil {
		return err
	}
	g.set.Store(set)
	g.reg.Reload(cfg)
	return nil
}

// Run serves SIP until ctx ends, then tears every call down (BYE to both
// legs, recordings closed) and returns once they are all gone.
func (g *Gateway) Run(ctx context.Context) error {
	g.mu.Lock()
	if g.ctx != nil {
		g.mu.Unlock()
		return errors.New("sip: gateway already ran")
	}
	g.ctx = ctx
	g.mu.Unlock()

	var serve sync.WaitGroup
	serve.Go(func() { _ = g.srv.ServeUDP(g.udpl) })
	serve.Go(func() { _ = g.srv.ServeTCP(g.tcp) })
	if g.tls != nil {
		serve.Go(func() { _ = g.srv.ServeTLS(g.tls) })
	}
	regDone := make(chan error, 1)
	go func() { regDone <- g.reg.Run(ctx, g.cli) }()
	g.log.Info("sip gateway listening", "addr", g.laddr.String(), "advertised", g.addr.Addr().String())

	<-ctx.Done()
	g.mu.Lock()
	g.stopping = true
	g.mu.Unlock()
	g.wg.Wait()
	if err := <-regDone; err != nil && !errors.Is(err, context.Canceled) {
		g.log.Warn("sip: registrar stopped", "err", err)
	}
	g.closeListeners()
	_ = g.ua.Close()
	serve.Wait()
	return nil
}

// repairRecordings fixes the headers of recordings a crash cut short (the
// recorder rewrites them every second, so at most a second is unaccounted
// for). Only the last two days' folders are looked at: a crash's victims
// are recent, and the archive may hold millions of files.
func (g *Gateway) repairRecordings(now time.Time) {
	if g.store == nil {
		return
	}
	d, ok := g.store.Blobs().(storage.Dir)
	if !ok {
		return
	}
	loc := g.set.Load().cfg.Location
	for _, day := range []time.Time{now, now.Add(-24 * time.Hour)} {
		dir := filepath.Join(d.Root, filepath.FromSlash(path.Dir(recordingName("x", day, loc))))
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".wav") {
				continue
			}
			p := filepath.Join(dir, e.Name())
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				g.log.Warn("sip: recording not checked", "file", p, "err", err)
				continue
			}
			fixed, err := media.RepairWAV(f)
			f.Close()
			switch {
			case err != nil:
				g.log.Warn("sip: recording not repaired", "file", p, "err", err)
			case fixed:
				g.log.Info("sip: repaired a recording cut short", "file", p)
			}
		}
	}
}

// begin registers a new call's goroutine; false once the gateway stops.
func (g *Gateway) begin() (context.Context, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ctx == nil || g.stopping || g.ctx.Err() != nil {
		return nil, false
	}
	g.wg.Add(1)
	return g.ctx, true
}

func (g *Gateway) bind(callID string, c *call) {
	g.mu.Lock()
	g.calls[callID] = c
	g.mu.Unlock()
}

func (g *Gateway) unbind(callID string) {
	g.mu.Lock()
	delete(g.calls, callID)
	g.mu.Unlock()
}

func (g *Gateway) lookupCall(req *gosip.Request) *call {
	id := req.CallID()
	if id == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[id.Value()]
}

// Calls is the number of calls in progress.
func (g *Gateway) Calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := map[*call]bool{}
	for _, c := range g.calls {
		seen[c] = true
	}
	return len(seen)
}

func respond(tx gosip.ServerTransaction, req *gosip.Request, code int, reason string, hdrs ...gosip.Header) {
	res := gosip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// matchTrunk finds the trunk a source address belongs to.
func (s *gwSettings) matchTrunk(src string) *trunk {
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		return nil
	}
	ip := ap.Addr().Unmap()
	for i := range s.trunks {
		for _, p := range s.trunks[i].prefixes {
			if p.Contains(ip) {
				return &s.trunks[i]
			}
		}
	}
	return nil
}

// route maps the called number to a queue: an exact match, else "*".
func (t *trunk) route(number string) string {
	if q, ok := t.Routes[number]; ok {
		return q
	}
	return t.Routes["*"]
}

// onInvite takes a new call from a trunk, or a re-INVITE within a dialog.
// For a new call it runs the call's goroutine to the end of the call: sipgo
// terminates the INVITE transaction when the handler returns.
func (g *Gateway) onInvite(req *gosip.Request, tx gosip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		g.inDialog(req, tx)
		return
	}
	set := g.set.Load()
	t := set.matchTrunk(req.Source())
	if t == nil {
		// Unknown source: refuse without saying anything about us.
		g.log.Warn("sip call from unknown source refused", "source", req.Source())
		respond(tx, req, gosip.StatusForbidden, "Forbidden")
		return
	}
	if t.Username != "" && !g.reg.CheckTrunkAuth(req, tx, t.Username, t.Password) {
		return
	}
	q := t.route(req.Recipient.User)
	if q == "" {
		respond(tx, req, gosip.StatusNotFound, "Not Found")
		return
	}
	offer, err := media.ParseSDP(req.Body())
	if err != nil {
		respond(tx, req, gosip.StatusNotAcceptableHere, "Not Acceptable Here")
		return
	}
	codec, err := media.Negotiate(offer, set.cfg.SIP.Codecs)
	if err != nil {
		respond(tx, req, gosip.StatusNotAcceptableHere, "Not Acceptable Here")
		return
	}
	st, err := negotiateSession(req, set.cfg.SIP.SessionExpires)
	if err != nil {
		sessionTooSmall(tx, req)
		return
	}
	ctx, ok := g.begin()
	if !ok {
		respond(tx, req, gosip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	defer g.wg.Done()
	leg, err := g.ports.Open(g.laddr.Addr(), g.log)
	if err != nil {
		g.log.Error("sip: no RTP port for a call", "err", err)
		respond(tx, req, gosip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	dlg, err := g.dua.ReadInvite(req, tx)
	if err != nil {
		_ = leg.Close()
		respond(tx, req, gosip.StatusBadRequest, "Bad Request")
		return
	}
	c := newCall(ctx, g, set, t, q, req, dlg, leg, offer, codec)
	c.inviteTx = tx
	c.st = st
	callID := req.CallID().Value()
	g.bind(callID, c)
	defer g.unbind(callID)
	c.run()
}

func (g *Gateway) onAck(req *gosip.Request, tx gosip.ServerTransaction) {
	if c := g.lookupCall(req); c != nil {
		c.ack(req, tx)
	}
}

// inDialog hands BYE, INFO, NOTIFY and re-INVITE to the call's goroutine
// and waits until it has answered.
func (g *Gateway) inDialog(req *gosip.Request, tx gosip.ServerTransaction) {
	c := g.lookupCall(req)
	if c == nil {
		respond(tx, req, gosip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	m := &sipMsg{req: req, tx: tx, done: make(chan struct{})}
	select {
	case c.sipIn <- m:
	case <-c.exited:
		respond(tx, req, gosip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	select {
	case <-m.done:
	case <-c.exited:
		select {
		case <-m.done:
		default:
			respond(tx, req, gosip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		}
	}
}

// callerNumber is the calling party's user part (for the taxpayer phone).
func callerNumber(req *gosip.Request) string {
	if f := req.From(); f != nil {
		return f.Address.User
	}
	return ""
}

// recordingName is a call's recording's blob name, YYYY/MM/DD/<id>.wav,
// dated in the desk's time zone. The store keeps blobs under
// DATA/recordings/, so the file is DATA/recordings/YYYY/MM/DD/<id>.wav.
func recordingName(id interaction.ID, at time.Time, loc *time.Location) string {
	if loc != nil {
		at = at.In(loc)
	}
	return fmt.Sprintf("%04d/%02d/%02d/%s.wav", at.Year(), int(at.Month()), at.Day(), id)
}

// dtmfFromInfo reads a digit from a SIP INFO body (application/dtmf-relay
// "Signal=5", or application/dtmf "5"), the fallback when a phone does not
// send RFC 4733 events.
func dtmfFromInfo(contentType string, body []byte) (byte, bool) {
	s := strings.TrimSpace(string(body))
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	switch ct {
	case "application/dtmf-relay":
		for _, line := range strings.Split(s, "\n") {
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				v = strings.TrimSpace(v)
				if len(v) == 1 && isDTMF(v[0]) {
					return v[0], true
				}
			}
		}
	case "application/dtmf":
		if len(s) == 1 && isDTMF(s[0]) {
			return s[0], true
		}
		if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 9 {
			return byte('0' + n), true
		}
	}
	return 0, false
}

func isDTMF(c byte) bool {
	return c >= '0' && c <= '9' || c == '*' || c == '#' || c >= 'A' && c <= 'D'
}
