package api

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/sla"
	"github.com/taxline/taxline/storage"
)

// messageLookback is how far back GET /api/v1/stats/today?date= looks
// for message tickets (M3) open at the end of a past day, or today when
// the store cannot list its open tickets.
const messageLookback = 92 * 24 * time.Hour

// mountStats registers the wallboard's and the admin page's API paths:
// GET /api/v1/stats/today and GET /api/v1/config.
func (s *Server) mountStats() {
	cache := &statsCache{}
	s.mux.HandleFunc("GET /api/v1/stats/today", s.auth(func(w http.ResponseWriter, r *http.Request, p Principal) {
		s.statsToday(w, r, p, cache)
	}))
	s.mux.HandleFunc("GET /api/v1/config", s.auth(s.configSummary))
}

// Stats is the body of GET /api/v1/stats/today: the router's live state
// and the day's figures against their targets, for the wallboard.
type Stats struct {
	// Date is the calendar day (YYYY-MM-DD) in Timezone the figures cover.
	Date     string    `json:"date"`
	Timezone string    `json:"timezone"`
	At       time.Time `json:"at"`
	// Queues, Agents and Live are the router's snapshot.
	Queues []StatsQueue      `json:"queues"`
	Agents []StatsAgent      `json:"agents"`
	Live   map[string]int    `json:"live"`
	States map[string]int    `json:"agent_states"`
	Breaks map[string]int    `json:"breaks"`
	Goals  []sla.TargetCheck `json:"targets"`
	// Limits are the time limits behind the targets, in seconds:
	// answer_target (P3), first_response (C2), short_abandon.
	Limits map[string]float64 `json:"limits"`
	// Abandoned phone calls and chats of the day (short: under
	// metrics.short_abandon).
	ShortAbandoned int `json:"short_abandoned"`
	LongAbandoned  int `json:"long_abandoned"`
	// Messages are the M3 message tickets.
	Messages StatsMessages `json:"messages"`
	// Figures are sla.Compute over the day's records.
	Figures sla.Figures `json:"figures"`
}

// StatsQueue is one queue's live figures.
type StatsQueue struct {
	Name           string `json:"name"`
	Waiting        int    `json:"waiting"`
	LongestWait    int    `json:"longest_wait"` // seconds
	AvailableVoice int    `json:"available_voice"`
	AvailableText  int    `json:"available_text"`
	LoggedIn       int    `json:"logged_in"`
	PhoneOpen      bool   `json:"phone_open"`
	ChatOpen       bool   `json:"chat_open"`
}

// StatsAgent is one agent as the wallboard shows it.
type StatsAgent struct {
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	State  string    `json:"state"` // available, ringing, busy, wrap_up, break, offline
	Reason string    `json:"reason,omitempty"`
	Voice  bool      `json:"voice"`
	Text   bool      `json:"text"`
	Calls  int       `json:"calls"`
	Chats  int       `json:"chats"`
	Since  time.Time `json:"since"`
}

// StatsMessages counts message tickets (voicemail and web messages)
// against their M3 deadlines.
type StatsMessages struct {
	// Received: left on the day.
	Received int `json:"received"`
	// Open: not answered yet (for a past day: as of its end, among those
	// left in the 92 days before).
	Open int `json:"open"`
	// Overdue: open ones past either deadline (or flagged by the router).
	Overdue int `json:"overdue"`
}

// statsFresh is how long the store-derived part of the stats is reused:
// every wallboard polls, and one busy day's figures cost 0.1–0.2 s to
// compute (BenchmarkStatsToday), so N screens cost one computation per
// statsFresh instead of N per poll. The router's live part is always
// fresh.
const statsFresh = 2 * time.Second

// statsCache keeps the last store-derived stats. Its mutex also makes
// concurrent polls wait for one computation instead of each doing it.
type statsCache struct {
	mu  sync.Mutex // guards the fields below
	cfg *config.Config
	day time.Time
	at  time.Time
	st  Stats
}

// get returns the day part of the stats for day, computing it when the
// cached one is older than statsFresh or was made for another day or
// config.
func (c *statsCache) get(cfg *config.Config, cal *sla.Calendar, db Lister, day, now time.Time) (Stats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg == cfg && c.day.Equal(day) && !now.Before(c.at) && now.Sub(c.at) < statsFresh {
		return c.st, nil
	}
	st, err := dayStats(cfg, cal, db, day, now)
	if err != nil {
		return Stats{}, err
	}
	c.cfg, c.day, c.at, c.st = cfg, day, now, st
	return st, nil
}

func (s *Server) statsToday(w http.ResponseWriter, r *http.Request, p Principal, cache *statsCache) {
	if !p.can(config.RoleSupervisor, config.RoleAdmin, config.RoleAuditor) {
		writeError(w, http.StatusForbidden, "role "+string(p.Role)+" may not read the wallboard")
		return
	}
	cfg := s.config()
	cal, err := sla.CalendarFromConfig(cfg)
	if err != nil {
		s.log.Error("api stats calendar", "err", err)
		writeError(w, http.StatusInternalServerError, "calendar unavailable")
		return
	}
	loc := cal.Location()
	now := s.now().In(loc)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	if v := r.URL.Query().Get("date"); v != "" {
		d, err := time.ParseInLocation(time.DateOnly, v, loc)
		if err != nil {
			writeError(w, http.StatusBadRequest, "date must be YYYY-MM-DD")
			return
		}
		day = d
	}
	if day.After(now) {
		writeError(w, http.StatusBadRequest, "date is in the future")
		return
	}
	snap, err := s.router.Snapshot(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "router unavailable")
		return
	}
	st, err := cache.get(cfg, cal, s.store, day, now)
	if err != nil {
		s.log.Error("api stats", "date", day.Format(time.DateOnly), "err", err)
		writeError(w, http.StatusInternalServerError, "storage error")
		return
	}
	st.At = now
	st.setLive(snap)
	writeJSON(w, http.StatusOK, st)
}

// ComputeStats builds the wallboard's figures: sla.Compute over the
// records offered on day (a midnight in cal's zone) with the targets of
// cfg, the router snapshot snap, and the message tickets open as of now
// (or as of the day's end, for a past day).
func ComputeStats(cfg *config.Config, cal *sla.Calendar, db Lister, snap queue.Snapshot, day, now time.Time) (Stats, error) {
	st, err := dayStats(cfg, cal, db, day, now)
	if err != nil {
		return Stats{}, err
	}
	st.setLive(snap)
	return st, nil
}

// dayStats is the part of the stats read from the store: the day's
// figures against their targets and the messages.
func dayStats(cfg *config.Config, cal *sla.Calendar, db Lister, day, now time.Time) (Stats, error) {
	loc := cal.Location()
	end := day.AddDate(0, 0, 1)
	recs, err := db.List(storage.Filter{From: day, To: end})
	if err != nil {
		return Stats{}, err
	}
	def := sla.DefinitionsFromConfig(cfg)
	fig := sla.Compute(recs, def)
	st := Stats{
		Date: day.Format(time.DateOnly), Timezone: loc.String(), At: now,
		ShortAbandoned: fig.Phone.ShortAbandoned + fig.Chat.ShortAbandoned,
		LongAbandoned:  fig.Phone.LongAbandoned + fig.Chat.LongAbandoned,
		Figures:        fig,
	}
	st.Limits = map[string]float64{"answer_target": def.AnswerTarget.Seconds(),
		"first_response": def.FirstResponse.Seconds(), "short_abandon": def.ShortAbandon.Seconds()}
	st.Goals = []sla.TargetCheck{
		target("P2", fig.Phone.AnswerRate, def.AnswerRateTarget),
		target("P3", fig.Phone.AnsweredWithin, def.AnswerWithinTarget),
		target("C2", fig.Chat.FirstResponse, def.FirstResponseRateTarget),
	}

	asOf, live := now, !end.Before(now)
	if !live {
		asOf = end
	}
	for i := range recs {
		if recs[i].Channel == interaction.Message && !recs[i].OfferedAt.After(asOf) {
			st.Messages.Received++
		}
	}
	var msgs []interaction.Record
	if ot, ok := db.(openTicketer); ok && live {
		msgs, err = ot.OpenTickets()
	} else {
		msgs, err = db.List(storage.Filter{Channel: interaction.Message, From: day.Add(-messageLookback), To: end})
	}
	if err != nil {
		return Stats{}, err
	}
	for i := range msgs {
		if msgs[i].Channel == interaction.Message {
			st.Messages.add(&msgs[i], def, cal, asOf, live)
		}
	}
	return st, nil
}

// setLive fills the router's part of the stats (fresh maps and slices, so
// a cached day part can be shared).
func (st *Stats) setLive(snap queue.Snapshot) {
	st.Queues, st.Agents = []StatsQueue{}, []StatsAgent{}
	st.Live, st.States, st.Breaks = map[string]int{}, map[string]int{}, map[string]int{}
	for _, q := range snap.Queues {
		st.Queues = append(st.Queues, StatsQueue{Name: q.Name, Waiting: q.Waiting,
			LongestWait: int(q.LongestWait / time.Second), AvailableVoice: q.AvailableVoice,
			AvailableText: q.AvailableText, LoggedIn: q.LoggedIn, PhoneOpen: q.PhoneOpen, ChatOpen: q.ChatOpen})
	}
	for _, s := range []string{"available", "ringing", "busy", "wrap_up", "break", "offline"} {
		st.States[s] = 0
	}
	for _, a := range snap.Agents {
		state := a.State
		if state == queue.AgentStateUnknown {
			state = queue.AgentOffline
		}
		st.Agents = append(st.Agents, StatsAgent{ID: a.ID, Name: a.Name, State: state.String(), Reason: a.Reason,
			Voice: a.Voice, Text: a.Text, Calls: a.Calls, Chats: a.Chats, Since: a.Since})
		st.States[state.String()]++
		if state == queue.AgentBreak {
			reason := a.Reason
			if reason == "" {
				reason = "休息"
			}
			st.Breaks[reason]++
		}
	}
	slices.SortFunc(st.Agents, func(a, b StatsAgent) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	for _, ch := range []interaction.Channel{interaction.Phone, interaction.Chat, interaction.Message, interaction.Visit} {
		st.Live[ch.String()] = snap.Live[ch]
	}
}

// openTicketer is a store that lists its open tickets directly
// (*storage.DB does); today's open messages then come from there, however
// old, instead of from the look-back.
type openTicketer interface {
	OpenTickets() ([]interaction.Record, error)
}

func target(rule string, r sla.Ratio, t float64) sla.TargetCheck {
	return sla.TargetCheck{Rule: rule, Value: r, Target: t, Verdict: r.Verdict(t)}
}

// add counts one message record, if it was open at asOf. live says asOf
// is now, so the router's overdue flag applies.
func (m *StatsMessages) add(r *interaction.Record, def sla.Definitions, cal *sla.Calendar, asOf time.Time, live bool) {
	if r.OfferedAt.After(asOf) {
		return
	}
	if !r.TicketAnswered.IsZero() && !r.TicketAnswered.After(asOf) {
		return
	}
	m.Open++
	ackBy, answerBy := r.AckBy, r.AnswerBy
	if ackBy.IsZero() {
		ackBy = cal.WorkingDaysAfter(r.OfferedAt, def.AcknowledgeWithin)
	}
	if answerBy.IsZero() {
		answerBy = cal.WorkingDaysAfter(r.OfferedAt, def.AnswerWithin)
	}
	acked := !r.AcknowledgedAt.IsZero() && !r.AcknowledgedAt.After(asOf)
	if (live && r.Overdue) || !asOf.Before(answerBy) || (!acked && !asOf.Before(ackBy)) {
		m.Overdue++
	}
}

// ConfigSummary is the body of GET /api/v1/config: the running config
// without secrets (no passwords, token hashes, trunk credentials).
type ConfigSummary struct {
	Path         string                 `json:"path"`
	Server       ConfigServer           `json:"server"`
	Hours        map[string]ConfigHours `json:"hours"`
	Queues       []ConfigQueue          `json:"queues"`
	Agents       []ConfigAgent          `json:"agents"`
	Rules        []ConfigRule           `json:"rules"`
	Topics       []ConfigTopic          `json:"topics"`
	ScopeReasons []string               `json:"scope_reasons"`
	Canned       []ConfigCanned         `json:"canned"`
	Tokens       []ConfigToken          `json:"tokens"`
	Trunks       []ConfigTrunk          `json:"trunks"`
	Calendar     ConfigCalendar         `json:"calendar"`
}

// ConfigServer is the server section.
type ConfigServer struct {
	HTTP     string `json:"http"`
	SIP      string `json:"sip"`
	Data     string `json:"data"`
	Timezone string `json:"timezone"`
}

// ConfigHours is one service-hours schedule.
type ConfigHours struct {
	Always   bool           `json:"always"`
	Weekly   []ConfigWindow `json:"weekly"`
	Holidays string         `json:"holidays"`
}

// ConfigWindow is one weekly opening window.
type ConfigWindow struct {
	Days []string `json:"days"`
	From string   `json:"from"`
	To   string   `json:"to"`
}

// ConfigQueue is one queue.
type ConfigQueue struct {
	Name             string   `json:"name"`
	Channels         []string `json:"channels"`
	Strategy         string   `json:"strategy"`
	Skills           []string `json:"skills"`
	Hours            string   `json:"hours"`
	ChatHours        string   `json:"chat_hours"`
	MaxLength        int      `json:"max_length"`
	MaxWait          string   `json:"max_wait"`
	Overflow         string   `json:"overflow"`
	WrapUp           string   `json:"wrapup"`
	AnnounceInterval string   `json:"announce_interval"`
}

// ConfigAgent is one agent, without its password.
type ConfigAgent struct {
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	Queues   []string       `json:"queues"`
	Skills   map[string]int `json:"skills"`
	MaxChats int            `json:"max_chats"`
	Mixing   string         `json:"mixing"`
}

// ConfigRule is one timing rule or target: the RULES.md id, the config
// key, a Chinese label and the value as text.
type ConfigRule struct {
	Rule  string `json:"rule"`
	Key   string `json:"key"`
	Label string `json:"label"`
	Value string `json:"value"`
}

// ConfigTopic is one chat topic.
type ConfigTopic struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Queue string `json:"queue"`
}

// ConfigCanned is one canned reply.
type ConfigCanned struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// ConfigToken is one configured API token: its name and role, never its
// hash.
type ConfigToken struct {
	Name  string      `json:"name"`
	Role  config.Role `json:"role"`
	Agent string      `json:"agent,omitempty"`
}

// ConfigTrunk is one SIP trunk; Auth says whether it has credentials,
// which are not shown.
type ConfigTrunk struct {
	Name     string            `json:"name"`
	Sources  []string          `json:"sources"`
	Routes   map[string]string `json:"routes"`
	Transfer string            `json:"transfer"`
	Auth     bool              `json:"auth"`
}

// ConfigCalendar says which calendar files and extra days are loaded.
type ConfigCalendar struct {
	Files    []string `json:"files"`
	Holidays []string `json:"holidays"`
	Workdays []string `json:"workdays"`
}

func (s *Server) configSummary(w http.ResponseWriter, r *http.Request, p Principal) {
	if !p.can(config.RoleAdmin, config.RoleAuditor) {
		writeError(w, http.StatusForbidden, "role "+string(p.Role)+" may not read the config")
		return
	}
	writeJSON(w, http.StatusOK, SummarizeConfig(s.config()))
}

// SummarizeConfig copies the parts of cfg an admin may read. It copies
// field by field, so a secret added to config.Config later stays out
// until someone adds it here on purpose.
func SummarizeConfig(cfg *config.Config) ConfigSummary {
	c := ConfigSummary{
		Path: cfg.Path,
		Server: ConfigServer{HTTP: cfg.Server.HTTP, SIP: cfg.Server.SIP, Data: cfg.Server.Data,
			Timezone: cfg.Server.Timezone},
		Hours:  map[string]ConfigHours{},
		Queues: []ConfigQueue{}, Agents: []ConfigAgent{}, Topics: []ConfigTopic{},
		ScopeReasons: slices.Clone(cfg.ScopeReasons), Canned: []ConfigCanned{},
		Tokens: []ConfigToken{}, Trunks: []ConfigTrunk{},
		Calendar: ConfigCalendar{Files: slices.Clone(cfg.Calendar.Files),
			Holidays: slices.Clone(cfg.Calendar.Holidays), Workdays: slices.Clone(cfg.Calendar.Workdays)},
	}
	for name, h := range cfg.Hours {
		ws := []ConfigWindow{}
		for _, w := range h.Weekly {
			ws = append(ws, ConfigWindow{Days: slices.Clone(w.Days), From: w.From, To: w.To})
		}
		c.Hours[name] = ConfigHours{Always: h.Always, Weekly: ws, Holidays: h.Holidays}
	}
	for _, q := range cfg.Queues {
		c.Queues = append(c.Queues, ConfigQueue{Name: q.Name, Channels: slices.Clone(q.Channels), Strategy: q.Strategy,
			Skills: slices.Clone(q.Skills), Hours: q.Hours, ChatHours: q.ChatHours, MaxLength: q.MaxLength,
			MaxWait: dur(q.MaxWait), Overflow: q.Overflow, WrapUp: dur(q.WrapUp), AnnounceInterval: dur(q.AnnounceInterval)})
	}
	for _, a := range cfg.Agents {
		skills := map[string]int{}
		for k, v := range a.Skills {
			skills[k] = v
		}
		c.Agents = append(c.Agents, ConfigAgent{ID: a.ID, Name: a.Name, Queues: slices.Clone(a.Queues), Skills: skills,
			MaxChats: a.MaxChats, Mixing: a.Mixing})
	}
	days := func(n int) string { return strconv.Itoa(n) + " 个工作日" }
	pct := func(f float64) string { return strconv.FormatFloat(f*100, 'f', -1, 64) + "%" }
	c.Rules = []ConfigRule{
		{"C2", "chat.first_response", "在线咨询首次响应时限", dur(cfg.Chat.FirstResponse)},
		{"C2", "", "首次响应达标率目标", pct(sla.DefaultFirstResponseRateTarget)},
		{"C4", "chat.agent_silence", "坐席沉默提示", dur(cfg.Chat.AgentSilence)},
		{"C4", "chat.follow_up_within", "稍后回复（回访）期限", days(cfg.Chat.FollowUpWithin)},
		{"C5", "chat.customer_silence_reminder", "纳税人沉默提醒", dur(cfg.Chat.CustomerSilenceReminder)},
		{"C5", "chat.customer_silence_close", "提醒后自动结束", dur(cfg.Chat.CustomerSilenceClose)},
		{"", "chat.offer_timeout", "坐席接受会话时限", dur(cfg.Chat.OfferTimeout)},
		{"", "chat.desk_session", "工作台免密登录有效期", dur(cfg.Chat.DeskSession)},
		{"P2", "phone.answer_rate_target", "人工接通率目标", pct(cfg.Phone.AnswerRateTarget)},
		{"P3", "phone.answer_target", "人工接通时限", dur(cfg.Phone.AnswerTarget)},
		{"P3", "phone.answer_within_target", "60秒人工接通率目标", pct(cfg.Phone.AnswerWithinTarget)},
		{"", "phone.ring_timeout", "振铃超时", dur(cfg.Phone.RingTimeout)},
		{"P2", "metrics.short_abandon", "短时放弃阈值", dur(cfg.Metrics.ShortAbandon)},
		{"M3", "messages.acknowledge_within", "留言查阅期限", days(cfg.Messages.AcknowledgeWithin)},
		{"M3", "messages.answer_within", "留言答复期限", days(cfg.Messages.AnswerWithin)},
		{"S3", "retention.years", "记录保存年限", strconv.Itoa(cfg.Retention.Years) + " 年"},
	}
	for _, t := range cfg.Chat.Topics {
		c.Topics = append(c.Topics, ConfigTopic{Name: t.Name, Label: t.Label, Queue: t.Queue})
	}
	for _, cr := range cfg.Chat.Canned {
		c.Canned = append(c.Canned, ConfigCanned{Title: cr.Title, Text: cr.Text})
	}
	for _, t := range cfg.Auth.Tokens {
		c.Tokens = append(c.Tokens, ConfigToken{Name: t.Name, Role: t.Role, Agent: t.Agent})
	}
	for _, t := range cfg.SIP.Trunks {
		routes := map[string]string{}
		for k, v := range t.Routes {
			routes[k] = v
		}
		c.Trunks = append(c.Trunks, ConfigTrunk{Name: t.Name, Sources: slices.Clone(t.Sources), Routes: routes,
			Transfer: t.Transfer, Auth: t.Username != "" || t.Password != ""})
	}
	return c
}

// dur writes a duration briefly: "30s", "60s", "2m", "14h", "2m30s"; ""
// for 0. Under two minutes it stays in seconds, as the rules say "60 s".
func dur(d time.Duration) string {
	switch {
	case d == 0:
		return ""
	case d < 2*time.Minute && d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
