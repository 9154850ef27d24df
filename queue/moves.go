package queue

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/taxline/taxline/interaction"
)

// What moves interactions and agents: transfers, overflow, agent status
// and presence.

// transfer moves x to another queue, or out of the desk (12366).
func (c *core) transfer(id interaction.ID, target, reason, actor string, now time.Time) error {
	x := c.ixns[id]
	if x == nil {
		return ErrUnknownInteraction
	}
	if reason != "" && !slices.Contains(c.cfg.ScopeReasons, reason) {
		return fmt.Errorf("queue: %q is not a configured out-of-scope reason", reason)
	}
	// Where it goes: another queue, one agent ("agent:ID", in the same
	// queue), or out of the desk (any other target).
	to := c.queues[target]
	var only *agent
	if id, ok := strings.CutPrefix(target, "agent:"); ok {
		a, err := c.agent(id)
		if err != nil {
			return err
		}
		if a == x.agent {
			return fmt.Errorf("queue: %s already has this interaction", id)
		}
		only, to = a, x.q
	}
	if to != nil && to.removed {
		to = nil
	}
	c.emit(interaction.Event{Type: interaction.Transferred, At: now, ID: x.id, Actor: actor,
		Data: map[string]string{"target": target, "reason": reason}})
	prev := c.detach(x, now)
	if to != nil {
		// Within the desk: a new queue entry, keeping the original id and
		// entry time so the wait keeps counting. The channel first hears
		// that the taxpayer is waiting again, so it can drop the old
		// agent's leg before the next ring.
		c.ixns[x.id] = x
		x.q = to
		x.tried = nil
		x.only = only
		if prev != nil {
			x.handler.Notify(Notice{ID: x.id, Kind: NoticeRequeued, Agent: prev.id})
		}
		c.emit(interaction.Event{Type: interaction.Overflowed, At: now, ID: x.id, Queue: to.name})
		c.startClocks(x, now)
		c.wait(x, now)
	} else {
		agentID := ""
		if prev != nil {
			agentID = prev.id
		}
		c.emit(interaction.Event{Type: interaction.Ended, At: now, ID: x.id, Actor: actor, Agent: agentID,
			Reason: interaction.ReasonTransferred, Disposition: interaction.DispositionTransferred,
			Data: map[string]string{"scope_reason": reason}})
		x.handler.Close(Close{ID: x.id, Reason: interaction.ReasonTransferred, Target: target, Agent: agentID})
	}
	if prev != nil {
		c.serveAgent(prev, now)
	}
	return nil
}

// setStatus changes what the agent chose.
func (c *core) setStatus(a *agent, s AgentStatus, reason string, now time.Time) {
	if a.status == s && a.reason == reason {
		return
	}
	a.status = s
	a.reason = reason
	if s == StatusAvailable {
		a.missed = 0
	}
	c.emit(interaction.Event{Type: interaction.AgentState, At: now, Agent: a.id, Actor: interaction.AgentActor(a.id),
		Data: map[string]string{"status": s.String(), "reason": reason}})
	c.refresh(a, now)
}

// presence records that an agent's phone registered or its desk logged in
// (or the reverse). Being reachable logs the agent in.
func (c *core) presence(a *agent, m Media, present bool, now time.Time) error {
	switch m {
	case MediaVoice:
		a.voice = present
	case MediaText:
		a.text = present
	default:
		return fmt.Errorf("queue: unknown media")
	}
	switch {
	case (a.voice || a.text) && a.status == StatusOffline:
		c.setStatus(a, StatusAvailable, "", now)
	case !a.voice && !a.text && a.status != StatusOffline:
		c.setStatus(a, StatusOffline, "", now)
		for _, q := range a.queues {
			if q.cfg.LeaveWhenEmpty && c.loggedIn(q) == 0 {
				c.emptyQueue(q, now)
			}
		}
	}
	c.refresh(a, now)
	c.serveAgent(a, now)
	return nil
}

// emptyQueue ends everyone waiting in q (leave_when_empty).
func (c *core) emptyQueue(q *queueState, now time.Time) {
	for _, b := range q.order {
		for len(b.items) > 0 {
			x := b.items[0]
			c.overflow(x, interaction.ReasonNoAgents, now)
		}
	}
}

// overflow moves a waiting x to its queue's overflow target.
func (c *core) overflow(x *ixn, reason interaction.Reason, now time.Time) {
	target := x.q.cfg.Overflow
	if a := c.detach(x, now); a != nil {
		defer c.serveAgent(a, now)
	}
	if to := c.queues[target]; to != nil && !to.removed {
		c.ixns[x.id] = x
		x.q = to
		x.tried = nil
		x.only = nil
		c.emit(interaction.Event{Type: interaction.Overflowed, At: now, ID: x.id, Queue: to.name,
			Data: map[string]string{"reason": reason.String()}})
		c.startClocks(x, now)
		c.wait(x, now)
		return
	}
	if target == "voicemail" {
		reason = interaction.ReasonVoicemail
	}
	c.emit(interaction.Event{Type: interaction.Ended, At: now, ID: x.id, Reason: reason, Data: targetData(target)})
	x.handler.Close(Close{ID: x.id, Reason: reason, Target: target})
}
