package queue

import (
	"fmt"
	"log/slog"
	"slices"
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
