package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"golang.org/x/time/rate"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/queue"
)

// Presence is what the registrar needs from the router: an agent's phone is
// reachable or not. *queue.Router satisfies it.
type Presence interface {
	SetPresence(ctx context.Context, agent string, m queue.Media, present bool) error
}

// Binding is one registered contact of an agent's softphone (RFC 3261 §10).
type Binding struct {
	// Agent is the agent id, the digest username and the AOR user.
	Agent string
	// Contact is the phone's Contact URI.
	Contact gosip.Uri
	// Source is where the REGISTER came from, host:port. Requests to the
	// phone go here, not to Contact's host, which is often a private
	// address behind NAT (RFC 5626 §5 in spirit).
	Source string
	// Transport is UDP, TCP, TLS, WS or WSS, as the REGISTER arrived.
	Transport string
	// Expires is when the binding lapses unless refreshed.
	Expires time.Time
}

// Registrar tunables that have no config key yet.
const (
	// DefaultExpires applies when a REGISTER names no expiry (RFC 3261
	// §10.2.1.1 lets the registrar choose).
	DefaultExpires = time.Hour
	// maxContactsPerAgent bounds bindings per agent; the oldest goes.
	maxContactsPerAgent = 8
	// DefaultKeepAlive is how often each binding gets an OPTIONS.
	DefaultKeepAlive = 30 * time.Second
	// DefaultKeepAliveFailures OPTIONS in a row that fail drop a binding.
	DefaultKeepAliveFailures = 3
	// maxLoggedUser bounds the attacker-chosen user name in the security log.
	maxLoggedUser = 64
)

// Registrar is the agents' SIP registrar: it authenticates REGISTERs with
// digest (RFC 8760 SHA-256 and MD5), keeps bindings with their expiry,
// tells the router when an agent's phone comes and goes, and keeps each
// source IP's failures, rate and bans.
//
// HandleRegister runs on sipgo's request goroutines; its state is guarded
// by mutexes (bindings by mu, per-source state inside guard, nonce counts
// inside ncTracker). Run owns the background work: expiry, keep-alives and
// the presence updates, which it sends in order from one goroutine.
type Registrar struct {
	log      *slog.Logger
	presence Presence
	nonces   *nonceMaker
	nc       *ncTracker
	guard    *guard
	settings atomic.Pointer[settings]

	// now is the clock; tests replace it before use.
	now func() time.Time
	// keepAlive, keepAliveFailures and keepAliveTimeout set the OPTIONS
	// probes; tick is the expiry and sweep period. Set before Run.
	keepAlive         time.Duration
	keepAliveFailures int
	keepAliveTimeout  time.Duration
	tick              time.Duration
	// probeRounds counts finished keep-alive rounds, for tests.
	probeRounds atomic.Int64
	// udpLocal is the UDP listener REGISTERs are answered on (UDPListener):
	// keep-alives to phones registered over UDP leave from it, where their
	// NAT expects the registrar.
	udpLocal atomic.Pointer[net.UDPAddr]

	mu       sync.Mutex // guards bindings, fromIP and dirty
	bindings map[string][]*binding
	fromIP   map[netip.Addr]int  // live bindings per source IP
	dirty    map[string]struct{} // agents whose presence may have changed
	kick     chan struct{}       // wakes the presence sender; capacity 1
}

// binding is a Binding with the registrar's bookkeeping.
type binding struct {
	Binding
	key        string     // the Contact URI as text, the binding's identity
	ip         netip.Addr // Source's address
	callID     string
	cseq       uint32
	registered time.Time
	failures   int // OPTIONS in a row without an answer
}

// settings are derived from the config; Reload swaps them whole.
type settings struct {
	realm         string
	users         map[string]secretHashes
	dummy         secretHashes
	trunks        []netip.Prefix
	minExpires    time.Duration
	maxExpires    time.Duration
	nonceLifetime time.Duration
	md5Only       []string // User-Agent prefixes that get the MD5 challenge alone
}

// NewRegistrar returns a registrar for cfg's agents and registrar settings.
// router hears about phones coming and going once Run is running; log gets
// one WARN line per authentication failure (see docs/SIP-SECURITY.md).
func NewRegistrar(cfg *config.Config, router Presence, log *slog.Logger) *Registrar {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registrar{
		log:               log,
		presence:          router,
		nonces:            newNonceMaker(),
		nc:                newNCTracker(),
		guard:             newGuard(),
		now:               time.Now,
		keepAlive:         DefaultKeepAlive,
		keepAliveFailures: DefaultKeepAliveFailures,
		keepAliveTimeout:  5 * time.Second,
		tick:              time.Second,
		bindings:          make(map[string][]*binding),
		fromIP:            make(map[netip.Addr]int),
		dirty:             make(map[string]struct{}),
		kick:              make(chan struct{}, 1),
	}
	if ka := cfg.SIP.Registrar.KeepAlive; ka > 0 {
		r.keepAlive = ka
	}
	r.Reload(cfg)
	return r
}

// Reload applies a new config: passwords, realm, expiry bounds, ban policy
// and the trunk sources exempt from bans. Bindings of agents that are no
// longer configured are dropped (and their presence withdrawn); the others
// stay until they expire or re-register.
func (r *Registrar) Reload(cfg *config.Config) {
	reg := cfg.SIP.Registrar
	s := &settings{
		realm:         reg.Realm,
		users:         make(map[string]secretHashes, len(cfg.Agents)),
		trunks:        trunkPrefixes(cfg.SIP.Trunks),
		minExpires:    reg.MinExpires,
		maxExpires:    reg.MaxExpires,
		nonceLifetime: reg.NonceLifetime,
		md5Only:       reg.MD5OnlyUserAgents,
	}
	if s.md5Only == nil {
		s.md5Only = DefaultMD5OnlyUserAgents()
	}
	if s.realm == "" {
		s.realm = "taxline"
	}
	if s.nonceLifetime <= 0 {
		s.nonceLifetime = 5 * time.Minute
	}
	if s.maxExpires <= 0 {
		s.maxExpires = DefaultExpires
	}
	for _, a := range cfg.Agents {
		if a.ID != "" && a.Password != "" {
			s.users[a.ID] = newSecretHashes(a.ID, s.realm, a.Password)
		}
	}
	// The dummy secret for unknown users: random, so no password matches it.
	s.dummy = newSecretHashes("unknown", s.realm, r.nonces.make(time.Now(), netip.IPv6Unspecified()))
	r.settings.Store(s)
	r.guard.configure(reg.FailureLimit, reg.FailureWindow, reg.BanTime)
	if reg.RegisterRate > 0 && reg.RegisterBurst > 0 {
		r.guard.setRate(rate.Limit(reg.RegisterRate), reg.RegisterBurst)
	}

	r.mu.Lock()
	for agent := range r.bindings {
		if _, ok := s.users[agent]; !ok {
			r.setLocked(agent, nil)
		}
	}
	r.mu.Unlock()
}

// trunkPrefixes parses the trunks' sources (validated by config) as CIDRs.
func trunkPrefixes(trunks []config.Trunk) []netip.Prefix {
	var out []netip.Prefix
	for _, t := range trunks {
		for _, src := range t.Sources {
			if p, err := netip.ParsePrefix(src); err == nil {
				out = append(out, p.Masked())
			} else if a, err := netip.ParseAddr(src); err == nil {
				out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			}
		}
	}
	return out
}

func (s *settings) exempt(ip netip.Addr) bool {
	for _, p := range s.trunks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// sourceIP parses a request's source host:port.
func sourceIP(src string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// Banned reports whether src (host:port, or a bare IP) is banned now. The
// gateway drops every request from a banned source without an answer.
func (r *Registrar) Banned(src string) bool {
	ip, ok := sourceIP(src)
	if !ok {
		a, err := netip.ParseAddr(src)
		if err != nil {
			return false
		}
		ip = a.Unmap()
	}
	return r.ipBanned(ip)
}

// ipBanned reports whether everything from ip is dropped unread (a ban on
// the source, not on one user at it).
func (r *Registrar) ipBanned(ip netip.Addr) bool {
	return r.guard.banned(ip.Unmap(), "", r.now())
}

// ReadFilter is a sipgo transport read filter (sip.WithTransportLayerReadFilter)
// that drops datagrams from banned sources before they are parsed, the
// cheapest place to shed a flood. It never returns an error: sipgo stops
// reading the socket on one.
func (r *Registrar) ReadFilter(info gosip.TransportReadProps, data []byte) ([]byte, error) {
	var ip netip.Addr
	switch a := info.RemoteAddr.(type) {
	case *net.UDPAddr:
		ip = a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		ip = a.AddrPort().Addr().Unmap()
	case nil:
		return data, nil
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return data, nil
		}
		ip = ap.Addr().Unmap()
	}
	if r.ipBanned(ip) {
		return nil, nil
	}
	return data, nil
}

// Lookup returns the agent's newest binding: the phone to ring.
func (r *Registrar) Lookup(agent string) (Binding, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bs := r.bindings[agent]
	if len(bs) == 0 {
		return Binding{}, false
	}
	return bs[len(bs)-1].Binding, true
}

// Bindings returns all of the agent's bindings, newest last.
func (r *Registrar) Bindings(agent string) []Binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Binding, 0, len(r.bindings[agent]))
	for _, b := range r.bindings[agent] {
		out = append(out, b.Binding)
	}
	return out
}

// respond sends a response built from req, logging a failure to send.
func (r *Registrar) respond(req *gosip.Request, tx gosip.ServerTransaction, code int, reason string, hdrs ...gosip.Header) {
	res := gosip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		r.log.Debug("sip: respond failed", "code", code, "err", err)
	}
}

// challenge sends a 401 with a fresh nonce for ip.
func (r *Registrar) challenge(req *gosip.Request, tx gosip.ServerTransaction, s *settings, ip netip.Addr, stale bool) {
	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = h.Value()
	}
	ch := challenges(s.realm, r.nonces.make(r.now(), ip), stale, md5Only(ua, s.md5Only))
	hdrs := make([]gosip.Header, len(ch))
	for i, c := range ch {
		hdrs[i] = gosip.NewHeader("WWW-Authenticate", c)
	}
	r.respond(req, tx, gosip.StatusUnauthorized, "Unauthorized", hdrs...)
}

// authFailure writes the security log line and counts the failure against
// the source; exempt sources are logged but never banned. aor is the user
// the request was for (the To user of a REGISTER), "" if none: at an IP
// with live bindings failures count per (IP, aor).
func (r *Registrar) authFailure(s *settings, ip netip.Addr, port, method, user, aor string, reason failReason) {
	if len(user) > maxLoggedUser {
		user = user[:maxLoggedUser]
	}
	if len(aor) > maxLoggedUser {
		aor = aor[:maxLoggedUser]
	}
	// One line per failure, source first, for fail2ban (docs/SIP-SECURITY.md).
	r.log.Warn("sip auth failure", "src", ip.String(), "port", port, "method", method, "user", user, "reason", reason.String())
	if s.exempt(ip) {
		return
	}
	if aor == "" || !r.hasBindingFrom(ip) {
		if until, n := r.guard.fail(ip, "", r.now()); !until.IsZero() {
			r.log.Warn("sip source banned", "src", ip.String(), "failures", n, "until", until.UTC().Format(time.RFC3339))
		}
		return
	}
	if until, n := r.guard.fail(ip, aor, r.now()); !until.IsZero() {
		r.log.Warn("sip source banned for one user", "src", ip.String(), "user", aor, "failures", n, "until", until.UTC().Format(time.RFC3339))
	}
}

// hasBindingFrom reports whether any live binding came from ip.
func (r *Registrar) hasBindingFrom(ip netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fromIP[ip] > 0
}

// setLocked replaces agent's bindings with bs (which must not share an
// array with the old list), keeps fromIP counted and marks the agent for a
// presence update when it gains its first binding or loses its last.
// r.mu must be held.
func (r *Registrar) setLocked(agent string, bs []*binding) {
	old := r.bindings[agent]
	for _, b := range old {
		if r.fromIP[b.ip]--; r.fromIP[b.ip] <= 0 {
			delete(r.fromIP, b.ip)
		}
	}
	for _, b := range bs {
		r.fromIP[b.ip]++
	}
	if len(bs) == 0 {
		delete(r.bindings, agent)
	} else {
		r.bindings[agent] = bs
	}
	if (len(old) == 0) != (len(bs) == 0) {
		r.markLocked(agent)
	}
}

// credentialsOf returns the Authorization header value meant for realm (a
// request may carry several), or the first one, or "".
func credentialsOf(req *gosip.Request, name, realm string) string {
	hs := req.GetHeaders(name)
	if len(hs) == 0 {
		return ""
	}
	want := `realm="` + realm + `"`
	for _, h := range hs {
		if strings.Contains(h.Value(), want) {
			return h.Value()
		}
	}
	return hs[0].Value()
}

// HandleRegister is the sipgo handler for REGISTER (RFC 3261 §10.3).
//
// Order of work, cheapest first: a banned or over-rate source is dropped
// without an answer; a REGISTER without credentials is challenged; bad
// credentials get exactly the same 401 whether the user exists or not
// (Asterisk's alwaysauthreject) and a WARN line; good credentials with an
// increasing nonce count update the bindings.
func (r *Registrar) HandleRegister(req *gosip.Request, tx gosip.ServerTransaction) {
	s := r.settings.Load()
	src := req.Source()
	ip, ok := sourceIP(src)
	if !ok {
		tx.Terminate()
		return
	}
	now := r.now()
	if !s.exempt(ip) {
		switch r.guard.admit(ip, now) {
		case admitBanned:
			tx.Terminate()
			return
		case admitLimited:
			r.log.Debug("sip: register over rate", "src", ip.String())
			tx.Terminate()
			return
		}
	}
	to := req.To()
	if to == nil || to.Address.User == "" || req.CallID() == nil || req.CSeq() == nil {
		r.respond(req, tx, gosip.StatusBadRequest, "Bad Request")
		return
	}
	aor := to.Address.User
	if !s.exempt(ip) && r.guard.banned(ip, aor, now) {
		tx.Terminate() // this user is banned at this office's IP
		return
	}
	if !r.authenticate(req, tx, s, ip, src, aor) {
		return
	}
	r.updateBindings(req, tx, s, to.Address.User, now)
}

// authenticate runs the digest exchange for a REGISTER for aor. On false
// it has already answered: a 401 challenge, or 403 when an authenticated
// user tries to register someone else's AOR.
func (r *Registrar) authenticate(req *gosip.Request, tx gosip.ServerTransaction, s *settings, ip netip.Addr, src, aor string) bool {
	const method = "REGISTER"
	port := src[strings.LastIndexByte(src, ':')+1:]
	hv := credentialsOf(req, "Authorization", s.realm)
	if hv == "" {
		r.challenge(req, tx, s, ip, false)
		return false
	}
	c, err := parseCredentials(hv)
	if err != nil {
		r.authFailure(s, ip, port, method, "", aor, reasonMalformed)
		r.challenge(req, tx, s, ip, false)
		return false
	}
	secret, known := s.users[c.Username]
	if !known {
		secret = s.dummy
	}
	now := r.now()
	res, reason, key, nc := digestCheck(r.nonces, c, method, s.realm, secret, known, ip, now, s.nonceLifetime)
	switch res {
	case authStale:
		r.challenge(req, tx, s, ip, true)
		return false
	case authOK:
	default:
		r.authFailure(s, ip, port, method, c.Username, aor, reason)
		r.challenge(req, tx, s, ip, false)
		return false
	}
	if !r.nc.advance(key, nc) {
		r.authFailure(s, ip, port, method, c.Username, aor, reasonReplay)
		r.challenge(req, tx, s, ip, false)
		return false
	}
	if c.Username != aor {
		r.authFailure(s, ip, port, method, c.Username, aor, reasonAORMismatch)
		r.respond(req, tx, gosip.StatusForbidden, "Forbidden")
		return false
	}
	return true
}

// CheckTrunkAuth checks the digest credentials of a trunk's INVITE against
// the trunk's user and pass. It returns true when they are right. When
// false it has already answered: 401 with a challenge when there were no
// credentials or the nonce went stale, 403 when they were wrong.
func (r *Registrar) CheckTrunkAuth(req *gosip.Request, tx gosip.ServerTransaction, user, pass string) bool {
	s := r.settings.Load()
	src := req.Source()
	ip, ok := sourceIP(src)
	if !ok {
		r.respond(req, tx, gosip.StatusForbidden, "Forbidden")
		return false
	}
	hv := credentialsOf(req, "Authorization", s.realm)
	if hv == "" {
		r.challenge(req, tx, s, ip, false)
		return false
	}
	port := src[strings.LastIndexByte(src, ':')+1:]
	c, err := parseCredentials(hv)
	if err != nil {
		r.authFailure(s, ip, port, req.Method.String(), "", "", reasonMalformed)
		r.respond(req, tx, gosip.StatusForbidden, "Forbidden")
		return false
	}
	known := c.Username == user
	secret := newSecretHashes(user, s.realm, pass)
	if !known {
		secret = s.dummy
	}
	now := r.now()
	res, reason, key, nc := digestCheck(r.nonces, c, req.Method.String(), s.realm, secret, known, ip, now, s.nonceLifetime)
	switch res {
	case authStale:
		r.challenge(req, tx, s, ip, true)
		return false
	case authOK:
	default:
		r.authFailure(s, ip, port, req.Method.String(), c.Username, "", reason)
		r.respond(req, tx, gosip.StatusForbidden, "Forbidden")
		return false
	}
	if !r.nc.advance(key, nc) {
		r.authFailure(s, ip, port, req.Method.String(), c.Username, "", reasonReplay)
		r.respond(req, tx, gosip.StatusForbidden, "Forbidden")
		return false
	}
	return true
}

// errBadContact maps to 400 Bad Request.
var errBadContact = errors.New("sip: bad contact or expires")

// contactUpdate is one Contact of a REGISTER with its asked-for expiry.
type contactUpdate struct {
	contact *gosip.ContactHeader
	expires time.Duration
}

// contactsOf reads the Contact headers and the Expires header of req.
func contactsOf(req *gosip.Request) (cs []contactUpdate, wildcard bool, err error) {
	defExpires := time.Duration(-1)
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			return nil, false, fmt.Errorf("%w: Expires %q", errBadContact, h.Value())
		}
		defExpires = time.Duration(n) * time.Second
	}
	for _, h := range req.GetHeaders("Contact") {
		ch, ok := h.(*gosip.ContactHeader)
		if !ok {
			ch = new(gosip.ContactHeader)
			if _, err := gosip.ParseAddressValue(h.Value(), &ch.Address, &ch.Params); err != nil {
				return nil, false, fmt.Errorf("%w: %v", errBadContact, err)
			}
		}
		if ch.Address.Wildcard {
			wildcard = true
			continue
		}
		if ch.Address.Host == "" {
			return nil, false, fmt.Errorf("%w: contact without host", errBadContact)
		}
		exp := defExpires
		if v, ok := ch.Params.Get("expires"); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, false, fmt.Errorf("%w: contact expires %q", errBadContact, v)
			}
			exp = time.Duration(n) * time.Second
		}
		cs = append(cs, contactUpdate{contact: ch, expires: exp})
	}
	if wildcard && (len(cs) > 0 || defExpires != 0) {
		// RFC 3261 §10.3 step 6: "*" only alone and only with Expires: 0.
		return nil, false, fmt.Errorf("%w: wildcard contact needs Expires: 0 and no other contact", errBadContact)
	}
	return cs, wildcard, nil
}

// updateBindings applies an authenticated REGISTER for agent (RFC 3261 §10.3
// steps 6–8) and answers it.
func (r *Registrar) updateBindings(req *gosip.Request, tx gosip.ServerTransaction, s *settings, agent string, now time.Time) {
	cs, wildcard, err := contactsOf(req)
	if err != nil {
		r.respond(req, tx, gosip.StatusBadRequest, "Bad Request")
		return
	}
	for i := range cs {
		switch {
		case cs[i].expires < 0:
			cs[i].expires = min(DefaultExpires, s.maxExpires)
		case cs[i].expires == 0:
		case cs[i].expires < s.minExpires:
			// §10.3 step 7: 423 with Min-Expires.
			r.respond(req, tx, gosip.StatusIntervalToBrief, "Interval Too Brief",
				gosip.NewHeader("Min-Expires", strconv.Itoa(int(s.minExpires/time.Second))))
			return
		case cs[i].expires > s.maxExpires:
			cs[i].expires = s.maxExpires
		}
	}
	callID := req.CallID().Value()
	cseq := req.CSeq().SeqNo
	src, transport := req.Source(), req.Transport()
	srcIP, _ := sourceIP(src)

	r.mu.Lock()
	// A copy: the stored list must stay whole if this request fails half way.
	bs := slices.Clone(r.bindings[agent])
	if wildcard {
		bs = nil
	}
	for _, c := range cs {
		key := c.contact.Address.String()
		i := slices.IndexFunc(bs, func(b *binding) bool { return b.key == key })
		if i >= 0 && bs[i].callID == callID && cseq <= bs[i].cseq {
			// §10.3 step 7: an older request of the same registration.
			r.mu.Unlock()
			r.respond(req, tx, gosip.StatusInternalServerError, "Out of Order")
			return
		}
		if i >= 0 {
			bs = slices.Delete(bs, i, i+1)
		}
		if c.expires == 0 {
			continue
		}
		bs = append(bs, &binding{
			Binding: Binding{
				Agent:     agent,
				Contact:   *c.contact.Address.Clone(),
				Source:    src,
				Transport: transport,
				Expires:   now.Add(c.expires),
			},
			key:        key,
			ip:         srcIP,
			callID:     callID,
			cseq:       cseq,
			registered: now,
		})
	}
	if len(bs) > maxContactsPerAgent {
		bs = slices.Delete(bs, 0, len(bs)-maxContactsPerAgent)
	}
	r.setLocked(agent, bs)
	res := gosip.NewResponseFromRequest(req, gosip.StatusOK, "OK", nil)
	for _, b := range bs {
		secs := int(b.Expires.Sub(now).Round(time.Second) / time.Second)
		res.AppendHeader(gosip.NewHeader("Contact", "<"+b.key+">;expires="+strconv.Itoa(secs)))
	}
	r.mu.Unlock()

	res.AppendHeader(gosip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	if err := tx.Respond(res); err != nil {
		r.log.Debug("sip: respond failed", "code", 200, "err", err)
	}
	if len(cs) > 0 || wildcard {
		r.log.Debug("sip register", "agent", agent, "src", src, "contacts", len(bs))
	}
}

// markLocked notes that agent's presence may have changed and wakes the
// presence sender. r.mu must be held.
func (r *Registrar) markLocked(agent string) {
	r.dirty[agent] = struct{}{}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run does the registrar's background work until ctx ends: it sends
// presence changes to the router in order, expires bindings, sends OPTIONS
// keep-alives through c to every binding (dropping one after
// DefaultKeepAliveFailures unanswered in a row), and sweeps the nonce and
// per-source tables. c may be nil: then there are no keep-alives. Run
// returns nil when ctx ends, after its goroutines have finished.
func (r *Registrar) Run(ctx context.Context, c *sipgo.Client) error {
	var wg sync.WaitGroup
	defer wg.Wait()

	tick := time.NewTicker(r.tick)
	defer tick.Stop()
	var keep <-chan time.Time
	if c != nil && r.keepAlive > 0 {
		kt := time.NewTicker(r.keepAlive)
		defer kt.Stop()
		keep = kt.C
	}
	probing := false
	probed := make(chan struct{}, 1)
	reported := make(map[string]bool) // presence the router last accepted
	lastSweep := r.now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
			r.sendPresence(ctx, reported)
		case <-tick.C:
			now := r.now()
			r.expire(now)
			r.nc.rotate(now, r.settings.Load().nonceLifetime)
			if now.Sub(lastSweep) >= sweepEvery {
				r.guard.sweep(now)
				lastSweep = now
			}
			r.sendPresence(ctx, reported) // also retries what the router refused
		case <-keep:
			if probing { // the last round is still out: skip this one
				continue
			}
			probing = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.probe(ctx, c)
				r.probeRounds.Add(1)
				probed <- struct{}{}
			}()
		case <-probed:
			probing = false
		}
	}
}

// sweepEvery is how often the per-source table is swept.
const sweepEvery = 10 * time.Second

// expire drops bindings past their expiry.
func (r *Registrar) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for agent, bs := range r.bindings {
		if !slices.ContainsFunc(bs, func(b *binding) bool { return !now.Before(b.Expires) }) {
			continue
		}
		kept := slices.DeleteFunc(slices.Clone(bs), func(b *binding) bool { return !now.Before(b.Expires) })
		r.setLocked(agent, kept)
	}
}

// sendPresence tells the router about every agent whose phone reachability
// differs from what it last accepted. Only Run's goroutine calls it, so
// updates for one agent reach the router in order.
func (r *Registrar) sendPresence(ctx context.Context, reported map[string]bool) {
	r.mu.Lock()
	type change struct {
		agent   string
		present bool
	}
	var changes []change
	for agent := range r.dirty {
		present := len(r.bindings[agent]) > 0
		if was, ok := reported[agent]; ok && was == present || !ok && !present {
			delete(r.dirty, agent)
			continue
		}
		changes = append(changes, change{agent, present})
	}
	r.mu.Unlock()
	if r.presence == nil {
		return
	}
	for _, ch := range changes {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.presence.SetPresence(cctx, ch.agent, queue.MediaVoice, ch.present)
		cancel()
		if err != nil {
			// Left dirty: retried on the next tick.
			r.log.Warn("sip: presence update failed", "agent", ch.agent, "present", ch.present, "err", err)
			continue
		}
		reported[ch.agent] = ch.present
		r.log.Info("sip phone presence", "agent", ch.agent, "registered", ch.present)
		r.mu.Lock()
		if (len(r.bindings[ch.agent]) > 0) == ch.present {
			delete(r.dirty, ch.agent)
		}
		r.mu.Unlock()
	}
}

// maxProbes bounds OPTIONS in flight at once.
const maxProbes = 32

// probe sends one OPTIONS to every binding and drops those that failed
// keepAliveFailures times in a row. Any response, even an error status,
// proves the phone is there.
func (r *Registrar) probe(ctx context.Context, c *sipgo.Client) {
	r.mu.Lock()
	var targets []*binding
	for _, bs := range r.bindings {
		targets = append(targets, bs...)
	}
	r.mu.Unlock()

	sem := make(chan struct{}, maxProbes)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, b := range targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			alive := r.options(ctx, c, b)
			if ctx.Err() != nil {
				return
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if alive {
				b.failures = 0
				return
			}
			b.failures++
			if b.failures < r.keepAliveFailures {
				return
			}
			bs := r.bindings[b.Agent]
			i := slices.Index(bs, b)
			if i < 0 {
				return // refreshed or removed meanwhile
			}
			r.log.Info("sip binding dropped: no answer to OPTIONS", "agent", b.Agent, "contact", b.key, "src", b.Source)
			r.setLocked(b.Agent, slices.Delete(slices.Clone(bs), i, i+1))
		}()
	}
}

// options sends one OPTIONS to b and reports whether anything answered.
func (r *Registrar) options(ctx context.Context, c *sipgo.Client, b *binding) bool {
	ctx, cancel := context.WithTimeout(ctx, r.keepAliveTimeout)
	defer cancel()
	req := gosip.NewRequest(gosip.OPTIONS, *b.Contact.Clone())
	req.SetDestination(b.Source)
	req.SetTransport(b.Transport)
	if l := r.udpLocal.Load(); l != nil && strings.EqualFold(b.Transport, "UDP") {
		req.Laddr = gosip.Addr{IP: l.IP, Port: l.Port}
	}
	res, err := c.Do(ctx, req)
	return err == nil && res != nil
}
