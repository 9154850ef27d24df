package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/taxline/taxline/chat"
	"github.com/taxline/taxline/chat/chattest"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/web"
)

const chromium = "/usr/bin/chromium"

// TestBrowserChatAndDesk drives the real pages in headless Chromium: an
// agent logs in on /desk, a taxpayer opens /chat, they exchange messages
// both ways (and a screenshot file), the taxpayer ends and rates the chat,
// the agent records the disposition; the rating and the transcript must be
// in the store. Screenshots of both pages go to testdata/artifacts/.
func TestBrowserChatAndDesk(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Chromium; skipped with -short")
	}
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("chromium is required at %s (apt-get install -y chromium): %v", chromium, err)
	}
	cfg, err := chattest.Config(time.Minute, time.Minute, time.Minute, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	env, err := chattest.Start(cfg, nil, web.Handler())
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()

	artifacts, err := filepath.Abs(filepath.Join("..", "testdata", "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	upload, err := filepath.Abs(filepath.Join("..", "testdata", "browser", "etax-error.png"))
	if err != nil {
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
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 800),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	desk, cancelDesk := chromedp.NewContext(alloc)
	defer cancelDesk()

	run := func(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(ctx context.Context, sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	shot := func(ctx context.Context, name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(artifacts, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	base := env.HTTP.URL

	run(desk, "desk login",
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
	run(widget, "chat open",
		chromedp.EmulateViewport(390, 760),
		chromedp.Navigate(base+"/chat"),
		chromedp.WaitVisible(chromedp.CSS("#start-form")),
		chromedp.SendKeys(chromedp.CSS("#tp-id"), "91310000MA1K000000"),
		chromedp.SendKeys(chromedp.CSS("#tp-name"), "张三"),
		chromedp.Click(chromedp.CSS("#start")),
		chromedp.WaitVisible(chromedp.CSS("#composer")),
	)

	run(desk, "accept the offer",
		chromedp.WaitVisible(chromedp.CSS(".offer button.accept")),
		chromedp.Click(chromedp.CSS(".offer button.accept")),
		chromedp.WaitVisible(chromedp.CSS(".chat .reply")),
	)

	run(widget, "taxpayer writes",
		chromedp.WaitVisible(chromedp.CSS(`#msgs li.msg.system`)),
		chromedp.SendKeys(chromedp.CSS("#input"), "您好，开票软件提示证书错误"),
		chromedp.Click(chromedp.CSS("#send")),
		chromedp.SetUploadFiles(chromedp.CSS("#image"), []string{upload}),
	)
	run(desk, "agent reads and replies",
		chromedp.WaitVisible(chromedp.CSS(`.chat .msgs li.msg.taxpayer img`)),
		chromedp.SendKeys(chromedp.CSS(".chat .reply"), "请重新插入税务UKey后再试"),
		chromedp.Click(chromedp.CSS(".chat button.send")),
	)
	if got := text(desk, `.chat .msgs li.msg.taxpayer`); !strings.Contains(got, "证书错误") {
		t.Fatalf("the desk shows %q", got)
	}
	run(widget, "taxpayer reads the reply",
		chromedp.WaitVisible(chromedp.CSS(`#msgs li.msg.agent`)),
	)
	if got := text(widget, `#msgs li.msg.agent`); !strings.Contains(got, "UKey") {
		t.Fatalf("the widget shows %q", got)
	}
	shot(widget, "chat.png")
	shot(desk, "desk.png")

	run(widget, "end and rate",
		chromedp.Click(chromedp.CSS("#end")),
		chromedp.WaitVisible(chromedp.CSS("#rate-form")),
		chromedp.Click(chromedp.CSS(`.stars button[data-score="4"]`)),
		chromedp.SendKeys(chromedp.CSS("#comment"), "解答及时"),
		chromedp.Click(chromedp.CSS("#rate-submit")),
		chromedp.WaitVisible(chromedp.CSS("#rated")),
	)
	shot(widget, "chat-rated.png")
	run(desk, "disposition",
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
