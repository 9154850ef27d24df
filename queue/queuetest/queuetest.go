// Package queuetest has test doubles for the router's collaborators: a
// Handler that records what the router asks of a channel, and an event sink
// that keeps every event.
package queuetest

import (
	"sync"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
)

// Instruction is one call the router made on a Handler.
type Instruction struct {
	Kind   string // ring, stop_ring, notify, close
	Ring   queue.Ring
	Agent  string
	Notice queue.Notice
	Close  queue.Close
}

// Handler records instructions on a buffered channel. It never blocks the
// router: if the buffer is full the instruction is dropped and Overflow
// counts it, which a test should treat as a failure.
type Handler struct {
	C        chan Instruction
	mu       sync.Mutex
	overflow int
}

var _ queue.Handler = (*Handler)(nil)

// NewHandler returns a Handler with room for n instructions.
func NewHandler(n int) *Handler { return &Handler{C: make(chan Instruction, n)} }

func (h *Handler) put(i Instruction) {
	select {
	case h.C <- i:
	default:
		h.mu.Lock()
		h.overflow++
		h.mu.Unlock()
	}
}

// Overflow counts instructions dropped because the buffer was full.
func (h *Handler) Overflow() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.overflow
}

// Ring implements queue.Handler.
func (h *Handler) Ring(r queue.Ring) { h.put(Instruction{Kind: "ring", Ring: r, Agent: r.Agent}) }

// StopRing implements queue.Handler.
func (h *Handler) StopRing(_ interaction.ID, agent string) {
	h.put(Instruction{Kind: "stop_ring", Agent: agent})
}

// Notify implements queue.Handler.
func (h *Handler) Notify(n queue.Notice) {
	h.put(Instruction{Kind: "notify", Notice: n, Agent: n.Agent})
}

// Close implements queue.Handler.
func (h *Handler) Close(c queue.Close) { h.put(Instruction{Kind: "close", Close: c, Agent: c.Agent}) }

// Drain returns every instruction received so far without waiting.
func (h *Handler) Drain() []Instruction {
	var out []Instruction
	for {
		select {
		case i := <-h.C:
			out = append(out, i)
		default:
			return out
		}
	}
}

// Events is an in-memory queue.EventSink.
type Events struct {
	mu  sync.Mutex
	evs []interaction.Event
}

var _ queue.EventSink = (*Events)(nil)

// Emit implements queue.EventSink.
func (e *Events) Emit(ev interaction.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

// All returns a copy of every event so far.
func (e *Events) All() []interaction.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]interaction.Event(nil), e.evs...)
}

// Of returns the events of one type, optionally for one interaction.
func (e *Events) Of(t interaction.EventType, id interaction.ID) []interaction.Event {
	var out []interaction.Event
	for _, ev := range e.All() {
		if ev.Type == t && (id == "" || ev.ID == id) {
			out = append(out, ev)
		}
	}
	return out
}

// Record folds the events of one interaction.
func (e *Events) Record(id interaction.ID) interaction.Record {
	var r interaction.Record
	for _, ev := range e.All() {
		if ev.ID == id {
			r.Apply(ev)
		}
	}
	return r
}
