package sip

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Per-source protection, in the spirit of Kamailio's pike module and of
// fail2ban, but inside the process so it works with no firewall access:
// a token bucket on REGISTERs per source IP, and a ban for a source whose
// authentication failures within a window reach a limit. Configured trunk
// sources are exempt from both (the caller checks that before asking).
//
// A source IP that has live, authenticated bindings is an office behind
// NAT, not a scanner: there failures are counted and banned per (IP, user),
// so one phone with a wrong password does not cut off its neighbours (seen
// with baresip, which retries a wrong password at once, again and again).

// Defaults for the per-source REGISTER token bucket. A phone registers about
// once a minute, two requests each time (challenge and answer); an office
// of a hundred phones behind one NAT that all restart at once fits in the
// burst.
const (
	DefaultRegisterRate  rate.Limit = 20
	DefaultRegisterBurst int        = 200
)

// maxSources bounds the per-source table. Past it, sweep makes room; if it
// cannot, a new source goes unlimited rather than evicting a tracked one
// (which could free a banned attacker).
const maxSources = 1 << 16

// admission is what guard decided about one request.
type admission uint8

const (
	admitUnknown admission = iota
	admitOK
	admitBanned  // drop silently
	admitLimited // over the token bucket: drop silently
)

// guard is the per-source-IP table of token buckets, failure counts and
// bans.
type guard struct {
	mu      sync.Mutex // guards sources and the settings below
	sources map[sourceKey]*source

	limit         rate.Limit
	burst         int
	failureLimit  int
	failureWindow time.Duration
	banTime       time.Duration
}

// sourceKey names a source: an IP, or an IP and a user for the per-user
// bans of IPs with live bindings.
type sourceKey struct {
	ip   netip.Addr
	user string
}

// source is one source's state.
type source struct {
	limiter     *rate.Limiter
	failures    int
	windowStart time.Time
	bannedUntil time.Time
	lastSeen    time.Time
}

func newGuard() *guard {
	return &guard{sources: make(map[sourceKey]*source), limit: DefaultRegisterRate, burst: DefaultRegisterBurst}
}

// configure sets the failure and ban policy; existing bans keep their end.
func (g *guard) configure(failureLimit int, failureWindow, banTime time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failureLimit, g.failureWindow, g.banTime = failureLimit, failureWindow, banTime
}

// setRate changes the token bucket for sources seen from now on and for
// those already tracked.
func (g *guard) setRate(limit rate.Limit, burst int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limit, g.burst = limit, burst
	for _, s := range g.sources {
		s.limiter.SetLimit(limit)
		s.limiter.SetBurst(burst)
	}
}

// getLocked returns k's state, creating it; nil when the table is full.
func (g *guard) getLocked(k sourceKey, now time.Time) *source {
	s := g.sources[k]
	if s != nil {
		return s
	}
	if len(g.sources) >= maxSources {
		g.sweepLocked(now)
		if len(g.sources) >= maxSources {
			return nil
		}
	}
	s = &source{limiter: rate.NewLimiter(g.limit, g.burst)}
	g.sources[k] = s
	return s
}

// admit takes a token for one REGISTER from ip.
func (g *guard) admit(ip netip.Addr, now time.Time) admission {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.getLocked(sourceKey{ip: ip}, now)
	if s == nil {
		return admitOK
	}
	s.lastSeen = now
	if now.Before(s.bannedUntil) {
		return admitBanned
	}
	if !s.limiter.AllowN(now, 1) {
		return admitLimited
	}
	return admitOK
}

// banned reports whether ip (user "") or user at ip is banned at now.
func (g *guard) banned(ip netip.Addr, user string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.sources[sourceKey{ip, user}]
	return s != nil && now.Before(s.bannedUntil)
}

// fail counts one authentication failure from ip, against user there when
// user is not "". It returns the ban's end when this failure started a
// ban, or the zero time.
func (g *guard) fail(ip netip.Addr, user string, now time.Time) (until time.Time, failures int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.getLocked(sourceKey{ip, user}, now)
	if s == nil || g.failureLimit <= 0 {
		return time.Time{}, 0
	}
	s.lastSeen = now
	if now.Sub(s.windowStart) > g.failureWindow {
		s.windowStart, s.failures = now, 0
	}
	s.failures++
	if s.failures >= g.failureLimit && !now.Before(s.bannedUntil) {
		s.bannedUntil = now.Add(g.banTime)
		s.failures = 0
		return s.bannedUntil, g.failureLimit
	}
	return time.Time{}, s.failures
}

// sweep forgets sources with nothing left to remember: not banned, no
// failures in the window, and a bucket that has refilled.
func (g *guard) sweep(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweepLocked(now)
}

func (g *guard) sweepLocked(now time.Time) {
	for k, s := range g.sources {
		if now.Before(s.bannedUntil) {
			continue
		}
		if s.failures > 0 && now.Sub(s.windowStart) <= g.failureWindow {
			continue
		}
		if s.limiter.TokensAt(now) < float64(g.burst) {
			continue
		}
		delete(g.sources, k)
	}
}

func (g *guard) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sources)
}
