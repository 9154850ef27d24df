package sla_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/configs"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/sla"
)

// march is the hand-computed month of docs/METRICS.md ("Worked example").
func march(t *testing.T) []interaction.Record {
	t.Helper()
	recs := phoneDay() // Monday 2026-03-09
	recs[0].ID, recs[0].Disposition, recs[0].Topic = "r1", interaction.Resolved, "etax"
	recs[1].ID, recs[1].Disposition, recs[1].Topic = "r2", interaction.FollowUp, "etax"
	recs[2].ID, recs[2].Disposition, recs[2].Topic = "r3", interaction.OutOfScope, "its"
	recs[2].ScopeReason = "税收政策咨询"

	chat := func(id interaction.ID, offered string, wait, fr, talk int, d interaction.Disposition, topic string, score int) interaction.Record {
		off := at(t, offered)
		return interaction.Record{ID: id, Channel: interaction.Chat, Queue: "etax", State: interaction.StateEnded,
			Agent: "1003", OfferedAt: off, AnsweredAt: off.Add(sec(wait)), FirstResponseAt: off.Add(sec(fr)),
			EndedAt: off.Add(sec(wait + talk)), Reason: interaction.ReasonCompleted, Disposition: d, Topic: topic, Score: score}
	}
	c0 := unanswered(interaction.Chat, 0, sec(20), interaction.ReasonAbandoned)
	c0.ID, c0.Topic = "c0", "invoice"
	c0.OfferedAt = time.Date(2026, 2, 28, 16, 30, 0, 0, time.UTC) // 2026-03-01 00:30 in Shanghai
	c0.EndedAt = c0.OfferedAt.Add(sec(20))
	c1 := chat("c1", "2026-03-10 10:00", 5, 20, 300, interaction.Resolved, "etax", 5)
	c2 := chat("c2", "2026-03-10 11:00", 10, 40, 60, interaction.FollowUp, "invoice", 0)
	c3 := chat("c3", "2026-03-20 10:00", 5, 10, 60, interaction.DispositionNone, "", 0)
	c3.Reason = interaction.ReasonCallback // C4: "answer me later"

	ticket := func(id interaction.ID, ch interaction.Channel, parent interaction.ID, created string) interaction.Record {
		return interaction.Record{ID: id, Channel: ch, Queue: "etax", State: interaction.StateOpen,
			Parent: parent, OfferedAt: at(t, created)}
	}
	answer := func(r *interaction.Record, when string, d interaction.Disposition) {
		r.TicketAnswered, r.EndedAt = at(t, when), at(t, when)
		r.State, r.Reason, r.Disposition, r.Agent = interaction.StateEnded, interaction.ReasonCompleted, d, "1003"
	}
	f1 := ticket("f1", interaction.Chat, "c2", "2026-03-10 11:02")
	f1.AnswerBy = at(t, "2026-03-13 00:00")
	answer(&f1, "2026-03-11 10:00", interaction.Resolved)
	f2 := ticket("f2", interaction.Phone, "r2", "2026-03-31 23:00")
	f2.AnswerBy = at(t, "2026-04-03 00:00")
	f3 := ticket("f3", interaction.Message, "c3", "2026-03-20 11:00") // a message made from a callback choice
	f3.AnswerBy = at(t, "2026-03-24 00:00")
	answer(&f3, "2026-03-25 09:00", interaction.Resolved) // late

	m1 := ticket("m1", interaction.Message, "vm1", "2026-03-07 20:00") // no deadlines on the record
	m1.Topic, m1.Score = "etax", 4
	m1.AcknowledgedAt = at(t, "2026-03-09 09:00")
	answer(&m1, "2026-03-10 10:00", interaction.Resolved)
	m2 := ticket("m2", interaction.Message, "", "2026-03-13 21:30")
	m2.Topic = "its"
	m2.AckBy, m2.AnswerBy = at(t, "2026-03-17 00:00"), at(t, "2026-03-18 00:00")
	m2.AcknowledgedAt = at(t, "2026-03-17 00:00") // at the deadline instant: late
	answer(&m2, "2026-03-17 12:00", interaction.Resolved)
	m3 := ticket("m3", interaction.Message, "", "2026-03-30 10:00")

	visit := func(id interaction.ID, when string, d interaction.Disposition, topic string) interaction.Record {
		v := ticket(id, interaction.Visit, "c1", when)
		v.Topic = topic
		if d != interaction.DispositionNone {
			v.State, v.EndedAt, v.Disposition = interaction.StateEnded, v.OfferedAt.Add(3*time.Hour), d
		}
		return v
	}
	v1 := visit("v1", "2026-03-12 10:00", interaction.Resolved, "etax")
	v2 := visit("v2", "2026-03-12 11:00", interaction.FollowUp, "its")
	v3 := visit("v3", "2026-03-31 10:00", interaction.DispositionNone, "etax")

	x1 := answered(interaction.Phone, 0, sec(5), sec(5), "1001", 1)
	x1.OfferedAt = at(t, "2026-02-28 23:59:59")
	x1.AnsweredAt, x1.EndedAt = x1.OfferedAt.Add(sec(5)), x1.OfferedAt.Add(sec(10))
	x2 := c1
	x2.ID, x2.OfferedAt = "x2", time.Date(2026, 3, 31, 23, 59, 0, 0, time.UTC) // April 1st in Shanghai

	return append(recs, c0, c1, c2, c3, f1, f2, f3, m1, m2, m3, v1, v2, v3, x1, x2)
}

func TestMonthly(t *testing.T) {
	_, cal, _ := demo(t)
	// Any instant of the month will do, in any zone.
	rep := sla.Monthly(time.Date(2026, 3, 15, 3, 0, 0, 0, time.UTC), march(t), defaults(), cal)

	if rep.Month != "2026-03" || !rep.From.Equal(at(t, "2026-03-01 00:00")) || !rep.To.Equal(at(t, "2026-04-01 00:00")) {
		t.Errorf("period %s %v–%v", rep.Month, rep.From, rep.To)
	}
	if !rep.Due.Equal(at(t, "2026-04-05 00:00")) {
		t.Errorf("due %v, want 2026-04-05", rep.Due)
	}
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"online consultations", rep.OnlineConsultations, 4},
		{"online answered", rep.OnlineAnswered, 3},
		{"phone consultations", rep.PhoneConsultations, 10},
		{"phone answered", rep.PhoneAnswered, 3},
		{"handled", rep.Handled, 8},
		{"resolved", rep.Resolved, 6},
		{"visits", rep.Visits, 3},
		{"visits closed", rep.VisitsClosed, 2},
		{"visits resolved", rep.VisitsResolved, 1},
		{"follow-ups", rep.FollowUps, 3},
		{"follow-ups done", rep.FollowUpsDone, 2},
		{"follow-ups overdue", rep.FollowUpsOverdue, 1},
		{"satisfaction rated", rep.Satisfaction.Rated, 5},
		{"satisfied", rep.Satisfaction.Satisfied, 4},
		{"messages", rep.Messages.Received, 3},
		{"messages acknowledged", rep.Messages.Acknowledged, 2},
		{"messages acknowledged on time", rep.Messages.AcknowledgedOnTime, 1},
		{"messages answered", rep.Messages.Answered, 2},
		{"messages answered on time", rep.Messages.AnsweredOnTime, 2},
		{"messages pending", rep.Messages.Pending, 1},
		{"messages overdue", rep.Messages.Overdue, 1},
		{"resolved dispositions", rep.Dispositions[interaction.Resolved], 4},
		{"follow-up dispositions", rep.Dispositions[interaction.FollowUp], 2},
		{"out-of-scope dispositions", rep.Dispositions[interaction.OutOfScope], 1},
		{"no disposition", rep.Dispositions[interaction.DispositionNone], 1},
		{"scope reason", rep.ScopeReasons["税收政策咨询"], 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	checkRatio(t, "resolution rate", rep.ResolutionRate, 6, 8)
	checkRatio(t, "visit resolution rate", rep.VisitResolutionRate, 1, 2)
	checkRatio(t, "satisfaction rate", rep.Satisfaction.Rate, 4, 5)
	checkRatio(t, "message ack rate", rep.Messages.AckRate, 1, 3)
	checkRatio(t, "message answer rate", rep.Messages.AnswerRate, 2, 3)

	wantTopics := []sla.TopicCount{
		{Topic: "", Count: 9, Handled: 1, Resolved: 1},
		{Topic: "etax", Count: 6, Handled: 4, Resolved: 3, Rated: 4, Satisfied: 3},
		{Topic: "its", Count: 3, Handled: 2, Resolved: 1, Rated: 1, Satisfied: 1},
		{Topic: "invoice", Count: 2, Handled: 1, Resolved: 1},
	}
	if len(rep.Topics) != len(wantTopics) {
		t.Fatalf("topics = %+v", rep.Topics)
	}
	for i, w := range wantTopics {
		if rep.Topics[i] != w {
			t.Errorf("topic %d = %+v, want %+v", i, rep.Topics[i], w)
		}
	}

	wantTargets := []struct {
		rule     string
		num, den int
		target   float64
		verdict  sla.Verdict
	}{
		{"P2", 3, 7, 0.90, sla.VerdictMissed},
		{"P3", 2, 7, 0.80, sla.VerdictMissed},
		{"C2", 2, 3, 1.00, sla.VerdictMissed},
	}
	if len(rep.Targets) != len(wantTargets) {
		t.Fatalf("targets = %+v", rep.Targets)
	}
	for i, w := range wantTargets {
		g := rep.Targets[i]
		if g.Rule != w.rule || g.Target != w.target || g.Verdict != w.verdict {
			t.Errorf("target %d = %+v, want %+v", i, g, w)
		}
		checkRatio(t, w.rule, g.Value, w.num, w.den)
	}
}

func TestMonthlyEmpty(t *testing.T) {
	_, cal, _ := demo(t)
	rep := sla.Monthly(at(t, "2026-02-01"), nil, defaults(), cal)
	if rep.Month != "2026-02" || rep.Handled != 0 || rep.ResolutionRate.Defined || rep.Satisfaction.Rate.Defined {
		t.Errorf("empty month = %+v", rep)
	}
	for _, c := range rep.Targets {
		if c.Verdict != sla.VerdictNoData {
			t.Errorf("%s verdict %v on no data", c.Rule, c.Verdict)
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("empty report does not marshal: %v", err)
	}
	var buf bytes.Buffer
	if err := rep.CSV(&buf); err != nil {
		t.Fatal(err)
	}
	if got := csvValue(t, buf.Bytes(), "咨询问题解决率"); got != "—" {
		t.Errorf("resolution rate of an empty month = %q, want —", got)
	}
	if got := csvValue(t, buf.Bytes(), "人工接通率评定"); got != "无数据" {
		t.Errorf("P2 verdict of an empty month = %q, want 无数据", got)
	}
}

// csvValue returns the 数值 of the row labelled label.
func csvValue(t *testing.T, data []byte, label string) string {
	t.Helper()
	rows := csvRows(t, data)
	for _, r := range rows {
		if r[0] == label {
			return r[1]
		}
	}
	t.Errorf("no row %q", label)
	return ""
}

func csvRows(t *testing.T, data []byte) [][]string {
	t.Helper()
	if !bytes.HasPrefix(data, []byte("\ufeff")) {
		t.Error("CSV lacks the UTF-8 byte-order mark")
	}
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatalf("report CSV does not parse: %v", err)
	}
	return rows
}

func TestReportCSV(t *testing.T) {
	_, cal, _ := demo(t)
	rep := sla.Monthly(at(t, "2026-03-15"), march(t), defaults(), cal)
	rep.LabelTopics([]config.Topic{{Name: "etax", Label: "网上申报软件"}})
	var buf bytes.Buffer
	if err := rep.CSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows := csvRows(t, buf.Bytes())
	if len(rows) == 0 || rows[0][0] != "指标" || rows[0][1] != "数值" {
		t.Fatalf("header = %v", rows[:1])
	}
	seen := map[string]bool{}
	for _, r := range rows {
		if len(r) != 2 {
			t.Errorf("row %v has %d columns", r, len(r))
		}
		if seen[r[0]] {
			t.Errorf("label %q appears twice", r[0])
		}
		seen[r[0]] = true
	}
	for label, want := range map[string]string{
		"报告月份":          "2026-03",
		"统计区间":          "2026-03-01 至 2026-03-31",
		"报送截止日期":        "2026-04-05",
		"网上在线咨询量":       "4",
		"电话咨询量":         "10",
		"咨询问题解决率":       "75.00%",
		"上门技术服务次数":      "3",
		"上门服务解决率":       "50.00%",
		"纳税人回访个数":       "2",
		"纳税人满意率":        "80.00%",
		"留言数":           "3",
		"超时留言数":         "1",
		"人工接通率":         "42.86%",
		"人工接通率目标":       "90.00%",
		"人工接通率评定":       "未达标",
		"60秒人工接通率":      "28.57%",
		"在线咨询30秒响应率":    "66.67%",
		"在线咨询30秒响应率目标":  "100.00%",
		"电话平均通话时长（秒）":   "200.0",
		"问题分析：未分类":      "9",
		"问题分析：网上申报软件":   "6",
		"问题分析：its":      "3",
		"处理情况：已解决":      "4",
		"不予受理原因：税收政策咨询": "1",
	} {
		if got := csvValue(t, buf.Bytes(), label); got != want {
			t.Errorf("%s = %q, want %q", label, got, want)
		}
	}
}

func TestReportJSON(t *testing.T) {
	_, cal, _ := demo(t)
	rep := sla.Monthly(at(t, "2026-03-15"), march(t), defaults(), cal)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"month", "due", "online_consultations", "phone_consultations", "resolution_rate",
		"visits", "visit_resolution_rate", "follow_ups_done", "satisfaction", "messages", "topics", "targets", "figures"} {
		if _, ok := m[key]; !ok {
			t.Errorf("report JSON lacks %q", key)
		}
	}
	if !strings.Contains(string(b), `"rule":"P2"`) || !strings.Contains(string(b), `"verdict":"missed"`) ||
		!strings.Contains(string(b), `"dispositions":{"":1,"follow_up":2,"out_of_scope":1,"resolved":4}`) {
		t.Errorf("report JSON: %s", b)
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestReportCSVWriteError(t *testing.T) {
	rep := sla.Monthly(at(t, "2026-03-15"), nil, defaults(), nil)
	for _, after := range []int{0, 1} {
		if err := rep.CSV(&failWriter{after: after}); err == nil || !strings.HasPrefix(err.Error(), "sla: ") {
			t.Errorf("write error after %d writes: %v", after, err)
		}
	}
}

func TestReportDue(t *testing.T) {
	_, cal, _ := demo(t)
	for _, tc := range []struct {
		month time.Time
		want  string
	}{
		{at(t, "2026-03-01"), "2026-04-05"},
		{at(t, "2026-03-31 23:59:59"), "2026-04-05"}, // a holiday (Qingming): not moved
		{at(t, "2026-12-10"), "2027-01-05"},
		{time.Date(2026, 3, 31, 20, 0, 0, 0, time.UTC), "2026-05-05"}, // already April in Shanghai
	} {
		if got := sla.ReportDue(tc.month, cal); !got.Equal(at(t, tc.want)) {
			t.Errorf("ReportDue(%v) = %v, want %s", tc.month, got, tc.want)
		}
	}
}

// BenchmarkMonthly measures a month of 100,000 calls and chats (about a
// busy month of the desk): go test -bench Monthly ./sla
func BenchmarkMonthly(b *testing.B) {
	cfg, err := config.Parse("demo.yaml", configs.Demo)
	if err != nil {
		b.Fatal(err)
	}
	cal, err := sla.CalendarFromConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	def := sla.DefinitionsFromConfig(cfg)
	start := at(b, "2026-03-01 08:30")
	recs := make([]interaction.Record, 100_000)
	for i := range recs {
		ch := interaction.Phone
		if i%3 == 0 {
			ch = interaction.Chat
		}
		off := start.Add(time.Duration(i) * 26 * time.Second)
		r := interaction.Record{ID: interaction.ID(strconv.Itoa(i)), Channel: ch, State: interaction.StateEnded,
			OfferedAt: off, EndedAt: off.Add(5 * time.Minute), Topic: "t" + strconv.Itoa(i%20), Score: i % 6}
		if i%10 != 0 {
			r.AnsweredAt, r.FirstResponseAt = off.Add(time.Duration(i%90)*time.Second), off.Add(time.Duration(i%40)*time.Second)
			r.Agent, r.Reason, r.Disposition = strconv.Itoa(1001+i%50), interaction.ReasonCompleted, interaction.Resolved
		} else {
			r.Reason = interaction.ReasonAbandoned
		}
		recs[i] = r
	}
	b.ResetTimer()
	for b.Loop() {
		rep := sla.Monthly(start, recs, def, cal)
		if rep.PhoneConsultations+rep.OnlineConsultations != len(recs) {
			b.Fatalf("counted %d of %d", rep.PhoneConsultations+rep.OnlineConsultations, len(recs))
		}
	}
}
