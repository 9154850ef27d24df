package sla

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
)

// ReportDay is the day of the month by which last month's report is due
// (Art. 17: 每月5日).
const ReportDay = 5

// Report is the monthly report of Art. 17 (R2): last month's online and
// phone consultations, resolution rate, on-site visits and their
// resolution rate, follow-up callbacks, satisfaction rate and an analysis
// of the questions asked, plus the P2, P3 and C2 figures against their
// targets. Every figure is defined in docs/METRICS.md.
type Report struct {
	// Month is YYYY-MM; From and To bound it (To exclusive) in the
	// calendar's zone. A record belongs to the month its OfferedAt (for a
	// ticket: its creation) falls in.
	Month string    `json:"month"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	// Due is the day the report must reach the bureau (ReportDue).
	Due time.Time `json:"due"`

	// OnlineConsultations (网上在线咨询量): chats offered; OnlineAnswered:
	// those an agent answered.
	OnlineConsultations int `json:"online_consultations"`
	OnlineAnswered      int `json:"online_answered"`
	// PhoneConsultations (电话咨询量): calls offered, in and out of service
	// hours; PhoneAnswered: those an agent answered.
	PhoneConsultations int `json:"phone_consultations"`
	PhoneAnswered      int `json:"phone_answered"`
	// Handled: questions an agent finished (answered and ended calls and
	// chats, answered messages); Resolved: those resolved, directly or by
	// their follow-up; ResolutionRate (咨询问题解决率) = Resolved / Handled.
	Handled        int   `json:"handled"`
	Resolved       int   `json:"resolved"`
	ResolutionRate Ratio `json:"resolution_rate"`
	// Visits (上门技术服务次数): visit tickets created; VisitsClosed: those
	// finished; VisitsResolved: finished as resolved; VisitResolutionRate
	// (上门服务解决率) = VisitsResolved / VisitsClosed.
	Visits              int   `json:"visits"`
	VisitsClosed        int   `json:"visits_closed"`
	VisitsResolved      int   `json:"visits_resolved"`
	VisitResolutionRate Ratio `json:"visit_resolution_rate"`
	// FollowUps: follow-up tickets created (from a follow-up disposition
	// or a C4 "answer me later"); FollowUpsDone (纳税人回访个数): those
	// answered; FollowUpsOverdue: those that missed their deadline.
	FollowUps        int `json:"follow_ups"`
	FollowUpsDone    int `json:"follow_ups_done"`
	FollowUpsOverdue int `json:"follow_ups_overdue"`
	// Satisfaction (纳税人满意率) over every rated record of the month.
	Satisfaction Satisfaction `json:"satisfaction"`
	// Messages: voice and web messages and their M3 deadlines.
	Messages MessageFigures `json:"messages"`
	// Topics: the questions asked, by topic, most asked first.
	Topics []TopicCount `json:"topics"`
	// Dispositions of the handled questions (处理情况).
	Dispositions map[interaction.Disposition]int `json:"dispositions"`
	// ScopeReasons: why out-of-scope questions were declined (P4).
	ScopeReasons map[string]int `json:"scope_reasons"`
	// Targets: P2, P3 and C2 against their targets.
	Targets []TargetCheck `json:"targets"`
	// Figures: the full service-level figures of the month.
	Figures Figures `json:"figures"`
}

// MessageFigures are the month's messages (voicemail and web messages,
// channel Message) against the M3 deadlines: listen to or read within
// AckBy, answer within AnswerBy.
type MessageFigures struct {
	Received int `json:"received"`
	// Acknowledged: listened to or read (answering counts as reading).
	Acknowledged       int `json:"acknowledged"`
	AcknowledgedOnTime int `json:"acknowledged_on_time"`
	Answered           int `json:"answered"`
	AnsweredOnTime     int `json:"answered_on_time"`
	// Pending: not answered yet.
	Pending int `json:"pending"`
	// Overdue: missed either deadline (flagged by the router, or done
	// late).
	Overdue int `json:"overdue"`
	// AckRate = AcknowledgedOnTime / Received; AnswerRate =
	// AnsweredOnTime / Received.
	AckRate    Ratio `json:"ack_rate"`
	AnswerRate Ratio `json:"answer_rate"`
}

// TopicCount is one line of the question analysis.
type TopicCount struct {
	// Topic is the topic name ("" when none was recorded); Label its
	// display name when LabelTopics was called.
	Topic string `json:"topic"`
	Label string `json:"label,omitempty"`
	// Count: calls, chats, messages and visits of the month on the topic.
	Count int `json:"count"`
	// Handled and Resolved as in Report, for this topic.
	Handled  int `json:"handled"`
	Resolved int `json:"resolved"`
	// Rated and Satisfied: survey scores on the topic (S6: spot topics
	// with low satisfaction).
	Rated     int `json:"rated"`
	Satisfied int `json:"satisfied"`
}

// TargetCheck is one figure against its target.
type TargetCheck struct {
	// Rule is the rule id (P2, P3, C2).
	Rule    string  `json:"rule"`
	Value   Ratio   `json:"value"`
	Target  float64 `json:"target"`
	Verdict Verdict `json:"verdict"`
}

// ReportDue returns the day the report on month is due: the 5th of the
// following month (R2), at its start, in the calendar's zone; the report
// is on time if sent by the end of that day.
//
// The day is not moved off holidays: Art. 17 says 每月5日 and gives no
// postponement rule (the filing-period postponement of tax law is for tax
// returns, not for this report). In 2026 the 5th falls in a holiday in
// April (Qingming), May (Labour Day) and October (National Day); a desk
// should send those reports before the holiday.
func ReportDue(month time.Time, cal *Calendar) time.Time {
	loc := month.Location()
	if cal != nil {
		loc = cal.Location()
	}
	y, m, _ := month.In(loc).Date()
	return time.Date(y, m+1, ReportDay, 0, 0, 0, 0, loc)
}

// Monthly computes the report for the month that month falls in (in the
// calendar's zone). recs should hold at least that month's records; later
// records are used only to find the follow-up tickets of the month's
// questions. cal gives the zone and the working days of M3 deadlines a
// message record lacks; nil means weekends only, in month's zone.
func Monthly(month time.Time, recs []interaction.Record, def Definitions, cal *Calendar) Report {
	if cal == nil {
		cal, _ = NewCalendar(month.Location(), nil, nil)
	}
	loc := cal.Location()
	y, m, _ := month.In(loc).Date()
	from := time.Date(y, m, 1, 0, 0, 0, 0, loc)
	rep := Report{
		Month:        fmt.Sprintf("%04d-%02d", y, m),
		From:         from,
		To:           from.AddDate(0, 1, 0),
		Due:          ReportDue(from, cal),
		Dispositions: map[interaction.Disposition]int{},
		ScopeReasons: map[string]int{},
	}

	byID := make(map[interaction.ID]*interaction.Record, len(recs))
	for i := range recs {
		if recs[i].ID != "" {
			byID[recs[i].ID] = &recs[i]
		}
	}
	// followUp reports whether r is a follow-up ticket: a ticket made
	// from another interaction that is not a message or a visit, or any
	// ticket whose parent ended as a follow-up or a callback.
	followUp := func(r *interaction.Record) bool {
		if r.Parent == "" || r.Channel == interaction.Visit {
			return false
		}
		if r.Channel != interaction.Message {
			return true
		}
		p := byID[r.Parent]
		return p != nil && (p.Disposition == interaction.FollowUp || p.Reason == interaction.ReasonCallback)
	}
	// A question is resolved by its own disposition or, when it was
	// passed to a follow-up, by a resolved follow-up ticket.
	resolvedByFollowUp := map[interaction.ID]bool{}
	for i := range recs {
		r := &recs[i]
		if followUp(r) && !r.TicketAnswered.IsZero() && r.Disposition == interaction.Resolved {
			resolvedByFollowUp[r.Parent] = true
		}
	}

	in := func(r *interaction.Record) bool { return !r.OfferedAt.Before(rep.From) && r.OfferedAt.Before(rep.To) }
	n := 0
	for i := range recs {
		if in(&recs[i]) {
			n++
		}
	}
	inMonth := make([]interaction.Record, 0, n)
	topics := map[string]*TopicCount{}
	topic := func(name string) *TopicCount {
		t := topics[name]
		if t == nil {
			t = &TopicCount{Topic: name}
			topics[name] = t
		}
		return t
	}
	for i := range recs {
		r := &recs[i]
		if !in(r) {
			continue
		}
		inMonth = append(inMonth, *r)
		rep.Satisfaction.add(r.Score, def)

		if followUp(r) {
			rep.FollowUps++
			if !r.TicketAnswered.IsZero() {
				rep.FollowUpsDone++
			}
			if r.Overdue || late(r.TicketAnswered, r.AnswerBy) {
				rep.FollowUpsOverdue++
			}
			continue
		}

		tc := topic(r.Topic)
		tc.Count++
		if r.Score >= 1 && r.Score <= MaxScore {
			tc.Rated++
			if r.Score >= def.SatisfiedFrom {
				tc.Satisfied++
			}
		}

		var handled bool
		switch r.Channel {
		case interaction.Message:
			rep.Messages.add(r, def, cal)
			handled = !r.TicketAnswered.IsZero()
		case interaction.Visit:
			rep.Visits++
			if !r.EndedAt.IsZero() {
				rep.VisitsClosed++
				if r.Disposition == interaction.Resolved {
					rep.VisitsResolved++
				}
			}
			continue // visits have their own resolution rate
		case interaction.Phone, interaction.Chat:
			if r.Parent != "" {
				continue
			}
			handled = !r.AnsweredAt.IsZero() && !r.Live()
		}
		if !handled {
			continue
		}
		rep.Handled++
		tc.Handled++
		rep.Dispositions[r.Disposition]++
		if r.Disposition == interaction.OutOfScope {
			rep.ScopeReasons[r.ScopeReason]++
		}
		if r.Disposition == interaction.Resolved || resolvedByFollowUp[r.ID] {
			rep.Resolved++
			tc.Resolved++
		}
	}
	rep.ResolutionRate = NewRatio(rep.Resolved, rep.Handled)
	rep.VisitResolutionRate = NewRatio(rep.VisitsResolved, rep.VisitsClosed)
	rep.Messages.AckRate = NewRatio(rep.Messages.AcknowledgedOnTime, rep.Messages.Received)
	rep.Messages.AnswerRate = NewRatio(rep.Messages.AnsweredOnTime, rep.Messages.Received)

	rep.Figures = Compute(inMonth, def)
	rep.OnlineConsultations = rep.Figures.Chat.Offered
	rep.OnlineAnswered = rep.Figures.Chat.Answered
	rep.PhoneConsultations = rep.Figures.Phone.Offered
	rep.PhoneAnswered = rep.Figures.Phone.Answered
	rep.Targets = []TargetCheck{
		check("P2", rep.Figures.Phone.AnswerRate, def.AnswerRateTarget),
		check("P3", rep.Figures.Phone.AnsweredWithin, def.AnswerWithinTarget),
		check("C2", rep.Figures.Chat.FirstResponse, def.FirstResponseRateTarget),
	}

	rep.Topics = make([]TopicCount, 0, len(topics))
	for _, t := range topics {
		rep.Topics = append(rep.Topics, *t)
	}
	slices.SortFunc(rep.Topics, func(a, b TopicCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Topic, b.Topic)
	})
	return rep
}

func check(rule string, r Ratio, target float64) TargetCheck {
	return TargetCheck{Rule: rule, Value: r, Target: target, Verdict: r.Verdict(target)}
}

// late reports whether work done at done missed deadline. Work done
// strictly before the deadline instant is on time (see WorkingDaysAfter).
func late(done, deadline time.Time) bool {
	return !done.IsZero() && !deadline.IsZero() && !done.Before(deadline)
}

// add counts one message against its M3 deadlines.
func (m *MessageFigures) add(r *interaction.Record, def Definitions, cal *Calendar) {
	ackBy, answerBy := r.AckBy, r.AnswerBy
	if ackBy.IsZero() {
		ackBy = cal.WorkingDaysAfter(r.OfferedAt, def.AcknowledgeWithin)
	}
	if answerBy.IsZero() {
		answerBy = cal.WorkingDaysAfter(r.OfferedAt, def.AnswerWithin)
	}
	ackAt := r.AcknowledgedAt
	if !r.TicketAnswered.IsZero() && (ackAt.IsZero() || r.TicketAnswered.Before(ackAt)) {
		ackAt = r.TicketAnswered
	}
	m.Received++
	if !ackAt.IsZero() {
		m.Acknowledged++
		if !late(ackAt, ackBy) {
			m.AcknowledgedOnTime++
		}
	}
	if r.TicketAnswered.IsZero() {
		m.Pending++
	} else {
		m.Answered++
		if !late(r.TicketAnswered, answerBy) {
			m.AnsweredOnTime++
		}
	}
	if r.Overdue || late(ackAt, ackBy) || late(r.TicketAnswered, answerBy) {
		m.Overdue++
	}
}

// LabelTopics fills each topic's Label from the configured chat topics.
func (r *Report) LabelTopics(topics []config.Topic) {
	labels := map[string]string{}
	for _, t := range topics {
		labels[t.Name] = t.Label
	}
	for i := range r.Topics {
		r.Topics[i].Label = labels[r.Topics[i].Topic]
	}
}

var dispositionLabels = map[interaction.Disposition]string{
	interaction.DispositionNone:        "未填写处理结果",
	interaction.Resolved:               "已解决",
	interaction.FollowUp:               "需回访",
	interaction.OutOfScope:             "不属于受理范围",
	interaction.DispositionTransferred: "已转接",
}

// Rows is the report as labelled lines (指标, 数值), header first, in the
// order the bureau's form lists them; CSV and spreadsheet exports share it.
func (r *Report) Rows() [][2]string {
	n := strconv.Itoa
	pct := func(f float64) string { return strconv.FormatFloat(f*100, 'f', 2, 64) + "%" }
	secs := func(d Duration) string { return strconv.FormatFloat(time.Duration(d).Seconds(), 'f', 1, 64) }
	day := func(t time.Time) string { return t.Format(time.DateOnly) }
	ph, ch := r.Figures.Phone, r.Figures.Chat
	rows := [][2]string{
		{"指标", "数值"},
		{"报告月份", r.Month},
		{"统计区间", day(r.From) + " 至 " + day(r.To.AddDate(0, 0, -1))},
		{"报送截止日期", day(r.Due)},
		{"网上在线咨询量", n(r.OnlineConsultations)},
		{"网上在线咨询人工应答量", n(r.OnlineAnswered)},
		{"电话咨询量", n(r.PhoneConsultations)},
		{"电话人工接通量", n(r.PhoneAnswered)},
		{"咨询问题处理量", n(r.Handled)},
		{"咨询问题解决量", n(r.Resolved)},
		{"咨询问题解决率", r.ResolutionRate.Percent()},
		{"上门技术服务次数", n(r.Visits)},
		{"上门服务完成次数", n(r.VisitsClosed)},
		{"上门服务解决次数", n(r.VisitsResolved)},
		{"上门服务解决率", r.VisitResolutionRate.Percent()},
		{"纳税人回访个数", n(r.FollowUpsDone)},
		{"回访工单数", n(r.FollowUps)},
		{"回访超时数", n(r.FollowUpsOverdue)},
		{"满意度评价数", n(r.Satisfaction.Rated)},
		{"满意评价数", n(r.Satisfaction.Satisfied)},
		{"纳税人满意率", r.Satisfaction.Rate.Percent()},
		{"留言数", n(r.Messages.Received)},
		{"按时听取/查阅留言数", n(r.Messages.AcknowledgedOnTime)},
		{"留言按时听取/查阅率", r.Messages.AckRate.Percent()},
		{"已答复留言数", n(r.Messages.Answered)},
		{"按时答复留言数", n(r.Messages.AnsweredOnTime)},
		{"留言按时答复率", r.Messages.AnswerRate.Percent()},
		{"待答复留言数", n(r.Messages.Pending)},
		{"超时留言数", n(r.Messages.Overdue)},
	}
	targetLabels := map[string]string{"P2": "人工接通率", "P3": "60秒人工接通率", "C2": "在线咨询30秒响应率"}
	for _, t := range r.Targets {
		label := targetLabels[t.Rule]
		if label == "" {
			label = t.Rule
		}
		rows = append(rows,
			[2]string{label, t.Value.Percent()},
			[2]string{label + "目标", pct(t.Target)},
			[2]string{label + "评定", t.Verdict.Chinese()},
		)
	}
	rows = append(rows,
		[2]string{"电话呼入（服务时间外）", n(ph.AfterHours)},
		[2]string{"电话放弃数", n(ph.Abandoned)},
		[2]string{"电话短时放弃数", n(ph.ShortAbandoned)},
		[2]string{"电话服务水平（SL）", ph.ServiceLevel.Percent()},
		[2]string{"电话服务水平（SL2，含放弃）", ph.ServiceLevel2.Percent()},
		[2]string{"电话平均应答时长（秒）", secs(ph.ASA)},
		[2]string{"电话平均通话时长（秒）", secs(ph.AHT)},
		[2]string{"在线咨询平均应答时长（秒）", secs(ch.ASA)},
		[2]string{"在线咨询平均处理时长（秒）", secs(ch.AHT)},
		[2]string{"受理并发峰值", n(r.Figures.PeakConcurrency)},
	)
	for _, t := range r.Topics {
		name := t.Label
		if name == "" {
			name = t.Topic
		}
		if name == "" {
			name = "未分类"
		}
		rows = append(rows, [2]string{"问题分析：" + name, n(t.Count)})
	}
	for _, d := range []interaction.Disposition{interaction.Resolved, interaction.FollowUp,
		interaction.OutOfScope, interaction.DispositionTransferred, interaction.DispositionNone} {
		if c := r.Dispositions[d]; c > 0 {
			rows = append(rows, [2]string{"处理情况：" + dispositionLabels[d], n(c)})
		}
	}
	reasons := make([]string, 0, len(r.ScopeReasons))
	for k := range r.ScopeReasons {
		reasons = append(reasons, k)
	}
	slices.Sort(reasons)
	for _, k := range reasons {
		label := k
		if label == "" {
			label = "未注明"
		}
		rows = append(rows, [2]string{"不予受理原因：" + label, n(r.ScopeReasons[k])})
	}
	return rows
}

// CSV writes the report as a two-column table (指标, 数值) with Chinese
// labels, for the bureau. The output starts with a UTF-8 byte-order mark
// so that spreadsheet programs read the Chinese correctly. Rates are
// percentages with two decimals, "—" when there is no data.
func (r *Report) CSV(w io.Writer) error {
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return fmt.Errorf("sla: write report: %w", err)
	}
	cw := csv.NewWriter(w)
	for _, row := range r.Rows() {
		if err := cw.Write(row[:]); err != nil {
			return fmt.Errorf("sla: write report: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("sla: write report: %w", err)
	}
	return nil
}
