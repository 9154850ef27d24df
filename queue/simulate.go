package queue

import (
	"container/heap"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
)

// Scenario is synthetic traffic for Simulate: Poisson arrivals at constant
// rates, exponential handle times and patience, and every configured agent
// logged in by phone and desk for the whole period.
type Scenario struct {
	// Start and End bound the simulated period.
	Start, End time.Time
	// Queue receives the traffic; default: the first configured queue.
	Queue string
	// CallsPerHour and ChatsPerHour are the mean arrival rates.
	CallsPerHour, ChatsPerHour float64
	// CallHandle and ChatHandle are mean handle times (exponential).
	CallHandle, ChatHandle time.Duration
	// Patience is the mean time a taxpayer waits before giving up
	// (exponential); 0 means nobody gives up.
	Patience time.Duration
	// AnswerDelay is how long an agent's phone or desk rings before the
	// agent answers; FirstReply is how long a chat agent takes to write.
	AnswerDelay, FirstReply time.Duration
	// Agents, when > 0, logs in only the first Agents configured agents.
	Agents int
	// Seed makes a run repeatable.
	Seed uint64
}

// ErrScenario is returned for a scenario that cannot run.
var ErrScenario = errors.New("queue: bad simulation scenario")

// Simulate runs the router's own state machine — the same code that runs
// in production, timers and all — on virtual time over sc, and returns
// every event it produced. A day of traffic takes well under a second, so
// an admin can try a configuration (staffing, strategy, timers) before
// deploying it.
func Simulate(cfg *config.Config, sc Scenario) ([]interaction.Event, error) {
	if !sc.End.After(sc.Start) || sc.CallsPerHour < 0 || sc.ChatsPerHour < 0 {
		return nil, ErrScenario
	}
	if sc.Queue == "" && len(cfg.Queues) > 0 {
		sc.Queue = cfg.Queues[0].Name
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&sc.CallHandle, 4*time.Minute)
	def(&sc.ChatHandle, 8*time.Minute)
	def(&sc.AnswerDelay, 3*time.Second)
	def(&sc.FirstReply, 10*time.Second)

	s := &sim{sc: sc, rng: rand.New(rand.NewPCG(sc.Seed, sc.Seed^0x9e3779b97f4a7c15)), now: sc.Start}
	c, err := newCore(cfg, s, nil, nil)
	if err != nil {
		return nil, err
	}
	s.core = c
	n := 0
	for _, id := range c.agentIDs {
		if sc.Agents > 0 && n >= sc.Agents {
			break
		}
		n++
		a := c.agents[id]
		_ = c.presence(a, MediaVoice, true, s.now)
		_ = c.presence(a, MediaText, true, s.now)
	}
	s.arrival(interaction.Phone, sc.CallsPerHour)
	s.arrival(interaction.Chat, sc.ChatsPerHour)
	for {
		at, kind := s.next()
		if kind == simDone {
			break
		}
		s.now = at
		if kind == simTimer {
			c.fireDue(at)
			continue
		}
		a := heap.Pop(&s.acts).(*simAct)
		a.run(s)
	}
	return s.events, nil
}

type simKind uint8

const (
	simDone simKind = iota
	simTimer
	simAction
)

// sim is the virtual world around the core: taxpayers and agents.
type sim struct {
	sc     Scenario
	rng    *rand.Rand
	core   *core
	now    time.Time
	acts   simActs
	seq    uint64
	events []interaction.Event
}

// Emit implements EventSink.
func (s *sim) Emit(e interaction.Event) { s.events = append(s.events, e) }

// next says what happens next: a router timer or a scripted action, in
// time order; nothing after End except to finish what is under way.
func (s *sim) next() (time.Time, simKind) {
	t, ok := s.core.next()
	if len(s.acts) > 0 && (!ok || !s.acts[0].at.After(t)) {
		return s.acts[0].at, simAction
	}
	if ok && (t.Before(s.sc.End) || len(s.core.ixns) > 0) {
		return t, simTimer
	}
	return time.Time{}, simDone
}

func (s *sim) exp(mean time.Duration) time.Duration {
	return time.Duration(s.rng.ExpFloat64() * float64(mean))
}

func (s *sim) at(d time.Duration, run func(*sim)) {
	s.seq++
	heap.Push(&s.acts, &simAct{at: s.now.Add(d), seq: s.seq, run: run})
}

// arrival schedules the next taxpayer of a channel, and so on to End.
func (s *sim) arrival(ch interaction.Channel, perHour float64) {
	if perHour <= 0 {
		return
	}
	gap := time.Duration(s.rng.ExpFloat64() * float64(time.Hour) / perHour)
	if !s.now.Add(gap).Before(s.sc.End) {
		return
	}
	s.at(gap, func(s *sim) {
		s.arrive(ch)
		s.arrival(ch, perHour)
	})
}

func (s *sim) arrive(ch interaction.Channel) {
	t := &simTaxpayer{sim: s, ch: ch}
	adm, err := s.core.offer(Offer{Channel: ch, Queue: s.sc.Queue, Handler: t}, s.now)
	if err != nil || adm.Reason != interaction.ReasonNone {
		return
	}
	t.id = adm.ID
	if s.sc.Patience > 0 {
		s.at(s.exp(s.sc.Patience), func(s *sim) {
			if x := s.core.ixns[t.id]; x != nil && x.state != ixnConnected {
				_ = s.core.abandon(t.id, s.now)
			}
		})
	}
}

// simTaxpayer is the Handler of one simulated interaction; it plays the
// agent's side too (answer after a delay, reply, hang up).
type simTaxpayer struct {
	sim  *sim
	id   interaction.ID
	ch   interaction.Channel
	ring uint64 // which ring the scheduled answer belongs to
}

func (t *simTaxpayer) Ring(r Ring) {
	t.ring++
	ring := t.ring
	t.sim.at(t.sim.sc.AnswerDelay, func(s *sim) {
		if t.ring != ring || s.core.answer(r.ID, r.Agent, s.now) != nil {
			return
		}
		handle := s.sc.CallHandle
		if t.ch == interaction.Chat {
			handle = s.sc.ChatHandle
			s.at(s.sc.FirstReply, func(s *sim) { _ = s.core.activity(r.ID, PartyAgent, s.now) })
		}
		s.at(s.exp(handle), func(s *sim) {
			_ = s.core.end(r.ID, End{By: PartyAgent, Disposition: interaction.Resolved}, s.now)
		})
	})
}

func (t *simTaxpayer) StopRing(interaction.ID, string) { t.ring++ }
func (t *simTaxpayer) Notify(Notice)                   {}
func (t *simTaxpayer) Close(Close)                     {}

// simAct is one scripted action at a virtual instant.
type simAct struct {
	at  time.Time
	seq uint64
	run func(*sim)
}

type simActs []*simAct

func (h simActs) Len() int { return len(h) }
func (h simActs) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h simActs) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *simActs) Push(x any)   { *h = append(*h, x.(*simAct)) }
func (h *simActs) Pop() any {
	old := *h
	n := len(old)
	a := old[n-1]
	*h = old[:n-1]
	return a
}
