package sip_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/sip"
	"github.com/taxline/taxline/sip/media"
	"github.com/taxline/taxline/sip/siptest"
	"github.com/taxline/taxline/storage"
)

// desk is a running taxline without HTTP: store, router and SIP gateway on
// loopback with short timers.
type desk struct {
	cfg    *config.Config
	db     *storage.DB
	router *queue.Router
	gw     *sip.Gateway
	stats  chan sip.CallStats
	target string // the gateway's host:port
	logMu  *sync.Mutex
	logs   *strings.Builder
}

const testYAML = `
server:
  sip: 127.0.0.1:0
  timezone: Asia/Shanghai
calendar:
  files: ["embedded:2026"]
hours:
  open:
    always: true
  never:   # open one minute a week, on a Monday just after midnight
    weekly:
      - days: [mon]
        from: "00:00"
        to: "00:01"
queues:
  - name: etax
    channels: [phone]
    hours: %s
    chat_hours: open
    wrapup: 1s
    announce_interval: 30s
agents:
  - {id: "1001", name: 坐席一, password: demo-1001, queues: [etax], skills: {etax: 5}}
phone:
  ring_timeout: 3s
  retry: 1s
  autopause_after: 0
sip:
  rtp_ports: %d-%d
  trunks:
    - name: "12366"
      sources: [127.0.0.1/32]
      routes: {"*": etax}
      transfer: sip:12366@127.0.0.1:5090
  survey_timeout: 5s
  voicemail_max: 10s
  prompts:
    welcome: %[4]s
    survey: %[4]s
    closing: %[4]s
    after_hours: %[4]s
    transfer: %[4]s
`

func startDesk(t *testing.T, hours string) *desk { return startDeskEdit(t, hours, nil) }

// startDeskEdit is startDesk with the test config edited by edit.
func startDeskEdit(t *testing.T, hours string, edit func(string) string) *desk {
	t.Helper()
	return startDeskWith(t, hours, edit, nil)
}

// startDeskWith is startDeskEdit that also lets before adjust the gateway
// (its Lookup) before it runs.
func startDeskWith(t *testing.T, hours string, edit func(string) string, before func(*sip.Gateway)) *desk {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with SIPp and baresip; skipped with -short")
	}
	siptest.Need(t, "sipp", "baresip", "sox")
	dir := t.TempDir()
	short := filepath.Join(dir, "short.wav")
	siptest.Tone(t, short, 0.3, 660)
	rtp := siptest.FreePort(t, true)
	rtp -= rtp % 1000
	rtp = max(rtp, 20000)
	y := fmt.Sprintf(testYAML, hours, rtp, rtp+999, short)
	if edit != nil {
		y = edit(y)
	}
	cfg, err := config.Parse(filepath.Join(dir, "taxline.yaml"), []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	logMu, logs := &sync.Mutex{}, &strings.Builder{}
	log := slog.New(slog.NewTextHandler(testWriter{t, logMu, logs}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	db, err := storage.Open(filepath.Join(dir, "data"), storage.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r, err := queue.NewRouter(cfg, queue.Options{Events: db, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := sip.NewGateway(cfg, r, db, log)
	if err != nil {
		t.Fatal(err)
	}
	d := &desk{cfg: cfg, db: db, router: r, gw: gw, stats: make(chan sip.CallStats, 16), target: gw.Addr().String(),
		logMu: logMu, logs: logs}
	gw.CallEnded = func(s sip.CallStats) { d.stats <- s }
	if before != nil {
		before(gw)
	}
	ctx, cancel := context.WithCancel(context.Background())
	routerDone, gwDone := make(chan error, 1), make(chan error, 1)
	go func() { routerDone <- r.Run(ctx) }()
	go func() { gwDone <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-gwDone; err != nil {
			t.Errorf("gateway: %v", err)
		}
		<-routerDone
		if err := db.Close(); err != nil {
			t.Errorf("store: %v", err)
		}
	})
	return d
}

type testWriter struct {
	t   *testing.T
	mu  *sync.Mutex // guards all
	all *strings.Builder
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	w.mu.Lock()
	w.all.Write(p)
	w.mu.Unlock()
	return len(p), nil
}

// logged reports whether the desk's log has a line with every one of parts.
func (d *desk) logged(parts ...string) bool {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	for _, line := range strings.Split(d.logs.String(), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// agent starts baresip as agent 1001 and waits until the router has it
// available through the registrar.
func (d *desk) agent(t *testing.T) *siptest.Baresip { return d.agentMode(t, "auto") }

func (d *desk) agentMode(t *testing.T, mode string) *siptest.Baresip {
	return d.agentAs(t, "1001", mode)
}

// agentAs starts baresip as agent id (password demo-<id>) and waits until
// the router has it available.
func (d *desk) agentAs(t *testing.T, id, mode string) *siptest.Baresip {
	t.Helper()
	tone := filepath.Join(t.TempDir(), "tone.wav")
	siptest.Tone(t, tone, 60, 440)
	b := siptest.StartBaresip(t, siptest.BaresipConfig{Agent: id, Password: "demo-" + id, Registrar: d.target, Tone: tone, AnswerMode: mode})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("baresip output:\n%s", b.Output())
		}
	})
	waitFor(t, 10*time.Second, "agent "+id+" registered and available", func() bool {
		v, err := d.router.Agent(context.Background(), id)
		return err == nil && v.Voice && v.State == queue.AgentAvailable
	})
	return b
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// ended waits for the one phone interaction to end and returns it.
func (d *desk) ended(t *testing.T, ch interaction.Channel) interaction.Record {
	t.Helper()
	var rec interaction.Record
	waitFor(t, 30*time.Second, "the interaction to end", func() bool {
		_ = d.db.Sync(context.Background())
		rs, err := d.db.List(storage.Filter{Channel: ch})
		if err != nil || len(rs) == 0 {
			return false
		}
		rec = rs[len(rs)-1]
		return rec.State == interaction.StateEnded || rec.State == interaction.StateOpen
	})
	return rec
}

func (d *desk) callStats(t *testing.T) sip.CallStats {
	t.Helper()
	select {
	case s := <-d.stats:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("no call ended")
	}
	return sip.CallStats{}
}

func (d *desk) readWAV(t *testing.T, name string) media.WAVInfo {
	t.Helper()
	f, err := d.db.Blobs().Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	info, err := media.ReadWAV(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func sipp(t *testing.T, d *desk, scenario string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sf, err := filepath.Abs(filepath.Join("..", "testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	res := siptest.RunSIPp(ctx, t, d.target, append([]string{"-sf", sf, "-s", "12366"}, args...)...)
	if res.Err != nil {
		t.Fatalf("sipp %s: %v\n%s", scenario, res.Err, res.Output)
	}
}

// TestE2ECallAnswered: SIPp calls in from the trunk, baresip answers as
// agent 1001, they talk, the caller hangs up.
func TestE2ECallAnswered(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) }) // runs after the desk has stopped
	d := startDesk(t, "open")
	d.agent(t)
	start := time.Now()
	sipp(t, d, "caller.xml", "-d", "8000")
	st := d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	t.Logf("call took %v; record %+v; rtp %+v", time.Since(start), rec, st)

	if rec.Agent != "1001" || rec.OfferedAt.IsZero() || rec.AnsweredAt.IsZero() || rec.EndedAt.IsZero() {
		t.Fatalf("record: agent %q offered %v answered %v ended %v", rec.Agent, rec.OfferedAt, rec.AnsweredAt, rec.EndedAt)
	}
	if rec.Reason != interaction.ReasonCompleted {
		t.Errorf("reason %v, want completed", rec.Reason)
	}
	// RTP both ways on both legs: the caller's pcap to the agent, the
	// agent's tone to the caller.
	if st.CallerRx < 100 || st.CallerTx < 100 || st.AgentRx < 100 || st.AgentTx < 100 {
		t.Errorf("RTP packet counts %+v: want ≥ 100 each way on each leg", st)
	}
	if rec.Recording == "" {
		t.Fatal("no recording linked")
	}
	info := d.readWAV(t, rec.Recording)
	got := time.Duration(len(info.Samples)/info.Channels) * time.Second / 8000
	want := rec.EndedAt.Sub(rec.AnsweredAt)
	if info.Channels != 2 || got < want-500*time.Millisecond || got > want+500*time.Millisecond {
		t.Errorf("recording: %d channels, %v long; call connected %v", info.Channels, got, want)
	}
	var caller, agent bool
	for i := 0; i+1 < len(info.Samples); i += 2 {
		caller = caller || info.Samples[i] > 1000 || info.Samples[i] < -1000
		agent = agent || info.Samples[i+1] > 1000 || info.Samples[i+1] < -1000
	}
	if !caller || !agent {
		t.Errorf("recording has caller audio %v, agent audio %v", caller, agent)
	}
}

// TestE2EAbandonQueued: nobody is logged in, the caller waits in the
// queue (hold music) and hangs up: an abandon with its wait time.
func TestE2EAbandonQueued(t *testing.T) {
	d := startDesk(t, "open")
	sipp(t, d, "caller.xml", "-d", "2500")
	st := d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	if rec.Reason != interaction.ReasonAbandoned || !rec.AnsweredAt.IsZero() || rec.Agent != "" {
		t.Fatalf("record: reason %v answered %v agent %q", rec.Reason, rec.AnsweredAt, rec.Agent)
	}
	if w := rec.Wait(); w < 1500*time.Millisecond || w > 5*time.Second {
		t.Errorf("wait %v, want about 2.2 s (2.5 s less the welcome prompt)", w)
	}
	evs, err := d.db.Events(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Type != interaction.Ended || last.Data["wait_ms"] == "" {
		t.Errorf("last event %+v, want ended with wait_ms", last)
	}
	// The caller heard hold music while queued.
	if st.CallerTx < 50 {
		t.Errorf("caller got %d RTP packets while queued", st.CallerTx)
	}
}

// TestE2EAfterHours: outside service hours the caller hears the
// after-hours prompt and leaves a message; it becomes a message ticket
// with the M3 deadlines and the recording.
func TestE2EAfterHours(t *testing.T) {
	d := startDesk(t, "never")
	sipp(t, d, "caller.xml", "-d", "3000")
	d.callStats(t)
	call := d.ended(t, interaction.Phone)
	if call.Reason != interaction.ReasonAfterHours {
		t.Fatalf("call reason %v, want after_hours", call.Reason)
	}
	ticket := d.ended(t, interaction.Message)
	if ticket.State != interaction.StateOpen || ticket.Parent != call.ID {
		t.Fatalf("ticket state %v parent %q (call %q)", ticket.State, ticket.Parent, call.ID)
	}
	if ticket.AckBy.IsZero() || ticket.AnswerBy.IsZero() || !ticket.AnswerBy.After(ticket.AckBy) {
		t.Fatalf("ticket deadlines ack %v answer %v", ticket.AckBy, ticket.AnswerBy)
	}
	if ticket.Recording == "" {
		t.Fatal("ticket has no recording")
	}
	info := d.readWAV(t, ticket.Recording)
	got := time.Duration(len(info.Samples)/info.Channels) * time.Second / 8000
	if info.Channels != 1 {
		t.Errorf("voice message has %d channels, want mono (one party)", info.Channels)
	}
	if got < time.Second || got > 4*time.Second {
		t.Errorf("voice message is %v long", got)
	}
	// The ticket says how long the message is: the recording's length.
	evs, err := d.db.Events(ticket.ID)
	if err != nil {
		t.Fatal(err)
	}
	var durMS string
	for _, e := range evs {
		if e.Type == interaction.TicketCreated {
			durMS = e.Data["duration_ms"]
		}
	}
	if want := strconv.FormatInt(got.Milliseconds(), 10); durMS != want {
		t.Errorf("ticket duration_ms %q, want the recording's %s", durMS, want)
	}
	var loud bool
	for _, s := range info.Samples {
		loud = loud || s > 1000 || s < -1000
	}
	if !loud {
		t.Error("voice message is silent")
	}
}

// TestE2ESurvey: the agent hangs up first; the caller hears the survey
// prompt and presses 4 as an RFC 4733 event (or, for a phone without
// telephone-event, 3 in a SIP INFO); the score is stored.
func TestE2ESurvey(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		score    int
	}{{"survey.xml", 4}, {"survey_info.xml", 3}} {
		t.Run(tc.scenario, func(t *testing.T) {
			d := startDesk(t, "open")
			b := d.agent(t)
			done := make(chan struct{})
			go func() {
				defer close(done)
				sipp(t, d, tc.scenario, "-d", "4000")
			}()
			waitFor(t, 10*time.Second, "the agent to be busy on the call", func() bool {
				v, err := d.router.Agent(context.Background(), "1001")
				return err == nil && v.State == queue.AgentBusy
			})
			if _, err := b.Command("hangup", ""); err != nil {
				t.Fatal(err)
			}
			<-done
			d.callStats(t)
			rec := d.ended(t, interaction.Phone)
			waitFor(t, 5*time.Second, "the survey score", func() bool {
				_ = d.db.Sync(context.Background())
				r, err := d.db.Interaction(rec.ID)
				rec = r
				return err == nil && r.Score != 0
			})
			if rec.Score != tc.score || rec.Agent != "1001" || rec.Reason != interaction.ReasonCompleted {
				t.Fatalf("score %d agent %q reason %v", rec.Score, rec.Agent, rec.Reason)
			}
		})
	}
}

// TestE2EReinvite: the caller holds and unholds (changing codec) while
// talking to the agent; the call stays up and is recorded whole.
func TestE2EReinvite(t *testing.T) {
	d := startDesk(t, "open")
	d.agent(t)
	sipp(t, d, "reinvite.xml", "-d", "2000")
	st := d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	if rec.Reason != interaction.ReasonCompleted || rec.Agent != "1001" || rec.Rings != 1 {
		t.Fatalf("record: reason %v agent %q rings %d", rec.Reason, rec.Agent, rec.Rings)
	}
	if want := rec.EndedAt.Sub(rec.AnsweredAt); want < 5*time.Second {
		t.Fatalf("call lasted %v connected; the re-INVITEs cut it short", want)
	}
	if st.AgentRx < 200 || st.CallerTx < 100 {
		t.Errorf("RTP %+v", st)
	}
}

// TestE2ETransfer: while the caller talks to the agent, the desk (API)
// sends the call back to 12366 as out of scope; the gateway REFERs the
// caller to the trunk's transfer target and the reason is recorded.
func TestE2ETransfer(t *testing.T) {
	d := startDesk(t, "open")
	d.agent(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sipp(t, d, "transfer.xml")
	}()
	var id interaction.ID
	waitFor(t, 10*time.Second, "the call to be connected", func() bool {
		evs := d.phoneEvents(t)
		for _, e := range evs {
			if e.Type == interaction.Answered {
				id = e.ID
				return true
			}
		}
		return false
	})
	reason := d.cfg.ScopeReasons[1]
	if err := d.router.Transfer(context.Background(), id, d.cfg.SIP.Trunks[0].Transfer, reason, "agent:1001"); err != nil {
		t.Fatal(err)
	}
	<-done
	d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	if rec.Reason != interaction.ReasonTransferred || rec.Transfer != d.cfg.SIP.Trunks[0].Transfer || rec.ScopeReason != reason {
		t.Fatalf("record: reason %v transfer %q scope reason %q", rec.Reason, rec.Transfer, rec.ScopeReason)
	}
	if rec.Disposition != interaction.DispositionTransferred {
		t.Errorf("disposition %v", rec.Disposition)
	}
}

// TestE2EAgentHoldTransfer: the agent's softphone puts the caller on hold
// and back (re-INVITEs from the agent side), then transfers the call to
// 12366 with REFER; the gateway sends the caller out through the trunk.
func TestE2EAgentHoldTransfer(t *testing.T) {
	d := startDesk(t, "open")
	b := d.agent(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sipp(t, d, "transfer.xml")
	}()
	waitFor(t, 10*time.Second, "the call to be connected", func() bool { return d.logged("sip call connected") })
	for _, step := range []struct{ cmd, want string }{{"hold", "direction=sendonly"}, {"resume", "direction=sendrecv"}} {
		if out, err := b.Command(step.cmd, ""); err != nil {
			t.Fatalf("%s: %v %s", step.cmd, err, out)
		}
		waitFor(t, 5*time.Second, "the agent's re-INVITE ("+step.cmd+")", func() bool { return d.logged("sip re-INVITE", step.want) })
	}
	if out, err := b.Command("transfer", "12366"); err != nil {
		t.Fatalf("transfer: %v %s", err, out)
	}
	<-done
	d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	if rec.Reason != interaction.ReasonTransferred || rec.Transfer != d.cfg.SIP.Trunks[0].Transfer {
		t.Fatalf("record: reason %v transfer %q", rec.Reason, rec.Transfer)
	}
}

// TestE2ELoad: 100 calls from SIPp at 25 calls/s, each queued for 4 s
// with hold music (no agent), then abandoned. Every one is stored as an
// abandon, none fails, and the gateway's CPU per call-second is logged.
func TestE2ELoad(t *testing.T) {
	d := startDesk(t, "open")
	const calls = 100
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	sipp(t, d, "caller.xml", "-d", "4000", "-m", strconv.Itoa(calls), "-r", "25", "-l", strconv.Itoa(calls))
	for i := 0; i < calls; i++ {
		d.callStats(t)
	}
	wall := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	_ = d.db.Sync(context.Background())
	rs, err := d.db.List(storage.Filter{Channel: interaction.Phone})
	if err != nil {
		t.Fatal(err)
	}
	abandoned := 0
	for _, r := range rs {
		if r.Reason == interaction.ReasonAbandoned {
			abandoned++
		}
	}
	if len(rs) != calls || abandoned != calls {
		t.Fatalf("%d interactions, %d abandoned; want %d each", len(rs), abandoned, calls)
	}
	callSeconds := float64(calls) * 4.3 // the pause plus the welcome prompt
	t.Logf("LOAD: %d calls in %v; process CPU %v = %.2f ms per call-second (router, store, gateway, RTP both ways)",
		calls, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), float64(cpu.Milliseconds())/callSeconds)
}

// TestE2ETransferByInvite: the trunk refuses REFER, so the gateway calls
// the 12366 target (a SIPp UAS echoing RTP) through the trunk and bridges
// the caller to it.
func TestE2ETransferByInvite(t *testing.T) {
	port := siptest.FreePort(t, false)
	target := fmt.Sprintf("sip:12366@127.0.0.1:%d", port)
	d := startDeskEdit(t, "open", func(y string) string {
		return strings.Replace(y, "transfer: sip:12366@127.0.0.1:5090", "transfer: "+target, 1)
	})
	d.agent(t)
	uas := make(chan siptest.SIPp, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		uas <- siptest.RunSIPp(ctx, t, "", "-sn", "uas", "-p", strconv.Itoa(port), "-rtp_echo")
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sipp(t, d, "transfer_refused.xml", "-d", "3000")
	}()
	var id interaction.ID
	waitFor(t, 10*time.Second, "the call to be connected", func() bool {
		for _, e := range d.phoneEvents(t) {
			if e.Type == interaction.Answered {
				id = e.ID
				return true
			}
		}
		return false
	})
	if err := d.router.Transfer(context.Background(), id, target, d.cfg.ScopeReasons[0], "agent:1001"); err != nil {
		t.Fatal(err)
	}
	<-done
	if res := <-uas; res.Err != nil {
		t.Fatalf("12366 UAS: %v\n%s", res.Err, res.Output)
	}
	st := d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	if rec.Reason != interaction.ReasonTransferred || rec.Transfer != target {
		t.Fatalf("record: reason %v transfer %q", rec.Reason, rec.Transfer)
	}
	if !d.logged("sip call transferred through the trunk") || st.AgentRx < 50 {
		t.Fatalf("not bridged to the transfer target; RTP %+v", st)
	}
}

// TestE2ERTPContinuity: what the caller receives is one RTP stream from
// the welcome prompt through hold music to the agent's voice: one SSRC,
// sequence numbers +1, timestamps +160 per 20 ms, a marker bit and a
// wall-clock timestamp step at the switch to the agent (RFC 3550 §5.1). The
// caller is a Go UAC with its own RTP socket so every packet is seen.
func TestE2ERTPContinuity(t *testing.T) {
	d := startDesk(t, "open")
	d.agent(t)
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rtpConn.Close()
	dua := trunkUAC(t)
	body := pcmaOffer(t, rtpConn.LocalAddr().(*net.UDPAddr).AddrPort())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dlg, err := dua.Invite(ctx, d.trunkURI(), body, gosip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	defer dlg.Close()
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := dlg.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	type pkt struct {
		rtp.Header
		at time.Time
	}
	var got []pkt
	var connectedAt time.Time
	buf := make([]byte, 1500)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if connectedAt.IsZero() && d.logged("sip call connected") {
			connectedAt = time.Now()
		}
		if !connectedAt.IsZero() && time.Since(connectedAt) > 2*time.Second {
			break
		}
		_ = rtpConn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := rtpConn.Read(buf)
		if err != nil {
			continue
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		got = append(got, pkt{p.Header, time.Now()})
	}
	if err := dlg.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	d.callStats(t)
	if connectedAt.IsZero() || len(got) < 100 {
		t.Fatalf("connected %v, %d packets", !connectedAt.IsZero(), len(got))
	}
	switches := 0
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if b.SSRC != a.SSRC || b.SequenceNumber != a.SequenceNumber+1 {
			t.Fatalf("packet %d: ssrc %x→%x seq %d→%d", i, a.SSRC, b.SSRC, a.SequenceNumber, b.SequenceNumber)
		}
		dts := b.Timestamp - a.Timestamp
		if !b.Marker {
			if dts%160 != 0 || dts == 0 || dts > 480 {
				t.Fatalf("packet %d: timestamp step %d without a marker", i, dts)
			}
			continue
		}
		switches++
		wall := b.at.Sub(a.at)
		if dts%160 != 0 || time.Duration(dts)*time.Second/8000 > wall+100*time.Millisecond {
			t.Fatalf("packet %d: switch timestamp step %d for %v of wall time", i, dts, wall)
		}
	}
	// Prompts and hold music share one source, numbered on as one; the
	// agent's voice is the switch.
	if switches < 1 {
		t.Errorf("%d source switches seen, want the one to the agent", switches)
	}
}

// phoneEvents returns the events of the (only) phone interaction.
func (d *desk) phoneEvents(t *testing.T) []interaction.Event {
	t.Helper()
	_ = d.db.Sync(context.Background())
	rs, err := d.db.List(storage.Filter{Channel: interaction.Phone})
	if err != nil || len(rs) == 0 {
		return nil
	}
	evs, _ := d.db.Events(rs[len(rs)-1].ID)
	return evs
}

func countRingFailed(evs []interaction.Event, cause string) int {
	n := 0
	for _, e := range evs {
		if e.Type == interaction.RingFailed && e.Data["cause"] == cause {
			n++
		}
	}
	return n
}

// TestE2ERequeue: the agent's phone rings out (no answer), then rejects
// (486); each time the caller goes back to the queue with its original
// entry time, hears hold music, and is never hung up on; it finally
// gives up and the call is an abandon.
func TestE2ERequeue(t *testing.T) {
	d := startDesk(t, "open")
	b := d.agentMode(t, "manual")
	done := make(chan struct{})
	go func() {
		defer close(done)
		sipp(t, d, "caller.xml", "-d", "9000")
	}()
	waitFor(t, 10*time.Second, "a ring to time out", func() bool { return countRingFailed(d.phoneEvents(t), "no_answer") == 1 })
	waitFor(t, 5*time.Second, "the retry ring", func() bool {
		n := 0
		for _, e := range d.phoneEvents(t) {
			if e.Type == interaction.RingStarted {
				n++
			}
		}
		return n == 2
	})
	// Let the phone alert, then reject the call from it.
	waitFor(t, 5*time.Second, "baresip to show the incoming call", func() bool {
		return strings.Contains(b.Output(), "Incoming call")
	})
	if out, err := b.Command("hangup", ""); err != nil {
		t.Fatalf("hangup: %v %s", err, out)
	}
	waitFor(t, 5*time.Second, "the busy ring failure", func() bool {
		evs := d.phoneEvents(t)
		return countRingFailed(evs, "busy")+countRingFailed(evs, "declined") == 1
	})
	<-done
	st := d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	evs := d.phoneEvents(t)
	if rec.Reason != interaction.ReasonAbandoned || rec.Rings < 2 || !rec.OfferedAt.Equal(evs[0].At) {
		t.Fatalf("record: reason %v rings %d offered %v (first event %v)", rec.Reason, rec.Rings, rec.OfferedAt, evs[0].At)
	}
	if w := rec.Wait(); w < 8*time.Second {
		t.Errorf("wait %v: the entry time was not kept", w)
	}
	if st.CallerTx < 300 || st.AgentRx != 0 {
		t.Errorf("RTP %+v: want hold music to the caller throughout and no agent audio", st)
	}
}

// TestE2EAgentKilled: the agent's softphone process dies while its phone
// rings; the ring fails at the ring timeout, the caller goes back to the
// queue and keeps hearing hold music, and its hang-up is an abandon
// recorded at once (a dead phone must not hold the call up).
func TestE2EAgentKilled(t *testing.T) {
	d := startDesk(t, "open")
	b := d.agentMode(t, "manual")
	done := make(chan struct{})
	go func() {
		defer close(done)
		sipp(t, d, "caller.xml", "-d", "6000")
	}()
	waitFor(t, 10*time.Second, "baresip to show the incoming call", func() bool {
		return strings.Contains(b.Output(), "Incoming call")
	})
	b.Stop()
	waitFor(t, 10*time.Second, "the ring to fail", func() bool {
		evs := d.phoneEvents(t)
		return countRingFailed(evs, "no_answer")+countRingFailed(evs, "lost") >= 1
	})
	<-done
	hungUp := time.Now()
	st := d.callStats(t)
	if d := time.Since(hungUp); d > 5*time.Second {
		t.Errorf("the call took %v to end after the caller hung up", d)
	}
	rec := d.ended(t, interaction.Phone)
	if rec.Reason != interaction.ReasonAbandoned || rec.Wait() < 5*time.Second {
		t.Fatalf("record: reason %v wait %v", rec.Reason, rec.Wait())
	}
	if st.CallerTx < 200 {
		t.Errorf("caller heard %d packets; hold music stopped?", st.CallerTx)
	}
}

// TestE2ETCP: the trunk over TCP.
func TestE2ETCP(t *testing.T) {
	d := startDesk(t, "open")
	d.agent(t)
	sipp(t, d, "caller.xml", "-d", "3000", "-t", "t1")
	st := d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	if rec.Reason != interaction.ReasonCompleted || rec.Agent != "1001" || st.AgentRx < 50 || st.CallerRx < 50 {
		t.Fatalf("record: reason %v agent %q; RTP %+v", rec.Reason, rec.Agent, st)
	}
}

// TestE2EMaxWaitVoicemail: nobody answers within the queue's max wait;
// the router overflows the call to voicemail (an explicit rule), the
// caller leaves a message and it becomes a ticket.
func TestE2EMaxWaitVoicemail(t *testing.T) {
	d := startDeskEdit(t, "open", func(y string) string {
		return strings.Replace(y, "    announce_interval: 30s\n", "    announce_interval: 30s\n    max_wait: 2s\n    overflow: voicemail\n", 1)
	})
	sipp(t, d, "caller.xml", "-d", "5000")
	d.callStats(t)
	call := d.ended(t, interaction.Phone)
	if call.Reason != interaction.ReasonVoicemail {
		t.Fatalf("call reason %v, want voicemail", call.Reason)
	}
	ticket := d.ended(t, interaction.Message)
	if ticket.Parent != call.ID || ticket.Recording == "" || ticket.AnswerBy.IsZero() {
		t.Fatalf("ticket parent %q recording %q answer by %v", ticket.Parent, ticket.Recording, ticket.AnswerBy)
	}
}

func trunkWithDigest(y string) string {
	return strings.Replace(y, "      transfer: sip:12366@127.0.0.1:5090\n",
		"      transfer: sip:12366@127.0.0.1:5090\n      username: trunk12366\n      password: s3cret-trunk\n", 1)
}

// TestE2ETrunkDigestSIPp: SIPp as a trunk with credentials answers the
// MD5 challenge; a wrong password is refused and leaves no interaction.
func TestE2ETrunkDigestSIPp(t *testing.T) {
	d := startDeskEdit(t, "open", trunkWithDigest)
	sipp(t, d, "caller_auth.xml", "-d", "1500", "-au", "trunk12366", "-ap", "s3cret-trunk")
	d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	if rec.Reason != interaction.ReasonAbandoned {
		t.Fatalf("call reason %v", rec.Reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sf, err := filepath.Abs(filepath.Join("..", "testdata", "sipp", "caller_auth.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if res := siptest.RunSIPp(ctx, t, d.target, "-sf", sf, "-s", "12366", "-d", "1000", "-au", "trunk12366", "-ap", "wrong"); res.Err == nil {
		t.Fatal("a wrong trunk password was accepted")
	}
	if rs, _ := d.db.List(storage.Filter{Channel: interaction.Phone}); len(rs) != 1 {
		t.Fatalf("%d phone interactions, want 1", len(rs))
	}
}

// TestE2ETrunkDigest: a trunk with credentials challenges the INVITE and
// takes the call once the caller answers the challenge; a wrong password
// is refused and leaves no interaction. The caller here is sipgo's UAC,
// which answers the SHA-256 challenge (RFC 8760) that most peers get.
func TestE2ETrunkDigest(t *testing.T) {
	d := startDeskEdit(t, "open", trunkWithDigest)
	dua := trunkUAC(t)
	body := pcmaOffer(t, netip.MustParseAddrPort("127.0.0.1:9"))
	call := func(pass string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dlg, err := dua.Invite(ctx, d.trunkURI(), body, gosip.NewHeader("Content-Type", "application/sdp"))
		if err != nil {
			return err
		}
		defer dlg.Close()
		if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{Username: "trunk12366", Password: pass}); err != nil {
			return err
		}
		if err := dlg.Ack(ctx); err != nil {
			return err
		}
		waitFor(t, 5*time.Second, "the call to be queued", func() bool { return len(d.phoneEvents(t)) > 0 })
		return dlg.Bye(ctx)
	}
	if err := call("wrong"); err == nil {
		t.Fatal("a wrong trunk password was accepted")
	}
	if err := call("s3cret-trunk"); err != nil {
		t.Fatalf("call with the trunk's credentials: %v", err)
	}
	d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	if rec.Reason != interaction.ReasonAbandoned {
		t.Fatalf("call reason %v", rec.Reason)
	}
	if rs, _ := d.db.List(storage.Filter{Channel: interaction.Phone}); len(rs) != 1 {
		t.Fatalf("%d phone interactions, want 1", len(rs))
	}
}

// TestE2EUnknownSource: a call from an address no trunk lists gets 403.
func TestE2EUnknownSource(t *testing.T) {
	d := startDesk(t, "open")
	sipp(t, d, "refused.xml", "-i", "127.0.0.2")
	rs, err := d.db.List(storage.Filter{})
	if err != nil || len(rs) != 0 {
		t.Fatalf("refused call left %d interactions (%v)", len(rs), err)
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
