package queue

import (
	"fmt"
	"slices"
	"time"

	"github.com/taxline/taxline/interaction"
)

// Message and follow-up tickets with their M3 deadlines.

// ticket is an open message or follow-up ticket with its M3 deadlines.
type ticket struct {
	id            interaction.ID
	ackBy         time.Time
	answerBy      time.Time
	acked         bool
	ack, answer   *timer
	owner         string
	queue         string
	channel       interaction.Channel
	parent        interaction.ID
	overdueAck    bool
	overdueAnswer bool
}

// createTicket opens a message or follow-up ticket with its M3 deadlines
// in working days on the calendar.
func (c *core) createTicket(t Ticket, now time.Time) TicketInfo {
	answerWithin := c.cfg.Messages.AnswerWithin
	if t.AnswerWithin > 0 {
		answerWithin = t.AnswerWithin
	}
	ackWithin := min(c.cfg.Messages.AcknowledgeWithin, answerWithin)
	info := TicketInfo{
		ID:       c.newID(now),
		AckBy:    c.cal.WorkingDaysAfter(now, ackWithin),
		AnswerBy: c.cal.WorkingDaysAfter(now, answerWithin),
	}
	ch := t.Channel
	if ch == interaction.ChannelUnknown {
		ch = interaction.Message
	}
	data := map[string]string{
		"ack_by": info.AckBy.Format(time.RFC3339), "answer_by": info.AnswerBy.Format(time.RFC3339),
	}
	if t.Parent != "" {
		data["parent"] = string(t.Parent)
	}
	for k, v := range map[string]string{"taxpayer_id": t.Taxpayer.ID, "taxpayer_name": t.Taxpayer.Name,
		"taxpayer_phone": t.Taxpayer.Phone, "topic": t.Topic} {
		if v != "" {
			data[k] = v
		}
	}
	for k, v := range t.Data {
		data[k] = v
	}
	c.emit(interaction.Event{Type: interaction.TicketCreated, At: now, ID: info.ID, Channel: ch, Queue: t.Queue,
		Agent: t.Owner, Data: data})
	c.armTicket(&ticket{id: info.ID, ackBy: info.AckBy, answerBy: info.AnswerBy, owner: t.Owner, queue: t.Queue,
		channel: ch, parent: t.Parent}, now)
	return info
}

// armTicket tracks an open ticket and arms its deadlines; deadlines already
// past fire at once (after a restart, from the stored times).
func (c *core) armTicket(t *ticket, now time.Time) {
	c.tickets[t.id] = t
	if !t.acked && !t.overdueAck {
		t.ack = c.arm(t.ackBy, timerTicketAck, nil, nil)
		t.ack.tkt = t.id
	}
	if !t.overdueAnswer {
		t.answer = c.arm(t.answerBy, timerTicketAnswer, nil, nil)
		t.answer.tkt = t.id
	}
}

func (c *core) ackTicket(id interaction.ID, agentID string, now time.Time) error {
	t := c.tickets[id]
	if t == nil {
		return ErrUnknownInteraction
	}
	if t.acked {
		return nil
	}
	t.acked = true
	if t.owner == "" {
		t.owner = agentID
	}
	c.disarm(&t.ack)
	c.emit(interaction.Event{Type: interaction.TicketAcknowledged, At: now, ID: id, Agent: agentID,
		Actor: interaction.AgentActor(agentID)})
	return nil
}

func (c *core) answerTicket(id interaction.ID, ta TicketAnswer, now time.Time) error {
	t := c.tickets[id]
	if t == nil {
		return ErrUnknownInteraction
	}
	if ta.Disposition == interaction.OutOfScope && ta.ScopeReason == "" {
		return fmt.Errorf("queue: an out-of-scope answer needs a reason")
	}
	if ta.ScopeReason != "" && !slices.Contains(c.cfg.ScopeReasons, ta.ScopeReason) {
		return fmt.Errorf("queue: %q is not a configured out-of-scope reason", ta.ScopeReason)
	}
	by := ta.By
	if by == "" {
		by = interaction.AgentActor(ta.Agent)
	}
	if !t.acked {
		t.acked = true
		if t.owner == "" {
			t.owner = ta.Agent
		}
		c.disarm(&t.ack)
		c.emit(interaction.Event{Type: interaction.TicketAcknowledged, At: now, ID: id, Agent: ta.Agent, Actor: by})
	}
	c.disarm(&t.answer)
	delete(c.tickets, id)
	var data map[string]string
	for k, v := range map[string]string{"scope_reason": ta.ScopeReason, "note": ta.Note} {
		if v != "" {
			if data == nil {
				data = map[string]string{}
			}
			data[k] = v
		}
	}
	c.emit(interaction.Event{Type: interaction.TicketAnswered, At: now, ID: id, Agent: ta.Agent,
		Actor: by, Disposition: ta.Disposition, Data: data})
	return nil
}

// restoreTickets re-arms the deadlines of tickets still open in the store.
func (c *core) restoreTickets(recs []interaction.Record, now time.Time) {
	for _, r := range recs {
		if r.State != interaction.StateOpen || c.tickets[r.ID] != nil {
			continue
		}
		c.armTicket(&ticket{id: r.ID, ackBy: r.AckBy, answerBy: r.AnswerBy, owner: r.Agent, queue: r.Queue,
			channel: r.Channel, parent: r.Parent, acked: !r.AcknowledgedAt.IsZero(),
			overdueAck: r.Overdue && now.After(r.AckBy), overdueAnswer: r.Overdue && now.After(r.AnswerBy)}, now)
	}
}
