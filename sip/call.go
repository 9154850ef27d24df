package sip

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/sip/media"
)

// callState is where a call is, as its goroutine sees it.
type callState uint8

const (
	stAnswering       callState = iota
	stWelcome                   // playing the welcome prompt; not yet offered
	stQueued                    // in the router's queue: hold music, announcements
	stRinging                   // an agent's phone is ringing; hold music goes on
	stConnected                 // bridged to the agent, recording
	stSurvey                    // the agent hung up first: survey prompt, wait for a digit
	stVoicemailPrompt           // after-hours prompt and beep
	stVoicemail                 // recording a message
	stTransferring              // transfer prompt, then REFER
	stClosing                   // closing prompt, then BYE
	stOutbound                  // REFER refused: bridged to a new call through the trunk
	stEnded
)

var stateNames = [...]string{"answering", "welcome", "queued", "ringing", "connected", "survey",
	"voicemail_prompt", "voicemail", "transferring", "closing", "outbound", "ended"}

func (s callState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// sipMsg is an in-dialog request for the call's goroutine; it answers the
// transaction and closes done.
type sipMsg struct {
	req  *gosip.Request
	tx   gosip.ServerTransaction
	done chan struct{}
}

// routerMsg is one Handler callback, carried to the call's goroutine.
type routerMsg struct {
	ring   *queue.Ring
	stop   string
	notice *queue.Notice
	close  *queue.Close
}

// ringing is one INVITE to an agent in progress.
type ringing struct {
	gen         int
	agent       string
	leg         *media.Leg
	callID      string
	stop        chan struct{} // closed to withdraw the INVITE
	stopped     atomic.Bool
	provisional atomic.Bool // a 1xx other than 100 arrived, so CANCEL can be sent
	done        chan struct{}
}

// ringResult is how a ringing ended.
type ringResult struct {
	gen    int
	dlg    *sipgo.DialogClientSession // set when the agent answered
	answer media.Session
	codec  media.Codec
	cause  queue.RingCause
	err    error
}

// player is a prompt being played to the caller.
type player struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// call is one taxpayer's call: the caller's dialog and RTP leg, and, once
// the router picks an agent, the agent's. Its goroutine (run) owns every
// field below; the router's callbacks and the in-dialog requests reach it
// through channels.
type call struct {
	g     *Gateway
	set   *gwSettings
	trunk *trunk
	queue string
	log   *slog.Logger
	ctx   context.Context

	id        interaction.ID
	invite    *gosip.Request
	inviteTx  gosip.ServerTransaction
	caller    *sipgo.DialogServerSession
	callerID  string
	callerLeg *media.Leg
	offer     media.Session
	codec     media.Codec
	sessID    uint64
	sdpVer    uint64

	state       callState
	callerGone  bool
	offerDepth  int
	src         *media.Source
	play        *player
	playGen     int
	ring        *ringing
	dying       map[int]*ringing // withdrawn rings still winding down
	ringGen     int
	agent       string
	agentDlg    *sipgo.DialogClientSession
	agentLeg    *media.Leg
	agentCallID string
	rec         *media.Recorder
	recName     string
	vm          *media.Recorder
	vmName      string
	vmStart     time.Time
	transferTo  string
	agentRx     uint64
	agentTx     uint64
	timer       *time.Timer
	timerC      <-chan time.Time
	// cause says why the gateway itself ended the call (a dead peer);
	// empty when a party hung up or the router closed it.
	cause Cause
	// st is the trunk leg's session timer (RFC 4028), seC its timer.
	st        sessionTimer
	seTimer   *time.Timer
	seC       <-chan time.Time
	callerSDP []byte // our SDP as the caller has it, for a re-INVITE refresh

	fromRouter  chan routerMsg
	sipIn       chan *sipMsg
	playDone    chan int
	ringResults chan ringResult
	exited      chan struct{}
}

var _ queue.Handler = (*call)(nil)

func newCall(ctx context.Context, g *Gateway, set *gwSettings, t *trunk, q string, req *gosip.Request,
	dlg *sipgo.DialogServerSession, leg *media.Leg, offer media.Session, codec media.Codec) *call {
	callID := req.CallID().Value()
	return &call{
		g: g, set: set, trunk: t, queue: q, ctx: ctx,
		log:    g.log.With("call", callID, "trunk", t.Name),
		invite: req, caller: dlg, callerID: callID, callerLeg: leg, offer: offer, codec: codec,
		sessID: rand.Uint64() >> 1, src: media.NewSource(), dying: map[int]*ringing{},
		fromRouter: make(chan routerMsg, 64), sipIn: make(chan *sipMsg),
		playDone: make(chan int, 1), ringResults: make(chan ringResult, 8), exited: make(chan struct{}),
	}
}

// Ring implements queue.Handler.
func (c *call) Ring(r queue.Ring) { c.post(routerMsg{ring: &r}) }

// StopRing implements queue.Handler.
func (c *call) StopRing(_ interaction.ID, agent string) { c.post(routerMsg{stop: agent}) }

// Notify implements queue.Handler.
func (c *call) Notify(n queue.Notice) { c.post(routerMsg{notice: &n}) }

// Close implements queue.Handler.
func (c *call) Close(cl queue.Close) { c.post(routerMsg{close: &cl}) }

// post never blocks the router: the buffer holds far more than one call's
// worth of instructions; if it is full the call is stuck and the message
// is logged and dropped.
func (c *call) post(m routerMsg) {
	select {
	case c.fromRouter <- m:
	default:
		c.log.Error("sip: router message dropped, call not keeping up")
	}
}

// ack routes an ACK to the caller's dialog (it confirms our 200 OK). It
// runs on the handler goroutine; the dialog's state is atomic.
func (c *call) ack(req *gosip.Request, tx gosip.ServerTransaction) {
	if req.CallID().Value() == c.callerID {
		_ = c.caller.ReadAck(req, tx)
	}
}

func (c *call) rctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(c.ctx), 5*time.Second)
}

func (c *call) emit(t interaction.EventType, data map[string]string) {
	if c.g.store == nil {
		return
	}
	c.g.store.Emit(interaction.Event{Type: t, At: time.Now(), ID: c.id, Channel: interaction.Phone,
		Agent: c.agent, Data: data})
}

// run answers the call and serves it to the end.
func (c *call) run() {
	defer close(c.exited)
	defer c.cleanup()
	c.callerLeg.Configure(c.offer.Addr, c.codec, c.offer.Dir)
	body, err := c.describe(c.callerLeg, []media.Codec{c.codec}, c.offer.Dir.Reverse())
	if err == nil {
		err = c.answer(body)
	}
	if err != nil {
		c.log.Warn("sip: call not answered", "err", err)
		return
	}
	watch := time.NewTicker(mediaCheckEvery(c.set.cfg.SIP.RTPTimeout))
	defer watch.Stop()
	c.armSession()
	defer c.stopSession()
	c.log.Info("sip call answered", "queue", c.queue, "from", callerNumber(c.invite), "codec", c.codec.Law.String())
	c.state = stWelcome
	c.playPrompts(false, promptWelcome)
	for c.state != stEnded {
		select {
		case <-c.ctx.Done():
			c.shutdown()
			return
		case m := <-c.sipIn:
			c.onSIP(m)
			close(m.done)
		case m := <-c.fromRouter:
			c.onRouter(m)
		case r := <-c.ringResults:
			c.onRingResult(r)
		case gen := <-c.playDone:
			if gen == c.playGen && c.play != nil {
				c.stopPlay()
				c.onPlayDone()
			}
		case d := <-c.callerLeg.Digits():
			c.onDigit(d)
		case <-c.timerC:
			c.timerC = nil
			c.onTimer()
		case now := <-watch.C:
			c.checkMedia(now)
		case <-c.seC:
			c.seC = nil
			c.onSessionTimer()
		}
	}
}

// Cause is why the gateway ended a call on its own: a peer that is gone.
type Cause string

// Causes.
const (
	CauseNone          Cause = ""
	CauseCallerNoRTP   Cause = "rtp_timeout_caller" // the caller sent no RTP for sip.rtp_timeout
	CauseAgentNoRTP    Cause = "rtp_timeout_agent"  // the agent (or transfer target) sent none
	CauseNoAck         Cause = "no_ack"             // our 200 OK was never acknowledged
	CauseSessionExpiry Cause = "session_expired"    // the trunk missed its session refresh (RFC 4028)
	CauseRefreshFailed Cause = "refresh_failed"     // our session refresh was refused (408, 481) or lost
)

// errNoAck: the caller never acknowledged the 200 OK.
var errNoAck = errors.New("sip: no ACK for the 200 OK within 64*T1")

// answer sends the 200 OK and waits for its ACK. sipgo retransmits the
// 200 (RFC 3261 §13.3.1.4) but its wait has no working bound, so the call
// bounds it at 64·T1 and then, as §13.3.1.4 says, ends the session with a
// BYE. No interaction exists yet, so there is nothing to tell the router.
func (c *call) answer(body []byte) error {
	c.callerSDP = body
	// The dialog's copy of the INVITE carries the To tag it chose.
	res := gosip.NewSDPResponseFromRequest(c.caller.InviteRequest, body)
	for _, h := range c.st.headers() {
		res.AppendHeader(h)
	}
	done := make(chan error, 1)
	go func() { done <- c.caller.WriteResponse(res) }()
	t := time.NewTimer(64 * gosip.T1)
	defer t.Stop()
	var err error
	returned := false
	select {
	case err = <-done:
		if err == nil {
			return nil
		}
		returned = true
	case <-t.C:
		err = errNoAck
		c.cause = CauseNoAck
	case <-c.ctx.Done():
		err = context.Cause(c.ctx)
	}
	if c.inviteTx != nil {
		c.inviteTx.Terminate() // stops the retransmissions; WriteResponse returns
	}
	if !returned {
		if werr := <-done; werr != nil {
			c.log.Debug("sip: 200 OK abandoned", "err", werr)
		}
	}
	c.hangupCaller()
	return err
}

// mediaCheckEvery is how often the RTP watchdog looks: a fifth of the
// timeout, between 100 ms and 5 s.
func mediaCheckEvery(timeout time.Duration) time.Duration {
	return min(max(timeout/5, 100*time.Millisecond), 5*time.Second)
}

// checkMedia ends the call if the caller, or the agent while bridged, has
// sent no RTP for sip.rtp_timeout (streams on hold are not watched).
func (c *call) checkMedia(now time.Time) {
	limit := c.set.cfg.SIP.RTPTimeout
	if d, watched := c.callerLeg.Silent(now); watched && d >= limit {
		c.peerGone(CauseCallerNoRTP, "silent_for", d.Round(time.Millisecond).String())
		return
	}
	if c.agentLeg != nil && (c.state == stConnected || c.state == stOutbound) {
		if d, watched := c.agentLeg.Silent(now); watched && d >= limit {
			c.peerGone(CauseAgentNoRTP, "silent_for", d.Round(time.Millisecond).String())
		}
	}
}

// peerGone ends a call whose caller, agent or trunk is gone: the
// recording is closed, the router hears of it (a connected interaction
// ends, by the system; one still waiting is abandoned, the caller being
// unreachable), and both legs get a BYE. The cause is logged, given to
// CallEnded, and stored on the Ended event (data "cause").
func (c *call) peerGone(cause Cause, args ...any) {
	c.cause = cause
	c.log.Warn("sip call ended: peer gone", append([]any{"cause", string(cause), "state", c.state.String(), "agent", c.agent}, args...)...)
	c.stopPlay()
	c.stopTimer()
	ctx, cancel := c.rctx()
	defer cancel()
	switch c.state {
	case stQueued, stRinging:
		if err := c.g.router.Abandon(ctx, c.id); err != nil {
			c.log.Warn("sip: abandon not recorded", "err", err)
		}
		c.withdrawRing()
	case stConnected:
		c.unbridge()
		if err := c.g.router.End(ctx, c.id, queue.End{By: queue.PartySystem, Cause: string(cause)}); err != nil {
			c.log.Warn("sip: end not recorded", "err", err)
		}
		c.hangupAgent()
	case stVoicemail:
		c.finishVoicemail()
	case stOutbound:
		c.hangupAgent()
	}
	c.withdrawRing()
	c.hangupCaller()
	c.state = stEnded
}

// describe builds our SDP for a leg.
func (c *call) describe(leg *media.Leg, codecs []media.Codec, dir media.Direction) ([]byte, error) {
	c.sdpVer++
	addr := netip.AddrPortFrom(c.g.addr.Addr(), leg.Addr().Port()) // the leg may be bound to 0.0.0.0
	return media.Description{Addr: addr, Codecs: codecs, Dir: dir, SessionID: c.sessID, Version: c.sdpVer}.Marshal()
}

// playPrompts plays the named prompts to the caller, in a loop or once;
// a single-shot play reports its end through playDone.
func (c *call) playPrompts(loop bool, names ...string) {
	c.stopPlay()
	clips := c.set.prompts.clips(names...)
	c.playGen++
	gen := c.playGen
	ctx, cancel := context.WithCancel(c.ctx)
	p := &player{cancel: cancel, done: make(chan struct{})}
	c.play = p
	leg, src, pacer := c.callerLeg, c.src, &c.g.pacer
	law := leg.Codec().Law // a codec change mid-prompt makes the leg encode
	go func() {
		defer close(p.done)
		err := pacer.Play(ctx, clips, law, loop, func(pcm []int16, payload []byte) error {
			f := src.Frame(pcm)
			f.Law, f.Payload = law, payload
			return leg.Write(f)
		})
		if err == nil && !loop {
			select {
			case c.playDone <- gen:
			default:
			}
		}
	}()
}

func (c *call) stopPlay() {
	if c.play == nil {
		return
	}
	c.play.cancel()
	<-c.play.done
	c.play = nil
	select { // a stale end-of-prompt must not be taken for the next one's
	case <-c.playDone:
	default:
	}
}

func (c *call) armTimer(d time.Duration) {
	c.stopTimer()
	c.timer = time.NewTimer(d)
	c.timerC = c.timer.C
}

func (c *call) stopTimer() {
	if c.timer != nil {
		c.timer.Stop()
		c.timer, c.timerC = nil, nil
	}
}

func (c *call) onPlayDone() {
	switch c.state {
	case stWelcome:
		c.offerTo(c.queue)
	case stQueued, stRinging:
		c.playPrompts(true, promptHold)
	case stSurvey:
		c.armTimer(c.set.cfg.SIP.SurveyTimeout)
	case stVoicemailPrompt:
		c.startVoicemail()
	case stTransferring:
		c.refer()
	case stClosing:
		c.hangupCaller()
		c.state = stEnded
	}
}

func (c *call) onTimer() {
	switch c.state {
	case stSurvey:
		c.log.Info("sip survey: no digit")
		c.closing()
	case stVoicemail:
		c.finishVoicemail()
		c.closing()
	}
}

func (c *call) closing() {
	c.state = stClosing
	c.playPrompts(false, promptClosing)
}

// offerTo puts the call into the router's queue q.
func (c *call) offerTo(q string) {
	ctx, cancel := c.rctx()
	adm, err := c.g.router.Offer(ctx, queue.Offer{
		Channel: interaction.Phone, Queue: q, Handler: c,
		Taxpayer: queue.Taxpayer{Phone: callerNumber(c.invite)},
	})
	cancel()
	if err != nil {
		c.log.Error("sip: router refused the call", "queue", q, "err", err)
		c.closing()
		return
	}
	c.id = adm.ID
	c.log = c.log.With("id", string(c.id))
	switch adm.Reason {
	case interaction.ReasonNone:
		c.state = stQueued
		if !adm.Immediate && adm.Position > 0 {
			c.playPrompts(false, append([]string{promptQueued}, announcement(adm.Position, adm.EstimatedWait)...)...)
		} else {
			c.playPrompts(true, promptHold)
		}
	case interaction.ReasonAfterHours, interaction.ReasonVoicemail:
		c.voicemail()
	default:
		c.log.Info("sip call not admitted", "reason", adm.Reason.String(), "target", adm.Target)
		if adm.Target == "voicemail" {
			c.voicemail()
			return
		}
		if c.isQueue(adm.Target) && c.offerDepth < 3 {
			c.offerDepth++
			c.offerTo(adm.Target)
			return
		}
		c.closing()
	}
}

func (c *call) isAgent(id string) bool {
	for _, a := range c.set.cfg.Agents {
		if a.ID == id {
			return true
		}
	}
	return false
}

func (c *call) isQueue(name string) bool {
	for _, q := range c.set.cfg.Queues {
		if q.Name == name {
			return true
		}
	}
	return false
}

func (c *call) onRouter(m routerMsg) {
	switch {
	case m.ring != nil:
		c.startRing(*m.ring)
	case m.stop != "":
		if c.ring != nil && c.ring.agent == m.stop {
			c.withdrawRing()
		}
	case m.notice != nil:
		if m.notice.Kind == queue.NoticeRequeued && c.state == stConnected {
			c.backToQueue()
			return
		}
		if m.notice.Kind == queue.NoticeHolding && (c.state == stQueued || c.state == stRinging) && m.notice.Position > 0 {
			c.playPrompts(false, announcement(m.notice.Position, m.notice.EstimatedWait)...)
		}
	case m.close != nil:
		c.onClose(*m.close)
	}
}

// backToQueue leaves the agent and waits in the queue again, with hold
// music; the recording goes on for the next agent.
func (c *call) backToQueue() {
	c.log.Info("sip call back in the queue", "from_agent", c.agent)
	c.stopRelay()
	c.byeAgent()
	c.agent = ""
	c.state = stQueued
	c.playPrompts(true, promptHold)
}

// onClose: the router ended the interaction (max wait, after hours,
// transfer out, overflow with nowhere to go).
func (c *call) onClose(cl queue.Close) {
	c.log.Info("sip call closed by the router", "reason", cl.Reason.String(), "target", cl.Target)
	c.withdrawRing()
	if c.state == stConnected {
		c.hangupAgent()
	}
	switch {
	case cl.Reason == interaction.ReasonVoicemail || cl.Reason == interaction.ReasonAfterHours || cl.Target == "voicemail":
		c.voicemail()
	case cl.Reason == interaction.ReasonTransferred && cl.Target != "":
		c.transferTo = cl.Target
		c.state = stTransferring
		c.playPrompts(false, promptTransfer)
	default:
		c.closing()
	}
}

// startRing sends the INVITE to the agent the router picked.
func (c *call) startRing(r queue.Ring) {
	fail := func(cause queue.RingCause) {
		ctx, cancel := c.rctx()
		defer cancel()
		if err := c.g.router.RingFailed(ctx, c.id, r.Agent, cause); err != nil && !errors.Is(err, queue.ErrRingWithdrawn) {
			c.log.Warn("sip: ring failed not reported", "err", err)
		}
	}
	if c.state == stConnected {
		// The router took the call back from its agent (a transfer to a
		// queue) and offers it anew.
		c.backToQueue()
	}
	if c.state != stQueued || c.ring != nil {
		c.log.Warn("sip: ring in the wrong state", "state", c.state.String(), "agent", r.Agent)
		fail(queue.RingDeclined)
		return
	}
	b, ok := c.g.Lookup(r.Agent)
	if !ok {
		c.log.Info("sip: agent has no registered phone", "agent", r.Agent)
		fail(queue.RingLost)
		return
	}
	leg, err := c.g.ports.Open(c.g.laddr.Addr(), c.g.log)
	if err != nil {
		c.log.Error("sip: no RTP port for the agent leg", "err", err)
		fail(queue.RingLost)
		return
	}
	body, err := c.describe(leg, media.OfferCodecs(c.set.cfg.SIP.Codecs), media.SendRecv)
	if err != nil {
		_ = leg.Close()
		fail(queue.RingLost)
		return
	}
	c.ringGen++
	rg := &ringing{gen: c.ringGen, agent: r.Agent, leg: leg, callID: newCallID(), stop: make(chan struct{}), done: make(chan struct{})}
	c.ring = rg
	c.state = stRinging
	c.g.bind(rg.callID, c)
	from := callerNumber(c.invite)
	timeout := r.Timeout + 2*time.Second // the router's ring timer decides; this is a backstop
	c.log.Info("sip ringing agent", "agent", r.Agent, "contact", b.Contact.String(), "source", b.Source)
	go func() {
		defer close(rg.done)
		c.ringResults <- c.g.ringAgent(c.ctx, rg, b, body, from, timeout, c.set.cfg.SIP.Codecs)
	}()
}

// cancelRing withdraws an INVITE in progress (see stopInvite).
func (c *call) cancelRing(rg *ringing) {
	if rg.stopped.CompareAndSwap(false, true) {
		close(rg.stop)
	}
}

// withdrawRing withdraws the ringing in progress without waiting: its
// INVITE winds down (CANCEL, 487) on its own goroutine and its result is
// released when it arrives.
func (c *call) withdrawRing() {
	rg := c.ring
	if rg == nil {
		return
	}
	c.cancelRing(rg)
	c.dying[rg.gen] = rg
	c.ring = nil
	if c.state == stRinging {
		c.state = stQueued
	}
}

// drainRings withdraws every ringing and waits for all of them to end.
func (c *call) drainRings() {
	c.withdrawRing()
	for len(c.dying) > 0 {
		c.onRingResult(<-c.ringResults)
	}
}

// dropRing releases what a ringing that did not connect holds; a phone
// that answered too late is sent a BYE.
func (c *call) dropRing(rg *ringing, r ringResult) {
	if r.dlg != nil {
		ctx, cancel := c.rctx()
		_ = r.dlg.Bye(ctx)
		cancel()
	}
	_ = rg.leg.Close()
	c.g.unbind(rg.callID)
}

func (c *call) onRingResult(r ringResult) {
	if rg, ok := c.dying[r.gen]; ok {
		delete(c.dying, r.gen)
		<-rg.done
		c.dropRing(rg, r)
		return
	}
	rg := c.ring
	if rg == nil || r.gen != rg.gen {
		c.log.Error("sip: result of an unknown ring", "gen", r.gen)
		return
	}
	<-rg.done
	c.ring = nil
	if c.state == stTransferring {
		if r.dlg == nil {
			c.log.Warn("sip: transfer target did not answer; ending the call", "target", c.transferTo, "err", r.err)
			c.dropRing(rg, r)
			c.closing()
			return
		}
		c.connectOutbound(rg, r)
		return
	}
	if r.dlg == nil {
		c.dropRing(rg, r)
		if c.state == stRinging {
			c.log.Info("sip agent did not answer", "agent", rg.agent, "cause", r.cause.String(), "err", r.err)
			ctx, cancel := c.rctx()
			if err := c.g.router.RingFailed(ctx, c.id, rg.agent, r.cause); err != nil && !errors.Is(err, queue.ErrRingWithdrawn) {
				c.log.Warn("sip: ring failure not reported", "err", err)
			}
			cancel()
			c.state = stQueued
		}
		return
	}
	if c.state != stRinging {
		c.dropRing(rg, r)
		return
	}
	ctx, cancel := c.rctx()
	err := c.g.router.Answer(ctx, c.id, rg.agent)
	cancel()
	if err != nil {
		c.log.Info("sip agent answered a withdrawn ring", "agent", rg.agent, "err", err)
		c.dropRing(rg, r)
		c.state = stQueued
		return
	}
	c.connect(rg, r)
}

// connect bridges the caller and the agent and starts the recording.
func (c *call) connect(rg *ringing, r ringResult) {
	c.stopPlay()
	c.agent, c.agentDlg, c.agentLeg, c.agentCallID = rg.agent, r.dlg, rg.leg, rg.callID
	c.agentLeg.Configure(r.answer.Addr, r.codec, r.answer.Dir)
	c.state = stConnected
	c.log.Info("sip call connected", "agent", c.agent, "agent_codec", r.codec.Law.String())

	// A call moved from one agent to another keeps its one recording
	// (the blob name is the interaction's), the new agent on the right.
	rec := c.rec
	if rec == nil && c.g.store != nil {
		name := recordingName(c.id, time.Now(), c.set.cfg.Location)
		f, err := c.g.store.Blobs().Create(name)
		if err == nil {
			rec, err = media.NewRecorder(f, 2)
		}
		if err != nil {
			c.log.Error("sip: recording not started", "err", err)
		} else {
			c.rec, c.recName = rec, name
			c.emit(interaction.RecordingStarted, map[string]string{"recording": name})
		}
	}
	callerLeg, agentLeg := c.callerLeg, c.agentLeg
	callerLeg.SetSink(func(f media.Frame) {
		_ = agentLeg.Write(f)
		if rec != nil {
			rec.Write(media.Caller, f.PCM)
		}
	})
	agentLeg.SetSink(func(f media.Frame) {
		_ = callerLeg.Write(f)
		if rec != nil {
			rec.Write(media.Agent, f.PCM)
		}
	})
	c.relayDTMF()
}

// relayDTMF passes RFC 4733 events between the bridged legs, both ways
// (the caller answering the agent's instructions, an agent dialling an
// extension behind a transfer target). It stops with the bridge, so the
// survey's digits reach only the gateway.
func (c *call) relayDTMF() {
	callerLeg, agentLeg, log := c.callerLeg, c.agentLeg, c.log
	relay := func(to *media.Leg, side string) func(media.Event) {
		var warned atomic.Bool
		return func(e media.Event) {
			if err := to.WriteEvent(e); err != nil && warned.CompareAndSwap(false, true) {
				log.Info("sip: DTMF not relayed", "to", side, "err", err)
			}
		}
	}
	callerLeg.SetEventSink(relay(agentLeg, "agent"))
	agentLeg.SetEventSink(relay(callerLeg, "caller"))
}

// stopRelay stops relaying audio and DTMF between the legs.
func (c *call) stopRelay() {
	c.callerLeg.SetSink(nil)
	c.callerLeg.SetEventSink(nil)
	if c.agentLeg != nil {
		c.agentLeg.SetSink(nil)
		c.agentLeg.SetEventSink(nil)
	}
}

// unbridge stops relaying and closes the recording.
func (c *call) unbridge() {
	c.stopRelay()
	if c.rec != nil {
		if err := c.rec.Close(); err != nil {
			c.log.Error("sip: recording not closed cleanly", "recording", c.recName, "err", err)
		}
		c.rec = nil
	}
}

// hangupAgent ends the agent leg from our side and the recording.
func (c *call) hangupAgent() {
	c.unbridge()
	c.byeAgent()
}

// byeAgent sends the agent leg a BYE and releases it.
func (c *call) byeAgent() {
	if c.agentDlg != nil {
		ctx, cancel := c.rctx()
		if err := c.agentDlg.Bye(ctx); err != nil {
			c.log.Warn("sip: BYE to agent failed", "err", err)
		}
		cancel()
		c.agentDlg = nil
	}
	c.releaseAgentLeg()
}

func (c *call) releaseAgentLeg() {
	if c.agentLeg != nil {
		rx, tx := c.agentLeg.Packets()
		c.agentRx += rx
		c.agentTx += tx
		c.log.Info("sip agent leg closed", "agent", c.agent, "rtp_rx", rx, "rtp_tx", tx)
		_ = c.agentLeg.Close()
		c.agentLeg = nil
	}
	if c.agentCallID != "" {
		c.g.unbind(c.agentCallID)
		c.agentCallID = ""
	}
}

func (c *call) hangupCaller() {
	if c.callerGone {
		return
	}
	c.callerGone = true
	ctx, cancel := c.rctx()
	if err := c.caller.Bye(ctx); err != nil {
		c.log.Warn("sip: BYE to caller failed", "err", err)
	}
	cancel()
}

func (c *call) onSIP(m *sipMsg) {
	req := m.req
	fromCaller := req.CallID().Value() == c.callerID
	fromAgent := !fromCaller && c.agentDlg != nil && req.CallID().Value() == c.agentCallID
	switch req.Method {
	case gosip.BYE:
		switch {
		case fromCaller:
			if err := c.caller.ReadBye(req, m.tx); err != nil {
				respond(m.tx, req, gosip.StatusBadRequest, "Bad Request")
				return
			}
			c.callerGone = true
			c.onCallerHangup()
		case fromAgent:
			if err := c.agentDlg.ReadBye(req, m.tx); err != nil {
				respond(m.tx, req, gosip.StatusBadRequest, "Bad Request")
				return
			}
			c.agentDlg = nil
			c.onAgentHangup()
		default:
			respond(m.tx, req, gosip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		}
	case gosip.INVITE:
		switch {
		case fromCaller:
			c.reinvite(m, &c.caller.Dialog, c.callerLeg)
		case fromAgent:
			c.reinvite(m, &c.agentDlg.Dialog, c.agentLeg)
		default:
			respond(m.tx, req, gosip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		}
	case gosip.UPDATE:
		switch {
		case fromCaller:
			c.update(m, &c.caller.Dialog, c.callerLeg)
		case fromAgent:
			c.update(m, &c.agentDlg.Dialog, c.agentLeg)
		default:
			respond(m.tx, req, gosip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		}
	case gosip.INFO:
		respond(m.tx, req, gosip.StatusOK, "OK")
		if fromCaller {
			ct := ""
			if h := req.ContentType(); h != nil {
				ct = h.Value()
			}
			if d, ok := dtmfFromInfo(ct, req.Body()); ok {
				c.onDigit(d)
			}
		}
	case gosip.REFER:
		if !fromAgent || c.state != stConnected {
			respond(m.tx, req, gosip.StatusForbidden, "Forbidden")
			return
		}
		c.agentRefer(m)
	case gosip.NOTIFY:
		// REFER progress (RFC 3515 §2.4.4); the BYE after 202 already ended us.
		respond(m.tx, req, gosip.StatusOK, "OK")
	default:
		respond(m.tx, req, gosip.StatusMethodNotAllowed, "Method Not Allowed")
	}
}

// reinvite answers a re-INVITE (hold, unhold, codec change, refresh)
// without disturbing the call (RFC 3261 §14.2, RFC 3264 §8).
func (c *call) reinvite(m *sipMsg, d *sipgo.Dialog, leg *media.Leg) {
	if err := d.ReadRequest(m.req, m.tx); err != nil {
		respond(m.tx, m.req, gosip.StatusInternalServerError, "Server Internal Error")
		return
	}
	var body []byte
	var err error
	if len(m.req.Body()) == 0 {
		// An offer-less re-INVITE: we offer in the 200, the ACK answers.
		body, err = c.describe(leg, media.OfferCodecs(c.set.cfg.SIP.Codecs), media.SendRecv)
	} else {
		var off media.Session
		var codec media.Codec
		off, err = media.ParseSDP(m.req.Body())
		if err == nil {
			codec, err = media.Negotiate(off, c.set.cfg.SIP.Codecs)
		}
		if err != nil {
			respond(m.tx, m.req, gosip.StatusNotAcceptableHere, "Not Acceptable Here")
			return
		}
		leg.Configure(off.Addr, codec, off.Dir)
		body, err = c.describe(leg, []media.Codec{codec}, off.Dir.Reverse())
		c.log.Info("sip re-INVITE", "direction", off.Dir.String(), "codec", codec.Law.String())
	}
	if err != nil {
		respond(m.tx, m.req, gosip.StatusInternalServerError, "Server Internal Error")
		return
	}
	res := gosip.NewSDPResponseFromRequest(m.req, body)
	res.AppendHeader(gosip.HeaderClone(&c.g.dua.ContactHDR))
	if leg == c.callerLeg {
		// A re-INVITE from the trunk also refreshes the session.
		c.callerSDP = body
		for _, h := range c.refreshed(m.req) {
			res.AppendHeader(h)
		}
	}
	_ = m.tx.Respond(res)
}

// update answers an UPDATE (RFC 3311): a session refresh (RFC 4028) from
// the trunk, or, with a body, a media change like a re-INVITE's.
func (c *call) update(m *sipMsg, d *sipgo.Dialog, leg *media.Leg) {
	if len(m.req.Body()) > 0 {
		c.reinvite(m, d, leg)
		return
	}
	if err := d.ReadRequest(m.req, m.tx); err != nil {
		respond(m.tx, m.req, gosip.StatusInternalServerError, "Server Internal Error")
		return
	}
	var hdrs []gosip.Header
	if leg == c.callerLeg {
		hdrs = c.refreshed(m.req)
	}
	respond(m.tx, m.req, gosip.StatusOK, "OK", hdrs...)
}

func (c *call) onCallerHangup() {
	c.log.Info("sip caller hung up", "state", c.state.String())
	c.stopPlay()
	switch c.state {
	case stQueued, stRinging:
		// Abandon first: its time is the wait; withdrawing a ring to a
		// dead phone can take seconds.
		ctx, cancel := c.rctx()
		if err := c.g.router.Abandon(ctx, c.id); err != nil {
			c.log.Warn("sip: abandon not recorded", "err", err)
		}
		cancel()
		c.withdrawRing()
	case stConnected:
		c.unbridge()
		ctx, cancel := c.rctx()
		if err := c.g.router.End(ctx, c.id, queue.End{By: queue.PartyTaxpayer}); err != nil {
			c.log.Warn("sip: end not recorded", "err", err)
		}
		cancel()
		c.hangupAgent()
	case stVoicemail:
		c.finishVoicemail()
	case stOutbound:
		c.hangupAgent()
	}
	c.state = stEnded
}

func (c *call) onAgentHangup() {
	c.log.Info("sip agent hung up", "agent", c.agent)
	if c.state == stOutbound {
		c.unbridge()
		c.releaseAgentLeg()
		c.hangupCaller()
		c.state = stEnded
		return
	}
	if c.state != stConnected {
		c.releaseAgentLeg()
		return
	}
	c.unbridge()
	c.releaseAgentLeg()
	ctx, cancel := c.rctx()
	if err := c.g.router.End(ctx, c.id, queue.End{By: queue.PartyAgent}); err != nil {
		c.log.Warn("sip: end not recorded", "err", err)
	}
	cancel()
	if !c.surveyOn() {
		c.closing()
		return
	}
	// Digits pressed during the conversation are not votes.
	for len(c.callerLeg.Digits()) > 0 {
		<-c.callerLeg.Digits()
	}
	c.state = stSurvey
	c.playPrompts(false, promptSurvey)
}

func (c *call) surveyOn() bool {
	s := c.set.cfg.SIP.Survey
	return s == nil || *s
}

func (c *call) onDigit(d byte) {
	if c.state != stSurvey || d < '1' || d > '5' {
		return
	}
	c.stopTimer()
	c.log.Info("sip survey score", "score", string(d))
	c.emit(interaction.SurveyScore, map[string]string{"score": string(d)})
	c.closing()
}

// voicemail takes a message (M2): after-hours prompt, beep, record.
func (c *call) voicemail() {
	c.unbridge() // a conversation recorded before a requeue ends here
	c.state = stVoicemailPrompt
	c.playPrompts(false, promptAfterHours, promptBeep)
}

func (c *call) startVoicemail() {
	if c.id == "" {
		c.id = interaction.NewID(time.Now())
	}
	c.state = stVoicemail
	c.vmStart = time.Now()
	c.armTimer(c.set.cfg.SIP.VoicemailMax)
	if c.g.store == nil {
		return
	}
	name := recordingName(c.id, c.vmStart, c.set.cfg.Location)
	f, err := c.g.store.Blobs().Create(name)
	var rec *media.Recorder
	if err == nil {
		rec, err = media.NewRecorder(f, 1)
	}
	if err != nil {
		c.log.Error("sip: voicemail not recorded", "err", err)
		return
	}
	c.vm, c.vmName = rec, name
	c.callerLeg.SetSink(func(f media.Frame) { rec.Write(media.Caller, f.PCM) })
}

// finishVoicemail closes the message and makes it a ticket with the M3
// deadlines.
func (c *call) finishVoicemail() {
	c.stopTimer()
	c.callerLeg.SetSink(nil)
	if c.vm == nil {
		return
	}
	if err := c.vm.Close(); err != nil {
		c.log.Error("sip: voicemail not closed cleanly", "err", err)
	}
	// The message's length is the audio in the file (what the agent will
	// hear), not the wall time the caller was connected.
	dur := c.vm.Duration()
	c.vm = nil
	ctx, cancel := c.rctx()
	defer cancel()
	info, err := c.g.router.CreateTicket(ctx, queue.Ticket{
		Channel: interaction.Message, Queue: c.queue, Parent: c.id,
		Taxpayer: queue.Taxpayer{Phone: callerNumber(c.invite)},
		Data: map[string]string{"recording": c.vmName,
			"duration_ms": strconv.FormatInt(dur.Milliseconds(), 10)},
	})
	if err != nil {
		c.log.Error("sip: voicemail ticket not created", "recording", c.vmName, "err", err)
		return
	}
	c.log.Info("sip voicemail ticket", "ticket", string(info.ID), "recording", c.vmName)
	if c.g.store != nil {
		c.g.store.Emit(interaction.Event{Type: interaction.RecordingStarted, At: time.Now(), ID: info.ID,
			Channel: interaction.Message, Data: map[string]string{"recording": c.vmName}})
	}
}

// refer sends the caller on with a blind transfer (RFC 3515) and, once
// the trunk accepts it, leaves the call.
func (c *call) refer() {
	var target gosip.Uri
	if err := gosip.ParseUri(c.transferTo, &target); err != nil {
		c.log.Error("sip: bad transfer target", "target", c.transferTo, "err", err)
		c.closing()
		return
	}
	req := gosip.NewRequest(gosip.REFER, c.invite.Contact().Address)
	req.AppendHeader(gosip.NewHeader("Refer-To", "<"+target.String()+">"))
	req.AppendHeader(gosip.NewHeader("Referred-By", "<"+c.g.dua.ContactHDR.Address.String()+">"))
	ctx, cancel := c.rctx()
	res, err := c.caller.Do(ctx, req)
	cancel()
	if err != nil || !res.IsSuccess() {
		c.log.Info("sip: REFER refused; calling the target through the trunk", "target", c.transferTo, "err", err)
		c.outbound(target)
		return
	}
	c.log.Info("sip call transferred", "target", c.transferTo)
	c.hangupCaller()
	c.state = stEnded
}

// agentRefer is a blind transfer asked by the agent's phone (RFC 3515):
// Refer-To naming a queue moves the caller there; anything else sends the
// caller out through the trunk (back to 12366, P1). An optional
// X-Taxline-Reason header carries the out-of-scope reason (P4).
func (c *call) agentRefer(m *sipMsg) {
	h := m.req.GetHeader("Refer-To")
	if h == nil {
		respond(m.tx, m.req, gosip.StatusBadRequest, "Bad Request")
		return
	}
	v := strings.TrimSpace(h.Value())
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			v = v[i+1 : i+j]
		}
	}
	var uri gosip.Uri
	if err := gosip.ParseUri(v, &uri); err != nil {
		respond(m.tx, m.req, gosip.StatusBadRequest, "Bad Request")
		return
	}
	target := uri.String()
	switch {
	case c.isQueue(uri.User):
		target = uri.User
	case c.isAgent(uri.User):
		target = "agent:" + uri.User
	case c.trunk.Transfer != "" && (uri.User == "" || uri.User == c.trunk.Name):
		target = c.trunk.Transfer
	}
	// The out-of-scope reason (P4) must be one of scope_reasons, as typed
	// in UTF-8 or percent-encoded; a phone that sends anything else is told
	// so and the call stays with the agent.
	reason := ""
	if r := m.req.GetHeader("X-Taxline-Reason"); r != nil {
		reason = strings.TrimSpace(r.Value())
		if dec, err := url.PathUnescape(reason); err == nil {
			reason = dec
		}
		if !slices.Contains(c.set.cfg.ScopeReasons, reason) {
			c.log.Warn("sip: agent REFER with an unknown out-of-scope reason", "agent", c.agent)
			respond(m.tx, m.req, gosip.StatusBadRequest, "Unknown Out-Of-Scope Reason")
			return
		}
	}
	ctx, cancel := c.rctx()
	err := c.g.router.Transfer(ctx, c.id, target, reason, interaction.AgentActor(c.agent))
	cancel()
	if err != nil {
		c.log.Warn("sip: agent transfer refused", "target", target, "err", err)
		respond(m.tx, m.req, gosip.StatusForbidden, "Forbidden")
		return
	}
	respond(m.tx, m.req, gosip.StatusAccepted, "Accepted")
	c.log.Info("sip agent transferred the call", "agent", c.agent, "target", target)
	// RFC 3515 §2.4.4: tell the phone how it went; it hangs up on its own,
	// and we end its leg in any case.
	if c.agentDlg != nil {
		n := gosip.NewRequest(gosip.NOTIFY, c.agentDlg.InviteResponse.Contact().Address)
		n.AppendHeader(gosip.NewHeader("Event", "refer"))
		n.AppendHeader(gosip.NewHeader("Subscription-State", "terminated;reason=noresource"))
		n.AppendHeader(gosip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
		n.SetBody([]byte("SIP/2.0 200 OK\r\n"))
		ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
		_, _ = c.agentDlg.Do(ctx, n)
		cancel()
	}
	if c.isQueue(target) && c.state == stConnected {
		c.backToQueue()
	}
	// An external target comes back as the router's Close (Transferred).
}

// outbound is the other way to transfer out: a new INVITE to the target
// through the trunk, with the caller bridged to it here (media stays
// anchored; the interaction has already ended as transferred).
func (c *call) outbound(target gosip.Uri) {
	leg, err := c.g.ports.Open(c.g.laddr.Addr(), c.g.log)
	if err != nil {
		c.log.Error("sip: no RTP port for the transfer", "err", err)
		c.closing()
		return
	}
	body, err := c.describe(leg, media.OfferCodecs(c.set.cfg.SIP.Codecs), media.SendRecv)
	if err != nil {
		_ = leg.Close()
		c.closing()
		return
	}
	port := target.Port
	if port == 0 {
		port = 5060
	}
	b := Binding{Agent: target.User, Contact: target, Source: net.JoinHostPort(target.Host, strconv.Itoa(port)), Transport: "UDP"}
	if tp, ok := target.UriParams.Get("transport"); ok {
		b.Transport = strings.ToUpper(tp)
	}
	c.ringGen++
	rg := &ringing{gen: c.ringGen, agent: "", leg: leg, callID: newCallID(), stop: make(chan struct{}), done: make(chan struct{})}
	c.ring = rg
	c.g.bind(rg.callID, c)
	from := callerNumber(c.invite)
	go func() {
		defer close(rg.done)
		c.ringResults <- c.g.ringAgent(c.ctx, rg, b, body, from, 60*time.Second, c.set.cfg.SIP.Codecs)
	}()
}

// connectOutbound bridges the caller to the transfer target's leg.
func (c *call) connectOutbound(rg *ringing, r ringResult) {
	c.stopPlay()
	c.agentDlg, c.agentLeg, c.agentCallID = r.dlg, rg.leg, rg.callID
	c.agentLeg.Configure(r.answer.Addr, r.codec, r.answer.Dir)
	c.state = stOutbound
	c.log.Info("sip call transferred through the trunk", "target", c.transferTo)
	callerLeg, outLeg := c.callerLeg, c.agentLeg
	callerLeg.SetSink(func(f media.Frame) { _ = outLeg.Write(f) })
	outLeg.SetSink(func(f media.Frame) { _ = callerLeg.Write(f) })
	c.relayDTMF()
}

// shutdown ends the call because the gateway stops.
func (c *call) shutdown() {
	c.stopPlay()
	c.withdrawRing()
	ctx, cancel := c.rctx()
	defer cancel()
	switch c.state {
	case stConnected:
		c.unbridge()
		_ = c.g.router.End(ctx, c.id, queue.End{By: queue.PartySystem})
		c.hangupAgent()
	case stVoicemail:
		c.finishVoicemail()
	case stOutbound:
		c.hangupAgent()
	}
	c.hangupCaller()
	c.state = stEnded
}

// cleanup releases everything the call still holds.
func (c *call) cleanup() {
	c.stopPlay()
	c.stopTimer()
	c.drainRings()
	c.unbridge()
	if c.vm != nil {
		_ = c.vm.Close()
		c.vm = nil
	}
	if c.agentDlg != nil {
		ctx, cancel := c.rctx()
		_ = c.agentDlg.Bye(ctx)
		cancel()
		c.agentDlg = nil
	}
	c.releaseAgentLeg()
	rx, tx := c.callerLeg.Packets()
	c.log.Info("sip call ended", "rtp_rx", rx, "rtp_tx", tx)
	_ = c.callerLeg.Close()
	if f := c.g.CallEnded; f != nil {
		f(CallStats{ID: c.id, Agent: c.agent, CallerRx: rx, CallerTx: tx, AgentRx: c.agentRx, AgentTx: c.agentTx, Cause: c.cause})
	}
	_ = c.caller.Close()
}

func newCallID() string {
	return strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36) + "@taxline"
}
