package sla

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
)

// Defaults of the definitions that have no config key yet. Each is a value
// of Definitions, so a config key can take it over without touching the
// formulas.
const (
	// DefaultFirstResponseRateTarget is the share of chats that must get a
	// human first response within chat.first_response. Art. 4 says every
	// chat (咨询员应在系统提示发起对话30秒内作出回应), so the target is 100 %.
	DefaultFirstResponseRateTarget = 1.0
	// DefaultSatisfiedFrom is the lowest survey score (1–5) that counts as
	// satisfied: 4 and 5 are satisfied, 1–3 are not.
	DefaultSatisfiedFrom = 4
	// MaxScore is the highest survey score; scores outside 1..MaxScore are
	// counted as invalid and left out of the satisfaction rate.
	MaxScore = 5
)

// Definitions are the knobs of the metric formulas, from config. Every
// figure in docs/METRICS.md names the field (and config key) it uses.
type Definitions struct {
	// ShortAbandon (metrics.short_abandon, default 5 s): a taxpayer who
	// leaves an unanswered interaction after waiting strictly less than this
	// is a short abandon.
	ShortAbandon time.Duration
	// ExcludeShortAbandons (metrics.exclude_short_abandons, default true)
	// removes short abandons from both numerator and denominator of P2 and
	// P3.
	ExcludeShortAbandons bool
	// AnswerTarget (phone.answer_target, default 60 s) is the P3 wait limit.
	AnswerTarget time.Duration
	// ServiceLevel (metrics.service_level, default = answer_target) is the
	// threshold of the Asterisk-style SL and SL2 figures.
	ServiceLevel time.Duration
	// FirstResponse (chat.first_response, default 30 s) is the C2 limit.
	FirstResponse time.Duration
	// AnswerRateTarget (phone.answer_rate_target, 0.90) is P2's target.
	AnswerRateTarget float64
	// AnswerWithinTarget (phone.answer_within_target, 0.80) is P3's target.
	AnswerWithinTarget float64
	// FirstResponseRateTarget (no key yet; 1.0) is C2's target.
	FirstResponseRateTarget float64
	// SatisfiedFrom (no key yet; 4) is the lowest satisfied score.
	SatisfiedFrom int
	// AcknowledgeWithin and AnswerWithin (messages.acknowledge_within,
	// messages.answer_within: 1 and 2 working days) give a message its M3
	// deadlines when its record carries none.
	AcknowledgeWithin int
	AnswerWithin      int
}

// DefinitionsFromConfig reads the definitions of a loaded (defaulted)
// config.
func DefinitionsFromConfig(c *config.Config) Definitions {
	return Definitions{
		ShortAbandon:            c.Metrics.ShortAbandon,
		ExcludeShortAbandons:    config.Bool(c.Metrics.ExcludeShortAbandons),
		AnswerTarget:            c.Phone.AnswerTarget,
		ServiceLevel:            c.Metrics.ServiceLevel,
		FirstResponse:           c.Chat.FirstResponse,
		AnswerRateTarget:        c.Phone.AnswerRateTarget,
		AnswerWithinTarget:      c.Phone.AnswerWithinTarget,
		FirstResponseRateTarget: DefaultFirstResponseRateTarget,
		SatisfiedFrom:           DefaultSatisfiedFrom,
		AcknowledgeWithin:       c.Messages.AcknowledgeWithin,
		AnswerWithin:            c.Messages.AnswerWithin,
	}
}

// Ratio is a rate with its parts. When Den is 0 the rate has no data:
// Value is 0 and Defined is false, never NaN, so a month without chats
// does not read as "0 % answered".
type Ratio struct {
	Num     int     `json:"num"`
	Den     int     `json:"den"`
	Value   float64 `json:"value"`
	Defined bool    `json:"defined"`
}

// NewRatio returns num/den, or an undefined zero ratio when den is 0.
func NewRatio(num, den int) Ratio {
	if den == 0 {
		return Ratio{Num: num}
	}
	return Ratio{Num: num, Den: den, Value: float64(num) / float64(den), Defined: true}
}

// Percent formats the ratio as "93.33%", or "—" when it has no data.
func (r Ratio) Percent() string {
	if !r.Defined {
		return "—"
	}
	return strconv.FormatFloat(r.Value*100, 'f', 2, 64) + "%"
}

// Verdict compares the ratio with a target fraction.
func (r Ratio) Verdict(target float64) Verdict {
	switch {
	case !r.Defined:
		return VerdictNoData
	case r.Value >= target:
		return VerdictMet
	}
	return VerdictMissed
}

// Verdict is how a figure compares with its target.
type Verdict uint8

// Verdicts.
const (
	VerdictNoData Verdict = iota // the denominator is zero
	VerdictMet
	VerdictMissed
)

var verdictNames = [...]string{"no_data", "met", "missed"}

// String returns no_data, met or missed.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Chinese is the verdict as the report's Chinese label.
func (v Verdict) Chinese() string {
	switch v {
	case VerdictMet:
		return "达标"
	case VerdictMissed:
		return "未达标"
	}
	return "无数据"
}

// MarshalText implements encoding.TextMarshaler.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *Verdict) UnmarshalText(b []byte) error {
	for i, n := range verdictNames {
		if n == string(b) {
			*v = Verdict(i)
			return nil
		}
	}
	return fmt.Errorf("sla: unknown verdict %q", b)
}

// Duration is a time.Duration that JSON-encodes as a number of seconds,
// so report readers need no unit conversion.
type Duration time.Duration

// MarshalJSON writes the duration in seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(d).Seconds(), 'f', -1, 64), nil
}

// UnmarshalJSON reads a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("sla: duration in seconds: %w", err)
	}
	*d = Duration(s * float64(time.Second))
	return nil
}

// Satisfaction summarises survey scores (S6, R2). A record with Score 0
// was not rated.
type Satisfaction struct {
	// Rated counts records with a valid score 1..MaxScore.
	Rated int `json:"rated"`
	// Satisfied counts scores ≥ Definitions.SatisfiedFrom.
	Satisfied int `json:"satisfied"`
	// Rate is Satisfied / Rated.
	Rate Ratio `json:"rate"`
	// ByScore counts each score: ByScore[0] is score 1.
	ByScore [MaxScore]int `json:"by_score"`
	// Invalid counts scores outside 1..MaxScore (left out of Rate).
	Invalid int `json:"invalid"`
}

func (s *Satisfaction) add(score int, def Definitions) {
	switch {
	case score == 0:
		return
	case score < 1 || score > MaxScore:
		s.Invalid++
		return
	}
	s.Rated++
	s.ByScore[score-1]++
	if score >= def.SatisfiedFrom {
		s.Satisfied++
	}
	s.Rate = NewRatio(s.Satisfied, s.Rated)
}

// ChannelFigures are the figures of one channel (phone or chat). The
// population is every record of the channel with an entry time that is
// not a ticket made from another interaction (Parent empty).
type ChannelFigures struct {
	// Offered: interactions that arrived (entered the ACD), in or out of
	// service hours.
	Offered int `json:"offered"`
	// InProgress: still queued or ringing, so without an outcome; left out
	// of every rate.
	InProgress int `json:"in_progress"`
	// Answered: answered by an agent (an Answered event).
	Answered int `json:"answered"`
	// Abandoned: the taxpayer left unanswered (ReasonAbandoned), split
	// into Short (waited < ShortAbandon) and Long.
	Abandoned      int `json:"abandoned"`
	ShortAbandoned int `json:"short_abandoned"`
	LongAbandoned  int `json:"long_abandoned"`
	// AfterHours: arrived outside service hours (ReasonAfterHours); they
	// never asked for an agent.
	AfterHours int `json:"after_hours"`
	// Unanswered counts every unanswered, ended interaction by its
	// reason: a caller who hung up (abandoned) is kept apart from a timeout,
	// an overflow, a voicemail, a callback, after hours, and so on.
	Unanswered map[interaction.Reason]int `json:"unanswered"`
	// AskedForAgent is the P2/P3 denominator: ended or answered
	// interactions that arrived in service hours, less short abandons when
	// ExcludeShortAbandons is on.
	AskedForAgent int `json:"asked_for_agent"`
	// AnsweredWithinTarget: answered ≤ AnswerTarget after entering the
	// queue (P3 numerator).
	AnsweredWithinTarget int `json:"answered_within_target"`
	// AnswerRate is P2 (人工接通率): Answered / AskedForAgent.
	AnswerRate Ratio `json:"answer_rate"`
	// AnsweredWithin is P3 (60秒人工接通率): AnsweredWithinTarget /
	// AskedForAgent.
	AnsweredWithin Ratio `json:"answered_within"`
	// ServiceLevel is Asterisk's ServiceLevelPerf: answered ≤ ServiceLevel
	// / answered.
	ServiceLevel Ratio `json:"service_level"`
	// ServiceLevel2 is Asterisk's ServiceLevelPerf2: (answered ≤
	// ServiceLevel + abandoned ≤ ServiceLevel) / (answered + abandoned).
	ServiceLevel2 Ratio `json:"service_level2"`
	// FirstResponse is C2 (chat only; undefined for phone): answered chats
	// whose first agent message came ≤ FirstResponse after entry /
	// answered chats.
	FirstResponse Ratio `json:"first_response"`
	// ASA is the average speed of answer: mean(AnsweredAt − OfferedAt)
	// over answered interactions.
	ASA Duration `json:"asa_seconds"`
	// AHT is the average handle (talk) time: mean(EndedAt − AnsweredAt)
	// over answered interactions that have ended. Wrap-up is not in it.
	AHT Duration `json:"aht_seconds"`
	// Satisfaction of this channel's rated interactions.
	Satisfaction Satisfaction `json:"satisfaction"`
	// Peak is the largest number of this channel's interactions live at
	// one instant, first reached at PeakAt.
	Peak   int       `json:"peak"`
	PeakAt time.Time `json:"peak_at"`
}

// AgentFigures is one agent's share (S6: staff evaluation).
type AgentFigures struct {
	Agent string `json:"agent"`
	// Calls and Chats the agent answered (the record's last agent).
	Calls int `json:"calls"`
	Chats int `json:"chats"`
	// Tickets the agent answered (messages and follow-ups, M3).
	Tickets int `json:"tickets"`
	// Resolved: answered calls and chats, and answered tickets, with
	// disposition resolved.
	Resolved int `json:"resolved"`
	// AHT over the agent's ended calls and chats.
	AHT Duration `json:"aht_seconds"`
	// Satisfaction of the interactions the agent handled.
	Satisfaction Satisfaction `json:"satisfaction"`
}

// Figures are the service-level figures over a set of records.
type Figures struct {
	Phone ChannelFigures `json:"phone"`
	Chat  ChannelFigures `json:"chat"`
	// Satisfaction over every rated record of any channel.
	Satisfaction Satisfaction `json:"satisfaction"`
	// Agents, sorted by agent id.
	Agents []AgentFigures `json:"agents"`
	// PeakConcurrency is the largest number of calls and chats live at one
	// instant (S4), first reached at PeakAt.
	PeakConcurrency int       `json:"peak_concurrency"`
	PeakAt          time.Time `json:"peak_at"`
}

// contact reports whether r is a call or chat of channel ch in its own
// right (not a ticket made from another interaction).
func contact(r *interaction.Record, ch interaction.Channel) bool {
	return r.Channel == ch && r.Parent == "" && !r.OfferedAt.IsZero()
}

// inProgress reports whether r has no outcome yet.
func inProgress(r *interaction.Record) bool {
	return r.AnsweredAt.IsZero() && (r.State == interaction.StateQueued || r.State == interaction.StateRinging)
}

// shortAbandon reports whether r is an abandon shorter than the threshold.
func shortAbandon(r *interaction.Record, def Definitions) bool {
	return r.AnsweredAt.IsZero() && r.Reason == interaction.ReasonAbandoned && r.Wait() < def.ShortAbandon
}

// Compute derives the figures from records; see docs/METRICS.md for each
// definition. It is a pure function of its arguments.
func Compute(recs []interaction.Record, def Definitions) Figures {
	f := Figures{
		Phone: channelFigures(recs, interaction.Phone, def),
		Chat:  channelFigures(recs, interaction.Chat, def),
	}
	f.Chat.FirstResponse = firstResponse(recs, def)
	for i := range recs {
		f.Satisfaction.add(recs[i].Score, def)
	}
	f.Agents = agentFigures(recs, def)
	f.PeakConcurrency, f.PeakAt = peak(recs, func(r *interaction.Record) bool {
		return contact(r, interaction.Phone) || contact(r, interaction.Chat)
	})
	return f
}

func channelFigures(recs []interaction.Record, ch interaction.Channel, def Definitions) ChannelFigures {
	f := ChannelFigures{Unanswered: map[interaction.Reason]int{}}
	var wait, talk time.Duration
	var talked, slAnswered, slAbandoned int
	for i := range recs {
		r := &recs[i]
		if !contact(r, ch) {
			continue
		}
		f.Offered++
		f.Satisfaction.add(r.Score, def)
		if inProgress(r) {
			f.InProgress++
			continue
		}
		answered := !r.AnsweredAt.IsZero()
		if !answered {
			f.Unanswered[r.Reason]++
		}
		if !answered && r.Reason == interaction.ReasonAbandoned {
			f.Abandoned++
			if r.Wait() <= def.ServiceLevel {
				slAbandoned++
			}
			if shortAbandon(r, def) {
				f.ShortAbandoned++
			} else {
				f.LongAbandoned++
			}
		}
		if !answered && r.Reason == interaction.ReasonAfterHours {
			f.AfterHours++
			continue
		}
		if !(def.ExcludeShortAbandons && shortAbandon(r, def)) {
			f.AskedForAgent++
		}
		if !answered {
			continue
		}
		f.Answered++
		w := r.AnsweredAt.Sub(r.OfferedAt)
		wait += w
		if w <= def.AnswerTarget {
			f.AnsweredWithinTarget++
		}
		if w <= def.ServiceLevel {
			slAnswered++
		}
		if !r.EndedAt.IsZero() {
			talk += r.EndedAt.Sub(r.AnsweredAt)
			talked++
		}
	}
	f.AnswerRate = NewRatio(f.Answered, f.AskedForAgent)
	f.AnsweredWithin = NewRatio(f.AnsweredWithinTarget, f.AskedForAgent)
	f.ServiceLevel = NewRatio(slAnswered, f.Answered)
	f.ServiceLevel2 = NewRatio(slAnswered+slAbandoned, f.Answered+f.Abandoned)
	f.ASA = mean(wait, f.Answered)
	f.AHT = mean(talk, talked)
	f.Peak, f.PeakAt = peak(recs, func(r *interaction.Record) bool { return contact(r, ch) })
	return f
}

// firstResponse is C2 over the answered chats.
func firstResponse(recs []interaction.Record, def Definitions) Ratio {
	var num, den int
	for i := range recs {
		r := &recs[i]
		if !contact(r, interaction.Chat) || r.AnsweredAt.IsZero() {
			continue
		}
		den++
		if !r.FirstResponseAt.IsZero() && r.FirstResponseAt.Sub(r.OfferedAt) <= def.FirstResponse {
			num++
		}
	}
	return NewRatio(num, den)
}

func agentFigures(recs []interaction.Record, def Definitions) []AgentFigures {
	by := map[string]*AgentFigures{}
	talk := map[string]time.Duration{}
	talked := map[string]int{}
	get := func(id string) *AgentFigures {
		a := by[id]
		if a == nil {
			a = &AgentFigures{Agent: id}
			by[id] = a
		}
		return a
	}
	for i := range recs {
		r := &recs[i]
		if r.Agent == "" {
			continue
		}
		handled := false
		switch {
		case (contact(r, interaction.Phone) || contact(r, interaction.Chat)) && !r.AnsweredAt.IsZero():
			a := get(r.Agent)
			if r.Channel == interaction.Phone {
				a.Calls++
			} else {
				a.Chats++
			}
			if !r.EndedAt.IsZero() {
				talk[r.Agent] += r.EndedAt.Sub(r.AnsweredAt)
				talked[r.Agent]++
			}
			handled = true
		case !r.TicketAnswered.IsZero():
			get(r.Agent).Tickets++
			handled = true
		}
		if !handled {
			continue
		}
		a := by[r.Agent]
		if r.Disposition == interaction.Resolved {
			a.Resolved++
		}
		a.Satisfaction.add(r.Score, def)
	}
	out := make([]AgentFigures, 0, len(by))
	for id, a := range by {
		a.AHT = mean(talk[id], talked[id])
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b AgentFigures) int { return cmp.Compare(a.Agent, b.Agent) })
	return out
}

// peak returns the largest number of the selected records live at one
// instant and when it was first reached. A record is live from OfferedAt
// until EndedAt (exclusive); one still live has no end.
func peak(recs []interaction.Record, sel func(*interaction.Record) bool) (int, time.Time) {
	type edge struct {
		at    time.Time
		delta int
	}
	edges := make([]edge, 0, 2*len(recs))
	for i := range recs {
		r := &recs[i]
		if !sel(r) {
			continue
		}
		switch {
		case !r.EndedAt.IsZero():
			if !r.EndedAt.After(r.OfferedAt) {
				continue // zero length: never overlaps anything
			}
			edges = append(edges, edge{r.OfferedAt, +1}, edge{r.EndedAt, -1})
		case r.Live():
			edges = append(edges, edge{r.OfferedAt, +1})
		}
	}
	// Ends sort before starts at the same instant: [from, to) intervals.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.delta, b.delta)
	})
	var n, best int
	var at time.Time
	for _, e := range edges {
		n += e.delta
		if n > best {
			best, at = n, e.at
		}
	}
	return best, at
}

func mean(total time.Duration, n int) Duration {
	if n == 0 {
		return 0
	}
	return Duration(total / time.Duration(n))
}
