package queue

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/sla"
)

// core is the router's state machine: all ACD state and the timer heap.
// Only the router goroutine touches it (or a simulation driving it on
// virtual time), so it needs no locks. Every method takes the current time
// from its caller.
type core struct {
	cfg      *config.Config
	cal      *sla.Calendar
	queues   map[string]*queueState
	agents   map[string]*agent
	agentIDs []string // sorted, for stable snapshots
	ixns     map[interaction.ID]*ixn
	tickets  map[interaction.ID]*ticket
	timers   timerHeap
	timerSeq uint64
	ixnSeq   uint64
	events   EventSink
	obs      Observer
	log      *slog.Logger
	draining bool
	newID    func(time.Time) interaction.ID
}

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

const defaultAHT = 3 * time.Minute

func newCore(cfg *config.Config, events EventSink, obs Observer, log *slog.Logger) (*core, error) {
	c := &core{
		queues:  map[string]*queueState{},
		agents:  map[string]*agent{},
		ixns:    map[interaction.ID]*ixn{},
		tickets: map[interaction.ID]*ticket{},
		events:  events,
		obs:     obs,
		log:     log,
		newID:   interaction.NewID,
	}
	if err := c.configure(cfg, time.Time{}); err != nil {
		return nil, err
	}
	return c, nil
}

// configure applies cfg. Live interactions, agent presence and status, and
// armed timers are kept; queues and agents that disappeared stay until
// their interactions finish.
func (c *core) configure(cfg *config.Config, now time.Time) error {
	cal, err := sla.CalendarFromConfig(cfg)
	if err != nil {
		return err
	}
	schedules := map[string]*sla.Schedule{}
	for name, h := range cfg.Hours {
		s, err := sla.NewSchedule(h, cal)
		if err != nil {
			return fmt.Errorf("queue: hours %s: %w", name, err)
		}
		schedules[name] = s
	}
	seen := map[string]bool{}
	for _, qc := range cfg.Queues {
		q := c.queues[qc.Name]
		if q == nil {
			q = &queueState{name: qc.Name, buckets: map[bucketKey]*bucket{}, ranks: map[rankKey]*rankIndex{}, aht: defaultAHT}
			c.queues[qc.Name] = q
		}
		q.cfg = qc
		q.removed = false
		q.phone = slices.Contains(qc.Channels, "phone")
		q.chat = slices.Contains(qc.Channels, "chat")
		q.strategy = parseStrategy(qc.Strategy)
		q.skills, _ = skillKey(qc.Skills)
		q.phoneOpen = schedules[qc.Hours]
		q.chatOpen = schedules[qc.ChatHours]
		q.members = q.members[:0]
		q.memberIdx = map[*agent]int{}
		seen[qc.Name] = true
	}
	for name, q := range c.queues {
		if !seen[name] {
			q.removed = true
			q.members = nil
		}
	}
	agentSeen := map[string]bool{}
	for _, ac := range cfg.Agents {
		a := c.agents[ac.ID]
		if a == nil {
			a = &agent{id: ac.ID, status: StatusOffline, readyIdx: map[*queueState]int{}, idleSince: now, stateSince: now}
			c.agents[ac.ID] = a
		}
		a.cfg = ac
		a.mix = parseMixing(ac.Mixing)
		a.maxChats = ac.MaxChats
		a.removed = false
		for q := range a.readyIdx {
			q.removeReady(a)
		}
		a.queues = a.queues[:0]
		for _, qn := range ac.Queues {
			q := c.queues[qn]
			a.queues = append(a.queues, q)
			q.memberIdx[a] = len(q.members)
			q.members = append(q.members, a)
		}
		agentSeen[ac.ID] = true
	}
	c.agentIDs = c.agentIDs[:0]
	for id, a := range c.agents {
		if !agentSeen[id] {
			a.removed = true
			for q := range a.readyIdx {
				q.removeReady(a)
			}
			a.queues = nil
			if a.calls+a.chats+a.ringCalls+a.ringChats == 0 {
				delete(c.agents, id)
				continue
			}
		}
		c.agentIDs = append(c.agentIDs, id)
	}
	slices.Sort(c.agentIDs)
	c.cfg = cfg
	c.cal = cal
	for _, id := range c.agentIDs {
		c.refresh(c.agents[id], now)
	}
	for _, id := range c.agentIDs {
		c.serveAgent(c.agents[id], now)
	}
	return nil
}

func (c *core) emit(e interaction.Event) {
	if e.Actor == "" {
		e.Actor = interaction.ActorSystem
	}
	if c.events != nil {
		c.events.Emit(e)
	}
}

// refresh updates a's ready membership and reports state changes.
func (c *core) refresh(a *agent, now time.Time) {
	ready := !a.removed && a.status == StatusAvailable && (a.voice || a.text) && !now.Before(a.wrapUntil) &&
		(a.canTake(interaction.Phone, now) || a.canTake(interaction.Chat, now))
	for _, q := range a.queues {
		if ready {
			q.addReady(a)
		} else {
			q.removeReady(a)
		}
	}
	if st := a.state(now); st != a.lastState {
		if st == AgentAvailable {
			a.idleSince = now
		}
		a.lastState = st
		a.stateSince = now
		if c.obs != nil {
			c.obs.AgentChanged(a.view(now))
		}
	}
}

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

func agentID(a *agent) string {
	if a == nil {
		return ""
	}
	return a.id
}

// snapshot describes the router's state.
func (c *core) snapshot(now time.Time) Snapshot {
	s := Snapshot{At: now, Live: map[interaction.Channel]int{}}
	names := make([]string, 0, len(c.queues))
	for n, q := range c.queues {
		if !q.removed {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		q := c.queues[n]
		v := QueueView{Name: n, Waiting: q.waiting, LongestWait: q.longestWait(now), LoggedIn: c.loggedIn(q)}
		for _, a := range q.ready {
			if a.canTake(interaction.Phone, now) {
				v.AvailableVoice++
			}
			if a.canTake(interaction.Chat, now) {
				v.AvailableText++
			}
		}
		v.PhoneOpen = q.phone && (q.phoneOpen == nil || q.phoneOpen.Open(now))
		v.ChatOpen = q.chat && (q.chatOpen == nil || q.chatOpen.Open(now))
		s.Queues = append(s.Queues, v)
	}
	for _, id := range c.agentIDs {
		s.Agents = append(s.Agents, c.agents[id].view(now))
	}
	for _, x := range c.ixns {
		s.Live[x.channel]++
	}
	return s
}

func (c *core) agent(id string) (*agent, error) {
	a := c.agents[id]
	if a == nil || a.removed {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAgent, id)
	}
	return a, nil
}

// String describes an ixn for logs.
func (x *ixn) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s in %s", x.channel, x.id, x.q.name)
	return b.String()
}
