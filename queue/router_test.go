package queue_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/queue/queuetest"
)

const baseConfig = `
server: {timezone: Asia/Shanghai}
calendar: {files: ["embedded:2026"]}
queues:
  - {name: q, channels: [phone, chat], wrapup: 5s, announce_interval: 45s}
  - {name: other, channels: [phone, chat]}
agents:
  - {id: "a1", queues: [q], skills: {tax: 2}, max_chats: 2}
  - {id: "a2", queues: [q], skills: {tax: 1}}
  - {id: "a3", queues: [other]}
phone: {ring_timeout: 10s, autopause_after: 2, answer_target: 60s}
chat:
  first_response: 30s
  agent_silence: 2m
  customer_silence_reminder: 4m
  customer_silence_close: 2m
  offer_timeout: 15s
`

// harness runs a router inside a synctest bubble.
type harness struct {
	t      *testing.T
	r      *queue.Router
	ev     *queuetest.Events
	ctx    context.Context
	cancel context.CancelFunc
	done   chan error
}

func parse(t *testing.T, y string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func start(t *testing.T, y string) *harness {
	t.Helper()
	return startConfig(t, parse(t, y))
}

func startConfig(t *testing.T, cfg *config.Config) *harness {
	t.Helper()
	h := &harness{t: t, ev: &queuetest.Events{}, done: make(chan error, 1)}
	r, err := queue.NewRouter(cfg, queue.Options{Events: h.ev})
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	h.ctx, h.cancel = context.WithCancel(context.Background())
	go func() { h.done <- r.Run(h.ctx) }()
	return h
}

// stop ends the router and checks Run returned cleanly.
func (h *harness) stop() {
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
}

// advance moves the bubble's virtual clock by d and lets the router settle.
func advance(d time.Duration) {
	<-time.After(d)
	synctest.Wait()
}

func (h *harness) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) login(agent string, m queue.Media) {
	h.t.Helper()
	h.must(h.r.SetPresence(h.ctx, agent, m, true))
}

func (h *harness) offer(ch interaction.Channel, hd queue.Handler, skills ...string) queue.Admission {
	h.t.Helper()
	adm, err := h.r.Offer(h.ctx, queue.Offer{Channel: ch, Queue: "q", Handler: hd, Skills: skills})
	h.must(err)
	return adm
}

// connectedChat logs agent in to the desk, offers it a chat, and has it
// answer and greet the taxpayer.
func (h *harness) connectedChat(agent string) (queue.Admission, *queuetest.Handler) {
	h.t.Helper()
	h.login(agent, queue.MediaText)
	hd := queuetest.NewHandler(32)
	adm := h.offer(interaction.Chat, hd)
	h.must(h.r.Answer(h.ctx, adm.ID, agent))
	h.must(h.r.Activity(h.ctx, adm.ID, queue.PartyAgent))
	return adm, hd
}

// next returns the next instruction of kind, failing if there is none.
func next(t *testing.T, hd *queuetest.Handler, kind string) queuetest.Instruction {
	t.Helper()
	for _, i := range hd.Drain() {
		if i.Kind == kind {
			return i
		}
	}
	t.Fatalf("no %s instruction", kind)
	return queuetest.Instruction{}
}

func none(t *testing.T, hd *queuetest.Handler, kind string) {
	t.Helper()
	for _, i := range hd.Drain() {
		if i.Kind == kind {
			t.Fatalf("unexpected %s instruction: %+v", kind, i)
		}
	}
}

func TestCallIsRungAnsweredAndEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		h.login("a1", queue.MediaVoice)
		hd := queuetest.NewHandler(16)
		adm := h.offer(interaction.Phone, hd)
		if !adm.Immediate || adm.Reason != interaction.ReasonNone {
			t.Fatalf("admission = %+v, want immediate", adm)
		}
		ring := next(t, hd, "ring")
		if ring.Ring.Agent != "a1" || ring.Ring.Timeout != 10*time.Second {
			t.Fatalf("ring = %+v", ring.Ring)
		}
		advance(3 * time.Second)
		h.must(h.r.Answer(h.ctx, adm.ID, "a1"))
		advance(100 * time.Second)
		h.must(h.r.End(h.ctx, adm.ID, queue.End{By: queue.PartyAgent, Disposition: interaction.Resolved, Cause: "test"}))
		if ended := h.ev.Of(interaction.Ended, adm.ID); len(ended) != 1 || ended[0].Data["cause"] != "test" || ended[0].Actor != "agent:a1" {
			t.Errorf("ended event = %+v", ended)
		}
		rec := h.ev.Record(adm.ID)
		if rec.State != interaction.StateEnded || rec.Agent != "a1" || rec.Disposition != interaction.Resolved {
			t.Fatalf("record = %+v", rec)
		}
		if w := rec.AnsweredAt.Sub(rec.OfferedAt); w != 3*time.Second {
			t.Errorf("wait = %v, want 3s", w)
		}
		if d := rec.EndedAt.Sub(rec.AnsweredAt); d != 100*time.Second {
			t.Errorf("talk = %v, want 100s", d)
		}
		// Wrap-up: the agent takes nothing for 5 s, then is available.
		v, _ := h.r.Agent(h.ctx, "a1")
		if v.State != queue.AgentWrapUp {
			t.Errorf("after the call state = %v, want wrap_up", v.State)
		}
		hd2 := queuetest.NewHandler(16)
		h.offer(interaction.Phone, hd2)
		none(t, hd2, "ring")
		advance(5 * time.Second)
		if r := next(t, hd2, "ring"); r.Agent != "a1" {
			t.Errorf("after wrap-up rang %s", r.Agent)
		}
	})
}

func TestRingTimeoutTriesNextAgentAndAutopauses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		h.login("a1", queue.MediaVoice)
		hd := queuetest.NewHandler(32)
		adm := h.offer(interaction.Phone, hd)
		next(t, hd, "ring")
		h.login("a2", queue.MediaVoice)
		advance(10*time.Second - time.Millisecond)
		none(t, hd, "stop_ring")
		advance(time.Millisecond)
		// a1 missed; a2 (free) is rung next.
		got := hd.Drain()
		var stopped, rang string
		for _, i := range got {
			switch i.Kind {
			case "stop_ring":
				stopped = i.Agent
			case "ring":
				rang = i.Agent
			}
		}
		if stopped != "a1" || rang != "a2" {
			t.Fatalf("after timeout: stopped %q rang %q, want a1 then a2 (%+v)", stopped, rang, got)
		}
		// a2 misses too. Everyone has been tried, so after the retry delay
		// a1 is rung again, misses a second time and is paused.
		advance(10 * time.Second)
		advance(5*time.Second - time.Millisecond)
		for _, i := range hd.Drain() {
			if i.Kind == "ring" {
				t.Fatalf("rang %s before the retry delay", i.Agent)
			}
		}
		advance(time.Millisecond)
		if r := next(t, hd, "ring"); r.Agent != "a1" {
			t.Fatalf("retry rang %q", r.Agent)
		}
		advance(10 * time.Second)
		v, _ := h.r.Agent(h.ctx, "a1")
		if v.Status != queue.StatusBreak || v.Reason != "autopause" {
			t.Errorf("a1 = %v/%q after two misses, want break/autopause", v.Status, v.Reason)
		}
		if n := len(h.ev.Of(interaction.RingFailed, adm.ID)); n < 3 {
			t.Errorf("ring failures = %d, want at least 3", n)
		}
		// The caller is never hung up by ring failures.
		for _, i := range hd.Drain() {
			if i.Kind == "close" {
				t.Fatalf("caller closed after ring failures: %+v", i)
			}
		}
	})
}

func TestRequeueKeepsOriginalPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		first, second := queuetest.NewHandler(16), queuetest.NewHandler(16)
		a := h.offer(interaction.Phone, first)
		advance(time.Second)
		b := h.offer(interaction.Phone, second)
		if b.Position != 2 {
			t.Fatalf("second caller position = %d", b.Position)
		}
		h.login("a1", queue.MediaVoice)
		next(t, first, "ring")
		h.must(h.r.RingFailed(h.ctx, a.ID, "a1", queue.RingBusy))
		// a1 failed caller 1, so it may take caller 2; caller 1 keeps its
		// place at the head for the next agent.
		next(t, second, "ring")
		h.login("a2", queue.MediaVoice)
		if r := next(t, first, "ring"); r.Agent != "a2" {
			t.Errorf("requeued caller rang %q, want a2", r.Agent)
		}
		if ev := h.ev.Of(interaction.Offered, a.ID); len(ev) != 1 {
			t.Errorf("offered events = %d", len(ev))
		}
	})
}

func TestAnswerAfterWithdrawalIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		h.login("a1", queue.MediaVoice)
		hd := queuetest.NewHandler(16)
		adm := h.offer(interaction.Phone, hd)
		h.must(h.r.Abandon(h.ctx, adm.ID))
		if err := h.r.Answer(h.ctx, adm.ID, "a1"); !errors.Is(err, queue.ErrRingWithdrawn) {
			t.Fatalf("answer after abandon: %v", err)
		}
		rec := h.ev.Record(adm.ID)
		if rec.Reason != interaction.ReasonAbandoned {
			t.Errorf("reason = %v", rec.Reason)
		}
		if stop := next(t, hd, "stop_ring"); stop.Agent != "a1" {
			t.Errorf("stop_ring agent = %q", stop.Agent)
		}
	})
}

func TestAbandonWhileQueuedRecordsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		hd := queuetest.NewHandler(16)
		adm := h.offer(interaction.Phone, hd)
		advance(42 * time.Second)
		h.must(h.r.Abandon(h.ctx, adm.ID))
		ended := h.ev.Of(interaction.Ended, adm.ID)
		if len(ended) != 1 || ended[0].Reason != interaction.ReasonAbandoned || ended[0].Data["wait_ms"] != "42000" {
			t.Fatalf("ended = %+v", ended)
		}
		if err := h.r.Abandon(h.ctx, adm.ID); !errors.Is(err, queue.ErrUnknownInteraction) {
			t.Errorf("second abandon: %v", err)
		}
	})
}

func TestAnswerTargetP3(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		late := h.offer(interaction.Phone, queuetest.NewHandler(16))
		advance(59 * time.Second)
		if n := len(h.ev.Of(interaction.AnswerTargetMissed, late.ID)); n != 0 {
			t.Fatalf("P3 fired before 60 s")
		}
		advance(time.Second)
		if n := len(h.ev.Of(interaction.AnswerTargetMissed, late.ID)); n != 1 {
			t.Fatalf("P3 fired %d times at 60 s, want 1", n)
		}
		// Answered in time: never fires.
		hd := queuetest.NewHandler(16)
		h.must(h.r.Abandon(h.ctx, late.ID))
		h.login("a1", queue.MediaVoice)
		early := h.offer(interaction.Phone, hd)
		h.must(h.r.Answer(h.ctx, early.ID, "a1"))
		advance(2 * time.Minute)
		if n := len(h.ev.Of(interaction.AnswerTargetMissed, early.ID)); n != 0 {
			t.Errorf("P3 fired for a call answered at once")
		}
	})
}

func TestChatFirstResponseC2AndHoldingC3(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		hd := queuetest.NewHandler(16)
		adm := h.offer(interaction.Chat, hd)
		if adm.Immediate {
			t.Fatal("no agent is logged in, yet the chat was immediate")
		}
		// C3: the holding message goes out at once with the position.
		if n := next(t, hd, "notify"); n.Notice.Kind != queue.NoticeHolding || n.Notice.Position != 1 {
			t.Fatalf("first notice = %+v", n.Notice)
		}
		h.login("a1", queue.MediaText)
		next(t, hd, "ring")
		h.must(h.r.Answer(h.ctx, adm.ID, "a1"))
		advance(30*time.Second - time.Millisecond)
		if n := len(h.ev.Of(interaction.FirstResponseMissed, adm.ID)); n != 0 {
			t.Fatal("C2 fired early")
		}
		advance(time.Millisecond)
		if n := len(h.ev.Of(interaction.FirstResponseMissed, adm.ID)); n != 1 {
			t.Fatalf("C2 fired %d times at 30 s", n)
		}

		// A second chat whose agent replies in time: C2 never fires.
		hd2 := queuetest.NewHandler(16)
		adm2 := h.offer(interaction.Chat, hd2)
		h.must(h.r.Answer(h.ctx, adm2.ID, "a1"))
		advance(10 * time.Second)
		h.must(h.r.Activity(h.ctx, adm2.ID, queue.PartyAgent))
		advance(time.Minute)
		if n := len(h.ev.Of(interaction.FirstResponseMissed, adm2.ID)); n != 0 {
			t.Error("C2 fired after the agent replied")
		}
		rec := h.ev.Record(adm2.ID)
		if d := rec.FirstResponseAt.Sub(rec.OfferedAt); d != 10*time.Second {
			t.Errorf("first response after %v, want 10s", d)
		}
	})
}

func TestAgentSilenceC4AndAnswerLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		adm, hd := h.connectedChat("a1")
		// The taxpayer asks; the agent replies within 2 min: no C4.
		h.must(h.r.Activity(h.ctx, adm.ID, queue.PartyTaxpayer))
		advance(119 * time.Second)
		h.must(h.r.Activity(h.ctx, adm.ID, queue.PartyAgent))
		advance(time.Minute)
		if n := len(h.ev.Of(interaction.AgentSilence, adm.ID)); n != 0 {
			t.Fatal("C4 fired although the agent replied")
		}
		// The taxpayer asks again; the agent stays silent 2 min: C4 once.
		h.must(h.r.Activity(h.ctx, adm.ID, queue.PartyTaxpayer))
		hd.Drain()
		advance(2 * time.Minute)
		if n := next(t, hd, "notify"); n.Notice.Kind != queue.NoticeAgentSilence {
			t.Fatalf("notice = %v, want agent_silence", n.Notice.Kind)
		}
		advance(10 * time.Minute)
		if n := len(h.ev.Of(interaction.AgentSilence, adm.ID)); n != 1 {
			t.Fatalf("C4 fired %d times, want once", n)
		}
		// "Answer me later": the chat ends as a follow-up ticket.
		info, err := h.r.Choose(h.ctx, adm.ID, true)
		h.must(err)
		if info.ID == "" || !info.AnswerBy.After(info.AckBy.Add(-time.Nanosecond)) {
			t.Fatalf("ticket = %+v", info)
		}
		rec := h.ev.Record(adm.ID)
		if rec.Reason != interaction.ReasonCallback || rec.Disposition != interaction.FollowUp {
			t.Errorf("chat record = %v/%v", rec.Reason, rec.Disposition)
		}
		tk := h.ev.Record(info.ID)
		if tk.State != interaction.StateOpen || tk.Parent != adm.ID || tk.Agent != "a1" {
			t.Errorf("ticket record = %+v", tk)
		}
	})
}

func TestCustomerSilenceC5(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		adm, hd := h.connectedChat("a1")
		// The taxpayer answers after 3 min: the reminder is cleared.
		advance(3 * time.Minute)
		h.must(h.r.Activity(h.ctx, adm.ID, queue.PartyTaxpayer))
		h.must(h.r.Activity(h.ctx, adm.ID, queue.PartyAgent))
		advance(4*time.Minute - time.Millisecond)
		if n := len(h.ev.Of(interaction.CustomerReminder, adm.ID)); n != 0 {
			t.Fatal("C5 reminder fired early")
		}
		hd.Drain()
		advance(time.Millisecond)
		if n := next(t, hd, "notify"); n.Notice.Kind != queue.NoticeCustomerReminder {
			t.Fatalf("notice = %v", n.Notice.Kind)
		}
		advance(2*time.Minute - time.Millisecond)
		none(t, hd, "close")
		advance(time.Millisecond)
		if c := next(t, hd, "close"); c.Close.Reason != interaction.ReasonCustomerSilence {
			t.Fatalf("close = %+v", c.Close)
		}
		if rec := h.ev.Record(adm.ID); rec.State != interaction.StateEnded || rec.Reason != interaction.ReasonCustomerSilence {
			t.Errorf("record = %v/%v", rec.State, rec.Reason)
		}
		if n := len(h.ev.Of(interaction.CustomerReminder, adm.ID)); n != 1 {
			t.Errorf("reminders = %d, want 1", n)
		}
		v, _ := h.r.Agent(h.ctx, "a1")
		if v.Chats != 0 {
			t.Errorf("agent still holds %d chats", v.Chats)
		}
	})
}

func TestTimersSurviveReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		adm := h.offer(interaction.Chat, queuetest.NewHandler(16))
		advance(10 * time.Second)
		// A reload with a shorter C2 target keeps the armed clock.
		h.must(h.r.Reload(h.ctx, parse(t, baseConfig+"\n  # reloaded\n")))
		cfg := parse(t, baseConfig)
		cfg.Chat.FirstResponse = 5 * time.Second
		h.must(h.r.Reload(h.ctx, cfg))
		advance(20*time.Second - time.Millisecond)
		if n := len(h.ev.Of(interaction.FirstResponseMissed, adm.ID)); n != 0 {
			t.Fatal("C2 fired early after reload")
		}
		advance(time.Millisecond)
		if n := len(h.ev.Of(interaction.FirstResponseMissed, adm.ID)); n != 1 {
			t.Fatalf("C2 after reload fired %d times, want 1 at 30 s", n)
		}
		// New chats use the new value.
		adm2 := h.offer(interaction.Chat, queuetest.NewHandler(16))
		advance(5 * time.Second)
		if n := len(h.ev.Of(interaction.FirstResponseMissed, adm2.ID)); n != 1 {
			t.Fatalf("new chat C2 fired %d times at the reloaded 5 s", n)
		}
		if n := len(h.ev.Of(interaction.ConfigReloaded, "")); n != 2 {
			t.Errorf("reload events = %d", n)
		}
	})
}

func TestMaxWaitOverflowsToVoicemail(t *testing.T) {
	cfg := parse(t, baseConfig)
	cfg.Queues[0].MaxWait = 3 * time.Minute
	cfg.Queues[0].Overflow = "voicemail"
	synctest.Test(t, func(t *testing.T) {
		h := startConfig(t, cfg)
		defer h.stop()
		hd := queuetest.NewHandler(64)
		adm := h.offer(interaction.Phone, hd)
		advance(3*time.Minute - time.Millisecond)
		none(t, hd, "close")
		advance(time.Millisecond)
		c := next(t, hd, "close")
		if c.Close.Reason != interaction.ReasonVoicemail || c.Close.Target != "voicemail" {
			t.Errorf("close = %+v", c.Close)
		}
		if rec := h.ev.Record(adm.ID); rec.Reason != interaction.ReasonVoicemail {
			t.Errorf("reason = %v", rec.Reason)
		}
	})
}

func TestOverflowToAnotherQueueKeepsWaiting(t *testing.T) {
	cfg := parse(t, baseConfig)
	cfg.Queues[0].MaxWait = time.Minute
	cfg.Queues[0].Overflow = "other"
	synctest.Test(t, func(t *testing.T) {
		h := startConfig(t, cfg)
		defer h.stop()
		hd := queuetest.NewHandler(64)
		adm := h.offer(interaction.Phone, hd)
		h.login("a3", queue.MediaVoice)
		advance(time.Minute)
		if ring := next(t, hd, "ring"); ring.Agent != "a3" || ring.Ring.Queue != "other" {
			t.Fatalf("after overflow rang %+v", ring.Ring)
		}
		if rec := h.ev.Record(adm.ID); rec.Queue != "other" || !rec.OfferedAt.Equal(h.ev.Of(interaction.Offered, adm.ID)[0].At) {
			t.Errorf("record = %+v", rec)
		}
	})
}

func TestAfterHoursPhoneIsTurnedToMessage(t *testing.T) {
	y := `
server: {timezone: Asia/Shanghai}
calendar: {files: ["embedded:2026"]}
hours:
  hotline: {weekly: [{days: [mon, tue, wed, thu, fri, sat], from: "08:30", to: "21:00"}]}
queues:
  - {name: q, hours: hotline}
agents:
  - {id: "a1", queues: [q]}
`
	synctest.Test(t, func(t *testing.T) {
		h := start(t, y)
		defer h.stop()
		shanghai, _ := time.LoadLocation("Asia/Shanghai")
		// The bubble starts at 2000-01-01 00:00 UTC; move to Sunday
		// 2026-02-15 (Spring Festival) 10:00 in Shanghai.
		advance(time.Until(time.Date(2026, 2, 15, 10, 0, 0, 0, shanghai)))
		adm := h.offer(interaction.Phone, queuetest.NewHandler(4))
		if adm.Reason != interaction.ReasonAfterHours || adm.Target != "voicemail" {
			t.Fatalf("holiday call admitted: %+v", adm)
		}
		// Chat stays open 7×24 (C1).
		if chat := h.offer(interaction.Chat, queuetest.NewHandler(4)); chat.Reason != interaction.ReasonNone {
			t.Errorf("chat refused on a holiday: %+v", chat)
		}
		// Make-up working day Saturday 2026-02-28 09:00: open.
		advance(time.Until(time.Date(2026, 2, 28, 9, 0, 0, 0, shanghai)))
		if in := h.offer(interaction.Phone, queuetest.NewHandler(4)); in.Reason != interaction.ReasonNone {
			t.Errorf("make-up day call refused: %+v", in)
		}
	})
}

func TestTicketDeadlinesM3(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		shanghai, _ := time.LoadLocation("Asia/Shanghai")
		advance(time.Until(time.Date(2026, 2, 14, 20, 0, 0, 0, shanghai)))
		info, err := h.r.CreateTicket(h.ctx, queue.Ticket{Channel: interaction.Message, Queue: "q"})
		h.must(err)
		// Saturday 2026-02-14 is a make-up working day, then the Spring
		// Festival runs to the 23rd: 1 working day ends 2026-02-24 24:00.
		if want := time.Date(2026, 2, 25, 0, 0, 0, 0, shanghai); !info.AckBy.Equal(want) {
			t.Errorf("ack by %v, want %v", info.AckBy, want)
		}
		if want := time.Date(2026, 2, 26, 0, 0, 0, 0, shanghai); !info.AnswerBy.Equal(want) {
			t.Errorf("answer by %v, want %v", info.AnswerBy, want)
		}
		advance(time.Until(info.AckBy) - time.Second)
		if n := len(h.ev.Of(interaction.TicketOverdue, info.ID)); n != 0 {
			t.Fatal("overdue before the deadline")
		}
		advance(time.Second)
		if ev := h.ev.Of(interaction.TicketOverdue, info.ID); len(ev) != 1 || ev[0].Data["deadline"] != "ack" {
			t.Fatalf("overdue events = %+v", ev)
		}
		if err := h.r.AnswerTicket(h.ctx, info.ID, queue.TicketAnswer{Agent: "a1", Disposition: interaction.OutOfScope}); err == nil {
			t.Fatal("an out-of-scope answer without a reason was accepted")
		}
		h.must(h.r.AnswerTicket(h.ctx, info.ID, queue.TicketAnswer{Agent: "a1", Disposition: interaction.OutOfScope,
			ScopeReason: "税收政策咨询", Note: "已电话告知拨打12366"}))
		advance(48 * time.Hour)
		if n := len(h.ev.Of(interaction.TicketOverdue, info.ID)); n != 1 {
			t.Errorf("answered ticket went overdue again")
		}
		if rec := h.ev.Record(info.ID); rec.State != interaction.StateEnded || !rec.Overdue || rec.Agent != "a1" ||
			rec.ScopeReason != "税收政策咨询" || rec.Note != "已电话告知拨打12366" || rec.Disposition != interaction.OutOfScope {
			t.Errorf("ticket record = %+v", rec)
		}
	})
}

func TestRestoredTicketKeepsStoredDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		due := time.Now().Add(90 * time.Minute)
		rec := interaction.Record{ID: "000000000000deadbeef", State: interaction.StateOpen, AckBy: due.Add(-time.Hour), AnswerBy: due}
		h.must(h.r.RestoreTickets(h.ctx, []interaction.Record{rec}))
		advance(89 * time.Minute)
		if ev := h.ev.Of(interaction.TicketOverdue, rec.ID); len(ev) != 1 || ev[0].Data["deadline"] != "ack" {
			t.Fatalf("after 89 min: %+v, want only the ack deadline", ev)
		}
		advance(time.Minute)
		if ev := h.ev.Of(interaction.TicketOverdue, rec.ID); len(ev) != 2 {
			t.Fatalf("after 90 min: %d overdue events", len(ev))
		}
	})
}

func TestSkillsAndStrategies(t *testing.T) {
	for _, tc := range []struct {
		strategy string
		prepare  func(h *harness)
		want     string
	}{
		{"longest_idle", func(h *harness) {
			h.login("a2", queue.MediaVoice)
			advance(time.Minute)
			h.login("a1", queue.MediaVoice)
		}, "a2"},
		{"skill_level", func(h *harness) {
			h.login("a2", queue.MediaVoice)
			advance(time.Minute)
			h.login("a1", queue.MediaVoice)
		}, "a1"},
		{"round_robin", func(h *harness) {
			h.login("a1", queue.MediaVoice)
			h.login("a2", queue.MediaVoice)
			hd := queuetest.NewHandler(8)
			adm := h.offer(interaction.Phone, hd) // goes to a1 (first in order)
			h.must(h.r.Answer(h.ctx, adm.ID, next(h.t, hd, "ring").Agent))
			h.must(h.r.End(h.ctx, adm.ID, queue.End{By: queue.PartyTaxpayer}))
			advance(10 * time.Second)
		}, "a2"},
		{"fewest_handled", func(h *harness) {
			h.login("a1", queue.MediaVoice)
			hd := queuetest.NewHandler(8)
			adm := h.offer(interaction.Phone, hd)
			h.must(h.r.Answer(h.ctx, adm.ID, "a1"))
			h.must(h.r.End(h.ctx, adm.ID, queue.End{By: queue.PartyTaxpayer}))
			advance(10 * time.Second)
			h.login("a2", queue.MediaVoice)
		}, "a2"},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			cfg := parse(t, baseConfig)
			cfg.Queues[0].Strategy = tc.strategy
			synctest.Test(t, func(t *testing.T) {
				h := startConfig(t, cfg)
				defer h.stop()
				tc.prepare(h)
				hd := queuetest.NewHandler(8)
				h.offer(interaction.Phone, hd, "tax")
				if got := next(t, hd, "ring").Agent; got != tc.want {
					t.Errorf("rang %s, want %s", got, tc.want)
				}
			})
		})
	}
}

func TestRequiredSkills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		h.login("a2", queue.MediaVoice)
		nobody := queuetest.NewHandler(8)
		h.offer(interaction.Phone, nobody, "export")
		none(t, nobody, "ring")
		taxed := queuetest.NewHandler(8)
		h.offer(interaction.Phone, taxed, "tax")
		if got := next(t, taxed, "ring").Agent; got != "a2" {
			t.Errorf("rang %s", got)
		}
	})
}

func TestQueueLimitsAndEmptyRules(t *testing.T) {
	cfg := parse(t, baseConfig)
	no := false
	cfg.Queues[0].JoinEmpty = &no
	cfg.Queues[0].LeaveWhenEmpty = true
	cfg.Queues[0].MaxLength = 1
	cfg.Queues[0].Overflow = "other"
	synctest.Test(t, func(t *testing.T) {
		h := startConfig(t, cfg)
		defer h.stop()
		// Nobody logged in and join_empty off: not admitted, sent on.
		if adm := h.offer(interaction.Phone, queuetest.NewHandler(4)); adm.Reason != interaction.ReasonNoAgents || adm.Target != "other" {
			t.Fatalf("join empty: %+v", adm)
		}
		// One agent on a call: the queue admits one waiting caller only.
		h.login("a1", queue.MediaVoice)
		busy := h.offer(interaction.Phone, queuetest.NewHandler(4))
		h.must(h.r.Answer(h.ctx, busy.ID, "a1"))
		waiting := queuetest.NewHandler(8)
		if adm := h.offer(interaction.Phone, waiting); adm.Reason != interaction.ReasonNone {
			t.Fatalf("first waiting caller refused: %+v", adm)
		}
		if adm := h.offer(interaction.Phone, queuetest.NewHandler(4)); adm.Reason != interaction.ReasonQueueFull {
			t.Fatalf("over max_length: %+v", adm)
		}
		// The last agent logs out: the waiting caller leaves with the queue
		// (leave_when_empty) for the overflow queue.
		h.must(h.r.SetPresence(h.ctx, "a1", queue.MediaVoice, false))
		if rec := h.ev.Record(h.ev.Of(interaction.Offered, "")[2].ID); rec.Queue != "other" {
			t.Errorf("waiting caller is in %q after the last logout, want other", rec.Queue)
		}
	})
}

func TestChatCapacityAndMixing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		h.login("a1", queue.MediaText)
		h.login("a1", queue.MediaVoice)
		var ids []interaction.ID
		for range 3 {
			hd := queuetest.NewHandler(8)
			adm := h.offer(interaction.Chat, hd)
			if adm.Immediate {
				h.must(h.r.Answer(h.ctx, adm.ID, "a1"))
				ids = append(ids, adm.ID)
			}
		}
		// max_chats is 2 for a1.
		if len(ids) != 2 {
			t.Fatalf("a1 took %d chats at once, want 2", len(ids))
		}
		// call_blocks_chat: chats do not block a call ...
		call := queuetest.NewHandler(8)
		adm := h.offer(interaction.Phone, call)
		if r := next(t, call, "ring"); r.Agent != "a1" {
			t.Fatalf("call rang %q", r.Agent)
		}
		h.must(h.r.Answer(h.ctx, adm.ID, "a1"))
		// ... but a call blocks new chats even when a chat slot frees up.
		h.must(h.r.End(h.ctx, ids[0], queue.End{By: queue.PartyAgent, Disposition: interaction.Resolved}))
		v, _ := h.r.Agent(h.ctx, "a1")
		if v.Chats != 1 || v.Calls != 1 {
			t.Errorf("a1 holds %d chats and %d calls, want 1 and 1", v.Chats, v.Calls)
		}
		snap, _ := h.r.Snapshot(h.ctx)
		if snap.Queues[1].Name != "q" || snap.Queues[1].Waiting != 1 {
			t.Errorf("queue view = %+v, want the third chat still waiting", snap.Queues)
		}
	})
}

func TestDrainRefusesNewWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		h.must(h.r.Drain(h.ctx))
		if _, err := h.r.Offer(h.ctx, queue.Offer{Channel: interaction.Chat, Queue: "q", Handler: queuetest.NewHandler(1)}); !errors.Is(err, queue.ErrDraining) {
			t.Errorf("offer while draining: %v", err)
		}
		if _, err := h.r.Offer(h.ctx, queue.Offer{Channel: interaction.Chat, Queue: "nope"}); err == nil {
			t.Error("offer to an unknown queue accepted")
		}
	})
}

func TestTransfers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, baseConfig)
		defer h.stop()
		h.login("a1", queue.MediaVoice)
		h.login("a2", queue.MediaVoice)
		h.login("a3", queue.MediaVoice)
		hd := queuetest.NewHandler(32)
		adm := h.offer(interaction.Phone, hd)
		first := next(t, hd, "ring").Agent
		h.must(h.r.Answer(h.ctx, adm.ID, first))
		other := map[string]string{"a1": "a2", "a2": "a1"}[first]

		// To one agent: the channel hears "requeued" (drop the old leg),
		// then only that agent is rung.
		h.must(h.r.Transfer(h.ctx, adm.ID, "agent:"+other, "", "agent:"+first))
		got := hd.Drain()
		if len(got) < 2 || got[0].Kind != "notify" || got[0].Notice.Kind != queue.NoticeRequeued || got[0].Agent != first ||
			got[1].Kind != "ring" || got[1].Agent != other {
			t.Fatalf("after a transfer to %s: %+v", other, got)
		}
		h.must(h.r.Answer(h.ctx, adm.ID, other))

		// To another queue: rung there, to a3.
		h.must(h.r.Transfer(h.ctx, adm.ID, "other", "", "token:ops"))
		if r := next(t, hd, "ring"); r.Agent != "a3" || r.Ring.Queue != "other" {
			t.Fatalf("after a transfer to queue other: %+v", r.Ring)
		}
		h.must(h.r.Answer(h.ctx, adm.ID, "a3"))

		// Out of the desk, with an out-of-scope reason from config.
		if err := h.r.Transfer(h.ctx, adm.ID, "sip:12366@trunk", "not a configured reason", "agent:a3"); err == nil {
			t.Fatal("transfer with an unknown reason accepted")
		}
		h.must(h.r.Transfer(h.ctx, adm.ID, "sip:12366@trunk", "其他", "agent:a3"))
		if c := next(t, hd, "close"); c.Close.Reason != interaction.ReasonTransferred || c.Close.Target != "sip:12366@trunk" || c.Agent != "a3" {
			t.Errorf("close = %+v", c.Close)
		}
		rec := h.ev.Record(adm.ID)
		if rec.Disposition != interaction.DispositionTransferred || rec.ScopeReason != "其他" || rec.Transfer != "sip:12366@trunk" {
			t.Errorf("record = %+v", rec)
		}
	})
}
