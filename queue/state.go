package queue

import (
	"container/heap"
	"slices"
	"strings"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/sla"
)

// strategy picks among free agents.
type strategy uint8

const (
	strategyUnknown strategy = iota
	longestIdle
	roundRobin
	fewestHandled
	skillLevel
)

func parseStrategy(s string) strategy {
	switch s {
	case "round_robin":
		return roundRobin
	case "fewest_handled":
		return fewestHandled
	case "skill_level":
		return skillLevel
	}
	return longestIdle
}

// mixing is an agent's rule for calls and chats at once.
type mixing uint8

const (
	mixUnknown     mixing = iota
	callBlocksChat        // on a call no new chats; chats do not block calls
	exclusive             // one kind at a time
	independent           // calls and chats do not affect each other
)

func parseMixing(s string) mixing {
	switch s {
	case "exclusive":
		return exclusive
	case "independent":
		return independent
	}
	return callBlocksChat
}

// queueState is one queue's configuration and waiting interactions.
type queueState struct {
	name      string
	cfg       config.Queue
	phone     bool // takes phone interactions
	chat      bool // takes chats
	strategy  strategy
	skills    []string
	phoneOpen *sla.Schedule
	chatOpen  *sla.Schedule
	// buckets group waiting interactions that need the same extra skills at
	// the same priority, so that picking the next one for an agent looks at
	// one head per bucket instead of at every waiting interaction.
	buckets map[bucketKey]*bucket
	order   []*bucket // the same buckets, by priority (highest first), for a stable scan
	ranks   map[rankKey]*rankIndex
	waiting int
	// members are the agents who serve the queue, in config order; ready
	// is the subset that could take something now.
	members   []*agent
	memberIdx map[*agent]int
	ready     []*agent
	rrNext    int
	// aht is an exponentially weighted average handle time, for estimates.
	aht     time.Duration
	removed bool // gone from config; kept while interactions finish
}

type bucketKey struct {
	channel  interaction.Channel
	priority int
	skills   string // sorted, comma-joined extra skills
}

// bucket is a FIFO by entry time (a heap, so a requeued interaction keeps
// its place).
type bucket struct {
	key    bucketKey
	skills []string
	items  ixnHeap
}

// ixnHeap orders waiting interactions by entry time, then arrival.
type ixnHeap []*ixn

func (h ixnHeap) Len() int { return len(h) }
func (h ixnHeap) Less(i, j int) bool {
	if h[i].entered.Equal(h[j].entered) {
		return h[i].seq < h[j].seq
	}
	return h[i].entered.Before(h[j].entered)
}
func (h ixnHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos = i
	h[j].pos = j
}
func (h *ixnHeap) Push(x any) {
	v := x.(*ixn)
	v.pos = len(*h)
	*h = append(*h, v)
}
func (h *ixnHeap) Pop() any {
	old := *h
	n := len(old)
	v := old[n-1]
	old[n-1] = nil
	v.pos = -1
	*h = old[:n-1]
	return v
}

// ixnState is where a live interaction is inside the router.
type ixnState uint8

const (
	ixnUnknown ixnState = iota
	ixnWaiting
	ixnRinging
	ixnConnected
)

// ixn is a live interaction.
type ixn struct {
	id       interaction.ID
	channel  interaction.Channel
	q        *queueState
	skills   []string // extra skills, sorted
	priority int
	handler  Handler
	entered  time.Time // original queue entry; kept across requeues
	offered  time.Time
	seq      uint64
	state    ixnState
	agent    *agent
	tried    []*agent // agents that failed a ring for this interaction
	only     *agent   // set by a transfer to one agent: nobody else may take it
	bucket   *bucket
	pos      int // index in bucket.items; -1 when not waiting

	firstResponded bool
	lastSpeaker    Party

	ring, answerTarget, firstResponse, maxWait, announce, retry *timer
	agentSilence, custReminder, custClose                       *timer
}

// agent is one agent's live state.
type agent struct {
	id       string
	cfg      config.Agent
	mix      mixing
	maxChats int
	queues   []*queueState
	readyIdx map[*queueState]int

	status AgentStatus
	reason string
	voice  bool
	text   bool

	calls, chats         int // connected
	ringCalls, ringChats int // ringing
	wrapUntil            time.Time
	wrap                 *timer
	idleSince            time.Time
	stateSince           time.Time
	lastState            AgentState
	lastRung             interaction.ID // the newest interaction rung to this agent
	handled              int
	missed               int
	removed              bool
}

// state is what supervisors see.
func (a *agent) state(now time.Time) AgentState {
	switch {
	case a.status == StatusOffline || (!a.voice && !a.text):
		return AgentOffline
	case a.status == StatusBreak:
		if a.calls+a.chats > 0 {
			return AgentBusy
		}
		return AgentBreak
	case a.ringCalls+a.ringChats > 0 && a.calls+a.chats == 0:
		return AgentRinging
	case a.calls+a.chats > 0:
		return AgentBusy
	case now.Before(a.wrapUntil):
		return AgentWrapUp
	}
	return AgentAvailable
}

// canTake reports whether the agent could be offered an interaction of ch
// now, by status, presence and capacity.
func (a *agent) canTake(ch interaction.Channel, now time.Time) bool {
	if a.removed || a.status != StatusAvailable || now.Before(a.wrapUntil) {
		return false
	}
	switch ch {
	case interaction.Phone:
		if !a.voice || a.calls+a.ringCalls > 0 {
			return false
		}
		if a.mix == exclusive && a.chats+a.ringChats > 0 {
			return false
		}
		return true
	case interaction.Chat:
		if !a.text || a.chats+a.ringChats >= a.maxChats {
			return false
		}
		if a.mix != independent && a.calls+a.ringCalls > 0 {
			return false
		}
		return true
	}
	return false
}

// hasSkills reports whether the agent has every skill listed.
func (a *agent) hasSkills(skills []string) bool {
	for _, s := range skills {
		if a.cfg.Skills[s] == 0 {
			return false
		}
	}
	return true
}

func (a *agent) skillScore(skills []string) int {
	n := 0
	for _, s := range skills {
		n += a.cfg.Skills[s]
	}
	return n
}

func (a *agent) view(now time.Time) AgentView {
	v := AgentView{
		ID: a.id, Name: a.cfg.Name, State: a.state(now), Status: a.status, Reason: a.reason,
		Voice: a.voice, Text: a.text, Calls: a.calls, Chats: a.chats, Since: a.stateSince,
		Handled: a.handled, Missed: a.missed, MaxChats: a.maxChats,
	}
	for _, q := range a.queues {
		v.Queues = append(v.Queues, q.name)
	}
	return v
}

// skillKey returns the sorted, de-duplicated skills and their bucket key.
func skillKey(skills []string) ([]string, string) {
	if len(skills) == 0 {
		return nil, ""
	}
	s := slices.Clone(skills)
	slices.Sort(s)
	s = slices.Compact(s)
	return s, strings.Join(s, ",")
}

// enqueue puts x into its queue's bucket.
func (q *queueState) enqueue(x *ixn) {
	k := bucketKey{x.channel, x.priority, strings.Join(x.skills, ",")}
	b := q.buckets[k]
	if b == nil {
		b = &bucket{key: k, skills: x.skills}
		q.buckets[k] = b
		i, _ := slices.BinarySearchFunc(q.order, b, func(e, t *bucket) int { return t.key.priority - e.key.priority })
		q.order = slices.Insert(q.order, i, b)
	}
	x.bucket = b
	heap.Push(&b.items, x)
	q.waiting++
	rk := rankKey{x.channel, x.priority}
	r := q.ranks[rk]
	if r == nil {
		r = &rankIndex{}
		q.ranks[rk] = r
	}
	r.insert(x.seq)
}

// dequeue removes x from its bucket.
func (q *queueState) dequeue(x *ixn) {
	if x.bucket == nil || x.pos < 0 {
		return
	}
	heap.Remove(&x.bucket.items, x.pos)
	x.bucket = nil
	q.waiting--
	q.ranks[rankKey{x.channel, x.priority}].remove(x.seq)
}

// position is x's 1-based place in its queue among interactions of its
// channel: everyone with a higher priority, or the same priority and an
// earlier entry, is ahead. It costs one look per bucket and a binary
// search.
func (q *queueState) position(x *ixn) int {
	n := 1
	for _, b := range q.order {
		if b.key.priority <= x.priority {
			break
		}
		if b.key.channel == x.channel {
			n += len(b.items)
		}
	}
	if r := q.ranks[rankKey{x.channel, x.priority}]; r != nil {
		n += r.before(x.seq)
	}
	return n
}

// longestWait is how long the oldest waiting interaction has waited.
func (q *queueState) longestWait(now time.Time) time.Duration {
	var oldest time.Time
	for _, b := range q.order {
		if len(b.items) > 0 && (oldest.IsZero() || b.items[0].entered.Before(oldest)) {
			oldest = b.items[0].entered
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return now.Sub(oldest)
}

// addReady and removeReady keep q.ready in sync with what agents can do.
func (q *queueState) addReady(a *agent) {
	if _, ok := a.readyIdx[q]; ok {
		return
	}
	a.readyIdx[q] = len(q.ready)
	q.ready = append(q.ready, a)
}

func (q *queueState) removeReady(a *agent) {
	i, ok := a.readyIdx[q]
	if !ok {
		return
	}
	last := len(q.ready) - 1
	q.ready[i] = q.ready[last]
	q.ready[i].readyIdx[q] = i
	q.ready[last] = nil
	q.ready = q.ready[:last]
	delete(a.readyIdx, q)
}
