package chat

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
)

// phase is where a chat session is, as the gateway sees it.
type phase uint8

const (
	phaseUnknown   phase = iota
	phaseNew             // created, not yet offered
	phaseQueued          // waiting or ringing an agent
	phaseConnected       // an agent is handling it
	phaseLeft            // the taxpayer ended; the agent still owes a disposition
	phaseMessage         // after hours: the taxpayer may leave a web message (M2)
	phaseEnded           // over; the taxpayer may still rate it
)

var phaseNames = [...]string{"unknown", "new", "queued", "connected", "ended", "message", "ended"}

func (p phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "phase(" + strconv.Itoa(int(p)) + ")"
}

// Texts the gateway itself sends (the rule texts are in config).
const (
	textConnected   = "客服已接入，正在为您服务。"
	textTransfer    = "正在为您转接其他客服，请稍候。"
	textTaxpayerEnd = "您已结束本次会话，欢迎对本次服务进行评价。"
	textAgentEnd    = "客服已结束本次会话，感谢您的咨询，欢迎对本次服务进行评价。"
	textKeepWaiting = "好的，请您稍候，客服正在为您处理。"
	textBusy        = "当前咨询繁忙，暂时无法接入客服，请稍后再试或在服务时间内联系我们。"
	textMessageTook = "您的留言已收到，我们将在 %s 前回复您。"
	textFollowUp    = "回复期限：%s 前。"
	textTransferOut = "您的咨询已转至其他服务渠道。"
	textUnavailable = "服务暂时不可用，请稍后再试。"
	textAgentPrompt = "纳税人已等待您的回复超过 %s，系统已询问其是否继续等待，请尽快回复。"
	textFirstMissed = "该会话已超过首次响应时限（%s），请尽快回复。"
)

// session is one taxpayer's chat. Its goroutine (run) owns every field
// below mb; everything else reaches it through mb.
type session struct {
	srv   *Server
	token string
	mb    mailbox

	topic    config.Topic
	queue    string // the queue it is in now (a transfer changes it)
	id       interaction.ID
	taxpayer queue.Taxpayer
	phase    phase
	agent    string // connected agent (also in phaseLeft)
	ringing  string // agent being offered the chat
	seq      uint64
	lines    []Frame           // the transcript so far; lines[i].Seq == i+1
	seen     map[string]uint64 // "t:" or "a:" + client id → seq, for dedup
	conn     *conn             // the taxpayer's current connection, or nil
	resume   *time.Timer       // runs while conn is nil
	gone     bool              // the resume window passed with no connection
	rated    bool
	choice   bool // a C4 choice is open
	quit     bool
}

func newSession(srv *Server, topic config.Topic) *session {
	return &session{srv: srv, token: newToken(), mb: newMailbox(), topic: topic, queue: topic.Queue, phase: phaseNew,
		seen: map[string]uint64{}}
}

var _ queue.Handler = (*session)(nil)

// Ring implements queue.Handler.
func (s *session) Ring(r queue.Ring) { s.mb.push(func() { s.onRing(r) }) }

// StopRing implements queue.Handler.
func (s *session) StopRing(_ interaction.ID, agent string) { s.mb.push(func() { s.onStopRing(agent) }) }

// Notify implements queue.Handler.
func (s *session) Notify(n queue.Notice) { s.mb.push(func() { s.onNotify(n) }) }

// Close implements queue.Handler.
func (s *session) Close(c queue.Close) { s.mb.push(func() { s.onClose(c) }) }

// run is the session's goroutine. It ends when the chat is over and the
// taxpayer is gone (or has rated it), or at Shutdown.
func (s *session) run(ctx context.Context) {
	defer s.srv.wg.Done()
	defer s.srv.forget(s)
	defer func() {
		if s.resume != nil {
			s.resume.Stop()
		}
	}()
	for !s.quit {
		select {
		case <-ctx.Done():
			return
		case <-s.mb.signal:
			for _, f := range s.mb.take() {
				f()
			}
			if s.phase == phaseEnded && s.conn == nil && (s.gone || s.rated) {
				s.quit = true
			}
			if s.phase == phaseNew && s.conn == nil {
				s.quit = true
			}
		}
	}
}

func (s *session) cfg() *config.Config { return s.srv.config() }

// call runs one router call with the gateway's bound.
func (s *session) call(fn func(ctx context.Context) error) error {
	ctx, cancel := s.srv.routerCtx()
	defer cancel()
	return fn(ctx)
}

// addLine stores one transcript line, emits it as an event and delivers it
// to the taxpayer and the agent.
func (s *session) addLine(from, actor, kind, text, image, clientID string) Frame {
	now := time.Now()
	s.seq++
	f := Frame{Type: TypeMsg, Chat: s.id, Seq: s.seq, ClientID: clientID, From: from, Kind: kind,
		Text: text, Image: image, At: now.UnixMilli()}
	s.lines = append(s.lines, f)
	data := map[string]string{"text": text, "kind": kind, "seq": strconv.FormatUint(s.seq, 10)}
	if clientID != "" {
		data["client_id"] = clientID
	}
	if image != "" {
		data["image"] = image
	}
	agent := s.agent
	if agent == "" {
		agent = s.ringing
	}
	s.srv.emit(interaction.Event{Type: interaction.ChatMessage, At: now, ID: s.id, Actor: actor,
		Channel: interaction.Chat, Queue: s.queue, Agent: agent, Data: data})
	b := encodeFrame(f)
	if s.conn != nil {
		s.conn.sendRaw(b)
	}
	if s.agent != "" {
		if d := s.srv.desk(s.agent); d != nil {
			d.c.sendRaw(b)
		}
	}
	return f
}

func (s *session) system(kind, text string) {
	s.addLine(FromSystem, interaction.ActorSystem, kind, text, "", "")
}

func (s *session) toTaxpayer(f Frame) {
	if s.conn != nil {
		s.conn.send(f)
	}
}

func (s *session) toAgent(agent string, f Frame) bool {
	if agent == "" {
		return false
	}
	f.Chat = s.id
	return s.srv.toDesk(agent, f)
}

func (s *session) stateFrame() Frame {
	return Frame{Type: TypeState, Chat: s.id, State: s.phase.String()}
}

// onOpen offers the new chat to the router.
func (s *session) onOpen(c *conn, tp queue.Taxpayer) {
	s.conn = c
	s.taxpayer = tp
	var adm queue.Admission
	var err error
	// A full or empty queue may name another queue to overflow to: offer
	// it there (a bounded number of hops; config validation forbids loops).
	for hop := 0; hop < 4; hop++ {
		err = s.call(func(ctx context.Context) (err error) {
			adm, err = s.srv.router.Offer(ctx, queue.Offer{Channel: interaction.Chat, Queue: s.queue,
				Skills: s.topic.Skills, Taxpayer: tp, Topic: s.topic.Name, Handler: s})
			return err
		})
		overflow := adm.Reason == interaction.ReasonQueueFull || adm.Reason == interaction.ReasonNoAgents
		if err != nil || !overflow || adm.Target == "" || adm.Target == "voicemail" {
			break
		}
		s.queue = adm.Target
	}
	if err != nil {
		s.srv.log.Warn("chat offer refused", "err", err)
		c.send(Frame{Type: TypeError, Code: "unavailable", Text: textUnavailable})
		c.close(websocket.CloseTryAgainLater, "chat unavailable", true)
		s.conn = nil
		return
	}
	s.id = adm.ID
	s.srv.registerChat(s)
	s.phase = phaseQueued
	switch adm.Reason {
	case interaction.ReasonNone:
	case interaction.ReasonAfterHours, interaction.ReasonVoicemail:
		s.phase = phaseMessage
	case interaction.ReasonQueueFull, interaction.ReasonNoAgents:
		s.phase = phaseEnded
		if adm.Target == "voicemail" {
			s.phase = phaseMessage
		}
	default:
		s.phase = phaseEnded
	}
	c.send(Frame{Type: TypeOpened, Chat: s.id, Token: s.token, State: s.phase.String(), Topic: s.topic.Name})
	switch s.phase {
	case phaseQueued:
		s.system(KindSystem, s.cfg().Chat.Messages.Welcome)
	case phaseMessage:
		s.offerMessage()
	default:
		s.system(KindSystem, textBusy)
		s.toTaxpayer(Frame{Type: TypeEnded, Chat: s.id, Reason: adm.Reason.String()})
	}
}

// offerMessage tells the taxpayer the desk is closed and a web message may
// be left (M2).
func (s *session) offerMessage() {
	s.phase = phaseMessage
	text := s.cfg().Chat.Messages.AfterHours
	s.system(KindSystem, text)
	s.toTaxpayer(Frame{Type: TypeAfterHours, Chat: s.id, Text: text})
}

// onAttach binds a resumed taxpayer connection and replays what it missed.
func (s *session) onAttach(c *conn, lastSeq uint64) {
	if s.conn != nil && s.conn != c {
		s.conn.close(websocket.CloseNormalClosure, "resumed on another connection", true)
	}
	s.conn = c
	if s.resume != nil {
		s.resume.Stop()
		s.resume = nil
	}
	s.gone = false
	c.send(Frame{Type: TypeOpened, Chat: s.id, Token: s.token, State: s.phase.String(), Topic: s.topic.Name,
		Resumed: true})
	if lastSeq > uint64(len(s.lines)) {
		lastSeq = uint64(len(s.lines))
	}
	c.send(Frame{Type: TypeHistory, Chat: s.id, Msgs: s.lines[lastSeq:]})
	switch s.phase {
	case phaseMessage:
		c.send(Frame{Type: TypeAfterHours, Chat: s.id, Text: s.cfg().Chat.Messages.AfterHours})
	case phaseEnded, phaseLeft:
		c.send(Frame{Type: TypeEnded, Chat: s.id, Rated: s.rated})
	}
}

// onDetach notes that the taxpayer's connection closed; the chat waits
// chat.limits.resume_window for a resume.
func (s *session) onDetach(c *conn) {
	if s.conn != c {
		return
	}
	s.conn = nil
	if s.phase == phaseEnded && s.rated {
		return
	}
	window := s.cfg().Chat.Limits.ResumeWindow
	s.resume = time.AfterFunc(window, func() { s.mb.push(s.onResumeExpired) })
}

func (s *session) onResumeExpired() {
	if s.conn != nil {
		return
	}
	s.gone = true
	s.resume = nil
	switch s.phase {
	case phaseQueued, phaseConnected:
		s.taxpayerEnds()
	case phaseMessage:
		s.phase = phaseEnded
	}
}

// onTaxpayerSend handles a text or screenshot from the taxpayer.
func (s *session) onTaxpayerSend(c *conn, f Frame) {
	if s.conn != c {
		return
	}
	if seq, dup := s.seen["t:"+f.ClientID]; dup && f.ClientID != "" {
		c.send(Frame{Type: TypeAck, Chat: s.id, ClientID: f.ClientID, Seq: seq})
		return
	}
	if s.phase != phaseQueued && s.phase != phaseConnected {
		c.send(Frame{Type: TypeError, Chat: s.id, Code: "chat_ended", Text: "本次会话已结束。", ClientID: f.ClientID})
		return
	}
	kind := KindText
	if f.Image != "" {
		kind = KindImage
	}
	line := s.addLine(FromTaxpayer, interaction.ActorTaxpayer, kind, f.Text, f.Image, f.ClientID)
	if f.ClientID != "" {
		s.seen["t:"+f.ClientID] = line.Seq
	}
	if s.phase == phaseConnected {
		s.activity(queue.PartyTaxpayer)
	}
}

// activity tells the router who spoke (C2, C4, C5). The call is queued, in
// order, to the server's activity goroutine: the message is already
// delivered and nothing here waits for the router.
func (s *session) activity(p queue.Party) {
	id, srv := s.id, s.srv
	srv.activities.push(func() {
		ctx, cancel := srv.routerCtx()
		defer cancel()
		err := srv.router.Activity(ctx, id, p)
		if err != nil && !errors.Is(err, queue.ErrUnknownInteraction) && !errors.Is(err, queue.ErrWrongState) &&
			!errors.Is(err, context.Canceled) {
			srv.log.Warn("chat activity", "chat", id, "err", err)
		}
	})
}

func (s *session) onTaxpayerTyping(c *conn, on bool) {
	if s.conn == c && s.phase == phaseConnected {
		s.toAgent(s.agent, Frame{Type: TypeTyping, From: FromTaxpayer, On: on})
	}
}

// onChoose is the taxpayer's answer to the C4 question.
func (s *session) onChoose(c *conn, later bool) {
	if s.conn != c {
		return
	}
	if !s.choice || s.phase != phaseConnected {
		c.send(Frame{Type: TypeError, Chat: s.id, Code: "no_choice", Text: "当前没有需要选择的问题。"})
		return
	}
	s.choice = false
	var info queue.TicketInfo
	err := s.call(func(ctx context.Context) (err error) {
		info, err = s.srv.router.Choose(ctx, s.id, later)
		return err
	})
	if err != nil {
		s.srv.log.Warn("chat choice", "chat", s.id, "err", err)
		c.send(Frame{Type: TypeError, Chat: s.id, Code: "unavailable", Text: textUnavailable})
		return
	}
	if !later {
		s.system(KindSystem, textKeepWaiting)
		return
	}
	msgs := s.cfg().Chat.Messages
	s.system(KindSystem, msgs.FollowUpCreated+fmt.Sprintf(textFollowUp, s.deadline(info.AnswerBy)))
	s.toTaxpayer(Frame{Type: TypeTicket, Chat: s.id, Ticket: &Ticket{ID: info.ID, AckBy: info.AckBy, AnswerBy: info.AnswerBy}})
	s.endHere("callback")
}

// durationZH writes a rule's duration for the desk: "2 分钟", "30 秒".
func durationZH(d time.Duration) string {
	switch {
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + " 分钟"
	case d >= time.Second && d%time.Second == 0:
		return strconv.Itoa(int(d/time.Second)) + " 秒"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " 秒"
}

func (s *session) deadline(t time.Time) string {
	if loc := s.cfg().Location; loc != nil {
		t = t.In(loc)
	}
	return t.Format("2006-01-02 15:04")
}

// onTaxpayerEnd: the taxpayer clicked end.
func (s *session) onTaxpayerEnd(c *conn) {
	if s.conn != c {
		return
	}
	switch s.phase {
	case phaseQueued, phaseConnected:
		s.taxpayerEnds()
	case phaseMessage:
		s.phase = phaseEnded
		s.toTaxpayer(Frame{Type: TypeEnded, Chat: s.id, Reason: "taxpayer"})
	}
}

// taxpayerEnds ends the chat from the taxpayer's side: abandon while
// queued; while connected the agent still records a disposition.
func (s *session) taxpayerEnds() {
	switch s.phase {
	case phaseQueued:
		err := s.call(func(ctx context.Context) error { return s.srv.router.Abandon(ctx, s.id) })
		if err != nil && !errors.Is(err, queue.ErrUnknownInteraction) {
			s.srv.log.Warn("chat abandon", "chat", s.id, "err", err)
		}
		if errors.Is(err, queue.ErrWrongState) {
			// Answered in the meantime: end it as connected.
			s.phase = phaseConnected
			s.taxpayerEnds()
			return
		}
		s.system(KindSystem, textTaxpayerEnd)
		s.endHere("abandoned")
	case phaseConnected:
		s.choice = false
		s.system(KindSystem, textTaxpayerEnd)
		s.phase = phaseLeft
		s.toTaxpayer(Frame{Type: TypeEnded, Chat: s.id, Reason: "taxpayer"})
		if !s.toAgent(s.agent, Frame{Type: TypeTaxpayerLeft}) {
			// No desk to give a disposition: end it now without one.
			if err := s.endWith(queue.End{By: queue.PartyTaxpayer}); err != nil {
				s.srv.log.Warn("chat end without a desk", "chat", s.id, "err", err)
			}
		}
	}
}

// endWith ends a connected (or left) chat in the router.
func (s *session) endWith(e queue.End) error {
	err := s.call(func(ctx context.Context) error { return s.srv.router.End(ctx, s.id, e) })
	if err != nil && !errors.Is(err, queue.ErrUnknownInteraction) {
		return err
	}
	reason := "taxpayer"
	if e.By == queue.PartyAgent {
		reason = "agent"
	}
	s.endHere(reason)
	return nil
}

// endHere finishes the chat in the gateway: the desk drops it, the
// taxpayer is told and may rate it.
func (s *session) endHere(reason string) {
	if s.ringing != "" {
		s.toAgent(s.ringing, Frame{Type: TypeOfferWithdrawn})
		s.srv.unlink(s.ringing, s)
		s.ringing = ""
	}
	if s.agent != "" {
		s.toAgent(s.agent, Frame{Type: TypeClosed, Reason: reason})
		s.srv.unlink(s.agent, s)
	}
	wasLeft := s.phase == phaseLeft
	s.phase = phaseEnded
	s.choice = false
	if !wasLeft {
		s.toTaxpayer(Frame{Type: TypeEnded, Chat: s.id, Reason: reason})
	}
}

// onRate stores the taxpayer's satisfaction score (S6).
func (s *session) onRate(c *conn, score int, comment string) {
	if s.conn != c {
		return
	}
	if s.phase != phaseEnded && s.phase != phaseLeft {
		c.send(Frame{Type: TypeError, Chat: s.id, Code: "not_ended", Text: "会话结束后才能评价。"})
		return
	}
	if s.rated {
		c.send(Frame{Type: TypeRated, Chat: s.id, Score: score})
		return
	}
	if score < 1 || score > 5 {
		c.send(Frame{Type: TypeError, Chat: s.id, Code: "bad_score", Text: "评分须为 1 到 5 分。"})
		return
	}
	if utf8.RuneCountInString(comment) > 500 {
		comment = string([]rune(comment)[:500])
	}
	s.rated = true
	data := map[string]string{"score": strconv.Itoa(score)}
	if comment != "" {
		data["comment"] = comment
	}
	agent := s.agent
	s.srv.emit(interaction.Event{Type: interaction.SurveyScore, At: time.Now(), ID: s.id, Actor: interaction.ActorTaxpayer,
		Channel: interaction.Chat, Queue: s.queue, Agent: agent, Data: data})
	c.send(Frame{Type: TypeRated, Chat: s.id, Score: score})
	if agent != "" {
		s.srv.toDesk(agent, Frame{Type: TypeRated, Chat: s.id, Score: score, Comment: comment})
	}
}

// onLeaveMessage turns an after-hours chat into a message ticket (M2, M3).
func (s *session) onLeaveMessage(c *conn, f Frame) {
	if s.conn != c {
		return
	}
	if s.phase != phaseMessage {
		c.send(Frame{Type: TypeError, Chat: s.id, Code: "not_after_hours", Text: "当前在服务时间内，请直接咨询客服。"})
		return
	}
	tp := s.taxpayer
	if f.Taxpayer != nil {
		if f.Taxpayer.ID != "" {
			tp.ID = f.Taxpayer.ID
		}
		if f.Taxpayer.Name != "" {
			tp.Name = f.Taxpayer.Name
		}
		if f.Taxpayer.Phone != "" {
			tp.Phone = f.Taxpayer.Phone
		}
	}
	var info queue.TicketInfo
	err := s.call(func(ctx context.Context) (err error) {
		info, err = s.srv.router.CreateTicket(ctx, queue.Ticket{Channel: interaction.Message, Queue: s.queue,
			Parent: s.id, Taxpayer: tp, Topic: s.topic.Name, Data: map[string]string{"text": f.Text, "source": "web"}})
		return err
	})
	if err != nil {
		s.srv.log.Warn("chat web message", "chat", s.id, "err", err)
		c.send(Frame{Type: TypeError, Chat: s.id, Code: "unavailable", Text: textUnavailable})
		return
	}
	s.addLine(FromTaxpayer, interaction.ActorTaxpayer, KindText, f.Text, "", f.ClientID)
	s.system(KindSystem, fmt.Sprintf(textMessageTook, s.deadline(info.AnswerBy)))
	s.toTaxpayer(Frame{Type: TypeTicket, Chat: s.id, Ticket: &Ticket{ID: info.ID, AckBy: info.AckBy, AnswerBy: info.AnswerBy}})
	s.phase = phaseEnded
	s.toTaxpayer(Frame{Type: TypeEnded, Chat: s.id, Reason: "message"})
}

// Router instructions.

func (s *session) onRing(r queue.Ring) {
	if s.phase != phaseQueued {
		// The taxpayer left in the meantime; the router learns from Abandon.
		return
	}
	s.ringing = r.Agent
	s.queue = r.Queue
	s.srv.link(r.Agent, s)
	if s.srv.desk(r.Agent) == nil {
		s.ringing = ""
		s.srv.unlink(r.Agent, s)
		s.ringFailed(r.Agent, queue.RingLost)
		return
	}
	if r.AutoAccept {
		s.onAccept(r.Agent)
		return
	}
	s.toAgent(r.Agent, s.offerFrame(r.Timeout, false))
}

func (s *session) offerFrame(timeout time.Duration, auto bool) Frame {
	return Frame{Type: TypeOffer, Chat: s.id, Queue: s.queue, Topic: s.topic.Label,
		Taxpayer: &Taxpayer{ID: s.taxpayer.ID, Name: s.taxpayer.Name, Phone: s.taxpayer.Phone},
		Timeout:  timeout.Milliseconds(), AutoAccept: auto}
}

func (s *session) ringFailed(agent string, cause queue.RingCause) {
	err := s.call(func(ctx context.Context) error { return s.srv.router.RingFailed(ctx, s.id, agent, cause) })
	if err != nil && !errors.Is(err, queue.ErrRingWithdrawn) {
		s.srv.log.Warn("chat ring failed", "chat", s.id, "agent", agent, "err", err)
	}
}

// onAccept: the agent took the offer (or the desk auto-accepted).
func (s *session) onAccept(agent string) {
	if s.ringing != agent || s.phase != phaseQueued {
		s.toAgent(agent, Frame{Type: TypeOfferWithdrawn})
		return
	}
	err := s.call(func(ctx context.Context) error { return s.srv.router.Answer(ctx, s.id, agent) })
	if err != nil {
		s.toAgent(agent, Frame{Type: TypeOfferWithdrawn})
		s.srv.unlink(agent, s)
		s.ringing = ""
		if !errors.Is(err, queue.ErrRingWithdrawn) {
			s.srv.log.Warn("chat answer", "chat", s.id, "agent", agent, "err", err)
		}
		return
	}
	s.ringing = ""
	s.agent = agent
	s.phase = phaseConnected
	s.sendChat(agent)
	s.toTaxpayer(s.stateFrame())
	s.system(KindSystem, textConnected)
}

// sendChat gives the agent's desk the whole chat so far.
func (s *session) sendChat(agent string) {
	f := s.offerFrame(0, false)
	f.Type = TypeChatFrame
	f.State = s.phase.String()
	f.Msgs = s.lines
	s.toAgent(agent, f)
}

func (s *session) onDecline(agent string) {
	if s.ringing != agent {
		return
	}
	s.ringing = ""
	s.srv.unlink(agent, s)
	s.ringFailed(agent, queue.RingDeclined)
}

// onDeskGone: the agent's desk disconnected while it was being offered
// this chat.
func (s *session) onDeskGone(agent string) {
	switch {
	case s.ringing == agent:
		s.ringing = ""
		s.srv.unlink(agent, s)
		s.ringFailed(agent, queue.RingLost)
	case s.agent == agent && s.phase == phaseLeft:
		// Nobody is left to give a disposition: end it without one.
		if err := s.endWith(queue.End{By: queue.PartyTaxpayer}); err != nil {
			s.srv.log.Warn("chat end", "chat", s.id, "err", err)
		}
	}
}

// onDeskBack: the agent's desk logged in again; give it this chat back.
func (s *session) onDeskBack(agent string) {
	switch {
	case s.ringing == agent:
		s.toAgent(agent, s.offerFrame(s.cfg().Chat.OfferTimeout, false))
	case s.agent == agent && s.phase == phaseConnected:
		s.sendChat(agent)
	case s.agent == agent && s.phase == phaseLeft:
		s.sendChat(agent)
		s.toAgent(agent, Frame{Type: TypeTaxpayerLeft})
	}
}

func (s *session) onStopRing(agent string) {
	if s.ringing != agent {
		return
	}
	s.ringing = ""
	s.srv.unlink(agent, s)
	s.toAgent(agent, Frame{Type: TypeOfferWithdrawn})
}

func (s *session) onNotify(n queue.Notice) {
	msgs := s.cfg().Chat.Messages
	switch n.Kind {
	case queue.NoticeHolding:
		if s.phase != phaseQueued {
			return
		}
		wait := max(1, int(math.Ceil(n.EstimatedWait.Minutes())))
		text := strings.NewReplacer("{position}", strconv.Itoa(n.Position), "{wait}", strconv.Itoa(wait)).
			Replace(msgs.Holding)
		s.system(KindSystem, text)
		f := s.stateFrame()
		f.Position, f.Wait = n.Position, int(n.EstimatedWait.Seconds())
		s.toTaxpayer(f)
	case queue.NoticeAgentSilence:
		if s.phase != phaseConnected {
			return
		}
		s.choice = true
		s.system(KindChoice, msgs.AgentSilence)
		s.toAgent(s.agent, Frame{Type: TypePrompt, Kind: "agent_silence",
			Text: fmt.Sprintf(textAgentPrompt, durationZH(s.cfg().Chat.AgentSilence))})
	case queue.NoticeCustomerReminder:
		if s.phase != phaseConnected {
			return
		}
		s.system(KindSystem, msgs.Reminder)
	case queue.NoticeFirstResponseMissed:
		if s.phase == phaseConnected {
			s.toAgent(s.agent, Frame{Type: TypePrompt, Kind: "first_response_missed",
				Text: fmt.Sprintf(textFirstMissed, durationZH(s.cfg().Chat.FirstResponse))})
		}
	case queue.NoticeRequeued:
		if s.phase == phaseQueued {
			s.toTaxpayer(s.stateFrame())
		}
	}
}

// onClose: the router ended the chat.
func (s *session) onClose(c queue.Close) {
	if s.phase == phaseEnded || s.phase == phaseMessage {
		return
	}
	msgs := s.cfg().Chat.Messages
	switch c.Reason {
	case interaction.ReasonCustomerSilence:
		s.system(KindSystem, msgs.Closing)
	case interaction.ReasonAfterHours, interaction.ReasonVoicemail:
		s.endHere(c.Reason.String())
		s.offerMessage()
		return
	case interaction.ReasonTransferred:
		s.system(KindSystem, textTransferOut)
	default:
		s.system(KindSystem, textBusy)
	}
	s.endHere(c.Reason.String())
}

// Agent commands.

func (s *session) onAgentSend(agent string, f Frame) {
	d := s.srv.desk(agent)
	if d == nil {
		return
	}
	if seq, dup := s.seen["a:"+f.ClientID]; dup && f.ClientID != "" {
		d.c.send(Frame{Type: TypeAck, Chat: s.id, ClientID: f.ClientID, Seq: seq})
		return
	}
	if s.agent != agent || s.phase != phaseConnected {
		d.c.send(Frame{Type: TypeError, Chat: s.id, Code: "not_your_chat", Text: "该会话不在您的名下或已结束。", ClientID: f.ClientID})
		return
	}
	kind := KindText
	if f.Image != "" {
		kind = KindImage
	}
	line := s.addLine(FromAgent, interaction.AgentActor(agent), kind, f.Text, f.Image, f.ClientID)
	if f.ClientID != "" {
		s.seen["a:"+f.ClientID] = line.Seq
	}
	s.choice = false
	s.activity(queue.PartyAgent)
}

func (s *session) onAgentTyping(agent string, on bool) {
	if s.agent == agent && s.phase == phaseConnected {
		s.toTaxpayer(Frame{Type: TypeTyping, Chat: s.id, From: FromAgent, On: on})
	}
}

// onAgentEnd records the agent's disposition and ends the chat (P4).
func (s *session) onAgentEnd(agent string, f Frame) {
	if s.agent != agent || (s.phase != phaseConnected && s.phase != phaseLeft) {
		s.toAgent(agent, Frame{Type: TypeError, Code: "not_your_chat", Text: "该会话不在您的名下或已结束。"})
		return
	}
	disp, err := interaction.ParseDisposition(f.Disposition)
	if err != nil || disp == interaction.DispositionTransferred {
		s.toAgent(agent, Frame{Type: TypeError, Code: "bad_disposition", Text: "请选择处理结果：已解决、需跟进或不属于服务范围。"})
		return
	}
	e := queue.End{By: queue.PartyAgent, Disposition: disp}
	if disp == interaction.OutOfScope {
		e.ScopeReason = f.ScopeReason
		ok := false
		for _, r := range s.cfg().ScopeReasons {
			ok = ok || r == f.ScopeReason
		}
		if !ok {
			s.toAgent(agent, Frame{Type: TypeError, Code: "bad_scope_reason", Text: "请从列表中选择不属于服务范围的原因。"})
			return
		}
	}
	left := s.phase == phaseLeft
	if left {
		e.By = queue.PartyTaxpayer
	}
	if err := s.endWith(e); err != nil {
		s.srv.log.Warn("chat end", "chat", s.id, "err", err)
		s.toAgent(agent, Frame{Type: TypeError, Code: "end_failed", Text: textUnavailable})
		return
	}
	if !left {
		s.system(KindSystem, textAgentEnd)
	}
}

// onTransfer moves the chat to another queue (or out of the desk).
func (s *session) onTransfer(agent string, f Frame) {
	if s.agent != agent || s.phase != phaseConnected {
		s.toAgent(agent, Frame{Type: TypeError, Code: "not_your_chat", Text: "该会话不在您的名下或已结束。"})
		return
	}
	target := f.Target
	if target == "" {
		s.toAgent(agent, Frame{Type: TypeError, Code: "bad_target", Text: "请选择转接目标。"})
		return
	}
	err := s.call(func(ctx context.Context) error {
		return s.srv.router.Transfer(ctx, s.id, target, f.Reason, interaction.AgentActor(agent))
	})
	if err != nil {
		s.toAgent(agent, Frame{Type: TypeError, Code: "transfer_failed", Text: "转接失败：" + err.Error()})
		return
	}
	s.toAgent(agent, Frame{Type: TypeClosed, Reason: "transferred"})
	s.srv.unlink(agent, s)
	s.agent = ""
	s.choice = false
	if s.phase == phaseConnected {
		// A queue transfer: the router rings the next agent (Ring), or
		// closes the chat for an external target (Close, handled apart).
		s.phase = phaseQueued
		s.system(KindSystem, textTransfer)
		s.toTaxpayer(s.stateFrame())
	}
}
