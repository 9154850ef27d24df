package api_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxline/taxline/api"
	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/configs"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/sla"
	"github.com/taxline/taxline/storage"
)

// agentToken logs agent 1001 in through the API.
func agentToken(t *testing.T, f *fixture) string {
	t.Helper()
	status, body := f.do(t, "POST", "/api/v1/login", "", map[string]string{"agent": "1001", "password": "demo-1001"})
	if status != 200 {
		t.Fatalf("login: %d %s", status, body)
	}
	var r struct{ Token string }
	if err := json.Unmarshal(body, &r); err != nil || r.Token == "" {
		t.Fatalf("login body %s", body)
	}
	return r.Token
}

func TestStatsAndConfigRoles(t *testing.T) {
	f := newFixture(t)
	agent := agentToken(t, f)
	for _, tc := range []struct {
		path, token string
		status      int
	}{
		{"/api/v1/stats/today", "", 401},
		{"/api/v1/stats/today", "nope", 401},
		{"/api/v1/stats/today", agent, 403},
		{"/api/v1/stats/today", "demo-supervisor-token", 200},
		{"/api/v1/stats/today", "demo-admin-token", 200},
		{"/api/v1/stats/today", "demo-auditor-token", 200},
		{"/api/v1/stats/today?date=2026-3-2", "demo-supervisor-token", 400},
		{"/api/v1/stats/today?date=2999-01-01", "demo-supervisor-token", 400},
		{"/api/v1/config", "", 401},
		{"/api/v1/config", agent, 403},
		{"/api/v1/config", "demo-supervisor-token", 403},
		{"/api/v1/config", "demo-admin-token", 200},
		{"/api/v1/config", "demo-auditor-token", 200},
	} {
		status, body := f.do(t, "GET", tc.path, tc.token, nil)
		if status != tc.status {
			t.Errorf("GET %s as %q: %d, want %d (%s)", tc.path, tc.token, status, tc.status, body)
		}
		if status >= 400 {
			var e map[string]string
			if err := json.Unmarshal(body, &e); err != nil || e["error"] == "" {
				t.Errorf("error body %q is not {\"error\": ...}", body)
			}
		}
	}
}

// seedDay stores, on Monday 2026-03-02 (Asia/Shanghai), 11 calls, 2 chats
// and 3 messages with known figures.
func seedDay(t *testing.T, f *fixture) {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, loc)
	var evs []interaction.Event
	n := 0
	id := func(t0 time.Time) interaction.ID {
		n++
		return interaction.NewID(t0.Add(time.Duration(n) * time.Millisecond))
	}
	call := func(start time.Time, answerAfter, endAfter time.Duration, reason interaction.Reason) {
		i := id(start)
		evs = append(evs, interaction.Event{Type: interaction.Offered, At: start, ID: i, Channel: interaction.Phone, Queue: "etax"})
		if answerAfter > 0 {
			evs = append(evs, interaction.Event{Type: interaction.Answered, At: start.Add(answerAfter), ID: i, Agent: "1002"})
		}
		evs = append(evs, interaction.Event{Type: interaction.Ended, At: start.Add(endAfter), ID: i, Reason: reason})
	}
	// P2: 9 answered of 10 asked (the 2 s abandon is short and left out)
	// = 90 % (met); P3: 8 within 60 s of 10 = 80 % (met).
	for k := range 8 {
		call(at.Add(time.Duration(k)*time.Minute), 20*time.Second, 3*time.Minute, interaction.ReasonCompleted)
	}
	call(at.Add(10*time.Minute), 90*time.Second, 3*time.Minute, interaction.ReasonCompleted)
	call(at.Add(11*time.Minute), 0, 20*time.Second, interaction.ReasonAbandoned)
	call(at.Add(12*time.Minute), 0, 2*time.Second, interaction.ReasonAbandoned)
	// C2: one chat answered in 10 s, one in 40 s: 50 % (missed). Scores 5
	// and 2: satisfaction 1 of 2.
	for k, first := range []time.Duration{10 * time.Second, 40 * time.Second} {
		start := at.Add(time.Duration(20+k) * time.Minute)
		i := id(start)
		evs = append(evs,
			interaction.Event{Type: interaction.Offered, At: start, ID: i, Channel: interaction.Chat, Queue: "etax"},
			interaction.Event{Type: interaction.Answered, At: start.Add(5 * time.Second), ID: i, Agent: "1001"},
			interaction.Event{Type: interaction.FirstResponse, At: start.Add(first), ID: i, Agent: "1001"},
			interaction.Event{Type: interaction.Ended, At: start.Add(5 * time.Minute), ID: i, Reason: interaction.ReasonCompleted,
				Disposition: interaction.Resolved},
			interaction.Event{Type: interaction.SurveyScore, At: start.Add(6 * time.Minute), ID: i,
				Data: map[string]string{"score": strconv.Itoa(5 - 3*k)}})
	}
	// Messages: one left last Wednesday and never answered (overdue), one
	// left last Thursday and answered on Friday (closed), one left today
	// (open, not yet due).
	msg := func(left time.Time, answered time.Time) {
		i := id(left)
		evs = append(evs, interaction.Event{Type: interaction.TicketCreated, At: left, ID: i, Channel: interaction.Message, Queue: "etax"})
		if !answered.IsZero() {
			evs = append(evs, interaction.Event{Type: interaction.TicketAnswered, At: answered, ID: i, Agent: "1003"})
		}
	}
	msg(at.AddDate(0, 0, -5), time.Time{})
	msg(at.AddDate(0, 0, -4), at.AddDate(0, 0, -3))
	msg(at.Add(time.Hour), time.Time{})
	if err := f.db.Append(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
}

func TestStatsFigures(t *testing.T) {
	f := newFixture(t)
	seedDay(t, f)
	status, body := f.do(t, "GET", "/api/v1/stats/today?date=2026-03-02", "demo-supervisor-token", nil)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var st api.Stats
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Date != "2026-03-02" || st.Timezone != "Asia/Shanghai" {
		t.Errorf("date %s %s", st.Date, st.Timezone)
	}
	ph, ch := st.Figures.Phone, st.Figures.Chat
	if ph.Offered != 11 || ph.Answered != 9 || ph.AskedForAgent != 10 || ch.Offered != 2 || ch.Answered != 2 {
		t.Errorf("phone %+v chat %+v", ph, ch)
	}
	want := map[string]struct {
		num, den int
		target   float64
		verdict  string
	}{
		"P2": {9, 10, 0.90, "met"},
		"P3": {8, 10, 0.80, "met"},
		"C2": {1, 2, 1.0, "missed"},
	}
	if len(st.Goals) != 3 {
		t.Fatalf("targets %+v", st.Goals)
	}
	for _, g := range st.Goals {
		w, ok := want[g.Rule]
		if !ok || g.Value.Num != w.num || g.Value.Den != w.den || g.Target != w.target || g.Verdict.String() != w.verdict {
			t.Errorf("target %+v, want %+v", g, w)
		}
	}
	if st.Limits["answer_target"] != 60 || st.Limits["first_response"] != 30 || st.Limits["short_abandon"] != 5 {
		t.Errorf("limits %v", st.Limits)
	}
	if st.ShortAbandoned != 1 || st.LongAbandoned != 1 {
		t.Errorf("abandoned short %d long %d", st.ShortAbandoned, st.LongAbandoned)
	}
	if s := st.Figures.Satisfaction; s.Rated != 2 || s.Satisfied != 1 {
		t.Errorf("satisfaction %+v", s)
	}
	if m := st.Messages; m.Received != 1 || m.Open != 2 || m.Overdue != 1 {
		t.Errorf("messages %+v, want received 1, open 2, overdue 1", m)
	}
	// The live part comes from the router: five agents, all offline, and
	// the etax queue.
	if len(st.Agents) != 5 || st.States["offline"] != 5 || len(st.Queues) == 0 || st.Queues[0].Name != "etax" {
		t.Errorf("agents %+v states %v queues %+v", st.Agents, st.States, st.Queues)
	}
	for _, ch := range []string{"phone", "chat", "message", "visit"} {
		if _, ok := st.Live[ch]; !ok {
			t.Errorf("live lacks %s: %v", ch, st.Live)
		}
	}

	// Another day has none of it.
	_, body = f.do(t, "GET", "/api/v1/stats/today?date=2026-03-03", "demo-supervisor-token", nil)
	var next api.Stats
	if err := json.Unmarshal(body, &next); err != nil {
		t.Fatal(err)
	}
	if next.Figures.Phone.Offered != 0 || next.Goals[0].Verdict.String() != "no_data" || next.Messages.Received != 0 {
		t.Errorf("next day %+v", next.Figures.Phone)
	}
}

// TestStatsTodayIsLive: without a date the figures are today's (in the
// config's zone), and a chat waiting in the router shows in its queue at
// once, though the day's figures are cached.
func TestStatsTodayIsLive(t *testing.T) {
	f := newFixture(t)
	loc, _ := time.LoadLocation("Asia/Shanghai")
	before := time.Now().In(loc).Format(time.DateOnly)
	// A message left 100 days ago and never answered: open and overdue
	// today (from the store's open tickets, beyond the 92-day look-back).
	left := time.Now().AddDate(0, 0, -100)
	if err := f.db.Append(context.Background(), interaction.Event{Type: interaction.TicketCreated, At: left,
		ID: interaction.NewID(left), Channel: interaction.Message, Queue: "etax"}); err != nil {
		t.Fatal(err)
	}
	// A first poll fills the cache of the day's figures; the router's
	// part must still be fresh on the next.
	if status, body := f.do(t, "GET", "/api/v1/stats/today", "demo-supervisor-token", nil); status != 200 ||
		!strings.Contains(string(body), `"waiting":0`) {
		t.Fatalf("first poll: %d %s", status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	adm, err := f.r.Offer(ctx, queue.Offer{Channel: interaction.Chat, Queue: "etax", Handler: nopHandler{}})
	if err != nil || adm.Reason != interaction.ReasonNone {
		t.Fatalf("offer: %+v %v", adm, err)
	}
	status, body := f.do(t, "GET", "/api/v1/stats/today", "demo-supervisor-token", nil)
	after := time.Now().In(loc).Format(time.DateOnly)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var st api.Stats
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Date != before && st.Date != after {
		t.Errorf("date %s, want %s", st.Date, after)
	}
	if st.Queues[0].Waiting != 1 || st.Live["chat"] != 1 {
		t.Errorf("queues %+v live %v", st.Queues, st.Live)
	}
	if m := st.Messages; m.Received != 0 || m.Open != 1 || m.Overdue != 1 {
		t.Errorf("messages %+v, want received 0, open 1, overdue 1", m)
	}
}

type nopHandler struct{}

func (nopHandler) Ring(queue.Ring)                 {}
func (nopHandler) StopRing(interaction.ID, string) {}
func (nopHandler) Notify(queue.Notice)             {}
func (nopHandler) Close(queue.Close)               {}

// TestConfigHasNoSecrets: the summary lists the queue, agents and rules,
// and none of the passwords, token hashes or trunk credentials.
func TestConfigHasNoSecrets(t *testing.T) {
	f := newFixture(t)
	status, body := f.do(t, "GET", "/api/v1/config", "demo-admin-token", nil)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var c api.ConfigSummary
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Queues) == 0 || c.Queues[0].Name != "etax" || len(c.Agents) != 5 || len(c.Tokens) == 0 || len(c.Rules) == 0 {
		t.Fatalf("summary %+v", c)
	}
	if h := c.Hours["hotline"]; len(h.Weekly) != 1 || h.Weekly[0].From != "08:30" || len(h.Weekly[0].Days) != 6 {
		t.Errorf("hotline hours %+v", h)
	}
	cfg, err := config.Parse("demo.yaml", configs.Demo)
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	for _, a := range cfg.Agents {
		if a.Password != "" && strings.Contains(text, a.Password) {
			t.Errorf("agent %s's password is in the summary", a.ID)
		}
	}
	for _, tok := range cfg.Auth.Tokens {
		if strings.Contains(text, tok.SHA256) {
			t.Errorf("token %s's hash is in the summary", tok.Name)
		}
	}
	for _, bad := range []string{"demo-admin-token", "password", "sha256"} {
		if strings.Contains(strings.ToLower(text), bad) {
			t.Errorf("summary contains %q", bad)
		}
	}

	// A trunk with credentials shows only that it has them.
	cfg.SIP.Trunks = append(cfg.SIP.Trunks, config.Trunk{Name: "own", Username: "carrier-user", Password: "trunk-secret-9"})
	sum := api.SummarizeConfig(cfg)
	b, _ := json.Marshal(sum)
	if strings.Contains(string(b), "trunk-secret-9") || strings.Contains(string(b), "carrier-user") {
		t.Errorf("trunk credentials in %s", b)
	}
	if last := sum.Trunks[len(sum.Trunks)-1]; !last.Auth {
		t.Errorf("trunk %+v should say it authenticates", last)
	}
}

// BenchmarkStatsToday measures the work of one wallboard poll
// (api.ComputeStats: the day's records from the store, sla.Compute, the
// open messages) over a busy day: 10,000 answered calls and chats.
func BenchmarkStatsToday(b *testing.B) {
	cfg, err := config.Parse("demo.yaml", configs.Demo)
	if err != nil {
		b.Fatal(err)
	}
	db, err := storage.Open(b.TempDir(), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cal, err := sla.CalendarFromConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, cal.Location())
	const n = 10000
	var evs []interaction.Event
	for k := range n {
		start := day.Add(8*time.Hour + time.Duration(k)*4*time.Second)
		id := interaction.NewID(start)
		ch := interaction.Phone
		if k%2 == 1 {
			ch = interaction.Chat
		}
		evs = append(evs,
			interaction.Event{Type: interaction.Offered, At: start, ID: id, Channel: ch, Queue: "etax"},
			interaction.Event{Type: interaction.Answered, At: start.Add(time.Duration(k%90) * time.Second), ID: id, Agent: "1001"},
			interaction.Event{Type: interaction.Ended, At: start.Add(5 * time.Minute), ID: id, Reason: interaction.ReasonCompleted})
		if len(evs) >= 3000 {
			if err := db.Append(context.Background(), evs...); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	if err := db.Append(context.Background(), evs...); err != nil {
		b.Fatal(err)
	}
	now := day.Add(23 * time.Hour)
	b.ResetTimer()
	for b.Loop() {
		st, err := api.ComputeStats(cfg, cal, db, queue.Snapshot{}, day, now)
		if err != nil || st.Figures.Phone.Offered+st.Figures.Chat.Offered != n {
			b.Fatalf("%v %+v", err, st.Figures.Phone)
		}
	}
}
