package sip

import (
	"errors"
	"strconv"
	"strings"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/sip/media"
)

// SIP session timers (RFC 4028) on the trunk leg: a session is refreshed
// every half of its interval by the refresher (the trunk, "uac", or the
// gateway, "uas"), and the other side ends it with BYE when a refresh is
// missed. The RTP watchdog catches a silent peer; this catches a peer
// whose media flows from a box that no longer knows the call.

// minSE is our Min-SE, the smallest interval we accept (RFC 4028 §4).
const minSE = config.MinSessionExpires

// Refreshers (RFC 4028 §4): who refreshes the session.
const (
	refresherUAC = "uac" // the trunk, which sent the INVITE
	refresherUAS = "uas" // the gateway
)

// sessionTimer is the negotiated session timer of a call's trunk leg; a
// zero interval means none.
type sessionTimer struct {
	interval  time.Duration
	refresher string
	// supported: the trunk said Supported: timer.
	supported bool
	// update: the trunk allows UPDATE, the cheaper refresh (RFC 3311).
	update bool
}

// headerValues returns the comma-separated tokens of every header named
// long or compact, lower-cased.
func headerValues(req *gosip.Request, long, compact string) []string {
	var out []string
	hs := req.GetHeaders(long)
	if compact != "" {
		hs = append(hs, req.GetHeaders(compact)...)
	}
	for _, h := range hs {
		for _, v := range strings.Split(h.Value(), ",") {
			if v = strings.ToLower(strings.TrimSpace(v)); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

func hasToken(req *gosip.Request, long, compact, token string) bool {
	for _, v := range headerValues(req, long, compact) {
		if v == token {
			return true
		}
	}
	return false
}

// parseSessionExpires reads "Session-Expires: 1800;refresher=uac" (or
// the compact "x:"); ok is false if there is none or it is malformed.
func parseSessionExpires(m interface{ GetHeader(string) gosip.Header }) (d time.Duration, refresher string, ok bool) {
	h := m.GetHeader("Session-Expires")
	if h == nil {
		h = m.GetHeader("x")
	}
	if h == nil {
		return 0, "", false
	}
	parts := strings.Split(h.Value(), ";")
	n, err := strconv.ParseUint(strings.TrimSpace(parts[0]), 10, 32)
	if err != nil || n == 0 {
		return 0, "", false
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "refresher") {
			v = strings.ToLower(strings.TrimSpace(v))
			if v == refresherUAC || v == refresherUAS {
				refresher = v
			}
		}
	}
	return time.Duration(n) * time.Second, refresher, true
}

// parseMinSE reads "Min-SE: 90"; 0 if absent or malformed.
func parseMinSE(m interface{ GetHeader(string) gosip.Header }) time.Duration {
	h := m.GetHeader("Min-SE")
	if h == nil {
		return 0
	}
	v, _, _ := strings.Cut(h.Value(), ";")
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0
	}
	return time.Duration(n) * time.Second
}

// errIntervalTooSmall: the trunk asked for a Session-Expires under our
// Min-SE; the INVITE is refused with 422 (RFC 4028 §8.1).
var errIntervalTooSmall = errors.New("sip: session interval too small")

// negotiateSession applies RFC 4028 §9 to an INVITE (or a refresh) from
// the trunk with ours as our preferred interval. A Session-Expires under
// our Min-SE is an error (answer 422 with Min-SE). The trunk's interval
// may be lowered to ours but not below either side's Min-SE; the trunk's
// choice of refresher is kept, else it refreshes if it supports timers,
// else we do. A request without Session-Expires gets ours, refreshed by
// us: that works with any peer, since a refresh is an ordinary UPDATE or
// re-INVITE.
func negotiateSession(req *gosip.Request, ours time.Duration) (sessionTimer, error) {
	s := sessionTimer{
		supported: hasToken(req, "Supported", "k", "timer"),
		update:    hasToken(req, "Allow", "", "update"),
	}
	floor := max(minSE, parseMinSE(req))
	se, refresher, ok := parseSessionExpires(req)
	if !ok {
		s.interval, s.refresher = max(ours, floor), refresherUAS
		return s, nil
	}
	if se < minSE {
		return s, errIntervalTooSmall
	}
	s.interval = max(min(se, ours), floor)
	s.refresher = refresher
	if s.refresher == "" || (s.refresher == refresherUAC && !s.supported) {
		s.refresher = refresherUAS
		if s.supported {
			s.refresher = refresherUAC
		}
	}
	return s, nil
}

// headers are the session timer headers of our 2xx to the trunk's INVITE
// or refresh (RFC 4028 §9): Session-Expires with the refresher, and
// Require: timer when the trunk supports timers.
func (s sessionTimer) headers() []gosip.Header {
	if s.interval == 0 {
		return nil
	}
	hs := []gosip.Header{
		gosip.NewHeader("Session-Expires", strconv.Itoa(int(s.interval/time.Second))+";refresher="+s.refresher),
		gosip.NewHeader("Supported", "timer"),
	}
	if s.supported {
		hs = append(hs, gosip.NewHeader("Require", "timer"))
	}
	return hs
}

// next is when the session timer fires after a refresh: half the
// interval when we refresh (§10), else the interval less the lesser of
// 32 s and a third of it, when a missing refresh ends the session.
func (s sessionTimer) next() time.Duration {
	if s.refresher == refresherUAS {
		return s.interval / 2
	}
	return s.interval - min(32*time.Second, s.interval/3)
}

// armSession (re)starts the session timer after the session was set up
// or refreshed.
func (c *call) armSession() {
	if c.seTimer != nil {
		c.seTimer.Stop()
		c.seTimer, c.seC = nil, nil
	}
	if c.st.interval == 0 {
		return
	}
	c.seTimer = time.NewTimer(c.st.next())
	c.seC = c.seTimer.C
}

func (c *call) stopSession() {
	if c.seTimer != nil {
		c.seTimer.Stop()
		c.seTimer, c.seC = nil, nil
	}
}

// onSessionTimer refreshes the session when we are the refresher, and
// ends the call when the trunk, the refresher, missed its refresh.
func (c *call) onSessionTimer() {
	if c.st.refresher != refresherUAS {
		c.peerGone(CauseSessionExpiry, "session_expires", c.st.interval.String())
		return
	}
	res, err := c.refreshSession()
	switch {
	case err == nil && res.IsSuccess():
		if se, refresher, ok := parseSessionExpires(res); ok && se >= minSE {
			c.st.interval = se
			if refresher != "" {
				c.st.refresher = refresher
			}
		}
		c.log.Info("sip session refreshed", "interval", c.st.interval.String(), "refresher", c.st.refresher, "update", c.st.update)
		c.armSession()
	case err == nil && c.st.update && (res.StatusCode == gosip.StatusMethodNotAllowed || res.StatusCode == 501):
		// UPDATE not taken after all: refresh with re-INVITE from now on.
		c.st.update = false
		c.onSessionTimer()
	case err != nil || res.StatusCode == gosip.StatusRequestTimeout || res.StatusCode == gosip.StatusCallTransactionDoesNotExists:
		// RFC 4028 §10: a refresh that times out or gets 408 or 481
		// ends the session.
		code := 0
		if res != nil {
			code = res.StatusCode
		}
		c.peerGone(CauseRefreshFailed, "status", code, "err", err)
	default:
		// Refused otherwise (491 glare, 500...): the session lives on;
		// try again shortly.
		c.log.Info("sip session refresh refused; retrying", "status", res.StatusCode)
		c.seTimer = time.NewTimer(min(10*time.Second, c.st.interval/4))
		c.seC = c.seTimer.C
	}
}

// refreshSession sends a session refresh to the trunk: UPDATE without a
// body if it allows UPDATE (RFC 4028 §7.4 prefers it), else a re-INVITE
// offering the session description it already has (RFC 3264 §8: same
// version, nothing changes), acknowledged on 2xx.
func (c *call) refreshSession() (*gosip.Response, error) {
	ctx, cancel := c.rctx()
	defer cancel()
	target := c.invite.Contact()
	if target == nil {
		return nil, errors.New("sip: caller has no Contact")
	}
	se := gosip.NewHeader("Session-Expires", strconv.Itoa(int(c.st.interval/time.Second))+";refresher="+refresherUAS)
	if c.st.update {
		req := gosip.NewRequest(gosip.UPDATE, target.Address)
		req.AppendHeader(se)
		req.AppendHeader(gosip.NewHeader("Supported", "timer"))
		return c.caller.Do(ctx, req)
	}
	req := gosip.NewRequest(gosip.INVITE, target.Address)
	req.AppendHeader(se)
	req.AppendHeader(gosip.NewHeader("Supported", "timer"))
	req.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(c.callerSDP)
	tx, err := c.caller.TransactionRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			if res.IsSuccess() {
				ack := gosip.NewRequest(gosip.ACK, target.Address)
				if err := c.caller.WriteRequest(ack); err != nil {
					return res, err
				}
				c.applyAnswer(res.Body())
			}
			return res, nil
		case <-tx.Done():
			return nil, tx.Err()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// applyAnswer takes the trunk's answer to our refresh offer: normally
// the same as before, but it may move the media.
func (c *call) applyAnswer(body []byte) {
	ans, err := media.ParseSDP(body)
	if err != nil {
		return
	}
	codec, err := media.Negotiate(ans, c.set.cfg.SIP.Codecs)
	if err != nil {
		return
	}
	c.callerLeg.Configure(ans.Addr, codec, ans.Dir)
}

// refreshed takes a refresh (re-INVITE or UPDATE) from the trunk: the
// session timer is negotiated again from its headers (keeping what we had
// if it sent none) and restarted; the headers for our 2xx are returned.
func (c *call) refreshed(req *gosip.Request) []gosip.Header {
	if _, _, ok := parseSessionExpires(req); ok {
		if s, err := negotiateSession(req, c.set.cfg.SIP.SessionExpires); err == nil {
			s.update = c.st.update
			c.st = s
		}
	}
	c.log.Info("sip session refreshed by the trunk", "interval", c.st.interval.String(), "refresher", c.st.refresher)
	c.armSession()
	return c.st.headers()
}

// sessionTooSmall answers an INVITE whose Session-Expires is under our
// Min-SE (RFC 4028 §8.1).
func sessionTooSmall(tx gosip.ServerTransaction, req *gosip.Request) {
	respond(tx, req, 422, "Session Interval Too Small",
		gosip.NewHeader("Min-SE", strconv.Itoa(int(minSE/time.Second))))
}
