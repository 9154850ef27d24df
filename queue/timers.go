package queue

import (
	"container/heap"
	"time"

	"github.com/taxline/taxline/interaction"
)

// timerKind names what a timer enforces.
type timerKind uint8

const (
	timerUnknown       timerKind = iota
	timerRing                    // ring timeout: try the next agent
	timerAnswerTarget            // P3: the call has waited answer_target
	timerFirstResponse           // C2: no agent message yet
	timerMaxWait                 // queue max_wait: overflow
	timerAnnounce                // P5/C3: periodic position announcement
	timerAgentSilence            // C4
	timerCustReminder            // C5 reminder
	timerCustClose               // C5 close after the grace period
	timerWrapUp                  // the agent's wrap-up ends
	timerTicketAck               // M3: acknowledge deadline
	timerTicketAnswer            // M3: answer deadline
	timerRetry                   // every agent failed a ring: try them again
)

// timer is one entry in the router's timer heap. Every rule's clock is one
// of these; cancelling a rule removes its entry.
type timer struct {
	at    time.Time
	seq   uint64 // orders timers due at the same instant by creation
	kind  timerKind
	ixn   *ixn
	agent *agent
	tkt   interaction.ID
	index int // position in the heap; -1 when not armed
}

// timerHeap is a min-heap of timers by (at, seq).
type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*h = old[:n-1]
	return t
}

// arm schedules a timer and returns it.
func (c *core) arm(at time.Time, kind timerKind, x *ixn, a *agent) *timer {
	c.timerSeq++
	t := &timer{at: at, seq: c.timerSeq, kind: kind, ixn: x, agent: a, index: -1}
	heap.Push(&c.timers, t)
	return t
}

// disarm cancels *tp if it is armed and clears it.
func (c *core) disarm(tp **timer) {
	t := *tp
	if t != nil && t.index >= 0 {
		heap.Remove(&c.timers, t.index)
	}
	*tp = nil
}

// next returns when the earliest timer is due.
func (c *core) next() (time.Time, bool) {
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].at, true
}

// fireDue runs every timer due at or before now, in order.
func (c *core) fireDue(now time.Time) {
	for len(c.timers) > 0 && !c.timers[0].at.After(now) {
		t := heap.Pop(&c.timers).(*timer)
		c.fire(t, now)
	}
}
