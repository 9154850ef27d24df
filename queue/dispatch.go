package queue

import (
	"slices"
	"time"

	"github.com/taxline/taxline/interaction"
)

// pickAgent chooses, by the queue's strategy, a free agent for a newly
// waiting interaction, or nil. It looks only at the queue's ready agents,
// so a long queue with every agent busy costs nothing here.
func (c *core) pickAgent(x *ixn, now time.Time) *agent {
	q := x.q
	var best *agent
	for _, a := range q.ready {
		if !a.canTake(x.channel, now) || !a.hasSkills(q.skills) || !a.hasSkills(x.skills) || !x.takes(a) {
			continue
		}
		if best == nil || c.better(q, x, a, best) {
			best = a
		}
	}
	if best != nil && q.strategy == roundRobin {
		q.rrNext = q.memberIdx[best] + 1
	}
	return best
}

// rrDistance is how far a is after the round-robin cursor.
func (c *core) rrDistance(q *queueState, a *agent) int {
	n := len(q.members)
	if n == 0 {
		return 0
	}
	return ((q.memberIdx[a]-q.rrNext)%n + n) % n
}

// better reports whether a should be preferred over b for x.
func (c *core) better(q *queueState, x *ixn, a, b *agent) bool {
	// For chats, the least-loaded agent comes first whatever the strategy,
	// so concurrent chats spread out.
	if x.channel == interaction.Chat && a.chats+a.ringChats != b.chats+b.ringChats {
		return a.chats+a.ringChats < b.chats+b.ringChats
	}
	switch q.strategy {
	case roundRobin:
		return c.rrDistance(q, a) < c.rrDistance(q, b)
	case fewestHandled:
		if a.handled != b.handled {
			return a.handled < b.handled
		}
	case skillLevel:
		sa := a.skillScore(q.skills) + a.skillScore(x.skills)
		sb := b.skillScore(q.skills) + b.skillScore(x.skills)
		if sa != sb {
			return sa > sb
		}
	}
	if !a.idleSince.Equal(b.idleSince) {
		return a.idleSince.Before(b.idleSince)
	}
	return a.id < b.id
}

// serveAgent offers a free agent the best waiting interactions it can take,
// across its queues, until it is full or nothing fits. Each bucket is
// looked at by its head only, so the cost grows with the number of
// distinct (channel, priority, skills) groups, not with the queue length.
func (c *core) serveAgent(a *agent, now time.Time) {
	for {
		x := c.bestFor(a, now)
		if x == nil {
			return
		}
		c.ring(x, a, now)
	}
}

func (c *core) bestFor(a *agent, now time.Time) *ixn {
	if a.removed || a.status != StatusAvailable || now.Before(a.wrapUntil) {
		return nil
	}
	phone := a.canTake(interaction.Phone, now)
	chat := a.canTake(interaction.Chat, now)
	if !phone && !chat {
		return nil
	}
	var best *ixn
	for _, q := range a.queues {
		if q.waiting == 0 || !a.hasSkills(q.skills) {
			continue
		}
		for _, b := range q.order {
			if len(b.items) == 0 {
				continue
			}
			if best != nil && b.key.priority < best.priority {
				break // q.order is by priority, highest first
			}
			if (b.key.channel == interaction.Phone && !phone) || (b.key.channel == interaction.Chat && !chat) {
				continue
			}
			if !a.hasSkills(b.skills) {
				continue
			}
			x := b.items[0]
			if !x.takes(a) {
				x = firstFor(b, a)
				if x == nil {
					continue
				}
			}
			if best == nil || ahead(x, best) {
				best = x
			}
		}
	}
	return best
}

// ahead reports whether x should be served before y.
func ahead(x, y *ixn) bool {
	if x.priority != y.priority {
		return x.priority > y.priority
	}
	if !x.entered.Equal(y.entered) {
		return x.entered.Before(y.entered)
	}
	return x.seq < y.seq
}

// takes reports whether a may be offered x: it has not failed a ring for
// x, and x was not transferred to someone else.
func (x *ixn) takes(a *agent) bool {
	return (x.only == nil || x.only == a) && !slices.Contains(x.tried, a)
}

// firstFor finds the oldest interaction in b that a may take. Rare (after
// a failed ring or an agent-to-agent transfer), so a scan is fine.
func firstFor(b *bucket, a *agent) *ixn {
	var best *ixn
	for _, x := range b.items {
		if x.takes(a) && (best == nil || ahead(x, best)) {
			best = x
		}
	}
	return best
}
