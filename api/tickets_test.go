package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/taxline/taxline/api"
	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/configs"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/storage"
)

// ticketFixture is the demo config plus a queue "itax" that only agent
// 1003 serves, over a real store and router, with four open tickets.
type ticketFixture struct {
	*fixture
	web, voicemail, followUp, itax interaction.ID
	tokens                         map[string]string // agent → session token
}

func newTicketFixture(t *testing.T) *ticketFixture {
	t.Helper()
	cfg, err := config.Parse("demo.yaml", configs.Demo)
	if err != nil {
		t.Fatal(err)
	}
	itax := cfg.Queues[0]
	itax.Name = "itax"
	cfg.Queues = append(cfg.Queues, itax)
	for i := range cfg.Agents {
		if cfg.Agents[i].ID == "1003" {
			cfg.Agents[i].Queues = []string{"itax"}
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	r, err := queue.NewRouter(cfg, queue.Options{Events: db, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	a := api.New(cfg, db, r, nil, log)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	f := &ticketFixture{fixture: &fixture{srv: srv, api: a, db: db, r: r}, tokens: map[string]string{}}

	create := func(tk queue.Ticket) interaction.ID {
		t.Helper()
		info, err := r.CreateTicket(ctx, tk)
		if err != nil {
			t.Fatal(err)
		}
		return info.ID
	}
	f.web = create(queue.Ticket{Channel: interaction.Message, Queue: "etax",
		Taxpayer: queue.Taxpayer{Phone: "13800138000", ID: "91310000MA1K000000", Name: "张三"}, Topic: "发票",
		Data: map[string]string{"text": "开票软件无法登录，请回电", "source": "web"}})
	f.voicemail = create(queue.Ticket{Channel: interaction.Message, Queue: "etax",
		Taxpayer: queue.Taxpayer{Phone: "13900139000"}, Data: map[string]string{"recording": "voicemail/t.wav", "duration_ms": "1500"}})
	f.followUp = create(queue.Ticket{Channel: interaction.Message, Queue: "etax", Owner: "1002", Parent: interaction.NewID(testNow()),
		Taxpayer: queue.Taxpayer{Phone: "13700137000"}})
	f.itax = create(queue.Ticket{Channel: interaction.Message, Queue: "itax",
		Taxpayer: queue.Taxpayer{Phone: "13600136000"}, Data: map[string]string{"text": "个税问题", "source": "web"}})
	// As sip does for a voicemail: the WAV in the blob store and a
	// RecordingStarted event on the ticket.
	w, err := db.Blobs().Create("voicemail/t.wav")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("RIFF....WAVE"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	db.Emit(interaction.Event{Type: interaction.RecordingStarted, At: testNow(), ID: f.voicemail,
		Channel: interaction.Message, Data: map[string]string{"recording": "voicemail/t.wav"}})
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ag := range []string{"1001", "1002", "1003"} {
		status, body := f.do(t, "POST", "/api/v1/login", "", map[string]string{"agent": ag, "password": "demo-" + ag})
		var login struct{ Token string }
		if err := json.Unmarshal(body, &login); err != nil || status != 200 {
			t.Fatalf("login %s: %d %s", ag, status, body)
		}
		f.tokens[ag] = login.Token
	}
	return f
}

type ticketItem struct {
	ID           interaction.ID `json:"id"`
	Kind         string         `json:"kind"`
	Queue        string         `json:"queue"`
	State        string         `json:"state"`
	Agent        string         `json:"agent"`
	Phone        string         `json:"taxpayer_phone"`
	TaxpayerID   string         `json:"taxpayer_id"`
	Text         string         `json:"text"`
	HasRecording bool           `json:"has_recording"`
	Recording    string         `json:"recording"`
	Masked       bool           `json:"masked"`
	Disposition  string         `json:"disposition"`
	AckBy        string         `json:"ack_by"`
	Due          string         `json:"due"`
}

func (f *ticketFixture) list(t *testing.T, token, query string) []ticketItem {
	t.Helper()
	status, body := f.do(t, "GET", "/api/v1/tickets"+query, token, nil)
	var out []ticketItem
	if err := json.Unmarshal(body, &out); err != nil || status != 200 {
		t.Fatalf("list%s: %d %s", query, status, body)
	}
	return out
}

func ids(items []ticketItem) []interaction.ID {
	var out []interaction.ID
	for _, it := range items {
		out = append(out, it.ID)
	}
	slices.Sort(out)
	return out
}

func sorted(xs ...interaction.ID) []interaction.ID {
	slices.Sort(xs)
	return xs
}

func TestTicketListScoping(t *testing.T) {
	f := newTicketFixture(t)
	all := sorted(f.web, f.voicemail, f.followUp, f.itax)
	for _, tc := range []struct {
		who, token string
		want       []interaction.ID
	}{
		{"admin", "demo-admin-token", all},
		{"supervisor", "demo-supervisor-token", all},
		{"auditor", "demo-auditor-token", all},
		// etax's unowned ones; not 1002's follow-up, not itax.
		{"1001", f.tokens["1001"], sorted(f.web, f.voicemail)},
		{"1002", f.tokens["1002"], sorted(f.web, f.voicemail, f.followUp)},
		{"1003", f.tokens["1003"], sorted(f.itax)},
	} {
		t.Run(tc.who, func(t *testing.T) {
			if got := ids(f.list(t, tc.token, "")); !slices.Equal(got, tc.want) {
				t.Fatalf("%s sees %v, want %v", tc.who, got, tc.want)
			}
		})
	}
	if got := ids(f.list(t, "demo-admin-token", "?queue=itax")); !slices.Equal(got, []interaction.ID{f.itax}) {
		t.Errorf("queue=itax: %v", got)
	}

	// Before a claim an agent sees the queue, the deadlines and a masked
	// number, not the message.
	for _, it := range f.list(t, f.tokens["1001"], "") {
		if !it.Masked || it.Text != "" || it.Recording != "" || it.AckBy == "" || it.Due == "" {
			t.Errorf("unclaimed ticket as 1001 sees it: %+v", it)
		}
		switch it.ID {
		case f.web:
			if it.Phone != "138****8000" || it.TaxpayerID != "913****0000" || it.Kind != "web" {
				t.Errorf("web message: %+v", it)
			}
		case f.voicemail:
			if it.Phone != "139****9000" || !it.HasRecording || it.Kind != "voicemail" {
				t.Errorf("voicemail: %+v", it)
			}
		}
	}
	// The owner of a follow-up sees it whole.
	for _, it := range f.list(t, f.tokens["1002"], "") {
		if it.ID == f.followUp && (it.Masked || it.Phone != "13700137000" || it.Kind != "follow_up" || it.Agent != "1002") {
			t.Errorf("own follow-up: %+v", it)
		}
	}
	// A supervisor sees everything; reading others' messages is audited.
	sup := f.list(t, "demo-supervisor-token", "")
	for _, it := range sup {
		if it.Masked || (it.ID == f.web && (it.Text != "开票软件无法登录，请回电" || it.Phone != "13800138000")) {
			t.Errorf("supervisor sees %+v", it)
		}
	}
	for i := 1; i < len(sup); i++ {
		if sup[i].Due < sup[i-1].Due {
			t.Errorf("not by deadline: %v before %v", sup[i-1].Due, sup[i].Due)
		}
	}
	var readers []string
	for _, a := range audits(t, f.db, f.web) {
		if a.Data["what"] == "message" && !slices.Contains(readers, a.Actor) {
			readers = append(readers, a.Actor)
		}
	}
	slices.Sort(readers)
	if want := []string{"token:demo-admin", "token:demo-auditor", "token:demo-supervisor"}; !slices.Equal(readers, want) {
		t.Errorf("audited readers of the web message %v, want %v", readers, want)
	}
	if a := audits(t, f.db, f.voicemail); len(a) != 0 {
		t.Errorf("listing a voicemail is not reading it: %+v", a)
	}

	for _, q := range []string{"?state=closed", "?limit=0", "?limit=x"} {
		if status, _ := f.do(t, "GET", "/api/v1/tickets"+q, "demo-admin-token", nil); status != 400 {
			t.Errorf("%s: %d", q, status)
		}
	}
	if status, _ := f.do(t, "GET", "/api/v1/tickets", "", nil); status != 401 {
		t.Errorf("no token: %d", status)
	}
}

func audits(t *testing.T, db *storage.DB, id interaction.ID) []interaction.Event {
	t.Helper()
	evs, err := db.Events(id)
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

func TestTicketClaimAndAnswer(t *testing.T) {
	f := newTicketFixture(t)
	path := func(id interaction.ID, op string) string { return "/api/v1/tickets/" + string(id) + "/" + op }
	outOfScope := map[string]string{"scope_reason": "税收政策咨询", "note": "已告知纳税人咨询12366"}
	steps := []struct {
		name, method, path, token string
		body                      any
		status                    int
	}{
		{"supervisor may not claim", "POST", path(f.web, "ack"), "demo-supervisor-token", nil, 403},
		{"auditor may not claim", "POST", path(f.web, "ack"), "demo-auditor-token", nil, 403},
		{"not 1003's queue", "POST", path(f.web, "ack"), f.tokens["1003"], nil, 403},
		{"answer before claim", "POST", path(f.web, "answer"), f.tokens["1001"], nil, 409},
		{"1001 claims", "POST", path(f.web, "ack"), f.tokens["1001"], nil, 200},
		{"claim again is fine", "POST", path(f.web, "ack"), f.tokens["1001"], nil, 200},
		{"1002 may not claim 1001's", "POST", path(f.web, "ack"), f.tokens["1002"], nil, 403},
		{"1002 may not answer 1001's", "POST", path(f.web, "answer"), f.tokens["1002"], nil, 403},
		{"1001 may not ack 1002's follow-up", "POST", path(f.followUp, "ack"), f.tokens["1001"], nil, 403},
		{"1001 may not read 1002's", "GET", "/api/v1/interactions/" + string(f.followUp), f.tokens["1001"], nil, 404},
		{"unclaimed voicemail is not 1001's to hear", "GET", "/api/v1/recordings/" + string(f.voicemail), f.tokens["1001"], nil, 404},
		{"1001 claims the voicemail", "POST", path(f.voicemail, "ack"), f.tokens["1001"], nil, 200},
		{"and hears it", "GET", "/api/v1/recordings/" + string(f.voicemail), f.tokens["1001"], nil, 200},
		{"bad disposition", "POST", path(f.web, "answer") + "?disposition=transferred", f.tokens["1001"], nil, 400},
		{"out of scope needs a reason", "POST", path(f.web, "answer") + "?disposition=out_of_scope", f.tokens["1001"], nil, 400},
		{"unknown reason", "POST", path(f.web, "answer") + "?disposition=out_of_scope", f.tokens["1001"],
			map[string]string{"scope_reason": "不想回答"}, 400},
		{"bad body", "POST", path(f.web, "answer"), f.tokens["1001"], "[", 400},
		{"1001 answers", "POST", path(f.web, "answer") + "?disposition=out_of_scope", f.tokens["1001"], outOfScope, 200},
		{"answered already", "POST", path(f.web, "answer"), f.tokens["1001"], nil, 409},
		{"claim an answered one", "POST", path(f.web, "ack"), f.tokens["1001"], nil, 409},
		{"auditor may not answer", "POST", path(f.followUp, "answer"), "demo-auditor-token", nil, 403},
		{"1002 answers its follow-up", "POST", path(f.followUp, "answer") + "?disposition=follow_up", f.tokens["1002"], nil, 200},
		{"not a ticket", "POST", path(interaction.NewID(testNow()), "ack"), f.tokens["1001"], nil, 404},
		{"malformed id", "POST", "/api/v1/tickets/..%2f/ack", f.tokens["1001"], nil, 400},
	}
	for _, st := range steps {
		status, body := f.do(t, st.method, st.path, st.token, st.body)
		if status != st.status {
			t.Fatalf("%s: status %d, want %d (%s)", st.name, status, st.status, body)
		}
		if st.name == "1001 claims" {
			// The claim answers with the ticket, now unmasked.
			var it ticketItem
			if err := json.Unmarshal(body, &it); err != nil || it.Masked || it.Text != "开票软件无法登录，请回电" ||
				it.Phone != "13800138000" || it.Agent != "1001" {
				t.Fatalf("claimed ticket %s (%v)", body, err)
			}
		}
	}

	rec, err := f.db.Interaction(f.web)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != interaction.StateEnded || rec.Agent != "1001" || rec.Disposition != interaction.OutOfScope ||
		rec.AcknowledgedAt.IsZero() || rec.TicketAnswered.IsZero() ||
		rec.ScopeReason != outOfScope["scope_reason"] || rec.Note != outOfScope["note"] {
		t.Fatalf("answered web message: %+v", rec)
	}
	evs, _ := f.db.Events(f.web)
	var types []string
	for _, e := range evs {
		if e.Type == interaction.TicketAcknowledged || e.Type == interaction.TicketAnswered {
			types = append(types, e.Type.String()+":"+e.Actor)
		}
	}
	if want := []string{"ticket_acknowledged:agent:1001", "ticket_answered:agent:1001"}; !slices.Equal(types, want) {
		t.Errorf("events %v, want %v", types, want)
	}
	if a := audits(t, f.db, f.voicemail); len(a) != 1 || a[0].Actor != "agent:1001" || a[0].Data["what"] != "recording" {
		t.Errorf("recording audit = %+v", a)
	}
	// 1001 now lists its voicemail (unmasked); state=all adds the answered
	// web message after the open ones.
	open := f.list(t, f.tokens["1001"], "")
	if len(open) != 1 || open[0].ID != f.voicemail || open[0].Masked || open[0].Recording == "" || open[0].Phone != "13900139000" {
		t.Errorf("1001's open tickets: %+v", open)
	}
	hist := f.list(t, f.tokens["1001"], "?state=all")
	if len(hist) != 2 || hist[0].ID != f.voicemail || hist[1].ID != f.web || hist[1].Disposition != "out_of_scope" {
		t.Errorf("1001's tickets with state=all: %+v", hist)
	}
	if got := ids(f.list(t, f.tokens["1002"], "")); len(got) != 0 {
		t.Errorf("1002 still sees %v", got)
	}
	// A supervisor may answer an agent's ticket.
	status, body := f.do(t, "POST", path(f.voicemail, "answer"), "demo-supervisor-token", nil)
	if status != 200 {
		t.Fatalf("supervisor answer: %d %s", status, body)
	}
}

// TestTicketClaimRace: two agents claim one unowned message at once; one
// owns it, the other is told so.
func TestTicketClaimRace(t *testing.T) {
	f := newTicketFixture(t)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, ag := range []string{"1001", "1002"} {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/tickets/"+string(f.voicemail)+"/ack", bytes.NewReader(nil))
			req.Header.Set("Authorization", "Bearer "+f.tokens[ag])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	slices.Sort(codes)
	if !slices.Equal(codes, []int{200, 403}) {
		t.Fatalf("claim statuses %v, want one 200 and one 403", codes)
	}
}

func testNow() time.Time { return time.Now() }
