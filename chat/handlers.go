package chat

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/queue"
)

// maxLoginFailures closes a desk socket after this many wrong passwords.
const maxLoginFailures = 5

// taxpayerConn is the reader side of one taxpayer connection. Only the
// connection's reader goroutine touches it.
type taxpayerConn struct {
	srv  *Server
	c    *conn
	sess *session
}

func tooBig(what string) error {
	return &closeError{websocket.CloseMessageTooBig, what + " too large"}
}

func unsupported(reason string) error {
	return &closeError{websocket.CloseUnsupportedData, reason}
}

// checkContent applies the text and image limits to a send frame.
func checkContent(l config.ChatLimits, f Frame) error {
	if utf8.RuneCountInString(f.Text) > l.MaxTextChars {
		return tooBig("text")
	}
	if f.Image != "" {
		if l.MaxImageBytes == 0 {
			return unsupported("images are not accepted")
		}
		if _, _, err := parseImage(f.Image, l.ImageTypes, l.MaxImageBytes); err != nil {
			if len(f.Image) > l.MaxImageBytes*4/3+64 {
				return tooBig("image")
			}
			return unsupported(err.Error())
		}
	}
	if f.Text == "" && f.Image == "" {
		return unsupported("empty message")
	}
	if len(f.ClientID) > 64 {
		return unsupported("client_id longer than 64 bytes")
	}
	return nil
}

func (t *taxpayerConn) handle(f Frame) error {
	c := t.c
	switch f.Type {
	case TypeOpen:
		if t.sess != nil {
			c.send(Frame{Type: TypeError, Code: "already_open", Text: "会话已开始。"})
			return nil
		}
		cfg := t.srv.config()
		topic, ok := findTopic(cfg, f.Topic)
		if !ok {
			c.send(Frame{Type: TypeError, Code: "unknown_topic", Text: "请选择咨询类别。"})
			return nil
		}
		var tp queue.Taxpayer
		if f.Taxpayer != nil {
			tp = queue.Taxpayer{ID: clip(f.Taxpayer.ID, 32), Name: clip(f.Taxpayer.Name, 64), Phone: clip(f.Taxpayer.Phone, 32)}
		}
		sess := t.srv.startSession(topic)
		if sess == nil {
			return &closeError{websocket.CloseGoingAway, "server shutting down"}
		}
		t.sess = sess
		sess.mb.push(func() { sess.onOpen(c, tp) })
	case TypeResume:
		if t.sess != nil {
			c.send(Frame{Type: TypeError, Code: "already_open", Text: "会话已开始。"})
			return nil
		}
		sess := t.srv.sessionByToken(f.Token)
		if sess == nil {
			c.send(Frame{Type: TypeError, Code: "unknown_session", Text: "会话已过期，请重新发起咨询。"})
			return nil
		}
		t.sess = sess
		last := f.LastSeq
		sess.mb.push(func() { sess.onAttach(c, last) })
	case TypeSend, TypeTyping, TypeChoose, TypeEnd, TypeRate, TypeLeaveMessage:
		if f.Type == TypeSend || f.Type == TypeLeaveMessage {
			if err := checkContent(c.limits, f); err != nil {
				return err
			}
		}
		if f.Type == TypeRate && utf8.RuneCountInString(f.Comment) > c.limits.MaxTextChars {
			return tooBig("comment")
		}
		sess := t.sess
		if sess == nil {
			c.send(Frame{Type: TypeError, Code: "not_open", Text: "请先发起咨询。"})
			return nil
		}
		switch f.Type {
		case TypeSend:
			sess.mb.push(func() { sess.onTaxpayerSend(c, f) })
		case TypeTyping:
			sess.mb.push(func() { sess.onTaxpayerTyping(c, f.On) })
		case TypeChoose:
			sess.mb.push(func() { sess.onChoose(c, f.Later) })
		case TypeEnd:
			sess.mb.push(func() { sess.onTaxpayerEnd(c) })
		case TypeRate:
			sess.mb.push(func() { sess.onRate(c, f.Score, f.Comment) })
		case TypeLeaveMessage:
			sess.mb.push(func() { sess.onLeaveMessage(c, f) })
		}
	default:
		return unsupported(fmt.Sprintf("unknown frame type %q", clip(f.Type, 32)))
	}
	return nil
}

// detach tells the session its taxpayer connection closed.
func (t *taxpayerConn) detach() {
	if sess := t.sess; sess != nil {
		c := t.c
		sess.mb.push(func() { sess.onDetach(c) })
	}
}

func findTopic(cfg *config.Config, name string) (config.Topic, bool) {
	if name == "" && len(cfg.Chat.Topics) > 0 {
		return cfg.Chat.Topics[0], true
	}
	for _, t := range cfg.Chat.Topics {
		if t.Name == name {
			return t, true
		}
	}
	return config.Topic{}, false
}

// clip bounds a free-text field the taxpayer typed.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// desk is the reader side of one agent connection. Only its reader
// goroutine touches failures; agent is written once at login, before the
// desk is published in Server.desks.
type desk struct {
	srv      *Server
	c        *conn
	agent    string
	failures int
}

func (d *desk) handle(f Frame) error {
	if f.Type == TypeLogin {
		return d.login(f)
	}
	if d.agent == "" {
		d.c.send(Frame{Type: TypeError, Code: "not_logged_in", Text: "请先登录。"})
		return nil
	}
	agent := d.agent
	switch f.Type {
	case TypeStatus:
		return d.status(f)
	case TypeSend, TypeTyping, TypeAccept, TypeDecline, TypeEnd, TypeTransfer:
	default:
		return unsupported(fmt.Sprintf("unknown frame type %q", clip(f.Type, 32)))
	}
	if f.Type == TypeSend {
		if err := checkContent(d.c.limits, f); err != nil {
			return err
		}
	}
	sess := d.srv.chat(f.Chat)
	if sess == nil {
		d.c.send(Frame{Type: TypeError, Chat: f.Chat, Code: "unknown_chat", Text: "会话不存在或已结束。"})
		if f.Type == TypeAccept {
			d.c.send(Frame{Type: TypeOfferWithdrawn, Chat: f.Chat})
		}
		return nil
	}
	switch f.Type {
	case TypeSend:
		sess.mb.push(func() { sess.onAgentSend(agent, f) })
	case TypeTyping:
		sess.mb.push(func() { sess.onAgentTyping(agent, f.On) })
	case TypeAccept:
		sess.mb.push(func() { sess.onAccept(agent) })
	case TypeDecline:
		sess.mb.push(func() { sess.onDecline(agent) })
	case TypeEnd:
		sess.mb.push(func() { sess.onAgentEnd(agent, f) })
	case TypeTransfer:
		sess.mb.push(func() { sess.onTransfer(agent, f) })
	}
	return nil
}

// login checks the desk password (config agents[].password) in constant
// time, or a desk token from an earlier login, and logs the desk in.
func (d *desk) login(f Frame) error {
	if d.agent != "" {
		d.c.send(Frame{Type: TypeError, Code: "already_logged_in", Text: "已登录。"})
		return nil
	}
	cfg := d.srv.config()
	agent := ""
	if f.Token != "" {
		now := time.Now()
		d.srv.mu.Lock()
		if t, ok := d.srv.deskTokens[f.Token]; ok && now.Before(t.expires) {
			agent = t.agent
		}
		for k, t := range d.srv.deskTokens {
			if !now.Before(t.expires) {
				delete(d.srv.deskTokens, k)
			}
		}
		d.srv.mu.Unlock()
	} else {
		for _, a := range cfg.Agents {
			if a.ID == f.Agent && a.Password != "" && passwordMatch(a.Password, f.Password) {
				agent = a.ID
			}
		}
	}
	var acfg config.Agent
	found := false
	for _, a := range cfg.Agents {
		if a.ID == agent {
			acfg, found = a, true
		}
	}
	if agent == "" || !found {
		d.failures++
		d.srv.log.Warn("desk login refused", "agent", clip(f.Agent, 32))
		if d.failures >= maxLoginFailures {
			return policy("too many failed logins")
		}
		d.c.send(Frame{Type: TypeError, Code: "bad_login", Text: "工号或密码错误。"})
		return nil
	}
	token := f.Token
	if token == "" {
		token = newToken()
		d.srv.mu.Lock()
		d.srv.deskTokens[token] = deskToken{agent: agent, expires: time.Now().Add(deskSession(cfg))}
		d.srv.mu.Unlock()
	}
	d.agent = agent
	d.srv.mu.Lock()
	old := d.srv.desks[agent]
	d.srv.desks[agent] = d
	d.srv.mu.Unlock()
	if old != nil {
		old.c.close(websocket.ClosePolicyViolation, "logged in on another desk", true)
	}
	ctx, cancel := d.srv.routerCtx()
	err := d.srv.router.SetPresence(ctx, agent, queue.MediaText, true)
	cancel()
	if err != nil {
		d.srv.log.Warn("desk presence", "agent", agent, "err", err)
	}
	d.c.send(Frame{Type: TypeLoggedIn, Agent: agent, Name: acfg.Name, Token: token, MaxChats: acfg.MaxChats,
		CannedReplies: cannedReplies(cfg)})
	for _, sess := range d.srv.linked(agent) {
		sess.mb.push(func() { sess.onDeskBack(agent) })
	}
	d.srv.log.Info("desk logged in", "agent", agent)
	return nil
}

// passwordMatch compares in constant time (hashing first so that the
// lengths do not leak either).
func passwordMatch(want, got string) bool {
	a := sha256.Sum256([]byte(want))
	b := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func (d *desk) status(f Frame) error {
	var st queue.AgentStatus
	reason := clip(f.Reason, 64)
	switch f.Status {
	case "available":
		st, reason = queue.StatusAvailable, ""
	case "break":
		st = queue.StatusBreak
		if reason == "" {
			reason = "休息"
		}
	default:
		return unsupported("status must be available or break")
	}
	ctx, cancel := d.srv.routerCtx()
	err := d.srv.router.SetAgentStatus(ctx, d.agent, st, reason)
	cancel()
	if err != nil {
		d.c.send(Frame{Type: TypeError, Code: "status_failed", Text: "状态切换失败。"})
	}
	return nil
}

// gone runs when the desk's connection has closed: the agent is no longer
// reachable by chat, and chats being offered to it go to someone else.
// Chats it holds stay with it until it logs in again (or the rules end them).
func (d *desk) gone() {
	if d.agent == "" {
		return
	}
	d.srv.mu.Lock()
	current := d.srv.desks[d.agent] == d
	if current {
		delete(d.srv.desks, d.agent)
	}
	d.srv.mu.Unlock()
	if !current {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.srv.ctx), routerWait)
	err := d.srv.router.SetPresence(ctx, d.agent, queue.MediaText, false)
	cancel()
	if err != nil && !errors.Is(err, queue.ErrStopped) {
		d.srv.log.Warn("desk presence", "agent", d.agent, "err", err)
	}
	agent := d.agent
	for _, sess := range d.srv.linked(agent) {
		sess.mb.push(func() { sess.onDeskGone(agent) })
	}
	d.srv.log.Info("desk logged out", "agent", agent)
}
