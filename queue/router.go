// Package queue is taxline's ACD: interactions from every channel (phone,
// chat) wait in queues with skills and priorities, agents with skills,
// states and capacities take them, and the bureau's timing rules (C2–C5,
// P3, ring timeout, M3 deadlines) run from the router's own timer heap.
//
// One goroutine owns all of it (Router.Run). Channel gateways ask through
// the Router's methods; the router answers them and tells each channel what
// to do through the Handler it gave with its Offer. Nothing else touches
// ACD state, so routing is deterministic and needs no locks.
package queue

import (
	"context"
	"log/slog"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
)

// Clock is the router's source of time. The real clock is the default;
// tests run the router inside testing/synctest, where the real clock is
// virtual.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the router uses.
type Timer interface {
	C() <-chan time.Time
	Reset(d time.Duration) bool
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer {
	return realTimer{time.NewTimer(d)}
}

type realTimer struct{ *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.Timer.C }

// Options are the router's dependencies.
type Options struct {
	// Clock defaults to the real clock.
	Clock Clock
	// Events receives every event; nil drops them (tests of pure routing).
	Events EventSink
	// Observer hears agent state changes; optional.
	Observer Observer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Router is the ACD. Create it with NewRouter, run it with Run, and talk to
// it through its methods, which are safe for concurrent use.
type Router struct {
	core  *core
	clock Clock
	log   *slog.Logger
	cmds  chan command
	done  chan struct{}
}

type command struct {
	fn    func(now time.Time) error
	reply chan error
}

// NewRouter builds a router for cfg. It does nothing until Run.
func NewRouter(cfg *config.Config, opt Options) (*Router, error) {
	if opt.Clock == nil {
		opt.Clock = realClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	c, err := newCore(cfg, opt.Events, opt.Observer, opt.Logger)
	if err != nil {
		return nil, err
	}
	return &Router{core: c, clock: opt.Clock, log: opt.Logger, cmds: make(chan command), done: make(chan struct{})}, nil
}

// Run is the router's event loop. It returns when ctx ends; interactions
// still live are left to the caller (see Drain).
func (r *Router) Run(ctx context.Context) error {
	defer close(r.done)
	wake := r.clock.NewTimer(time.Hour)
	defer wake.Stop()
	r.core.log.Debug("router running")
	for {
		r.rearm(wake)
		select {
		case <-ctx.Done():
			return nil
		case cmd := <-r.cmds:
			cmd.reply <- cmd.fn(r.clock.Now())
		case <-wake.C():
			r.core.fireDue(r.clock.Now())
		}
	}
}

// rearm points the wake-up timer at the earliest rule timer.
func (r *Router) rearm(t Timer) {
	if !t.Stop() {
		select {
		case <-t.C():
		default:
		}
	}
	at, ok := r.core.next()
	if !ok {
		t.Reset(time.Hour)
		return
	}
	d := at.Sub(r.clock.Now())
	if d < 0 {
		d = 0
	}
	t.Reset(d)
}

// do runs fn on the router goroutine and waits for its result. When ctx
// ends first, fn may still run later: callers must not read what fn writes
// unless do returned nil.
func (r *Router) do(ctx context.Context, fn func(now time.Time) error) error {
	reply := make(chan error, 1)
	select {
	case r.cmds <- command{fn, reply}:
	case <-ctx.Done():
		return ctx.Err()
	case <-r.done:
		return ErrStopped
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Offer admits a new interaction. See Admission for the outcomes.
func (r *Router) Offer(ctx context.Context, o Offer) (Admission, error) {
	var adm Admission
	err := r.do(ctx, func(now time.Time) (err error) {
		adm, err = r.core.offer(o, now)
		return err
	})
	if err != nil {
		// Not adm: after a cancelled wait the router may still write it.
		return Admission{}, err
	}
	return adm, nil
}

// Abandon records that the taxpayer left while queued or ringing.
func (r *Router) Abandon(ctx context.Context, id interaction.ID) error {
	return r.do(ctx, func(now time.Time) error { return r.core.abandon(id, now) })
}

// Answer connects a ringing interaction to the agent who accepted it. It
// returns ErrRingWithdrawn when the ring is no longer this agent's.
func (r *Router) Answer(ctx context.Context, id interaction.ID, agent string) error {
	return r.do(ctx, func(now time.Time) error { return r.core.answer(id, agent, now) })
}

// RingFailed reports a ring that ended without an answer; the interaction
// goes back to its place in the queue.
func (r *Router) RingFailed(ctx context.Context, id interaction.ID, agent string, cause RingCause) error {
	return r.do(ctx, func(now time.Time) error { return r.core.ringFailed(id, agent, cause, now) })
}

// Activity records a chat message from one side, which starts or clears
// the C2, C4 and C5 clocks.
func (r *Router) Activity(ctx context.Context, id interaction.ID, from Party) error {
	return r.do(ctx, func(now time.Time) error { return r.core.activity(id, from, now) })
}

// Choose takes the taxpayer's answer to the C4 question. later ends the
// chat and returns the follow-up ticket.
func (r *Router) Choose(ctx context.Context, id interaction.ID, later bool) (TicketInfo, error) {
	var info TicketInfo
	err := r.do(ctx, func(now time.Time) (err error) {
		info, err = r.core.choose(id, later, now)
		return err
	})
	if err != nil {
		return TicketInfo{}, err
	}
	return info, nil
}

// End finishes a connected interaction. The agent goes to wrap-up. A
// taxpayer ending one still queued or ringing is an abandon.
func (r *Router) End(ctx context.Context, id interaction.ID, e End) error {
	return r.do(ctx, func(now time.Time) error { return r.core.end(id, e, now) })
}

// Transfer sends an interaction to another queue (target is a queue name)
// or out of the desk (any other target, e.g. the 12366 trunk's URI; the
// channel is told with Close). reason, if set, must be a configured
// out-of-scope reason (P4).
func (r *Router) Transfer(ctx context.Context, id interaction.ID, target, reason, actor string) error {
	return r.do(ctx, func(now time.Time) error { return r.core.transfer(id, target, reason, actor, now) })
}

// SetAgentStatus sets what the agent chose: available, break (with a
// reason) or offline.
func (r *Router) SetAgentStatus(ctx context.Context, agent string, s AgentStatus, reason string) error {
	return r.do(ctx, func(now time.Time) error {
		a, err := r.core.agent(agent)
		if err != nil {
			return err
		}
		r.core.setStatus(a, s, reason, now)
		r.core.serveAgent(a, now)
		return nil
	})
}

// SetPresence records that the agent became reachable (or not) by m.
func (r *Router) SetPresence(ctx context.Context, agent string, m Media, present bool) error {
	return r.do(ctx, func(now time.Time) error {
		a, err := r.core.agent(agent)
		if err != nil {
			return err
		}
		return r.core.presence(a, m, present, now)
	})
}

// CreateTicket opens a message or follow-up ticket with M3 deadlines.
func (r *Router) CreateTicket(ctx context.Context, t Ticket) (TicketInfo, error) {
	var info TicketInfo
	err := r.do(ctx, func(now time.Time) error {
		info = r.core.createTicket(t, now)
		return nil
	})
	if err != nil {
		return TicketInfo{}, err
	}
	return info, nil
}

// AckTicket records that an agent listened to or read a message.
func (r *Router) AckTicket(ctx context.Context, id interaction.ID, agent string) error {
	return r.do(ctx, func(now time.Time) error { return r.core.ackTicket(id, agent, now) })
}

// AnswerTicket closes a ticket as answered. An out-of-scope answer needs
// a configured reason (P4).
func (r *Router) AnswerTicket(ctx context.Context, id interaction.ID, a TicketAnswer) error {
	return r.do(ctx, func(now time.Time) error { return r.core.answerTicket(id, a, now) })
}

// RestoreTickets re-arms the deadlines of tickets that were open when the
// process last stopped, from their stored times (not restarted).
func (r *Router) RestoreTickets(ctx context.Context, recs []interaction.Record) error {
	return r.do(ctx, func(now time.Time) error {
		r.core.restoreTickets(recs, now)
		return nil
	})
}

// Reload applies a new configuration. Live interactions and armed timers
// are kept; new timers use the new values.
func (r *Router) Reload(ctx context.Context, cfg *config.Config) error {
	return r.do(ctx, func(now time.Time) error {
		if err := r.core.configure(cfg, now); err != nil {
			return err
		}
		r.core.emit(interaction.Event{Type: interaction.ConfigReloaded, At: now, Data: map[string]string{"path": cfg.Path}})
		return nil
	})
}

// Snapshot returns the router's live state.
func (r *Router) Snapshot(ctx context.Context) (Snapshot, error) {
	var s Snapshot
	err := r.do(ctx, func(now time.Time) error {
		s = r.core.snapshot(now)
		return nil
	})
	if err != nil {
		return Snapshot{}, err
	}
	return s, nil
}

// Agent returns one agent's live state.
func (r *Router) Agent(ctx context.Context, id string) (AgentView, error) {
	var v AgentView
	err := r.do(ctx, func(now time.Time) error {
		a, err := r.core.agent(id)
		if err == nil {
			v = a.view(now)
		}
		return err
	})
	if err != nil {
		return AgentView{}, err
	}
	return v, nil
}

// Drain stops admitting new interactions; live ones carry on.
func (r *Router) Drain(ctx context.Context) error {
	return r.do(ctx, func(time.Time) error {
		r.core.draining = true
		return nil
	})
}
