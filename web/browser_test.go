package web_test

import (
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/taxline/taxline/api"
	"github.com/taxline/taxline/chat"
	"github.com/taxline/taxline/chat/chattest"
	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/storage"
	"github.com/taxline/taxline/web"
)

const chromium = "/usr/bin/chromium"

// TestBrowserChatAndDesk drives the real pages in headless Chromium: an
// agent logs in on /desk, a taxpayer opens /chat, they exchange messages
// both ways (and a screenshot file), the taxpayer ends and rates the chat,
// the agent records the disposition; the rating and the transcript must be
// in the store. Screenshots of both pages go to testdata/artifacts/.
func TestBrowserChatAndDesk(t *testing.T) {
	desk, artifacts := browser(t)
	cfg, err := chattest.Config(time.Minute, time.Minute, time.Minute, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	env, err := chattest.Start(cfg, nil, web.Handler())
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()

	upload, err := filepath.Abs(filepath.Join("..", "testdata", "browser", "etax-error.png"))
	if err != nil {
		t.Fatal(err)
	}
	base := env.HTTP.URL

	do(t, desk, "desk login",
		chromedp.Navigate(base+"/desk"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#agent"), "1001"),
		chromedp.SendKeys(chromedp.CSS("#password"), "demo-1001"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#desk")),
		chromedp.WaitVisible(chromedp.CSS(`#queues .q[data-queue="etax"]`)),
	)

	// A second tab in the same browser, made once the browser runs.
	widget, cancelWidget := chromedp.NewContext(desk)
	defer cancelWidget()
	do(t, widget, "chat open",
		chromedp.EmulateViewport(390, 760),
		chromedp.Navigate(base+"/chat"),
		chromedp.WaitVisible(chromedp.CSS("#start-form")),
		chromedp.SendKeys(chromedp.CSS("#tp-id"), "91310000MA1K000000"),
		chromedp.SendKeys(chromedp.CSS("#tp-name"), "张三"),
		chromedp.Click(chromedp.CSS("#start")),
		chromedp.WaitVisible(chromedp.CSS("#composer")),
	)

	do(t, desk, "accept the offer",
		chromedp.WaitVisible(chromedp.CSS(".offer button.accept")),
		chromedp.Click(chromedp.CSS(".offer button.accept")),
		chromedp.WaitVisible(chromedp.CSS(".chat .reply")),
	)

	do(t, widget, "taxpayer writes",
		chromedp.WaitVisible(chromedp.CSS(`#msgs li.msg.system`)),
		chromedp.SendKeys(chromedp.CSS("#input"), "您好，开票软件提示证书错误"),
		chromedp.Click(chromedp.CSS("#send")),
		chromedp.SetUploadFiles(chromedp.CSS("#image"), []string{upload}),
	)
	do(t, desk, "agent reads and replies",
		chromedp.WaitVisible(chromedp.CSS(`.chat .msgs li.msg.taxpayer img`)),
		chromedp.SendKeys(chromedp.CSS(".chat .reply"), "请重新插入税务UKey后再试"),
		chromedp.Click(chromedp.CSS(".chat button.send")),
	)
	if got := textOf(t, desk, `.chat .msgs li.msg.taxpayer`); !strings.Contains(got, "证书错误") {
		t.Fatalf("the desk shows %q", got)
	}
	do(t, widget, "taxpayer reads the reply",
		chromedp.WaitVisible(chromedp.CSS(`#msgs li.msg.agent`)),
	)
	if got := textOf(t, widget, `#msgs li.msg.agent`); !strings.Contains(got, "UKey") {
		t.Fatalf("the widget shows %q", got)
	}
	screenshot(t, widget, artifacts, "chat.png")
	screenshot(t, desk, artifacts, "desk.png")

	do(t, widget, "end and rate",
		chromedp.Click(chromedp.CSS("#end")),
		chromedp.WaitVisible(chromedp.CSS("#rate-form")),
		chromedp.Click(chromedp.CSS(`.stars button[data-score="4"]`)),
		chromedp.SendKeys(chromedp.CSS("#comment"), "解答及时"),
		chromedp.Click(chromedp.CSS("#rate-submit")),
		chromedp.WaitVisible(chromedp.CSS("#rated")),
	)
	screenshot(t, widget, artifacts, "chat-rated.png")
	do(t, desk, "disposition",
		chromedp.WaitVisible(chromedp.CSS(".chat .prompt")),
		chromedp.SetValue(chromedp.CSS(".chat select.disposition"), "resolved"),
		chromedp.Click(chromedp.CSS(".chat button.end")),
		chromedp.WaitNotPresent(chromedp.CSS(".chat .reply")),
	)

	// The store holds the rating, the disposition and the transcript.
	var id interaction.ID
	for _, e := range env.Store.Events("") {
		if e.Type == interaction.SurveyScore {
			id = e.ID
		}
	}
	if id == "" {
		t.Fatal("no rating stored")
	}
	if _, err := env.Store.WaitFor(id, 5*time.Second, func(e interaction.Event) bool {
		return e.Type == interaction.Ended
	}); err != nil {
		t.Fatal(err)
	}
	rec := env.Store.Record(id)
	if rec.Score != 4 || rec.Comment != "解答及时" || rec.Disposition != interaction.Resolved ||
		rec.Agent != "1001" || rec.TaxpayerName != "张三" {
		t.Fatalf("record = %+v", rec)
	}
	var kinds []string
	for _, l := range chat.Transcript(env.Store.Events(id)) {
		kinds = append(kinds, l.From+":"+l.Kind)
		if l.From == chat.FromTaxpayer && l.Kind == chat.KindText && !strings.Contains(l.Text, "证书错误") {
			t.Fatalf("taxpayer line %q", l.Text)
		}
	}
	joined := strings.Join(kinds, " ")
	for _, want := range []string{"taxpayer:text", "taxpayer:image", "agent:text"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("transcript %s lacks %s", joined, want)
		}
	}
}

// fullEnv is the whole HTTP surface on 127.0.0.1:0: the API (with the
// wallboard's and the admin page's paths), the chat gateway and the pages,
// over a real store and router, as cmd/taxline wires them.
type fullEnv struct {
	cfg    *config.Config
	db     *storage.DB
	router *queue.Router
	http   *httptest.Server
}

// chatObserver forwards the router's agent changes to the chat gateway,
// which is built after the router.
type chatObserver struct{ srv atomic.Pointer[chat.Server] }

func (o *chatObserver) AgentChanged(v queue.AgentView) {
	if s := o.srv.Load(); s != nil {
		s.AgentChanged(v)
	}
}

func startFull(t *testing.T) *fullEnv {
	t.Helper()
	cfg, err := chattest.Config(time.Minute, time.Minute, time.Minute, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	obs := &chatObserver{}
	r, err := queue.NewRouter(cfg, queue.Options{Events: db, Observer: obs, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	chatSrv := chat.NewServer(cfg, r, db, log)
	chatSrv.DeskRefresh = 200 * time.Millisecond
	obs.srv.Store(chatSrv)
	srv := api.New(cfg, db, r, nil, log)
	srv.Handle("/ws/chat", chatSrv.TaxpayerHandler())
	srv.Handle("/ws/agent", chatSrv.AgentHandler())
	pages := web.Handler()
	for _, p := range []string{"GET /chat", "GET /desk", "GET /wallboard", "GET /admin", "GET /static/"} {
		srv.Handle(p, pages)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = chatSrv.Shutdown(sctx)
		hs.CloseClientConnections()
		hs.Close()
		cancel()
		<-done
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return &fullEnv{cfg: cfg, db: db, router: r, http: hs}
}

// browser starts headless Chromium for a test and returns its first tab
// and the artifacts folder.
func browser(t *testing.T) (context.Context, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Chromium; skipped with -short")
	}
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("chromium is required at %s (apt-get install -y chromium): %v", chromium, err)
	}
	artifacts, err := filepath.Abs(filepath.Join("..", "testdata", "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1600, 1000),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	return tab, artifacts
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// waitJS waits until the JavaScript expression is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("%s (%s): %v", what, expr, err)
	}
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// TestBrowserWallboard: the wallboard logs in with the supervisor token and
// follows the router: a chat opened in the widget shows as waiting in
// queue etax, and once a desk accepts it the queue is empty again and one
// agent is busy. Seeded calls of today show P2 met and P3 missed.
func TestBrowserWallboard(t *testing.T) {
	tab, artifacts := browser(t)
	env := startFull(t)
	base := env.http.URL

	// Two calls of today: both answered (P2 100 %, met), one after 90 s
	// (P3 50 %, missed).
	now := time.Now()
	today := now.In(env.cfg.Location).Format(time.DateOnly)
	var evs []interaction.Event
	for k, wait := range []time.Duration{20 * time.Second, 90 * time.Second} {
		start := now.Add(-2 * time.Minute).Add(time.Duration(k) * time.Millisecond)
		id := interaction.NewID(start)
		evs = append(evs,
			interaction.Event{Type: interaction.Offered, At: start, ID: id, Channel: interaction.Phone, Queue: "etax"},
			interaction.Event{Type: interaction.Answered, At: start.Add(wait), ID: id, Agent: "1002"},
			interaction.Event{Type: interaction.Ended, At: start.Add(wait + 10*time.Second), ID: id, Reason: interaction.ReasonCompleted})
	}
	if err := env.db.Append(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}

	const waiting = `.queue[data-queue="etax"] .waiting`
	do(t, tab, "wallboard login",
		chromedp.Navigate(base+"/wallboard?poll=300"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#token"), "demo-supervisor-token"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#board")),
		chromedp.WaitVisible(chromedp.CSS(waiting)),
	)
	if got := textOf(t, tab, waiting); got != "0" {
		t.Fatalf("waiting before any chat: %q", got)
	}
	if got := textOf(t, tab, `#states .tile[data-state="offline"] .n`); got != "5" {
		t.Fatalf("offline agents: %q", got)
	}
	if got := textOf(t, tab, "#date"); got == today {
		waitJS(t, tab, "P2 met, P3 missed",
			`document.getElementById('t-P2').classList.contains('met') && document.getElementById('t-P3').classList.contains('missed')`)
		if p3 := textOf(t, tab, "#t-P3 .n"); p3 != "50.0%" {
			t.Fatalf("P3 shows %q", p3)
		}
	} else {
		t.Logf("the day turned (%s, seeded %s): target colours not checked", got, today)
	}
	// The token stays in sessionStorage, not in the page or the URL.
	tok, err := chromedp.Run(tab, chromedp.Evaluate[string](`sessionStorage.getItem('taxline.wallboard.token')`))
	if err != nil || tok != "demo-supervisor-token" {
		t.Fatalf("stored token %q, %v", tok, err)
	}

	widget, cancelWidget := chromedp.NewContext(tab)
	defer cancelWidget()
	do(t, widget, "chat open",
		chromedp.EmulateViewport(390, 760),
		chromedp.Navigate(base+"/chat"),
		chromedp.WaitVisible(chromedp.CSS("#start-form")),
		chromedp.SendKeys(chromedp.CSS("#tp-name"), "李四"),
		chromedp.Click(chromedp.CSS("#start")),
		chromedp.WaitVisible(chromedp.CSS("#composer")),
	)
	waitJS(t, tab, "one chat waiting", `document.querySelector('`+waiting+`').textContent === '1'`)
	if got := textOf(t, tab, `#live .tile[data-channel="chat"] .n`); got != "1" {
		t.Fatalf("live chats: %q", got)
	}
	screenshot(t, tab, artifacts, "wallboard.png")

	desk, cancelDesk := chromedp.NewContext(tab)
	defer cancelDesk()
	do(t, desk, "desk login and accept",
		chromedp.Navigate(base+"/desk"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#agent"), "1001"),
		chromedp.SendKeys(chromedp.CSS("#password"), "demo-1001"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS(".offer button.accept")),
		chromedp.Click(chromedp.CSS(".offer button.accept")),
		chromedp.WaitVisible(chromedp.CSS(".chat .reply")),
	)
	waitJS(t, tab, "queue empty, one agent busy",
		`document.querySelector('`+waiting+`').textContent === '0' &&
		 document.querySelector('#states .tile[data-state="busy"] .n').textContent === '1' &&
		 document.querySelector('#agents tr[data-agent="1001"] td.state').textContent === '服务中'`)

	// A wrong token is refused with a message and forgotten.
	do(t, tab, "bad token",
		chromedp.Click(chromedp.CSS("#logout")),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#token"), "not-a-token"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")),
	)
	if got := textOf(t, tab, "#login-error"); !strings.Contains(got, "令牌无效") {
		t.Fatalf("login error %q", got)
	}
}

// TestBrowserAdmin: the admin page shows the running config's queue and
// agents, and no password or token hash anywhere in the page; a supervisor
// token is refused; the monthly report downloads as CSV.
func TestBrowserAdmin(t *testing.T) {
	tab, artifacts := browser(t)
	env := startFull(t)
	base := env.http.URL

	do(t, tab, "supervisor refused",
		chromedp.Navigate(base+"/admin"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#token"), "demo-supervisor-token"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")),
	)
	if got := textOf(t, tab, "#login-error"); !strings.Contains(got, "无权") {
		t.Fatalf("login error %q", got)
	}
	do(t, tab, "admin login",
		chromedp.SendKeys(chromedp.CSS("#token"), "demo-admin-token"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#admin")),
		chromedp.WaitVisible(chromedp.CSS("#queues tbody tr")),
	)
	if got := textOf(t, tab, "#queues tbody tr td"); got != "etax" {
		t.Fatalf("first queue %q", got)
	}
	if got := textOf(t, tab, "#agents tbody"); !strings.Contains(got, "1001") || !strings.Contains(got, "坐席一") {
		t.Fatalf("agents %q", got)
	}
	if got := textOf(t, tab, "#rules tbody"); !strings.Contains(got, "chat.first_response") || !strings.Contains(got, "30s") {
		t.Fatalf("rules %q", got)
	}
	html, err := chromedp.Run(tab, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range env.cfg.Agents {
		if strings.Contains(html, a.Password) {
			t.Fatalf("agent %s's password is on the page", a.ID)
		}
	}
	for _, tok := range env.cfg.Auth.Tokens {
		if strings.Contains(html, tok.SHA256) {
			t.Fatalf("token %s's hash is on the page", tok.Name)
		}
	}
	screenshot(t, tab, artifacts, "admin.png")

	do(t, tab, "monthly CSV",
		chromedp.SetValue(chromedp.CSS("#month"), "2026-03"),
		chromedp.Click(chromedp.CSS("#download-csv")),
	)
	waitJS(t, tab, "report downloaded", `document.getElementById('report-status').textContent.startsWith('已下载 taxline-2026-03.csv')`)
}

// TestBrowserDeskCannedAndImage: the desk's canned replies come from
// config chat.canned (titles in the picker), and the agent can send a
// screenshot that the taxpayer sees and the transcript keeps.
func TestBrowserDeskCannedAndImage(t *testing.T) {
	tab, artifacts := browser(t)
	cfg, err := chattest.Config(time.Minute, time.Minute, time.Minute, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Chat.Canned = []config.CannedResponse{{Title: "重新插入UKey", Text: "请重新插入税务UKey后再试。"}}
	env, err := chattest.Start(cfg, nil, web.Handler())
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	base := env.HTTP.URL
	upload, err := filepath.Abs(filepath.Join("..", "testdata", "browser", "etax-error.png"))
	if err != nil {
		t.Fatal(err)
	}

	do(t, tab, "desk login",
		chromedp.Navigate(base+"/desk"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#agent"), "1001"),
		chromedp.SendKeys(chromedp.CSS("#password"), "demo-1001"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#desk")),
	)
	widget, cancelWidget := chromedp.NewContext(tab)
	defer cancelWidget()
	do(t, widget, "chat open",
		chromedp.EmulateViewport(390, 760),
		chromedp.Navigate(base+"/chat"),
		chromedp.WaitVisible(chromedp.CSS("#start-form")),
		chromedp.Click(chromedp.CSS("#start")),
		chromedp.WaitVisible(chromedp.CSS("#composer")),
	)
	do(t, tab, "accept",
		chromedp.WaitVisible(chromedp.CSS(".offer button.accept")),
		chromedp.Click(chromedp.CSS(".offer button.accept")),
		chromedp.WaitVisible(chromedp.CSS(".chat .reply")),
	)
	if got := textOf(t, tab, ".chat select.canned"); !strings.Contains(got, "重新插入UKey") || strings.Contains(got, "您好，请问有什么可以帮您") {
		t.Fatalf("canned picker %q", got)
	}
	do(t, tab, "canned reply and screenshot",
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('.chat select.canned');
			s.selectedIndex = [...s.options].findIndex((o) => o.textContent === '重新插入UKey');
			s.dispatchEvent(new Event('change')); })()`),
		chromedp.Click(chromedp.CSS(".chat button.send")),
		chromedp.SetUploadFiles(chromedp.CSS(".chat input.image"), []string{upload}),
		chromedp.WaitVisible(chromedp.CSS(".chat .msgs li.msg.agent img")),
	)
	do(t, widget, "taxpayer sees both",
		chromedp.WaitVisible(chromedp.CSS("#msgs li.msg.agent img")),
	)
	if got := textOf(t, widget, "#msgs li.msg.agent"); !strings.Contains(got, "税务UKey") {
		t.Fatalf("widget shows %q", got)
	}
	screenshot(t, tab, artifacts, "desk-image.png")

	var id interaction.ID
	for _, e := range env.Store.Events("") {
		if e.Type == interaction.ChatMessage && e.Data["kind"] == chat.KindImage && e.Actor == "agent:1001" {
			id = e.ID
		}
	}
	if id == "" {
		t.Fatal("no agent image in the store")
	}
	var kinds []string
	for _, l := range chat.Transcript(env.Store.Events(id)) {
		kinds = append(kinds, l.From+":"+l.Kind)
	}
	if j := strings.Join(kinds, " "); !strings.Contains(j, "agent:text") || !strings.Contains(j, "agent:image") {
		t.Fatalf("transcript %s", j)
	}
}

// toneWAV is a 0.5 s 440 Hz tone, 8 kHz mono 16-bit PCM: a voicemail.
func toneWAV() []byte {
	const rate, n = 8000, 4000
	b := make([]byte, 44+2*n)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], rate)
	binary.LittleEndian.PutUint32(b[28:], rate*2)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], 2*n)
	for i := range n {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/rate))
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(v))
	}
	return b
}

// TestBrowserDeskMessages: agent 1001's desk lists the open messages of
// its queue (M3) with countdowns, the caller's number masked; it claims a
// web message and a voicemail, reads the text, loads the voicemail into
// the player through the API (audited), and answers the web message. A
// message past its deadlines shows red. The store holds the
// acknowledgements, the answer and the audit of the recording.
func TestBrowserDeskMessages(t *testing.T) {
	tab, artifacts := browser(t)
	env := startFull(t)
	base := env.http.URL
	ctx := context.Background()

	w, err := env.db.Blobs().Create("voicemail/browser.wav")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(toneWAV()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	web, err := env.router.CreateTicket(ctx, queue.Ticket{Channel: interaction.Message, Queue: "etax",
		Taxpayer: queue.Taxpayer{Phone: "13800138000", Name: "王五"}, Topic: "发票",
		Data: map[string]string{"text": "开票软件升级后无法登录，请回电。", "source": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	vm, err := env.router.CreateTicket(ctx, queue.Ticket{Channel: interaction.Message, Queue: "etax",
		Taxpayer: queue.Taxpayer{Phone: "13900139000"},
		Data:     map[string]string{"recording": "voicemail/browser.wav", "duration_ms": "500"}})
	if err != nil {
		t.Fatal(err)
	}
	// As sip does: the recording on the voicemail ticket. And a message
	// from last week that nobody read, straight into the store.
	old := time.Now().Add(-7 * 24 * time.Hour)
	late := interaction.NewID(old)
	env.db.Emit(interaction.Event{Type: interaction.RecordingStarted, At: time.Now(), ID: vm.ID,
		Channel: interaction.Message, Data: map[string]string{"recording": "voicemail/browser.wav"}})
	if err := env.db.Append(ctx, interaction.Event{Type: interaction.TicketCreated, At: old, ID: late,
		Channel: interaction.Message, Queue: "etax", Data: map[string]string{
			"ack_by": old.Add(24 * time.Hour).Format(time.RFC3339), "answer_by": old.Add(48 * time.Hour).Format(time.RFC3339),
			"taxpayer_phone": "13700137000", "text": "上周的留言", "source": "web"}}); err != nil {
		t.Fatal(err)
	}
	if err := env.db.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	card := func(id interaction.ID) string { return `#tickets li.ticket[data-ticket="` + string(id) + `"]` }
	do(t, tab, "desk login and messages tab",
		chromedp.Navigate(base+"/desk"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#agent"), "1001"),
		chromedp.SendKeys(chromedp.CSS("#password"), "demo-1001"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#desk")),
		chromedp.Click(chromedp.CSS("#tab-messages")),
		chromedp.WaitVisible(chromedp.CSS(card(web.ID))),
		chromedp.WaitVisible(chromedp.CSS(card(vm.ID))),
		chromedp.WaitVisible(chromedp.CSS(card(late))),
	)
	if got := textOf(t, tab, "#msg-count"); got != "3" {
		t.Fatalf("messages tab count %q", got)
	}
	// Before the claim: masked number, no message.
	if got := textOf(t, tab, card(web.ID)+" .who"); !strings.Contains(got, "138****8000") || strings.Contains(got, "13800138000") {
		t.Fatalf("unclaimed web message shows %q", got)
	}
	html, err := chromedp.Run(tab, chromedp.OuterHTML(chromedp.CSS("#tickets")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "无法登录") {
		t.Fatal("the message text is on the page before the claim")
	}
	// Past its deadlines: red; the others count down.
	waitJS(t, tab, "the old message is overdue",
		`document.querySelector('`+card(late)+`').classList.contains('overdue') &&
		 document.querySelector('`+card(late)+` .deadline.answer-by').classList.contains('overdue') &&
		 document.querySelector('`+card(late)+` .deadline.answer-by .left').textContent.startsWith('已超时') &&
		 !document.querySelector('`+card(web.ID)+`').classList.contains('overdue') &&
		 document.querySelector('`+card(web.ID)+` .deadline.ack-by .left').textContent.startsWith('剩余') &&
		 document.getElementById('msg-count').classList.contains('overdue')`)

	do(t, tab, "claim the web message",
		chromedp.Click(chromedp.CSS(card(web.ID)+" button.claim")),
		chromedp.WaitVisible(chromedp.CSS(card(web.ID)+" .text")),
	)
	if got := textOf(t, tab, card(web.ID)+" .text"); got != "开票软件升级后无法登录，请回电。" {
		t.Fatalf("claimed web message shows %q", got)
	}
	if got := textOf(t, tab, card(web.ID)+" .who"); !strings.Contains(got, "13800138000") || !strings.Contains(got, "王五") {
		t.Fatalf("claimed web message: %q", got)
	}
	do(t, tab, "claim and load the voicemail",
		chromedp.Click(chromedp.CSS(card(vm.ID)+" button.claim")),
		chromedp.WaitVisible(chromedp.CSS(card(vm.ID)+" button.listen")),
		chromedp.Click(chromedp.CSS(card(vm.ID)+" button.listen")),
	)
	waitJS(t, tab, "the voicemail is in the player",
		`(() => { const a = document.querySelector('`+card(vm.ID)+` audio.player');
		  return a.src.startsWith('blob:') && a.readyState >= 1 && a.duration > 0.4 && a.duration < 0.6; })()`)
	screenshot(t, tab, artifacts, "desk-messages.png")

	do(t, tab, "answer the web message",
		chromedp.SetValue(chromedp.CSS(card(web.ID)+" select.disposition"), "resolved"),
		chromedp.Click(chromedp.CSS(card(web.ID)+" button.answer")),
	)
	waitJS(t, tab, "the answered message leaves the list", `!document.querySelector('`+card(web.ID)+`')`)
	if got := textOf(t, tab, "#msg-count"); got != "2" {
		t.Fatalf("messages tab count after the answer %q", got)
	}

	if err := env.db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	kinds := func(id interaction.ID) []string {
		evs, err := env.db.Events(id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			switch e.Type {
			case interaction.TicketAcknowledged, interaction.TicketAnswered:
				out = append(out, e.Type.String()+":"+e.Actor)
			case interaction.Audit:
				out = append(out, "audit:"+e.Data["what"]+":"+e.Actor)
			}
		}
		return out
	}
	if got, want := strings.Join(kinds(web.ID), " "), "ticket_acknowledged:agent:1001 ticket_answered:agent:1001"; got != want {
		t.Errorf("web message events %q, want %q", got, want)
	}
	if got, want := strings.Join(kinds(vm.ID), " "), "ticket_acknowledged:agent:1001 audit:recording:agent:1001"; got != want {
		t.Errorf("voicemail events %q, want %q", got, want)
	}
	rec, err := env.db.Interaction(web.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != interaction.StateEnded || rec.Disposition != interaction.Resolved || rec.Agent != "1001" {
		t.Errorf("answered web message: %+v", rec)
	}
	if rec, err := env.db.Interaction(vm.ID); err != nil || rec.State != interaction.StateOpen || rec.Agent != "1001" {
		t.Errorf("claimed voicemail: %+v, %v", rec, err)
	}
}
