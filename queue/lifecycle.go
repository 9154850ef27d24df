package queue

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
)

// An interaction's way through the router: admission, waiting, ringing,
// answer, and the ways out (abandon, end).

// offer admits a new interaction.
func (c *core) offer(o Offer, now time.Time) (Admission, error) {
	if c.draining {
		return Admission{}, ErrDraining
	}
	q := c.queues[o.Queue]
	if q == nil || q.removed {
		return Admission{}, fmt.Errorf("%w: %q", ErrUnknownQueue, o.Queue)
	}
	if o.Channel != interaction.Phone && o.Channel != interaction.Chat {
		return Admission{}, fmt.Errorf("queue: cannot route a %s interaction", o.Channel)
	}
	if o.Handler == nil {
		return Admission{}, fmt.Errorf("queue: offer without a handler")
	}
	skills, key := skillKey(o.Skills)
	c.ixnSeq++
	x := &ixn{
		id: c.newID(now), channel: o.Channel, q: q, skills: skills, priority: o.Priority,
		handler: o.Handler, entered: now, offered: now, seq: c.ixnSeq, pos: -1,
	}
	data := map[string]string{}
	if key != "" {
		data["skills"] = key
	}
	if o.Priority != 0 {
		data["priority"] = strconv.Itoa(o.Priority)
	}
	for k, v := range map[string]string{"taxpayer_id": o.Taxpayer.ID, "taxpayer_name": o.Taxpayer.Name,
		"taxpayer_phone": o.Taxpayer.Phone, "topic": o.Topic} {
		if v != "" {
			data[k] = v
		}
	}
	c.emit(interaction.Event{Type: interaction.Offered, At: now, ID: x.id, Actor: interaction.ActorTaxpayer,
		Channel: o.Channel, Queue: q.name, Data: data})

	end := func(r interaction.Reason, target string) (Admission, error) {
		c.emit(interaction.Event{Type: interaction.Ended, At: now, ID: x.id, Reason: r, Data: targetData(target)})
		return Admission{ID: x.id, Reason: r, Target: target}, nil
	}
	open := q.chatOpen
	if o.Channel == interaction.Phone {
		open = q.phoneOpen
	}
	if (o.Channel == interaction.Phone && !q.phone) || (o.Channel == interaction.Chat && !q.chat) {
		return Admission{}, fmt.Errorf("%w: %q takes no %s", ErrUnknownQueue, q.name, o.Channel)
	}
	if open != nil && !open.Open(now) {
		return end(interaction.ReasonAfterHours, "voicemail")
	}
	if q.cfg.MaxLength > 0 && q.waiting >= q.cfg.MaxLength {
		return end(interaction.ReasonQueueFull, q.cfg.Overflow)
	}
	if !config.Bool(q.cfg.JoinEmpty) && c.loggedIn(q) == 0 {
		return end(interaction.ReasonNoAgents, q.cfg.Overflow)
	}

	c.ixns[x.id] = x
	c.startClocks(x, now)
	c.wait(x, now)
	adm := Admission{ID: x.id}
	if x.state == ixnRinging {
		adm.Immediate = true
		return adm, nil
	}
	adm.Position = q.position(x)
	adm.EstimatedWait = c.estimate(q, adm.Position)
	if x.channel == interaction.Chat {
		// C3: nobody can take the chat at once, so the holding message
		// goes out now, from the routing core.
		c.holding(x, adm.Position, adm.EstimatedWait, now)
	}
	return adm, nil
}

func targetData(target string) map[string]string {
	if target == "" {
		return nil
	}
	return map[string]string{"target": target}
}

// startClocks arms the rules that run from queue entry.
func (c *core) startClocks(x *ixn, now time.Time) {
	switch x.channel {
	case interaction.Phone:
		x.answerTarget = c.arm(x.entered.Add(c.cfg.Phone.AnswerTarget), timerAnswerTarget, x, nil)
	case interaction.Chat:
		x.firstResponse = c.arm(x.offered.Add(c.cfg.Chat.FirstResponse), timerFirstResponse, x, nil)
	}
	if mw := x.q.cfg.MaxWait; mw > 0 {
		x.maxWait = c.arm(x.entered.Add(mw), timerMaxWait, x, nil)
	}
	x.announce = c.arm(now.Add(x.q.cfg.AnnounceInterval), timerAnnounce, x, nil)
}

// wait puts x in its queue and tries to hand it to an agent at once.
func (c *core) wait(x *ixn, now time.Time) {
	x.state = ixnWaiting
	x.agent = nil
	x.q.enqueue(x)
	if a := c.pickAgent(x, now); a != nil {
		c.ring(x, a, now)
	}
}

// loggedIn counts the queue's agents who are reachable at all.
func (c *core) loggedIn(q *queueState) int {
	n := 0
	for _, a := range q.members {
		if a.status != StatusOffline && (a.voice || a.text) {
			n++
		}
	}
	return n
}

// estimate is the expected wait at position pos: the queue's average handle
// time spread over its logged-in agents.
func (c *core) estimate(q *queueState, pos int) time.Duration {
	n := c.loggedIn(q)
	if n == 0 {
		n = 1
	}
	return time.Duration(pos) * q.aht / time.Duration(n)
}

func (c *core) holding(x *ixn, pos int, ewt time.Duration, now time.Time) {
	c.emit(interaction.Event{Type: interaction.Holding, At: now, ID: x.id, Data: map[string]string{
		"position": strconv.Itoa(pos), "ewt_seconds": strconv.Itoa(int(ewt.Seconds()))}})
	x.handler.Notify(Notice{ID: x.id, Kind: NoticeHolding, Position: pos, EstimatedWait: ewt})
}

// ring reserves a for x and tells the channel to ring.
func (c *core) ring(x *ixn, a *agent, now time.Time) {
	x.q.dequeue(x)
	x.state = ixnRinging
	x.agent = a
	timeout := c.cfg.Phone.RingTimeout
	if x.channel == interaction.Chat {
		a.ringChats++
		timeout = c.cfg.Chat.OfferTimeout
	} else {
		a.ringCalls++
	}
	x.ring = c.arm(now.Add(timeout), timerRing, x, a)
	a.lastRung = x.id
	c.refresh(a, now)
	c.emit(interaction.Event{Type: interaction.RingStarted, At: now, ID: x.id, Agent: a.id, Queue: x.q.name})
	x.handler.Ring(Ring{ID: x.id, Channel: x.channel, Queue: x.q.name, Agent: a.id, Timeout: timeout,
		AutoAccept: x.channel == interaction.Chat && c.cfg.Chat.AutoAccept})
}

// unring releases a's reservation for x.
func (c *core) unring(x *ixn) *agent {
	a := x.agent
	c.disarm(&x.ring)
	if a == nil {
		return nil
	}
	if x.channel == interaction.Chat {
		a.ringChats--
	} else {
		a.ringCalls--
	}
	x.agent = nil
	return a
}

// answer connects x to agent id.
func (c *core) answer(id interaction.ID, agentID string, now time.Time) error {
	x := c.ixns[id]
	if x == nil {
		return ErrRingWithdrawn
	}
	if x.state != ixnRinging || x.agent == nil || x.agent.id != agentID {
		return ErrRingWithdrawn
	}
	a := c.unring(x)
	x.agent = a
	x.state = ixnConnected
	if x.channel == interaction.Chat {
		a.chats++
	} else {
		a.calls++
		c.disarm(&x.answerTarget)
	}
	a.missed = 0
	c.disarm(&x.maxWait)
	c.disarm(&x.announce)
	x.tried = nil
	x.only = nil
	// Average speed of answer feeds nothing; handle time feeds estimates.
	c.refresh(a, now)
	c.emit(interaction.Event{Type: interaction.Answered, At: now, ID: x.id, Agent: a.id, Actor: interaction.AgentActor(a.id)})
	return nil
}

// ringFailed handles a ring that ended without an answer: the interaction
// goes back to its place (original entry time), and an agent who misses
// too many in a row is paused.
func (c *core) ringFailed(id interaction.ID, agentID string, cause RingCause, now time.Time) error {
	x := c.ixns[id]
	if x == nil || x.state != ixnRinging || x.agent == nil || x.agent.id != agentID {
		return ErrRingWithdrawn
	}
	c.failRing(x, cause, now)
	return nil
}

func (c *core) failRing(x *ixn, cause RingCause, now time.Time) {
	a := c.unring(x)
	c.emit(interaction.Event{Type: interaction.RingFailed, At: now, ID: x.id, Agent: a.id,
		Data: map[string]string{"cause": cause.String()}})
	x.tried = append(x.tried, a)
	if x.only == a {
		// The agent it was transferred to did not take it: back to the
		// whole queue rather than waiting for that one agent.
		x.only = nil
	}
	if cause == RingNoAnswer || cause == RingLost {
		a.missed++
		if n := c.cfg.Phone.AutopauseAfter; n > 0 && a.missed >= n && a.status == StatusAvailable {
			c.setStatus(a, StatusBreak, "autopause", now)
		}
	}
	if cause == RingLost && x.channel == interaction.Phone {
		a.voice = false
	}
	c.refresh(a, now)
	x.handler.Notify(Notice{ID: x.id, Kind: NoticeRequeued, Agent: a.id})
	c.wait(x, now)
	if x.state == ixnWaiting && x.retry == nil && c.onlyTriedFree(x, now) {
		// Everyone free has failed this one: ring them again after the
		// retry pause rather than at once (Asterisk's "retry").
		x.retry = c.arm(now.Add(c.cfg.Phone.Retry), timerRetry, x, nil)
	}
	// The agent who failed may be free for someone else.
	c.serveAgent(a, now)
}

// abandon: the taxpayer left while queued or ringing.
func (c *core) abandon(id interaction.ID, now time.Time) error {
	x := c.ixns[id]
	if x == nil {
		return ErrUnknownInteraction
	}
	if x.state == ixnConnected {
		return ErrWrongState
	}
	a := c.detach(x, now)
	c.emit(interaction.Event{Type: interaction.Ended, At: now, ID: x.id, Actor: interaction.ActorTaxpayer,
		Reason: interaction.ReasonAbandoned, Data: map[string]string{"wait_ms": strconv.FormatInt(now.Sub(x.entered).Milliseconds(), 10)}})
	if a != nil {
		c.serveAgent(a, now)
	}
	return nil
}

// detach takes x out of wherever it is (its queue, its ring, its agent),
// disarms its clocks and forgets it. It returns the agent who was ringing
// or handling it, already updated, so the caller can offer that agent
// something else once its own events are out.
func (c *core) detach(x *ixn, now time.Time) *agent {
	switch x.state {
	case ixnConnected:
		return c.release(x, now)
	case ixnRinging:
		a := c.unring(x)
		x.handler.StopRing(x.id, a.id)
		c.finish(x, now)
		c.refresh(a, now)
		return a
	}
	x.q.dequeue(x)
	c.finish(x, now)
	return nil
}

// finish forgets x and disarms all its clocks.
func (c *core) finish(x *ixn, now time.Time) {
	for _, t := range []**timer{&x.ring, &x.answerTarget, &x.firstResponse, &x.maxWait, &x.announce, &x.retry,
		&x.agentSilence, &x.custReminder, &x.custClose} {
		c.disarm(t)
	}
	delete(c.ixns, x.id)
}

// end finishes a connected interaction; the agent goes to wrap-up.
func (c *core) end(id interaction.ID, e End, now time.Time) error {
	x := c.ixns[id]
	if x == nil {
		return ErrUnknownInteraction
	}
	if x.state != ixnConnected {
		if e.By == PartyTaxpayer {
			return c.abandon(id, now)
		}
		return ErrWrongState
	}
	if e.Disposition == interaction.OutOfScope && e.ScopeReason == "" {
		return fmt.Errorf("queue: an out-of-scope disposition needs a reason")
	}
	if e.ScopeReason != "" && !slices.Contains(c.cfg.ScopeReasons, e.ScopeReason) {
		return fmt.Errorf("queue: %q is not a configured out-of-scope reason", e.ScopeReason)
	}
	actor := interaction.ActorSystem
	switch e.By {
	case PartyTaxpayer:
		actor = interaction.ActorTaxpayer
	case PartyAgent:
		actor = interaction.AgentActor(x.agent.id)
	}
	data := map[string]string{}
	if e.ScopeReason != "" {
		data["scope_reason"] = e.ScopeReason
	}
	if e.Cause != "" {
		data["cause"] = e.Cause
	}
	if len(data) == 0 {
		data = nil
	}
	a := c.release(x, now)
	c.emit(interaction.Event{Type: interaction.Ended, At: now, ID: x.id, Actor: actor, Agent: a.id,
		Reason: interaction.ReasonCompleted, Disposition: e.Disposition, Data: data})
	c.serveAgent(a, now)
	return nil
}

// release frees x's agent (with wrap-up after a call) and forgets x.
func (c *core) release(x *ixn, now time.Time) *agent {
	a := x.agent
	c.finish(x, now)
	if a == nil {
		return nil
	}
	if x.channel == interaction.Chat {
		a.chats--
	} else {
		a.calls--
		if w := x.q.cfg.WrapUp; w > 0 {
			a.wrapUntil = now.Add(w)
			c.disarm(&a.wrap)
			a.wrap = c.arm(a.wrapUntil, timerWrapUp, nil, a)
		}
	}
	a.handled++
	if !x.offered.IsZero() {
		// Handle time since the interaction was offered to the agent is
		// close enough for estimates; weight the newest by a quarter.
		ht := now.Sub(x.entered)
		x.q.aht = (3*x.q.aht + ht) / 4
	}
	c.refresh(a, now)
	return a
}

// onlyTriedFree reports whether some free agent could take x but every one
// of them has already failed a ring for it.
func (c *core) onlyTriedFree(x *ixn, now time.Time) bool {
	for _, a := range x.q.ready {
		if a.canTake(x.channel, now) && a.hasSkills(x.q.skills) && a.hasSkills(x.skills) {
			if !slices.Contains(x.tried, a) {
				return false
			}
		}
	}
	for _, a := range x.tried {
		if a.canTake(x.channel, now) {
			return true
		}
	}
	return false
}

// String describes an ixn for logs.
func (x *ixn) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s in %s", x.channel, x.id, x.q.name)
	return b.String()
}
