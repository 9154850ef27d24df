// Package storagetest helps tests that need a store or an event sink: a real
// bbolt store in a temporary directory, an in-memory queue.EventSink, and
// event sequences of typical interactions.
package storagetest

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/storage"
)

// Open opens a store in a fresh t.TempDir() and closes it when the test
// ends. It fails the test if either step fails.
func Open(t testing.TB, opt storage.Options) *storage.DB {
	t.Helper()
	return OpenDir(t, t.TempDir(), opt)
}

// OpenDir is Open in a given directory, for tests that reopen a store.
func OpenDir(t testing.TB, dir string, opt storage.Options) *storage.DB {
	t.Helper()
	db, err := storage.Open(dir, opt)
	if err != nil {
		t.Fatalf("storagetest: open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
			t.Errorf("storagetest: close: %v", err)
		}
	})
	return db
}

// Sink is an in-memory event sink (it satisfies queue.EventSink) for unit
// tests that do not need durability. The zero value is ready to use.
type Sink struct {
	mu      sync.Mutex // guards evs and changed
	evs     []interaction.Event
	changed chan struct{} // closed and replaced on every Emit
}

// Emit records ev; it never blocks.
func (s *Sink) Emit(ev interaction.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev.Seq = uint64(len(s.evs) + 1)
	s.evs = append(s.evs, ev)
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// Events returns a copy of everything emitted so far, in order.
func (s *Sink) Events() []interaction.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]interaction.Event(nil), s.evs...)
}

// WaitFor blocks until ok returns true for the events emitted so far, or
// fails the test after timeout.
func (s *Sink) WaitFor(t testing.TB, timeout time.Duration, ok func([]interaction.Event) bool) []interaction.Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		evs := append([]interaction.Event(nil), s.evs...)
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		if ok(evs) {
			return evs
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("storagetest: condition not met after %v; %d events emitted", timeout, len(evs))
			return nil
		}
	}
}

// Call returns the events of a phone call offered at at to queue q, answered
// by agent after 10 s and completed (resolved) 3 minutes later. taxpayer
// fills the taxpayer_id field.
func Call(id interaction.ID, at time.Time, q, agent, taxpayer string) []interaction.Event {
	return []interaction.Event{
		{Type: interaction.Offered, At: at, ID: id, Actor: interaction.ActorTaxpayer, Channel: interaction.Phone, Queue: q,
			Data: map[string]string{"taxpayer_id": taxpayer, "priority": strconv.Itoa(1)}},
		{Type: interaction.RingStarted, At: at.Add(5 * time.Second), ID: id, Actor: interaction.ActorSystem, Agent: agent},
		{Type: interaction.Answered, At: at.Add(10 * time.Second), ID: id, Actor: interaction.AgentActor(agent), Agent: agent},
		{Type: interaction.Ended, At: at.Add(190 * time.Second), ID: id, Actor: interaction.AgentActor(agent),
			Reason: interaction.ReasonCompleted, Disposition: interaction.Resolved},
	}
}
