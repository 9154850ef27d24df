package queue

import (
	"time"

	"github.com/taxline/taxline/interaction"
)

// What each rule does when its timer fires.

// fire runs one due timer.
func (c *core) fire(t *timer, now time.Time) {
	x := t.ixn
	switch t.kind {
	case timerRing:
		x.ring = nil
		if x.state == ixnRinging && x.agent == t.agent {
			x.handler.StopRing(x.id, t.agent.id)
			c.failRing(x, RingNoAnswer, now)
		}
	case timerAnswerTarget:
		x.answerTarget = nil
		c.emit(interaction.Event{Type: interaction.AnswerTargetMissed, At: now, ID: x.id})
	case timerFirstResponse:
		x.firstResponse = nil
		c.emit(interaction.Event{Type: interaction.FirstResponseMissed, At: now, ID: x.id})
		x.handler.Notify(Notice{ID: x.id, Kind: NoticeFirstResponseMissed, Agent: agentID(x.agent)})
		if x.state == ixnWaiting {
			// C3: the 30 s target is being missed; tell the taxpayer why.
			pos := x.q.position(x)
			c.holding(x, pos, c.estimate(x.q, pos), now)
		}
	case timerMaxWait:
		x.maxWait = nil
		if x.state != ixnConnected {
			c.overflow(x, interaction.ReasonTimeout, now)
		}
	case timerRetry:
		x.retry = nil
		if x.state == ixnWaiting {
			x.tried = x.tried[:0]
			if a := c.pickAgent(x, now); a != nil {
				c.ring(x, a, now)
			}
		}
	case timerAnnounce:
		x.announce = nil
		if x.state == ixnWaiting {
			pos := x.q.position(x)
			c.holding(x, pos, c.estimate(x.q, pos), now)
		}
		if x.state != ixnConnected {
			x.announce = c.arm(now.Add(x.q.cfg.AnnounceInterval), timerAnnounce, x, nil)
		}
	case timerAgentSilence:
		x.agentSilence = nil
		c.emit(interaction.Event{Type: interaction.AgentSilence, At: now, ID: x.id, Agent: agentID(x.agent)})
		x.handler.Notify(Notice{ID: x.id, Kind: NoticeAgentSilence, Agent: agentID(x.agent)})
	case timerCustReminder:
		x.custReminder = nil
		c.emit(interaction.Event{Type: interaction.CustomerReminder, At: now, ID: x.id})
		x.handler.Notify(Notice{ID: x.id, Kind: NoticeCustomerReminder, Agent: agentID(x.agent)})
		x.custClose = c.arm(now.Add(c.cfg.Chat.CustomerSilenceClose), timerCustClose, x, nil)
	case timerCustClose:
		x.custClose = nil
		a := c.release(x, now)
		c.emit(interaction.Event{Type: interaction.Ended, At: now, ID: x.id, Agent: agentID(a),
			Reason: interaction.ReasonCustomerSilence})
		x.handler.Close(Close{ID: x.id, Reason: interaction.ReasonCustomerSilence, Agent: agentID(a)})
		if a != nil {
			c.serveAgent(a, now)
		}
	case timerWrapUp:
		a := t.agent
		a.wrap = nil
		c.refresh(a, now)
		c.serveAgent(a, now)
	case timerTicketAck, timerTicketAnswer:
		tk := c.tickets[t.tkt]
		if tk == nil {
			return
		}
		which := "ack"
		if t.kind == timerTicketAck {
			tk.ack = nil
			tk.overdueAck = true
		} else {
			tk.answer = nil
			tk.overdueAnswer = true
			which = "answer"
		}
		c.emit(interaction.Event{Type: interaction.TicketOverdue, At: now, ID: tk.id, Agent: tk.owner,
			Data: map[string]string{"deadline": which}})
	}
}
