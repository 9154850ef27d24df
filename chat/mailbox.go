package chat

import "sync"

// mailbox is an unbounded queue of work for one owner goroutine. Pushing
// never blocks, so the router's Handler callbacks (which must not block) and
// connection readers can all hand work to a session safely.
type mailbox struct {
	mu     sync.Mutex // guards queue
	queue  []func()
	signal chan struct{} // capacity 1: "the queue may be non-empty"
}

func newMailbox() mailbox { return mailbox{signal: make(chan struct{}, 1)} }

// push appends f; the owner runs it in order.
func (m *mailbox) push(f func()) {
	m.mu.Lock()
	m.queue = append(m.queue, f)
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

// take removes and returns everything queued.
func (m *mailbox) take() []func() {
	m.mu.Lock()
	q := m.queue
	m.queue = nil
	m.mu.Unlock()
	return q
}
