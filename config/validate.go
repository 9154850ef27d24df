package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

type fieldProblem struct {
	path string // dotted key path, e.g. "queues[0].overflow"
	msg  string
}

// Validate checks the config for consistency. It assumes SetDefaults ran.
func (c *Config) Validate() error {
	probs := c.validate()
	if len(probs) == 0 {
		return nil
	}
	e := &Error{}
	for _, p := range probs {
		e.Problems = append(e.Problems, Problem{File: c.Path, Msg: p.path + ": " + p.msg})
	}
	return e
}

var (
	hhmm    = regexp.MustCompile(`^([01][0-9]|2[0-4]):[0-5][0-9]$`)
	hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)
	dayName = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
		"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}
)

// DayOfWeek parses a day name of Window.Days.
func DayOfWeek(s string) (time.Weekday, bool) {
	d, ok := dayName[s]
	return d, ok
}

func (c *Config) validate() []fieldProblem {
	var ps []fieldProblem
	bad := func(path, format string, args ...any) {
		ps = append(ps, fieldProblem{path, fmt.Sprintf(format, args...)})
	}
	positive := func(path string, d time.Duration) {
		if d <= 0 {
			bad(path, "must be a positive duration")
		}
	}

	if _, err := time.LoadLocation(c.Server.Timezone); err != nil {
		bad("server.timezone", "unknown time zone %q", c.Server.Timezone)
	}
	for _, a := range []struct{ path, v string }{{"server.http", c.Server.HTTP}, {"server.sip", c.Server.SIP}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			bad(a.path, "%q is not host:port", a.v)
		}
	}

	if d := c.Server.CommitDelay; d != nil && (*d < 0 || *d > time.Second) {
		bad("server.commit_delay", "must be between 0s and 1s")
	}

	tokens := map[string]bool{}
	for i, t := range c.Auth.Tokens {
		p := fmt.Sprintf("auth.tokens[%d]", i)
		if t.Name == "" {
			bad(p+".name", "is required")
		}
		switch t.Role {
		case RoleAgent, RoleSupervisor, RoleAdmin, RoleAuditor:
		default:
			bad(p+".role", "must be agent, supervisor, admin or auditor, not %q", t.Role)
		}
		if !hexHash.MatchString(t.SHA256) {
			bad(p+".sha256", "must be 64 lower-case hex digits (sha256sum of the token)")
		} else if tokens[t.SHA256] {
			bad(p+".sha256", "the same token is listed twice")
		}
		tokens[t.SHA256] = true
		if t.Role == RoleAgent && t.Agent == "" {
			bad(p+".agent", "an agent token must name its agent")
		}
	}

	for _, d := range append(append([]string(nil), c.Calendar.Holidays...), c.Calendar.Workdays...) {
		if _, err := parseDate(d); err != nil {
			bad("calendar", "%v", err)
		}
	}

	for name, h := range c.Hours {
		p := "hours." + name
		if h.Holidays != "closed" && h.Holidays != "ignore" {
			bad(p+".holidays", "must be closed or ignore")
		}
		if h.Always && len(h.Weekly) > 0 {
			bad(p, "always and weekly cannot both be set")
		}
		if !h.Always && len(h.Weekly) == 0 {
			bad(p, "needs weekly windows or always: true")
		}
		for i, w := range h.Weekly {
			wp := fmt.Sprintf("%s.weekly[%d]", p, i)
			if len(w.Days) == 0 {
				bad(wp+".days", "is required")
			}
			for _, d := range w.Days {
				if _, ok := dayName[d]; !ok {
					bad(wp+".days", "unknown day %q (use mon … sun)", d)
				}
			}
			if !hhmm.MatchString(w.From) || !hhmm.MatchString(w.To) {
				bad(wp, "from and to must be HH:MM")
			} else if w.From >= w.To {
				bad(wp+".to", "must be after from")
			}
		}
	}

	queues := map[string]int{}
	for i, q := range c.Queues {
		p := fmt.Sprintf("queues[%d]", i)
		if q.Name == "" {
			bad(p+".name", "is required")
		} else if _, dup := queues[q.Name]; dup {
			bad(p+".name", "queue %q is defined twice", q.Name)
		}
		if q.Name == "voicemail" {
			bad(p+".name", "voicemail is reserved as an overflow target")
		}
		queues[q.Name] = i
	}
	for i, q := range c.Queues {
		p := fmt.Sprintf("queues[%d]", i)
		for _, ch := range q.Channels {
			if ch != "phone" && ch != "chat" {
				bad(p+".channels", "unknown channel %q (phone, chat)", ch)
			}
		}
		switch q.Strategy {
		case "longest_idle", "round_robin", "fewest_handled", "skill_level":
		default:
			bad(p+".strategy", "unknown strategy %q (longest_idle, round_robin, fewest_handled, skill_level)", q.Strategy)
		}
		if _, ok := c.Hours[q.Hours]; !ok {
			bad(p+".hours", "no hours schedule named %q", q.Hours)
		}
		if _, ok := c.Hours[q.ChatHours]; !ok {
			bad(p+".chat_hours", "no hours schedule named %q", q.ChatHours)
		}
		if q.MaxLength < 0 {
			bad(p+".max_length", "cannot be negative")
		}
		if q.MaxWait < 0 || q.WrapUp < 0 {
			bad(p, "durations cannot be negative")
		}
		if q.Overflow != "" && q.Overflow != "voicemail" {
			if _, ok := queues[q.Overflow]; !ok {
				bad(p+".overflow", "no queue named %q (a queue, voicemail, or empty)", q.Overflow)
			} else if q.Overflow == q.Name {
				bad(p+".overflow", "a queue cannot overflow into itself")
			}
		}
		if q.Overflow != "" && q.MaxWait == 0 && q.MaxLength == 0 {
			bad(p+".overflow", "set max_wait or max_length, or the overflow never happens")
		}
		positive(p+".announce_interval", q.AnnounceInterval)
	}
	// Overflow chains must end.
	for i, q := range c.Queues {
		seen := map[string]bool{q.Name: true}
		for next := q.Overflow; next != "" && next != "voicemail"; {
			if seen[next] {
				bad(fmt.Sprintf("queues[%d].overflow", i), "overflow loops back to %q", next)
				break
			}
			seen[next] = true
			j, ok := queues[next]
			if !ok {
				break
			}
			next = c.Queues[j].Overflow
		}
	}

	agents := map[string]bool{}
	for i, a := range c.Agents {
		p := fmt.Sprintf("agents[%d]", i)
		if a.ID == "" || strings.ContainsAny(a.ID, " :@;/") {
			bad(p+".id", "must be a non-empty extension without spaces or : @ ; /")
		} else if agents[a.ID] {
			bad(p+".id", "agent %q is defined twice", a.ID)
		}
		agents[a.ID] = true
		for _, q := range a.Queues {
			if _, ok := queues[q]; !ok {
				bad(p+".queues", "no queue named %q", q)
			}
		}
		for s, lvl := range a.Skills {
			if lvl < 1 || lvl > 10 {
				bad(p+".skills."+s, "level must be 1–10")
			}
		}
		if a.MaxChats < 0 || a.MaxChats > 20 {
			bad(p+".max_chats", "must be 0–20")
		}
		switch a.Mixing {
		case "call_blocks_chat", "exclusive", "independent":
		default:
			bad(p+".mixing", "unknown rule %q (call_blocks_chat, exclusive, independent)", a.Mixing)
		}
	}
	for i, t := range c.Auth.Tokens {
		if t.Agent != "" && !agents[t.Agent] {
			bad(fmt.Sprintf("auth.tokens[%d].agent", i), "no agent %q", t.Agent)
		}
	}

	positive("phone.answer_target", c.Phone.AnswerTarget)
	positive("phone.ring_timeout", c.Phone.RingTimeout)
	positive("phone.retry", c.Phone.Retry)
	if c.Phone.AutopauseAfter < 0 {
		bad("phone.autopause_after", "cannot be negative")
	}
	for _, r := range []struct {
		path string
		v    float64
	}{{"phone.answer_rate_target", c.Phone.AnswerRateTarget}, {"phone.answer_within_target", c.Phone.AnswerWithinTarget}} {
		if r.v <= 0 || r.v > 1 {
			bad(r.path, "must be a fraction in (0, 1]")
		}
	}
	positive("chat.first_response", c.Chat.FirstResponse)
	positive("chat.agent_silence", c.Chat.AgentSilence)
	positive("chat.customer_silence_reminder", c.Chat.CustomerSilenceReminder)
	positive("chat.customer_silence_close", c.Chat.CustomerSilenceClose)
	positive("chat.offer_timeout", c.Chat.OfferTimeout)
	if c.Chat.FollowUpWithin < 1 {
		bad("chat.follow_up_within", "must be at least 1 working day")
	}
	for i, tp := range c.Chat.Topics {
		p := fmt.Sprintf("chat.topics[%d]", i)
		if tp.Name == "" {
			bad(p+".name", "is required")
		}
		if _, ok := queues[tp.Queue]; !ok {
			bad(p+".queue", "no queue named %q", tp.Queue)
		}
	}
	if l := c.Chat.Limits; l.MaxFrameBytes < 1024 || l.MaxTextChars < 1 || l.MaxImageBytes < 0 ||
		l.RatePerSecond <= 0 || l.Burst < 1 || l.SendQueue < 1 {
		bad("chat.limits", "limits must be positive (max_frame_bytes at least 1024)")
	}
	if l := c.Chat.Limits; l.PingInterval <= 0 || l.PongTimeout <= l.PingInterval {
		bad("chat.limits.pong_timeout", "must be longer than ping_interval")
	}
	for i, cr := range c.Chat.Canned {
		if strings.TrimSpace(cr.Text) == "" {
			bad(fmt.Sprintf("chat.canned[%d].text", i), "is required")
		} else if utf8.RuneCountInString(cr.Text) > c.Chat.Limits.MaxTextChars {
			bad(fmt.Sprintf("chat.canned[%d].text", i), "longer than chat.limits.max_text_chars")
		}
	}
	positive("chat.desk_session", c.Chat.DeskSession)
	if c.Messages.AcknowledgeWithin < 1 {
		bad("messages.acknowledge_within", "must be at least 1 working day")
	}
	if c.Messages.AnswerWithin < c.Messages.AcknowledgeWithin {
		bad("messages.answer_within", "cannot be sooner than acknowledge_within")
	}
	if c.Metrics.ShortAbandon < 0 {
		bad("metrics.short_abandon", "cannot be negative")
	}
	positive("metrics.service_level", c.Metrics.ServiceLevel)
	if len(c.ScopeReasons) > 0 && slices.Contains(c.ScopeReasons, "") {
		bad("scope_reasons", "cannot contain an empty reason")
	}
	if c.Retention.Years < 1 {
		bad("retention.years", "must be at least 1 (S3 asks for 3)")
	}

	for i, t := range c.SIP.Trunks {
		p := fmt.Sprintf("sip.trunks[%d]", i)
		if t.Name == "" {
			bad(p+".name", "is required")
		}
		if len(t.Sources) == 0 {
			bad(p+".sources", "at least one source address or CIDR is required")
		}
		for _, s := range t.Sources {
			if _, err := netip.ParsePrefix(s); err != nil {
				if _, err := netip.ParseAddr(s); err != nil {
					bad(p+".sources", "%q is neither an address nor a CIDR", s)
				}
			}
		}
		if len(t.Routes) == 0 {
			bad(p+".routes", "at least one route (called number: queue) is required")
		}
		for num, q := range t.Routes {
			if _, ok := queues[q]; !ok {
				bad(p+".routes", "number %q routes to unknown queue %q", num, q)
			}
		}
		if (t.Username == "") != (t.Password == "") {
			bad(p, "username and password go together")
		}
	}
	if a := c.SIP.MediaAddress; a != "" {
		if ip, err := netip.ParseAddr(a); err != nil || ip.IsUnspecified() || ip.IsMulticast() || ip.Zone() != "" {
			bad("sip.media_address", "%q is not a unicast IP address", a)
		}
	}
	if lo, hi, ok := strings.Cut(c.SIP.RTPPorts, "-"); !ok || !validPortRange(lo, hi) {
		bad("sip.rtp_ports", "must be low-high with even low, e.g. 20000-29999")
	}
	for _, codec := range c.SIP.Codecs {
		if codec != "PCMA" && codec != "PCMU" {
			bad("sip.codecs", "unsupported codec %q (PCMA, PCMU)", codec)
		}
	}
	if b := c.SIP.RTPBatch; b != nil && (*b < 0 || *b > 20*time.Millisecond) {
		bad("sip.rtp_batch", "must be between 0s and 20ms")
	}
	if c.SIP.RTPTimeout < time.Second {
		bad("sip.rtp_timeout", "must be at least 1s")
	}
	if c.SIP.SessionExpires < MinSessionExpires {
		bad("sip.session_expires", "must be at least %v (RFC 4028 Min-SE)", MinSessionExpires)
	}
	if r := c.SIP.Registrar; r.RegisterRate <= 0 || r.RegisterBurst < 1 || r.KeepAlive <= 0 {
		bad("sip.registrar", "register_rate, register_burst and keepalive must be positive")
	}
	if c.SIP.Registrar.MinExpires > c.SIP.Registrar.MaxExpires {
		bad("sip.registrar.min_expires", "cannot exceed max_expires")
	}
	return ps
}

func validPortRange(lo, hi string) bool {
	var l, h int
	if _, err := fmt.Sscan(lo, &l); err != nil {
		return false
	}
	if _, err := fmt.Sscan(hi, &h); err != nil {
		return false
	}
	return l >= 1024 && h <= 65535 && l < h && l%2 == 0
}

func parseDate(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return t, fmt.Errorf("%q is not a date YYYY-MM-DD", s)
	}
	return t, nil
}
