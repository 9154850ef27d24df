package queue

import (
	"fmt"
	"time"

	"github.com/taxline/taxline/interaction"
)

// The chat rules that follow the conversation (C2, C4, C5): who spoke
// last starts and clears the clocks.

// activity records who spoke in a chat and runs C2, C4 and C5.
func (c *core) activity(id interaction.ID, from Party, now time.Time) error {
	x := c.ixns[id]
	if x == nil {
		return ErrUnknownInteraction
	}
	if x.channel != interaction.Chat {
		return nil
	}
	switch from {
	case PartyAgent:
		if x.state != ixnConnected {
			return ErrWrongState
		}
		if !x.firstResponded {
			x.firstResponded = true
			c.disarm(&x.firstResponse)
			c.emit(interaction.Event{Type: interaction.FirstResponse, At: now, ID: x.id, Agent: x.agent.id,
				Actor: interaction.AgentActor(x.agent.id)})
		}
		// C4 clears: the agent spoke. C5 starts: now the taxpayer owes a reply.
		c.disarm(&x.agentSilence)
		c.disarm(&x.custClose)
		c.disarm(&x.custReminder)
		x.custReminder = c.arm(now.Add(c.cfg.Chat.CustomerSilenceReminder), timerCustReminder, x, nil)
	case PartyTaxpayer:
		// C5 clears: the taxpayer spoke. C4 starts if not already running:
		// the agent now owes a reply.
		c.disarm(&x.custReminder)
		c.disarm(&x.custClose)
		if x.state == ixnConnected && x.agentSilence == nil {
			x.agentSilence = c.arm(now.Add(c.cfg.Chat.AgentSilence), timerAgentSilence, x, nil)
		}
	default:
		return fmt.Errorf("queue: activity from %s", from)
	}
	x.lastSpeaker = from
	return nil
}

// choose takes the taxpayer's answer to the C4 question.
func (c *core) choose(id interaction.ID, later bool, now time.Time) (TicketInfo, error) {
	x := c.ixns[id]
	if x == nil {
		return TicketInfo{}, ErrUnknownInteraction
	}
	c.emit(interaction.Event{Type: interaction.CustomerChoice, At: now, ID: x.id, Actor: interaction.ActorTaxpayer,
		Data: map[string]string{"choice": map[bool]string{true: "later", false: "wait"}[later]}})
	if !later {
		// Keep waiting: the agent owes a reply still; C4 may fire again.
		if x.state == ixnConnected {
			c.disarm(&x.agentSilence)
			x.agentSilence = c.arm(now.Add(c.cfg.Chat.AgentSilence), timerAgentSilence, x, nil)
		}
		return TicketInfo{}, nil
	}
	owner := ""
	if x.agent != nil {
		owner = x.agent.id
	}
	a := c.detach(x, now)
	c.emit(interaction.Event{Type: interaction.Ended, At: now, ID: x.id, Actor: interaction.ActorTaxpayer, Agent: owner,
		Reason: interaction.ReasonCallback, Disposition: interaction.FollowUp})
	info := c.createTicket(Ticket{Channel: interaction.Message, Queue: x.q.name, Parent: x.id, Owner: owner,
		AnswerWithin: c.cfg.Chat.FollowUpWithin}, now)
	if a != nil {
		c.serveAgent(a, now)
	}
	return info, nil
}
