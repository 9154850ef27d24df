package sla_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/sla"
)

// t0 is Monday 2026-03-09 10:00 in Shanghai, inside service hours.
var t0 = time.Date(2026, 3, 9, 10, 0, 0, 0, shanghai)

func sec(n int) time.Duration { return time.Duration(n) * time.Second }

// answered is an interaction answered after wait and ended talk later.
func answered(ch interaction.Channel, offset, wait, talk time.Duration, agent string, score int) interaction.Record {
	off := t0.Add(offset)
	return interaction.Record{
		ID: interaction.ID("r" + off.Format("150405") + agent), Channel: ch, Queue: "etax",
		State: interaction.StateEnded, Agent: agent, OfferedAt: off,
		AnsweredAt: off.Add(wait), EndedAt: off.Add(wait + talk),
		Reason: interaction.ReasonCompleted, Score: score,
	}
}

// unanswered is an interaction that ended after wait with reason.
func unanswered(ch interaction.Channel, offset, wait time.Duration, reason interaction.Reason) interaction.Record {
	off := t0.Add(offset)
	return interaction.Record{
		Channel: ch, Queue: "etax", State: interaction.StateEnded,
		OfferedAt: off, EndedAt: off.Add(wait), Reason: reason,
	}
}

func defaults() sla.Definitions {
	return sla.Definitions{
		ShortAbandon:            5 * time.Second,
		ExcludeShortAbandons:    true,
		AnswerTarget:            60 * time.Second,
		ServiceLevel:            60 * time.Second,
		FirstResponse:           30 * time.Second,
		AnswerRateTarget:        0.90,
		AnswerWithinTarget:      0.80,
		FirstResponseRateTarget: 1,
		SatisfiedFrom:           4,
		AcknowledgeWithin:       1,
		AnswerWithin:            2,
	}
}

func TestDefinitionsFromConfig(t *testing.T) {
	cfg, _, _ := demo(t)
	if got, want := sla.DefinitionsFromConfig(cfg), defaults(); got != want {
		t.Errorf("DefinitionsFromConfig(demo) =\n%+v, want\n%+v", got, want)
	}
}

// phoneDay is the hand-computed phone example of docs/METRICS.md.
func phoneDay() []interaction.Record {
	p := interaction.Phone
	r1 := answered(p, 0, sec(10), sec(100), "1001", 5)
	r1.Disposition = interaction.Resolved
	r2 := answered(p, sec(1), sec(50), sec(200), "1002", 3)
	r3 := answered(p, sec(2), sec(70), sec(300), "1001", 4)
	queued := interaction.Record{Channel: p, State: interaction.StateQueued, OfferedAt: t0.Add(sec(9))}
	return []interaction.Record{
		r1, r2, r3,
		unanswered(p, sec(3), sec(3), interaction.ReasonAbandoned),   // short abandon
		unanswered(p, sec(4), sec(30), interaction.ReasonAbandoned),  // long, within SL
		unanswered(p, sec(5), sec(90), interaction.ReasonAbandoned),  // long, beyond SL
		unanswered(p, sec(6), sec(600), interaction.ReasonTimeout),   // max wait, nowhere to go
		unanswered(p, sec(7), 0, interaction.ReasonAfterHours),       // never asked for an agent
		unanswered(p, sec(8), sec(600), interaction.ReasonVoicemail), // overflowed to voicemail
		queued, // still waiting: no outcome yet
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func checkRatio(t *testing.T, name string, got sla.Ratio, num, den int) {
	t.Helper()
	want := sla.NewRatio(num, den)
	if got.Num != num || got.Den != den || got.Defined != (den != 0) || !near(got.Value, want.Value) {
		t.Errorf("%s = %+v, want %d/%d", name, got, num, den)
	}
}

func TestComputePhone(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		exclude               bool
		asked                 int
		p2Num, p3Num          int
		short, long, abandons int
	}{
		{"short abandons excluded", true, 7, 3, 2, 1, 2, 3},
		{"short abandons counted", false, 8, 3, 2, 1, 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def := defaults()
			def.ExcludeShortAbandons = tc.exclude
			f := sla.Compute(phoneDay(), def).Phone
			for _, c := range []struct {
				name      string
				got, want int
			}{
				{"offered", f.Offered, 10},
				{"in progress", f.InProgress, 1},
				{"answered", f.Answered, 3},
				{"abandoned", f.Abandoned, tc.abandons},
				{"short abandoned", f.ShortAbandoned, tc.short},
				{"long abandoned", f.LongAbandoned, tc.long},
				{"after hours", f.AfterHours, 1},
				{"asked for agent", f.AskedForAgent, tc.asked},
				{"answered within target", f.AnsweredWithinTarget, 2},
				{"unanswered abandoned", f.Unanswered[interaction.ReasonAbandoned], 3},
				{"unanswered timeout", f.Unanswered[interaction.ReasonTimeout], 1},
				{"unanswered after hours", f.Unanswered[interaction.ReasonAfterHours], 1},
				{"unanswered voicemail", f.Unanswered[interaction.ReasonVoicemail], 1},
				{"unanswered overflow", f.Unanswered[interaction.ReasonOverflow], 0},
				{"satisfaction rated", f.Satisfaction.Rated, 3},
				{"satisfaction satisfied", f.Satisfaction.Satisfied, 2},
			} {
				if c.got != c.want {
					t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
				}
			}
			checkRatio(t, "P2", f.AnswerRate, tc.p2Num, tc.asked)
			checkRatio(t, "P3", f.AnsweredWithin, tc.p3Num, tc.asked)
			checkRatio(t, "SL", f.ServiceLevel, 2, 3)
			checkRatio(t, "SL2", f.ServiceLevel2, 4, 6)
			checkRatio(t, "satisfaction", f.Satisfaction.Rate, 2, 3)
			if f.FirstResponse.Defined {
				t.Errorf("C2 is defined for phone: %+v", f.FirstResponse)
			}
			if want := sla.Duration(sec(130) / 3); f.ASA != want {
				t.Errorf("ASA = %v, want %v", time.Duration(f.ASA), time.Duration(want))
			}
			if want := sla.Duration(sec(200)); f.AHT != want {
				t.Errorf("AHT = %v, want %v", time.Duration(f.AHT), time.Duration(want))
			}
			if f.Satisfaction.ByScore != [5]int{0, 0, 1, 1, 1} {
				t.Errorf("by score = %v", f.Satisfaction.ByScore)
			}
		})
	}
}

// Boundaries: "within 60 s" includes 60 s; "hung up sooner than 5 s"
// excludes exactly 5 s.
func TestComputePhoneBoundaries(t *testing.T) {
	p := interaction.Phone
	for _, tc := range []struct {
		name          string
		rec           interaction.Record
		asked, within int
		short, inSL   int
	}{
		{"answered at exactly 60 s", answered(p, 0, sec(60), sec(10), "1001", 0), 1, 1, 0, 1},
		{"answered at 60.001 s", answered(p, 0, sec(60)+time.Millisecond, sec(10), "1001", 0), 1, 0, 0, 0},
		{"abandoned at 4.999 s", unanswered(p, 0, sec(5)-time.Millisecond, interaction.ReasonAbandoned), 0, 0, 1, 1},
		{"abandoned at exactly 5 s", unanswered(p, 0, sec(5), interaction.ReasonAbandoned), 1, 0, 0, 1},
		{"abandoned at exactly 60 s", unanswered(p, 0, sec(60), interaction.ReasonAbandoned), 1, 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := sla.Compute([]interaction.Record{tc.rec}, defaults()).Phone
			if f.AskedForAgent != tc.asked || f.AnsweredWithinTarget != tc.within || f.ShortAbandoned != tc.short {
				t.Errorf("asked %d within %d short %d, want %d %d %d",
					f.AskedForAgent, f.AnsweredWithinTarget, f.ShortAbandoned, tc.asked, tc.within, tc.short)
			}
			if f.ServiceLevel2.Num != tc.inSL || f.ServiceLevel2.Den != 1 {
				t.Errorf("SL2 = %+v, want %d/1", f.ServiceLevel2, tc.inSL)
			}
		})
	}
}

func TestComputeChat(t *testing.T) {
	c := interaction.Chat
	c1 := answered(c, 0, sec(5), sec(300), "1003", 5)
	c1.FirstResponseAt = c1.OfferedAt.Add(sec(20))
	c2 := answered(c, sec(1), sec(10), sec(60), "1003", 0)
	c2.FirstResponseAt = c2.OfferedAt.Add(sec(40)) // C2 missed
	c3 := answered(c, sec(2), sec(10), sec(60), "1004", 2)
	c3.FirstResponseAt = c3.OfferedAt.Add(sec(30)) // exactly 30 s: met
	c4 := answered(c, sec(3), sec(10), sec(60), "1004", 0)
	// c4: the agent never wrote: missed.
	c5 := answered(c, sec(4), sec(8), 0, "1005", 0)
	c5.EndedAt, c5.State = time.Time{}, interaction.StateConnected // still live
	c5.FirstResponseAt = c5.OfferedAt.Add(sec(15))
	short := unanswered(c, sec(5), sec(2), interaction.ReasonAbandoned)
	followUp := answered(c, sec(6), sec(1), sec(1), "1003", 0)
	followUp.Parent = c1.ID // a ticket made from c1: not a chat of its own
	f := sla.Compute([]interaction.Record{c1, c2, c3, c4, c5, short, followUp}, defaults())
	ch := f.Chat
	if ch.Offered != 6 || ch.Answered != 5 || ch.ShortAbandoned != 1 || ch.AskedForAgent != 5 {
		t.Errorf("offered %d answered %d short %d asked %d, want 6 5 1 5", ch.Offered, ch.Answered, ch.ShortAbandoned, ch.AskedForAgent)
	}
	checkRatio(t, "C2", ch.FirstResponse, 3, 5)
	// AHT over the four ended chats: (300 + 60 + 60 + 60) / 4.
	if want := sla.Duration(sec(120)); ch.AHT != want {
		t.Errorf("AHT = %v, want %v", time.Duration(ch.AHT), time.Duration(want))
	}
	if f.Phone.Offered != 0 || f.Phone.AnswerRate.Defined {
		t.Errorf("chats leaked into phone figures: %+v", f.Phone)
	}
	checkRatio(t, "satisfaction", f.Satisfaction.Rate, 1, 2)
}

func TestComputeEmpty(t *testing.T) {
	f := sla.Compute(nil, defaults())
	for name, r := range map[string]sla.Ratio{
		"P2": f.Phone.AnswerRate, "P3": f.Phone.AnsweredWithin, "SL": f.Phone.ServiceLevel,
		"SL2": f.Phone.ServiceLevel2, "C2": f.Chat.FirstResponse, "satisfaction": f.Satisfaction.Rate,
	} {
		if r.Defined || r.Value != 0 || math.IsNaN(r.Value) {
			t.Errorf("%s of no records = %+v, want undefined 0", name, r)
		}
		if r.Verdict(0.9) != sla.VerdictNoData || r.Percent() != "—" {
			t.Errorf("%s: verdict %v percent %q", name, r.Verdict(0.9), r.Percent())
		}
	}
	if f.Phone.ASA != 0 || f.Phone.AHT != 0 || f.PeakConcurrency != 0 || len(f.Agents) != 0 {
		t.Errorf("non-zero figures from no records: %+v", f)
	}
	if _, err := json.Marshal(f); err != nil {
		t.Errorf("figures of no records do not marshal: %v", err)
	}
	// Only after-hours calls: nobody asked for an agent.
	p := sla.Compute([]interaction.Record{unanswered(interaction.Phone, 0, 0, interaction.ReasonAfterHours)}, defaults()).Phone
	if p.Offered != 1 || p.AskedForAgent != 0 || p.AnswerRate.Defined {
		t.Errorf("after hours only: %+v", p)
	}
	// Only short abandons, excluded: the rates have no data, not 0 %.
	p = sla.Compute([]interaction.Record{unanswered(interaction.Phone, 0, sec(1), interaction.ReasonAbandoned)}, defaults()).Phone
	if p.AskedForAgent != 0 || p.AnswerRate.Defined || !p.ServiceLevel2.Defined {
		t.Errorf("short abandons only: %+v", p)
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct {
		num, den int
		target   float64
		percent  string
		verdict  sla.Verdict
	}{
		{9, 10, 0.9, "90.00%", sla.VerdictMet},
		{89, 100, 0.9, "89.00%", sla.VerdictMissed},
		{2, 3, 0.8, "66.67%", sla.VerdictMissed},
		{0, 5, 0.8, "0.00%", sla.VerdictMissed},
		{0, 0, 0.8, "—", sla.VerdictNoData},
		{3, 0, 0.8, "—", sla.VerdictNoData},
	} {
		r := sla.NewRatio(tc.num, tc.den)
		if r.Percent() != tc.percent || r.Verdict(tc.target) != tc.verdict {
			t.Errorf("%d/%d: %s %v, want %s %v", tc.num, tc.den, r.Percent(), r.Verdict(tc.target), tc.percent, tc.verdict)
		}
	}
}

func TestAgentFigures(t *testing.T) {
	recs := phoneDay()
	ticket := interaction.Record{
		Channel: interaction.Message, Agent: "1002", OfferedAt: t0, Parent: "x",
		TicketAnswered: t0.Add(time.Hour), Disposition: interaction.Resolved, State: interaction.StateEnded,
	}
	f := sla.Compute(append(recs, ticket), defaults())
	if len(f.Agents) != 2 || f.Agents[0].Agent != "1001" || f.Agents[1].Agent != "1002" {
		t.Fatalf("agents = %+v", f.Agents)
	}
	a, b := f.Agents[0], f.Agents[1]
	if a.Calls != 2 || a.Chats != 0 || a.Tickets != 0 || a.Resolved != 1 || a.AHT != sla.Duration(sec(200)) {
		t.Errorf("1001 = %+v", a)
	}
	checkRatio(t, "1001 satisfaction", a.Satisfaction.Rate, 2, 2)
	if b.Calls != 1 || b.Tickets != 1 || b.Resolved != 1 || b.AHT != sla.Duration(sec(200)) {
		t.Errorf("1002 = %+v", b)
	}
	checkRatio(t, "1002 satisfaction", b.Satisfaction.Rate, 0, 1)
}

func TestPeakConcurrency(t *testing.T) {
	span := func(ch interaction.Channel, from, to int) interaction.Record {
		return interaction.Record{Channel: ch, State: interaction.StateEnded, OfferedAt: t0.Add(sec(from)),
			EndedAt: t0.Add(sec(to)), Reason: interaction.ReasonCompleted}
	}
	live := interaction.Record{Channel: interaction.Chat, State: interaction.StateConnected, OfferedAt: t0.Add(sec(12)), AnsweredAt: t0.Add(sec(13))}
	recs := []interaction.Record{
		span(interaction.Phone, 0, 10),
		span(interaction.Chat, 5, 15),
		span(interaction.Phone, 10, 20), // starts as the first ends: no overlap
		live,                            // from 12 on
		span(interaction.Phone, 12, 12), // zero length
		{Channel: interaction.Message, State: interaction.StateOpen, OfferedAt: t0.Add(sec(12)), Parent: "x"},
	}
	f := sla.Compute(recs, defaults())
	if f.PeakConcurrency != 3 || !f.PeakAt.Equal(t0.Add(sec(12))) {
		t.Errorf("peak = %d at %v, want 3 at +12 s", f.PeakConcurrency, f.PeakAt.Sub(t0))
	}
	if f.Phone.Peak != 1 || f.Chat.Peak != 2 {
		t.Errorf("phone peak %d chat peak %d, want 1 and 2", f.Phone.Peak, f.Chat.Peak)
	}
	// The hand example: at +9 s the three answered calls, the two long
	// abandons, the timeout, the voicemail and the queued call overlap (the
	// short abandon ended at +6 s; the after-hours call has zero length).
	if got := sla.Compute(phoneDay(), defaults()); got.PeakConcurrency != 8 || !got.PeakAt.Equal(t0.Add(sec(9))) {
		t.Errorf("phone day peak = %d at %v, want 8 at +9 s", got.PeakConcurrency, got.PeakAt.Sub(t0))
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(struct {
		D sla.Duration `json:"d"`
	}{sla.Duration(1500 * time.Millisecond)})
	if err != nil || string(b) != `{"d":1.5}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	var back struct {
		D sla.Duration `json:"d"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.D != sla.Duration(1500*time.Millisecond) {
		t.Fatalf("unmarshal = %v, %v", back.D, err)
	}
	out, _ := json.Marshal(sla.Compute(phoneDay(), defaults()))
	for _, key := range []string{`"asa_seconds":43.333333333`, `"answer_rate":{"num":3,"den":7`, `"abandoned":3`, `"timeout":1`} {
		if !strings.Contains(string(out), key) {
			t.Errorf("figures JSON lacks %s: %s", key, out)
		}
	}
}
