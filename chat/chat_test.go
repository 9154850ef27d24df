package chat_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/taxline/taxline/chat"
	"github.com/taxline/taxline/chat/chattest"
	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
)

const wait = 5 * time.Second

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	// Long timers unless a test shortens the one it checks.
	cfg, err := chattest.Config(time.Minute, time.Minute, time.Minute, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func start(t *testing.T, cfg *config.Config) *chattest.Env {
	t.Helper()
	env, err := chattest.Start(cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return env
}

func dial(t *testing.T, url string) *chattest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := chattest.Dial(ctx, url, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	expect(t, c, chat.TypeHello, nil)
	return c
}

func expect(t *testing.T, c *chattest.Client, typ string, ok func(chat.Frame) bool) chat.Frame {
	t.Helper()
	f, err := c.Expect(wait, typ, ok)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func send(t *testing.T, c *chattest.Client, f chat.Frame) {
	t.Helper()
	if err := c.Send(f); err != nil {
		t.Fatal(err)
	}
}

func login(t *testing.T, env *chattest.Env, agent string) *chattest.Client {
	t.Helper()
	a := dial(t, env.AgentURL)
	send(t, a, chat.Frame{Type: chat.TypeLogin, Agent: agent, Password: "demo-" + agent})
	expect(t, a, chat.TypeLoggedIn, nil)
	return a
}

// open starts a chat and returns the taxpayer client and the chat id.
func open(t *testing.T, env *chattest.Env) (*chattest.Client, interaction.ID, string) {
	t.Helper()
	c := dial(t, env.TaxpayerURL)
	send(t, c, chat.Frame{Type: chat.TypeOpen, Topic: "general",
		Taxpayer: &chat.Taxpayer{ID: "91310000MA1K000000", Name: "张三", Phone: "13800000000"}})
	f := expect(t, c, chat.TypeOpened, nil)
	return c, f.Chat, f.Token
}

// connect opens a chat and has agent accept it.
func connect(t *testing.T, env *chattest.Env, agent *chattest.Client) (*chattest.Client, interaction.ID, string) {
	t.Helper()
	c, id, tok := open(t, env)
	expect(t, agent, chat.TypeOffer, func(f chat.Frame) bool { return f.Chat == id })
	send(t, agent, chat.Frame{Type: chat.TypeAccept, Chat: id})
	expect(t, agent, chat.TypeChatFrame, func(f chat.Frame) bool { return f.Chat == id })
	expect(t, c, chat.TypeState, func(f chat.Frame) bool { return f.State == "connected" })
	return c, id, tok
}

func isMsg(from, text string) func(chat.Frame) bool {
	return func(f chat.Frame) bool { return f.From == from && (text == "" || strings.Contains(f.Text, text)) }
}

func TestConversationBothWaysWithRating(t *testing.T) {
	env := start(t, testConfig(t))
	agent := login(t, env, "1001")
	tp, id, _ := connect(t, env, agent)

	send(t, tp, chat.Frame{Type: chat.TypeSend, ClientID: "t1", Text: "发票开不出来"})
	echo := expect(t, tp, chat.TypeMsg, isMsg(chat.FromTaxpayer, "发票"))
	if echo.ClientID != "t1" || echo.Seq == 0 {
		t.Fatalf("echo = %+v, want client_id t1 and a seq", echo)
	}
	expect(t, agent, chat.TypeMsg, isMsg(chat.FromTaxpayer, "发票"))
	// The same client id again is stored once and acked with the first seq.
	send(t, tp, chat.Frame{Type: chat.TypeSend, ClientID: "t1", Text: "发票开不出来"})
	ack := expect(t, tp, chat.TypeAck, nil)
	if ack.Seq != echo.Seq {
		t.Fatalf("duplicate acked with seq %d, want %d", ack.Seq, echo.Seq)
	}

	send(t, agent, chat.Frame{Type: chat.TypeTyping, Chat: id, On: true})
	expect(t, tp, chat.TypeTyping, func(f chat.Frame) bool { return f.On && f.From == chat.FromAgent })
	send(t, agent, chat.Frame{Type: chat.TypeSend, Chat: id, ClientID: "a1", Text: "请提供报错截图"})
	expect(t, tp, chat.TypeMsg, isMsg(chat.FromAgent, "截图"))

	png := "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	send(t, tp, chat.Frame{Type: chat.TypeSend, ClientID: "t2", Image: png})
	img := expect(t, agent, chat.TypeMsg, func(f chat.Frame) bool { return f.Kind == chat.KindImage })
	if img.Image != png {
		t.Fatalf("agent got image %q", img.Image)
	}

	send(t, agent, chat.Frame{Type: chat.TypeEnd, Chat: id, Disposition: "out_of_scope", ScopeReason: "没有这个原因"})
	expect(t, agent, chat.TypeError, func(f chat.Frame) bool { return f.Code == "bad_scope_reason" })
	send(t, agent, chat.Frame{Type: chat.TypeEnd, Chat: id, Disposition: "resolved"})
	expect(t, agent, chat.TypeClosed, func(f chat.Frame) bool { return f.Chat == id })
	expect(t, tp, chat.TypeEnded, nil)
	send(t, tp, chat.Frame{Type: chat.TypeRate, Score: 5, Comment: "很满意"})
	expect(t, tp, chat.TypeRated, nil)

	if _, err := env.Store.WaitFor(id, wait, func(e interaction.Event) bool { return e.Type == interaction.SurveyScore }); err != nil {
		t.Fatal(err)
	}
	rec := env.Store.Record(id)
	if rec.Score != 5 || rec.Comment != "很满意" || rec.Disposition != interaction.Resolved || rec.Agent != "1001" {
		t.Fatalf("record = %+v", rec)
	}
	if rec.FirstResponseAt.IsZero() {
		t.Fatal("the agent's first message did not count as the first response (C2)")
	}
	lines := chat.Transcript(env.Store.Events(id))
	var froms []string
	for i, l := range lines {
		if l.Seq != uint64(i+1) {
			t.Fatalf("transcript line %d has seq %d", i, l.Seq)
		}
		froms = append(froms, l.From+":"+l.Kind)
	}
	want := "system:system taxpayer:text agent:text taxpayer:image system:system"
	// welcome, (connected), taxpayer text, agent text, image, agent-end text
	got := strings.Join(froms, " ")
	if !strings.Contains(got, "taxpayer:text agent:text taxpayer:image") || strings.Count(got, "taxpayer:text") != 1 {
		t.Fatalf("transcript = %s, want the shape %s", got, want)
	}
}

// C2 and C3: with no agent the taxpayer is told position and wait at once
// and the first-response target is missed exactly once; with an agent who
// answers and writes in time it is not missed.
func TestHoldingAndFirstResponse(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Chat.FirstResponse = 700 * time.Millisecond
	env := start(t, cfg)

	tp, id, _ := open(t, env)
	hold := expect(t, tp, chat.TypeMsg, isMsg(chat.FromSystem, "还有 1 位"))
	if !strings.Contains(hold.Text, "分钟") || strings.Contains(hold.Text, "{") {
		t.Fatalf("holding text = %q", hold.Text)
	}
	st := expect(t, tp, chat.TypeState, nil)
	if st.State != "queued" || st.Position != 1 {
		t.Fatalf("state = %+v", st)
	}
	start := time.Now()
	ev, err := env.Store.WaitFor(id, wait, func(e interaction.Event) bool { return e.Type == interaction.FirstResponseMissed })
	if err != nil {
		t.Fatal(err)
	}
	if d := ev.At.Sub(env.Store.Events(id)[0].At); d < 700*time.Millisecond || d > 700*time.Millisecond+time.Second {
		t.Fatalf("C2 fired %v after the offer, want 700ms", d)
	}
	_ = start

	agent := login(t, env, "1001")
	expect(t, agent, chat.TypeOffer, func(f chat.Frame) bool { return f.Chat == id })
	send(t, agent, chat.Frame{Type: chat.TypeAccept, Chat: id})
	expect(t, tp, chat.TypeState, func(f chat.Frame) bool { return f.State == "connected" })

	// A second chat, answered and replied to within the target.
	tp2, id2, _ := open(t, env)
	expect(t, agent, chat.TypeOffer, func(f chat.Frame) bool { return f.Chat == id2 })
	send(t, agent, chat.Frame{Type: chat.TypeAccept, Chat: id2})
	expect(t, tp2, chat.TypeState, func(f chat.Frame) bool { return f.State == "connected" })
	send(t, agent, chat.Frame{Type: chat.TypeSend, Chat: id2, ClientID: "a1", Text: "您好"})
	expect(t, tp2, chat.TypeMsg, isMsg(chat.FromAgent, "您好"))
	for _, f := range tp2.Collect(1500 * time.Millisecond) {
		if f.Type == chat.TypeMsg && strings.Contains(f.Text, "位") {
			t.Fatalf("answered chat got a holding message: %q", f.Text)
		}
	}
	if n := env.Store.Count(id, interaction.FirstResponseMissed); n != 1 {
		t.Fatalf("C2 missed %d times for the waiting chat, want 1", n)
	}
	if n := env.Store.Count(id2, interaction.FirstResponseMissed); n != 0 {
		t.Fatalf("C2 fired for a chat answered in time")
	}
}

// C4: the taxpayer spoke last and the agent is silent: the agent is
// prompted and the taxpayer offered the choice, once, at its time; an agent
// who replies in time clears it; "answer me later" makes a follow-up ticket.
func TestAgentSilence(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Chat.AgentSilence = 800 * time.Millisecond
	env := start(t, cfg)
	agent := login(t, env, "1001")

	// Cleared: the agent replies before the limit.
	tp1, id1, _ := connect(t, env, agent)
	send(t, tp1, chat.Frame{Type: chat.TypeSend, ClientID: "q", Text: "在吗"})
	expect(t, agent, chat.TypeMsg, isMsg(chat.FromTaxpayer, "在吗"))
	send(t, agent, chat.Frame{Type: chat.TypeSend, Chat: id1, ClientID: "r", Text: "在的"})
	expect(t, tp1, chat.TypeMsg, isMsg(chat.FromAgent, "在的"))

	// Fires: the agent stays silent.
	tp, id, _ := connect(t, env, agent)
	sent := time.Now()
	send(t, tp, chat.Frame{Type: chat.TypeSend, ClientID: "q", Text: "怎么申报"})
	choice := expect(t, tp, chat.TypeMsg, func(f chat.Frame) bool { return f.Kind == chat.KindChoice })
	if d := time.Since(sent); d < 750*time.Millisecond || d > 800*time.Millisecond+time.Second {
		t.Fatalf("C4 fired after %v, want 800ms", d)
	}
	if choice.Text != cfg.Chat.Messages.AgentSilence {
		t.Fatalf("choice text %q", choice.Text)
	}
	expect(t, agent, chat.TypePrompt, func(f chat.Frame) bool { return f.Chat == id && f.Kind == "agent_silence" })

	// Once only, and never for the chat where the agent answered.
	tp.Collect(2 * time.Second)
	if n := env.Store.Count(id, interaction.AgentSilence); n != 1 {
		t.Fatalf("C4 fired %d times, want 1", n)
	}
	if n := env.Store.Count(id1, interaction.AgentSilence); n != 0 {
		t.Fatalf("C4 fired %d times for a chat the agent answered", n)
	}

	send(t, tp, chat.Frame{Type: chat.TypeChoose, Later: true})
	tk := expect(t, tp, chat.TypeTicket, nil)
	if tk.Ticket == nil || tk.Ticket.AnswerBy.IsZero() {
		t.Fatalf("ticket frame %+v", tk)
	}
	expect(t, tp, chat.TypeEnded, nil)
	expect(t, agent, chat.TypeClosed, func(f chat.Frame) bool { return f.Chat == id })
	rec := env.Store.Record(tk.Ticket.ID)
	if rec.State != interaction.StateOpen || rec.Parent != id || rec.Agent != "1001" {
		t.Fatalf("follow-up ticket = %+v", rec)
	}
	if r := env.Store.Record(id); r.Reason != interaction.ReasonCallback {
		t.Fatalf("chat ended with %v, want callback", r.Reason)
	}
}

// C5: reminder after the taxpayer's silence, then the closing message and
// the end after the grace period; a reply after the reminder clears it.
func TestCustomerSilence(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Chat.CustomerSilenceReminder = 700 * time.Millisecond
	cfg.Chat.CustomerSilenceClose = 700 * time.Millisecond
	env := start(t, cfg)
	agent := login(t, env, "1001")

	// Cleared: the taxpayer answers the reminder.
	tp1, id1, _ := connect(t, env, agent)
	send(t, agent, chat.Frame{Type: chat.TypeSend, Chat: id1, ClientID: "a", Text: "请问还有问题吗"})
	expect(t, tp1, chat.TypeMsg, isMsg(chat.FromSystem, "还在吗"))
	send(t, tp1, chat.Frame{Type: chat.TypeSend, ClientID: "t", Text: "还在"})

	tp, id, _ := connect(t, env, agent)
	sent := time.Now()
	send(t, agent, chat.Frame{Type: chat.TypeSend, Chat: id, ClientID: "a", Text: "已处理好了"})
	expect(t, tp, chat.TypeMsg, isMsg(chat.FromSystem, "还在吗"))
	if d := time.Since(sent); d < 650*time.Millisecond || d > 700*time.Millisecond+time.Second {
		t.Fatalf("C5 reminder after %v, want 700ms", d)
	}
	closing := expect(t, tp, chat.TypeMsg, isMsg(chat.FromSystem, ""))
	if closing.Text != cfg.Chat.Messages.Closing {
		t.Fatalf("closing text %q", closing.Text)
	}
	if d := time.Since(sent); d < 1300*time.Millisecond || d > 1400*time.Millisecond+time.Second {
		t.Fatalf("C5 close after %v, want 1.4s", d)
	}
	expect(t, tp, chat.TypeEnded, func(f chat.Frame) bool { return f.Reason == "customer_silence" })
	expect(t, agent, chat.TypeClosed, func(f chat.Frame) bool { return f.Chat == id })

	tp1.Collect(time.Second)
	if n := env.Store.Count(id, interaction.CustomerReminder); n != 1 {
		t.Fatalf("C5 reminded %d times, want 1", n)
	}
	if r := env.Store.Record(id); r.Reason != interaction.ReasonCustomerSilence {
		t.Fatalf("ended with %v", r.Reason)
	}
	if r := env.Store.Record(id1); r.State != interaction.StateConnected {
		t.Fatalf("the chat whose taxpayer answered is %v, want connected", r.State)
	}
}

// A dropped taxpayer connection resumes with its token: every line it
// missed arrives once, a message re-sent with the same client id is stored
// once, and the transcript has no gap and no duplicate.
func TestResumeLosesAndDuplicatesNothing(t *testing.T) {
	env := start(t, testConfig(t))
	agent := login(t, env, "1001")

	// seen is every message the taxpayer's page has shown, by seq.
	seen := map[uint64]string{}
	record := func(f chat.Frame) {
		if prev, dup := seen[f.Seq]; dup {
			t.Fatalf("seq %d delivered twice (%q, %q)", f.Seq, prev, f.Text)
		}
		seen[f.Seq] = f.Text
	}
	// next reads tp's frames, recording every message, until one of typ
	// matches ok.
	next := func(tp *chattest.Client, typ string, ok func(chat.Frame) bool) chat.Frame {
		t.Helper()
		timeout := time.After(wait)
		for {
			select {
			case f, open := <-tp.Frames():
				if !open {
					t.Fatalf("closed waiting for %s: %v", typ, tp.CloseErr)
				}
				if f.Type == chat.TypeMsg {
					record(f)
				}
				if f.Type == chat.TypeHistory {
					for _, m := range f.Msgs {
						record(m)
					}
				}
				if f.Type == typ && (ok == nil || ok(f)) {
					return f
				}
			case <-timeout:
				t.Fatalf("no %s frame", typ)
			}
		}
	}
	tp := dial(t, env.TaxpayerURL)
	send(t, tp, chat.Frame{Type: chat.TypeOpen})
	op := next(tp, chat.TypeOpened, nil)
	id, tok := op.Chat, op.Token
	expect(t, agent, chat.TypeOffer, nil)
	send(t, agent, chat.Frame{Type: chat.TypeAccept, Chat: id})
	next(tp, chat.TypeMsg, isMsg(chat.FromSystem, "已接入"))
	for i := range 3 {
		send(t, agent, chat.Frame{Type: chat.TypeSend, Chat: id, ClientID: fmt.Sprint("a", i), Text: fmt.Sprint("回复", i)})
		next(tp, chat.TypeMsg, isMsg(chat.FromAgent, fmt.Sprint("回复", i)))
	}
	var last uint64
	for s := range seen {
		last = max(last, s)
	}
	// The network drops; the agent keeps writing.
	tp.Close()
	for i := 3; i < 6; i++ {
		send(t, agent, chat.Frame{Type: chat.TypeSend, Chat: id, ClientID: fmt.Sprint("a", i), Text: fmt.Sprint("回复", i)})
		expect(t, agent, chat.TypeMsg, isMsg(chat.FromAgent, fmt.Sprint("回复", i)))
	}
	// The taxpayer's page had sent "t9" just before the drop: the server
	// stored it but the echo never arrived. (A second socket that reads
	// nothing stands in for the lost echo.)
	lost := dial(t, env.TaxpayerURL)
	send(t, lost, chat.Frame{Type: chat.TypeResume, Token: tok, LastSeq: 1 << 40})
	expect(t, lost, chat.TypeOpened, nil)
	send(t, lost, chat.Frame{Type: chat.TypeSend, ClientID: "t9", Text: "我的税号是多少"})
	expect(t, agent, chat.TypeMsg, isMsg(chat.FromTaxpayer, "税号"))
	lost.Close()

	tp2 := dial(t, env.TaxpayerURL)
	send(t, tp2, chat.Frame{Type: chat.TypeResume, Token: tok, LastSeq: last})
	op = next(tp2, chat.TypeOpened, nil)
	if !op.Resumed || op.Chat != id || op.State != "connected" {
		t.Fatalf("opened = %+v", op)
	}
	h := next(tp2, chat.TypeHistory, nil)
	if len(h.Msgs) != 4 || h.Msgs[0].Seq != last+1 {
		t.Fatalf("history has %d lines from seq %d, want 4 from %d", len(h.Msgs), h.Msgs[0].Seq, last+1)
	}
	// The page re-sends its unacknowledged message: acked, not stored again.
	send(t, tp2, chat.Frame{Type: chat.TypeSend, ClientID: "t9", Text: "我的税号是多少"})
	ack := next(tp2, chat.TypeAck, func(f chat.Frame) bool { return f.ClientID == "t9" })
	if seen[ack.Seq] != "我的税号是多少" {
		t.Fatalf("re-sent message acked with seq %d (%q)", ack.Seq, seen[ack.Seq])
	}
	send(t, agent, chat.Frame{Type: chat.TypeSend, Chat: id, ClientID: "a9", Text: "最后一条"})
	next(tp2, chat.TypeMsg, isMsg(chat.FromAgent, "最后一条"))

	lines := chat.Transcript(env.Store.Events(id))
	for i, l := range lines {
		if l.Seq != uint64(i+1) {
			t.Fatalf("stored line %d has seq %d", i, l.Seq)
		}
		if got, ok := seen[l.Seq]; !ok || got != l.Text {
			t.Fatalf("seq %d stored %q, the taxpayer saw %q (seen=%v)", l.Seq, l.Text, got, ok)
		}
	}
	if len(lines) != len(seen) {
		t.Fatalf("stored %d lines, the taxpayer saw %d", len(lines), len(seen))
	}
	if n := strings.Count(fmt.Sprint(lines), "我的税号是多少"); n != 1 {
		t.Fatalf("re-sent message stored %d times", n)
	}
}

// closeCode returns the close code and reason that ended c.
func closeCode(t *testing.T, c *chattest.Client) (int, string) {
	t.Helper()
	err := c.WaitClosed(wait)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("connection ended with %v, want a close frame", err)
	}
	return ce.Code, ce.Text
}

// Each limit closes only the offending socket, with its code and a reason;
// a healthy chat on the same server keeps flowing.
func TestLimitsCloseOnlyTheOffender(t *testing.T) {
	cfg := testConfig(t)
	cfg.Chat.Limits.MaxFrameBytes = 64 << 10
	cfg.Chat.Limits.MaxTextChars = 100
	cfg.Chat.Limits.AllowedOrigins = []string{"https://etax.example.cn"}
	env := start(t, cfg)
	agent := login(t, env, "1001")
	healthy, id, _ := connect(t, env, agent)
	n := 0
	stillFine := func() {
		t.Helper()
		n++
		send(t, agent, chat.Frame{Type: chat.TypeSend, Chat: id, ClientID: fmt.Sprint("h", n), Text: fmt.Sprint("仍然正常", n)})
		expect(t, healthy, chat.TypeMsg, isMsg(chat.FromAgent, fmt.Sprint("仍然正常", n)))
	}

	cases := []struct {
		name   string
		origin string
		do     func(c *chattest.Client) error
		code   int
		reason string
	}{
		{"origin", "https://evil.example.com", nil, websocket.ClosePolicyViolation, "origin"},
		{"frame too big", "", func(c *chattest.Client) error {
			// The server may reset the socket before the write ends.
			_ = c.SendRaw(websocket.TextMessage, []byte(`{"v":1,"type":"send","text":"`+strings.Repeat("x", 70<<10)+`"}`))
			return nil
		}, websocket.CloseMessageTooBig, ""},
		{"text too long", "", func(c *chattest.Client) error {
			return c.Send(chat.Frame{Type: chat.TypeSend, ClientID: "x", Text: strings.Repeat("长", 101)})
		}, websocket.CloseMessageTooBig, "text too large"},
		{"not json", "", func(c *chattest.Client) error { return c.SendRaw(websocket.TextMessage, []byte("hello")) },
			websocket.CloseUnsupportedData, "bad frame"},
		{"bad utf-8", "", func(c *chattest.Client) error {
			return c.SendRaw(websocket.TextMessage, []byte("{\"v\":1,\"type\":\"send\",\"text\":\"\xff\xfe\"}"))
		}, websocket.CloseInvalidFramePayloadData, "UTF-8"},
		{"wrong version", "", func(c *chattest.Client) error {
			return c.SendRaw(websocket.TextMessage, []byte(`{"v":2,"type":"open"}`))
		}, websocket.CloseUnsupportedData, "version"},
		{"binary", "", func(c *chattest.Client) error { return c.SendRaw(websocket.BinaryMessage, []byte{1, 2}) },
			websocket.CloseUnsupportedData, "binary"},
		{"unknown type", "", func(c *chattest.Client) error { return c.Send(chat.Frame{Type: "hack"}) },
			websocket.CloseUnsupportedData, "unknown frame type"},
		{"image type", "", func(c *chattest.Client) error {
			return c.Send(chat.Frame{Type: chat.TypeSend, ClientID: "i", Image: "data:text/html;base64,PGI+"})
		}, websocket.CloseUnsupportedData, "not accepted"},
		{"rate", "", func(c *chattest.Client) error {
			for i := range cfg.Chat.Limits.Burst + 5 {
				if err := c.Send(chat.Frame{Type: chat.TypeTyping, On: i%2 == 0}); err != nil {
					return nil // already closed
				}
			}
			return nil
		}, websocket.ClosePolicyViolation, "rate limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			c, err := chattest.Dial(ctx, env.TaxpayerURL, tc.origin)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc.do != nil {
				expect(t, c, chat.TypeHello, nil)
				if err := tc.do(c); err != nil {
					t.Fatal(err)
				}
			}
			code, reason := closeCode(t, c)
			if code != tc.code || !strings.Contains(reason, tc.reason) {
				t.Fatalf("closed with %d %q, want %d %q", code, reason, tc.code, tc.reason)
			}
		})
		stillFine()
	}

	// An allowed origin is accepted.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ok, err := chattest.Dial(ctx, env.TaxpayerURL, "https://etax.example.cn")
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Close()
	expect(t, ok, chat.TypeHello, nil)
}

// A taxpayer who stops reading is dropped when its send queue fills, and
// neither its agent nor anyone else waits for it.
func TestSlowClientIsDropped(t *testing.T) {
	cfg := testConfig(t)
	cfg.Chat.Limits.SendQueue = 4
	cfg.Chat.Limits.RatePerSecond = 100000
	cfg.Chat.Limits.Burst = 100000
	env := start(t, cfg)
	agent := login(t, env, "1001")
	slow, slowID, _ := connect(t, env, agent)
	fast, fastID, _ := connect(t, env, agent)
	// The slow taxpayer's client stops reading: its socket buffers fill.
	if tc, ok := slow.WS.UnderlyingConn().(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(1024)
	}
	slow.Pause()
	big := strings.Repeat("税", 1900)
	deadline := time.Now().Add(20 * time.Second)
	before := env.Server.Stats()
	for sent := 1; time.Now().Before(deadline) && env.Server.Stats().SlowDropped == before.SlowDropped; sent++ {
		send(t, agent, chat.Frame{Type: chat.TypeSend, Chat: slowID, ClientID: fmt.Sprint("s", sent), Text: big})
		// The agent's desk shows each of its messages, as a desk does.
		expect(t, agent, chat.TypeMsg, func(f chat.Frame) bool { return f.ClientID == fmt.Sprint("s", sent) })
		if sent%50 == 0 {
			// The healthy chat still gets its messages promptly.
			t0 := time.Now()
			send(t, agent, chat.Frame{Type: chat.TypeSend, Chat: fastID, ClientID: fmt.Sprint("f", sent), Text: "快"})
			expect(t, fast, chat.TypeMsg, isMsg(chat.FromAgent, "快"))
			if d := time.Since(t0); d > 2*time.Second {
				t.Fatalf("healthy chat delayed %v", d)
			}
		}
	}
	if st := env.Server.Stats(); st.SlowDropped != before.SlowDropped+1 {
		t.Fatalf("stats = %+v, want one slow client dropped", st)
	}
	// The server closes the socket at once (its close frame cannot get
	// through a full socket, so the client need not see the reason).
	for end := time.Now().Add(wait); env.Server.Stats().Connections != before.Connections-1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the slow client's socket is still open: %+v", env.Server.Stats())
		}
	}
	slow.Resume()
	// The session survives the drop: the agent can keep writing.
	send(t, agent, chat.Frame{Type: chat.TypeSend, Chat: slowID, ClientID: "after", Text: "稍后重连可看到"})
	expect(t, agent, chat.TypeMsg, isMsg(chat.FromAgent, "稍后重连"))
}

// M2: outside chat hours the taxpayer may leave a web message, which
// becomes a message ticket with M3 deadlines.
func TestAfterHoursWebMessage(t *testing.T) {
	cfg := testConfig(t)
	tomorrow := strings.ToLower(time.Now().In(cfg.Location).Add(24 * time.Hour).Weekday().String()[:3])
	cfg.Hours["closed"] = config.Hours{Weekly: []config.Window{{Days: []string{tomorrow}, From: "00:00", To: "24:00"}}, Holidays: "ignore"}
	cfg.Queues[0].ChatHours = "closed"
	env := start(t, cfg)

	tp, id, _ := open(t, env)
	ah := expect(t, tp, chat.TypeAfterHours, nil)
	if ah.Text != cfg.Chat.Messages.AfterHours {
		t.Fatalf("after-hours text %q", ah.Text)
	}
	send(t, tp, chat.Frame{Type: chat.TypeLeaveMessage, Text: "个税申报提示网络错误，请回电。",
		Taxpayer: &chat.Taxpayer{Phone: "13900000000"}})
	got := expect(t, tp, chat.TypeMsg, isMsg(chat.FromSystem, "留言已收到"))
	tk := expect(t, tp, chat.TypeTicket, nil)
	if !strings.Contains(got.Text, "前回复") {
		t.Fatalf("confirmation %q", got.Text)
	}
	expect(t, tp, chat.TypeEnded, nil)
	rec := env.Store.Record(tk.Ticket.ID)
	if rec.Channel != interaction.Message || rec.State != interaction.StateOpen || rec.Parent != id ||
		rec.TaxpayerPhone != "13900000000" || rec.AnswerBy.IsZero() || rec.AckBy.IsZero() {
		t.Fatalf("ticket = %+v", rec)
	}
	var text string
	for _, e := range env.Store.Events(tk.Ticket.ID) {
		if e.Type == interaction.TicketCreated {
			text = e.Data["text"]
		}
	}
	if text != "个税申报提示网络错误，请回电。" {
		t.Fatalf("ticket text %q", text)
	}
}

// The desk: a wrong password is refused, break and available reach the
// router, queue figures are pushed, a declined offer goes to the next
// agent, and a transfer to another queue rings that queue's agent.
func TestDesk(t *testing.T) {
	cfg := testConfig(t)
	cfg.Queues = append(cfg.Queues, config.Queue{Name: "invoice", Channels: []string{"chat"}, Strategy: "longest_idle",
		Hours: "always", ChatHours: "always", JoinEmpty: cfg.Queues[0].JoinEmpty, AnnounceInterval: 30 * time.Second})
	cfg.Agents[2].Queues = []string{"invoice"}
	env := start(t, cfg)

	bad := dial(t, env.AgentURL)
	send(t, bad, chat.Frame{Type: chat.TypeLogin, Agent: "1001", Password: "nope"})
	expect(t, bad, chat.TypeError, func(f chat.Frame) bool { return f.Code == "bad_login" })

	a1 := login(t, env, "1001")
	send(t, a1, chat.Frame{Type: chat.TypeStatus, Status: "break", Reason: "午休"})
	expect(t, a1, chat.TypeAgentState, func(f chat.Frame) bool { return f.Status == "break" && f.Reason == "午休" })
	tp, id, _ := open(t, env)
	q := expect(t, a1, chat.TypeQueues, func(f chat.Frame) bool { return len(f.Queues) > 0 && f.Queues[0].Waiting == 1 })
	if q.Queues[0].Name != "etax" {
		t.Fatalf("queues = %+v", q.Queues)
	}
	a2 := login(t, env, "1002")
	expect(t, a2, chat.TypeOffer, func(f chat.Frame) bool { return f.Chat == id })
	send(t, a2, chat.Frame{Type: chat.TypeDecline, Chat: id})
	send(t, a1, chat.Frame{Type: chat.TypeStatus, Status: "available"})
	expect(t, a1, chat.TypeOffer, func(f chat.Frame) bool { return f.Chat == id })
	send(t, a1, chat.Frame{Type: chat.TypeAccept, Chat: id})
	expect(t, tp, chat.TypeState, func(f chat.Frame) bool { return f.State == "connected" })

	a3 := login(t, env, "1003")
	send(t, a1, chat.Frame{Type: chat.TypeTransfer, Chat: id, Target: "invoice"})
	expect(t, a1, chat.TypeClosed, func(f chat.Frame) bool { return f.Chat == id && f.Reason == "transferred" })
	expect(t, tp, chat.TypeMsg, isMsg(chat.FromSystem, "转接"))
	expect(t, a3, chat.TypeOffer, func(f chat.Frame) bool { return f.Chat == id && f.Queue == "invoice" })
	send(t, a3, chat.Frame{Type: chat.TypeAccept, Chat: id})
	c := expect(t, a3, chat.TypeChatFrame, func(f chat.Frame) bool { return f.Chat == id })
	if len(c.Msgs) == 0 {
		t.Fatal("the new agent got no history")
	}
	// The taxpayer leaves; the agent still gives the disposition.
	send(t, tp, chat.Frame{Type: chat.TypeEnd})
	expect(t, a3, chat.TypeTaxpayerLeft, func(f chat.Frame) bool { return f.Chat == id })
	send(t, a3, chat.Frame{Type: chat.TypeEnd, Chat: id, Disposition: "out_of_scope", ScopeReason: cfg.ScopeReasons[0]})
	expect(t, a3, chat.TypeClosed, func(f chat.Frame) bool { return f.Chat == id })
	if _, err := env.Store.WaitFor(id, wait, func(e interaction.Event) bool { return e.Type == interaction.Ended }); err != nil {
		t.Fatal(err)
	}
	rec := env.Store.Record(id)
	if rec.Disposition != interaction.OutOfScope || rec.ScopeReason != cfg.ScopeReasons[0] || rec.Agent != "1003" {
		t.Fatalf("record = %+v", rec)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// A desk that drops keeps its chats: logging in again with its token
// gives them back with what was said meanwhile. An offer to a desk that
// drops fails as lost and goes to the next agent.
func TestDeskReconnect(t *testing.T) {
	env := start(t, testConfig(t))
	a1 := dial(t, env.AgentURL)
	send(t, a1, chat.Frame{Type: chat.TypeLogin, Agent: "1001", Password: "demo-1001"})
	tok := expect(t, a1, chat.TypeLoggedIn, nil).Token
	tp, id, _ := connect(t, env, a1)
	a1.Close()
	send(t, tp, chat.Frame{Type: chat.TypeSend, ClientID: "t1", Text: "客服还在吗"})
	expect(t, tp, chat.TypeMsg, isMsg(chat.FromTaxpayer, "还在吗"))

	again := dial(t, env.AgentURL)
	send(t, again, chat.Frame{Type: chat.TypeLogin, Token: tok})
	expect(t, again, chat.TypeLoggedIn, func(f chat.Frame) bool { return f.Agent == "1001" })
	c := expect(t, again, chat.TypeChatFrame, func(f chat.Frame) bool { return f.Chat == id })
	if last := c.Msgs[len(c.Msgs)-1]; last.Text != "客服还在吗" {
		t.Fatalf("history ends with %q", last.Text)
	}
	send(t, again, chat.Frame{Type: chat.TypeSend, Chat: id, ClientID: "a1", Text: "在的"})
	expect(t, tp, chat.TypeMsg, isMsg(chat.FromAgent, "在的"))

	// 1001 is on break; 1002 is offered the next chat and vanishes.
	send(t, again, chat.Frame{Type: chat.TypeStatus, Status: "break"})
	expect(t, again, chat.TypeAgentState, func(f chat.Frame) bool { return f.Status == "break" })
	a2 := login(t, env, "1002")
	_, id2, _ := open(t, env)
	expect(t, a2, chat.TypeOffer, func(f chat.Frame) bool { return f.Chat == id2 })
	a2.Close()
	if _, err := env.Store.WaitFor(id2, wait, func(e interaction.Event) bool {
		return e.Type == interaction.RingFailed && e.Data["cause"] == "lost"
	}); err != nil {
		t.Fatal(err)
	}
	send(t, again, chat.Frame{Type: chat.TypeStatus, Status: "available"})
	expect(t, again, chat.TypeOffer, func(f chat.Frame) bool { return f.Chat == id2 })

	// A stale token is refused.
	bad := dial(t, env.AgentURL)
	send(t, bad, chat.Frame{Type: chat.TypeLogin, Token: "0123456789abcdef0123456789abcdef"})
	expect(t, bad, chat.TypeError, func(f chat.Frame) bool { return f.Code == "bad_login" })
}

// Reload changes the texts and topics new chats get; the live socket
// keeps working.
func TestReload(t *testing.T) {
	cfg := testConfig(t)
	env := start(t, cfg)
	next := *cfg
	next.Chat.Messages.Welcome = "新的欢迎语"
	next.Chat.Topics = append([]config.Topic{{Name: "invoice", Label: "发票问题", Queue: "etax"}}, cfg.Chat.Topics...)
	env.Server.Reload(&next)
	c := dial(t, env.TaxpayerURL)
	send(t, c, chat.Frame{Type: chat.TypeOpen, Topic: "invoice"})
	op := expect(t, c, chat.TypeOpened, nil)
	if op.Topic != "invoice" {
		t.Fatalf("opened %+v", op)
	}
	expect(t, c, chat.TypeMsg, isMsg(chat.FromSystem, "新的欢迎语"))
}

// A peer that stops answering pings is closed after pong_timeout; one
// that answers (a reading client answers pings by itself) stays.
func TestPongDeadline(t *testing.T) {
	cfg := testConfig(t)
	cfg.Chat.Limits.PingInterval = 100 * time.Millisecond
	cfg.Chat.Limits.PongTimeout = 400 * time.Millisecond
	env := start(t, cfg)
	alive := dial(t, env.TaxpayerURL)
	// A raw connection that never reads never answers a ping.
	dead, _, err := websocket.DefaultDialer.Dial(env.TaxpayerURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	t0 := time.Now()
	for env.Server.Stats().Connections != 1 {
		if time.Since(t0) > wait {
			t.Fatalf("the silent peer is still connected: %+v", env.Server.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Fatalf("closed after %v, before pong_timeout", d)
	}
	send(t, alive, chat.Frame{Type: chat.TypeOpen})
	expect(t, alive, chat.TypeOpened, nil)
}
