package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/taxline/taxline/api"
	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/configs"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/storage"
)

type fixture struct {
	srv *httptest.Server
	api *api.Server
	db  *storage.DB
	r   *queue.Router
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg, err := config.Parse("demo.yaml", configs.Demo)
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := api.NewMetrics()
	r, err := queue.NewRouter(cfg, queue.Options{Events: api.Tee{db, m.Sink()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	m.Watch(r.Snapshot)
	a := api.New(cfg, db, r, m, log)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, api: a, db: db, r: r}
}

func (f *fixture) do(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// seed stores two finished chats, one per agent, and a recorded call.
func (f *fixture) seed(t *testing.T) (chat1001, call1002 interaction.ID) {
	t.Helper()
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	chat1001 = interaction.NewID(at)
	call1002 = interaction.NewID(at.Add(time.Second))
	w, err := f.db.Blobs().Create("recordings/test.wav")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("RIFF....WAVE"))
	w.Close()
	evs := []interaction.Event{
		{Type: interaction.Offered, At: at, ID: chat1001, Channel: interaction.Chat, Queue: "etax"},
		{Type: interaction.Answered, At: at.Add(5 * time.Second), ID: chat1001, Agent: "1001"},
		{Type: interaction.ChatMessage, At: at.Add(6 * time.Second), ID: chat1001, Actor: "agent:1001", Data: map[string]string{"text": "您好"}},
		{Type: interaction.Ended, At: at.Add(time.Minute), ID: chat1001, Reason: interaction.ReasonCompleted, Disposition: interaction.Resolved},
		{Type: interaction.Offered, At: at.Add(time.Second), ID: call1002, Channel: interaction.Phone, Queue: "etax"},
		{Type: interaction.Answered, At: at.Add(9 * time.Second), ID: call1002, Agent: "1002"},
		{Type: interaction.RecordingStarted, At: at.Add(9 * time.Second), ID: call1002, Data: map[string]string{"recording": "recordings/test.wav"}},
		{Type: interaction.Ended, At: at.Add(2 * time.Minute), ID: call1002, Reason: interaction.ReasonCompleted},
	}
	if err := f.db.Append(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	return chat1001, call1002
}

func TestAuthAndErrors(t *testing.T) {
	f := newFixture(t)
	chat, _ := f.seed(t)
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status                    int
	}{
		{"no token", "GET", "/api/v1/interactions", "", nil, 401},
		{"bad token", "GET", "/api/v1/interactions", "nope", nil, 401},
		{"admin list", "GET", "/api/v1/interactions", "demo-admin-token", nil, 200},
		{"bad channel", "GET", "/api/v1/interactions?channel=fax", "demo-admin-token", nil, 400},
		{"bad from", "GET", "/api/v1/interactions?from=yesterday", "demo-admin-token", nil, 400},
		{"bad limit", "GET", "/api/v1/interactions?limit=0", "demo-admin-token", nil, 400},
		{"bad id", "GET", "/api/v1/interactions/..%2f..", "demo-admin-token", nil, 400},
		{"missing id", "GET", "/api/v1/interactions/000000000000deadbeef", "demo-admin-token", nil, 404},
		{"auditor may not transfer", "POST", "/api/v1/interactions/" + string(chat) + "/transfer", "demo-auditor-token",
			map[string]string{"target": "etax"}, 403},
		{"transfer of an ended one", "POST", "/api/v1/interactions/" + string(chat) + "/transfer", "demo-supervisor-token",
			map[string]string{"target": "etax"}, 404},
		{"unknown api path", "GET", "/api/v1/nothing", "demo-admin-token", nil, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.do(t, tc.method, tc.path, tc.token, tc.body)
			if status != tc.status {
				t.Fatalf("status = %d, want %d (%s)", status, tc.status, body)
			}
			if status >= 400 {
				var e map[string]string
				if err := json.Unmarshal(body, &e); err != nil || e["error"] == "" {
					t.Errorf("error body %q is not {\"error\": ...}", body)
				}
			}
		})
	}
}

func TestAgentSeesOnlyOwnAndReadsAreAudited(t *testing.T) {
	f := newFixture(t)
	chat, call := f.seed(t)

	status, _ := f.do(t, "POST", "/api/v1/login", "", map[string]string{"agent": "1001", "password": "wrong"})
	if status != 401 {
		t.Fatalf("wrong password login: %d", status)
	}
	status, body := f.do(t, "POST", "/api/v1/login", "", map[string]string{"agent": "1001", "password": "demo-1001"})
	if status != 200 {
		t.Fatalf("login: %d %s", status, body)
	}
	var login struct{ Token string }
	json.Unmarshal(body, &login)

	status, body = f.do(t, "GET", "/api/v1/interactions", login.Token, nil)
	var list []map[string]any
	if err := json.Unmarshal(body, &list); err != nil || status != 200 {
		t.Fatalf("agent list: %d %s", status, body)
	}
	if len(list) != 1 || list[0]["id"] != string(chat) {
		t.Fatalf("agent 1001 sees %v, want only its chat", list)
	}
	if status, _ := f.do(t, "GET", "/api/v1/interactions?agent=1002", login.Token, nil); status != 403 {
		t.Errorf("agent listing another's: %d", status)
	}
	if status, _ := f.do(t, "GET", "/api/v1/interactions/"+string(call), login.Token, nil); status != 404 {
		t.Errorf("agent reading another's call: %d", status)
	}
	if status, _ := f.do(t, "GET", "/api/v1/recordings/"+string(call), login.Token, nil); status != 404 {
		t.Errorf("agent reading another's recording: %d", status)
	}

	status, body = f.do(t, "GET", "/api/v1/interactions/"+string(chat), login.Token, nil)
	var one struct {
		ID         string
		Events     []map[string]any
		Transcript []map[string]any
	}
	if err := json.Unmarshal(body, &one); err != nil || status != 200 {
		t.Fatalf("own chat: %d %s", status, body)
	}
	if len(one.Transcript) != 1 || one.Transcript[0]["text"] != "您好" {
		t.Errorf("transcript = %v", one.Transcript)
	}

	status, body = f.do(t, "GET", "/api/v1/recordings/"+string(call), "demo-supervisor-token", nil)
	if status != 200 || !strings.HasPrefix(string(body), "RIFF") {
		t.Fatalf("supervisor recording: %d", status)
	}
	audits := func(id interaction.ID) []interaction.Event {
		evs, err := f.db.Events(id)
		if err != nil {
			t.Fatal(err)
		}
		var out []interaction.Event
		for _, e := range evs {
			if e.Type == interaction.Audit {
				out = append(out, e)
			}
		}
		return out
	}
	if a := audits(chat); len(a) != 1 || a[0].Actor != "agent:1001" || a[0].Data["what"] != "transcript" {
		t.Errorf("chat audit = %+v", a)
	}
	if a := audits(call); len(a) != 1 || a[0].Actor != "token:demo-supervisor" || a[0].Data["what"] != "recording" {
		t.Errorf("recording audit = %+v", a)
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	f := newFixture(t)
	if status, body := f.do(t, "GET", "/healthz", "", nil); status != 200 || string(body) != "ok\n" {
		t.Fatalf("healthz: %d %q", status, body)
	}
	if err := f.r.SetPresence(context.Background(), "1001", queue.MediaText, true); err != nil {
		t.Fatal(err)
	}
	var sipDown atomic.Bool
	f.api.AddHealthCheck("sip", func() error {
		if sipDown.Load() {
			return errors.New("listeners not serving")
		}
		return nil
	})
	if status, _ := f.do(t, "GET", "/healthz", "", nil); status != 200 {
		t.Fatalf("healthz with a passing check: %d", status)
	}
	sipDown.Store(true)
	if status, body := f.do(t, "GET", "/healthz", "", nil); status != 503 || !strings.HasPrefix(string(body), "sip: ") {
		t.Fatalf("healthz with the SIP listeners down: %d %q", status, body)
	}
	_, body := f.do(t, "GET", "/metrics", "", nil)
	for _, want := range []string{`taxline_agents{state="available"} 1`, `taxline_queue_waiting{queue="etax"} 0`,
		`taxline_events_total{type="agent_state"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestMonthlyReport(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	status, body := f.do(t, "GET", "/api/v1/reports/monthly?month=2026-03", "demo-supervisor-token", nil)
	if status != 200 {
		t.Fatalf("report: %d %s", status, body)
	}
	var rep struct {
		Month               string `json:"month"`
		OnlineConsultations int    `json:"online_consultations"`
		PhoneConsultations  int    `json:"phone_consultations"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Month != "2026-03" || rep.OnlineConsultations != 1 || rep.PhoneConsultations != 1 {
		t.Errorf("report = %+v, want one chat and one call in 2026-03", rep)
	}
	status, body = f.do(t, "GET", "/api/v1/reports/monthly?month=2026-03&format=csv", "demo-auditor-token", nil)
	if status != 200 || !strings.Contains(string(body), "电话") {
		t.Errorf("csv: %d %q", status, body)
	}
	status, body = f.do(t, "GET", "/api/v1/reports/monthly?month=2026-03&format=xlsx", "demo-admin-token", nil)
	if status != 200 {
		t.Fatalf("xlsx: %d", status)
	}
	book, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("xlsx does not open: %v", err)
	}
	defer book.Close()
	rows, err := book.GetRows("月报")
	if err != nil || len(rows) < 10 || rows[0][0] != "指标" {
		t.Fatalf("xlsx rows = %v, %v", rows, err)
	}
	found := false
	for _, r := range rows {
		if len(r) == 2 && r[0] == "电话咨询量" && r[1] == "1" {
			found = true
		}
	}
	if !found {
		t.Errorf("xlsx lacks 电话咨询量 = 1: %v", rows)
	}
	if status, _ := f.do(t, "GET", "/api/v1/reports/monthly?month=March", "demo-admin-token", nil); status != 400 {
		t.Errorf("bad month: %d", status)
	}
}
