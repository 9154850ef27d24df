package queue

import (
	"errors"
	"time"

	"github.com/taxline/taxline/interaction"
)

// Errors the router returns to the channels. A channel maps them to its own
// protocol (a SIP status, a chat error frame).
var (
	ErrUnknownInteraction = errors.New("queue: unknown interaction")
	ErrUnknownQueue       = errors.New("queue: unknown queue")
	ErrUnknownAgent       = errors.New("queue: unknown agent")
	// ErrRingWithdrawn: the agent answered a ring the router had already
	// given up on (timeout, the taxpayer left, another agent took it). The
	// channel must release the agent's leg.
	ErrRingWithdrawn = errors.New("queue: ring withdrawn")
	// ErrWrongState: the command does not fit where the interaction is,
	// e.g. ending one that is still queued.
	ErrWrongState = errors.New("queue: interaction is not in a state for that")
	// ErrDraining: the router is shutting down and takes no new work.
	ErrDraining = errors.New("queue: draining, no new interactions")
	// ErrStopped: the router is not running.
	ErrStopped = errors.New("queue: router stopped")
)

// Handler is what a channel gateway (sip, chat) gives the router with each
// interaction it offers: the router's way of telling the channel what to do.
//
// The router calls these methods from its own goroutine. They must not block
// and must not call back into the router synchronously: hand the work to the
// channel's own goroutine and return.
type Handler interface {
	// Ring asks the channel to present the interaction to an agent. The
	// channel reports back with Router.Answer or Router.RingFailed.
	Ring(Ring)
	// StopRing withdraws a ring the router gave up on (ring timeout, the
	// taxpayer left). The channel stops alerting that agent.
	StopRing(id interaction.ID, agent string)
	// Notify delivers something the taxpayer or the agent must see or hear:
	// a holding message, a rule prompt.
	Notify(Notice)
	// Close ends the interaction on the router's initiative (max wait,
	// after hours, C5 silence, transfer out). The router has already
	// forgotten it; the channel tears down and, for ReasonVoicemail and
	// ReasonAfterHours, takes a message.
	Close(Close)
}

// Ring is one offer of an interaction to one agent.
type Ring struct {
	ID      interaction.ID
	Channel interaction.Channel
	Queue   string
	Agent   string
	// Timeout is how long the channel rings before the router withdraws.
	Timeout time.Duration
	// AutoAccept: the agent's desk accepts without a click (chat).
	AutoAccept bool
}

// NoticeKind says what a Notice is.
type NoticeKind uint8

// Notice kinds.
const (
	NoticeUnknown NoticeKind = iota
	// NoticeHolding: tell the waiting taxpayer their position and estimated
	// wait (C3 for chat, the periodic announcement of P5 for phone).
	NoticeHolding
	// NoticeAgentSilence: C4 fired. Prompt the agent, and offer the
	// taxpayer keep waiting / answer me later (answer with Router.Choose).
	NoticeAgentSilence
	// NoticeCustomerReminder: C5's reminder after the taxpayer's silence.
	NoticeCustomerReminder
	// NoticeFirstResponseMissed: C2's target passed with no agent message;
	// the desk highlights the chat.
	NoticeFirstResponseMissed
	// NoticeRequeued: the ring failed and the taxpayer is waiting again.
	NoticeRequeued
)

var noticeNames = [...]string{"unknown", "holding", "agent_silence", "customer_reminder", "first_response_missed", "requeued"}

func (k NoticeKind) String() string {
	if int(k) < len(noticeNames) {
		return noticeNames[k]
	}
	return "notice(?)"
}

// Notice is a message from the router about one interaction.
type Notice struct {
	ID   interaction.ID
	Kind NoticeKind
	// Agent is the agent concerned, if any.
	Agent string
	// Position is 1 for the next to be served; 0 when not queued.
	Position int
	// EstimatedWait is the router's estimate for this taxpayer.
	EstimatedWait time.Duration
}

// Close tells a channel the router ended an interaction.
type Close struct {
	ID     interaction.ID
	Reason interaction.Reason
	// Target is where it goes: "voicemail", another queue's name, or an
	// external transfer target such as the 12366 trunk's URI.
	Target string
	// Agent is the agent that was handling it, if any.
	Agent string
}

// Taxpayer identifies who is asking, as far as they told us.
type Taxpayer struct {
	ID    string // taxpayer identification number, if given
	Name  string
	Phone string // the caller's number for phone, or as typed for chat
}

// Offer is a new interaction for the ACD.
type Offer struct {
	Channel interaction.Channel
	Queue   string
	// Skills the agent must have, on top of the queue's own.
	Skills []string
	// Priority: higher is served first; equal priorities by age.
	Priority int
	Taxpayer Taxpayer
	Topic    string
	// Handler receives the router's instructions for this interaction.
	Handler Handler
}

// Admission is the router's answer to an Offer.
type Admission struct {
	ID interaction.ID
	// Reason is ReasonNone when the interaction is queued. Otherwise it was
	// not admitted and is already ended: ReasonAfterHours (take a message),
	// ReasonQueueFull or ReasonNoAgents (overflowed to Target, or ended).
	Reason interaction.Reason
	Target string
	// Position and EstimatedWait when queued.
	Position      int
	EstimatedWait time.Duration
	// Immediate is true when an agent was free at once (no holding
	// message is needed, C3).
	Immediate bool
}

// Party is a side of a conversation.
type Party uint8

// Parties.
const (
	PartyUnknown Party = iota
	PartyTaxpayer
	PartyAgent
	PartySystem
)

var partyNames = [...]string{"unknown", "taxpayer", "agent", "system"}

func (p Party) String() string {
	if int(p) < len(partyNames) {
		return partyNames[p]
	}
	return "party(?)"
}

// RingCause says why a ring ended without an answer.
type RingCause uint8

// Ring causes.
const (
	RingCauseUnknown RingCause = iota
	RingNoAnswer               // rang to the timeout (the router's or the phone's)
	RingBusy                   // 486 or the desk said busy
	RingDeclined               // the agent refused
	RingLost                   // the agent's device vanished (registration gone, socket closed)
)

var ringCauseNames = [...]string{"unknown", "no_answer", "busy", "declined", "lost"}

func (c RingCause) String() string {
	if int(c) < len(ringCauseNames) {
		return ringCauseNames[c]
	}
	return "cause(?)"
}

// End is how an agent or a taxpayer ended a connected interaction.
type End struct {
	By          Party
	Disposition interaction.Disposition
	// ScopeReason is the configured reason for an out-of-scope disposition.
	ScopeReason string
	// Cause says why the system ended it (a peer gone: no RTP, no ACK,
	// a missed session refresh); stored as the Ended event's "cause".
	Cause string
}

// Media is a way to reach an agent.
type Media uint8

// Media.
const (
	MediaUnknown Media = iota
	MediaVoice         // a registered softphone or the browser phone
	MediaText          // the chat desk
)

func (m Media) String() string {
	switch m {
	case MediaVoice:
		return "voice"
	case MediaText:
		return "text"
	}
	return "unknown"
}

// AgentStatus is what the agent chose.
type AgentStatus uint8

// Agent statuses.
const (
	StatusUnknown AgentStatus = iota
	StatusOffline
	StatusAvailable
	StatusBreak
)

var statusNames = [...]string{"unknown", "offline", "available", "break"}

func (s AgentStatus) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "status(?)"
}

// AgentState is what a supervisor sees: the agent's status combined with
// the work in hand.
type AgentState uint8

// Agent states.
const (
	AgentStateUnknown AgentState = iota
	AgentOffline
	AgentAvailable
	AgentRinging // reserved for an offer
	AgentBusy
	AgentWrapUp
	AgentBreak
)

var agentStateNames = [...]string{"unknown", "offline", "available", "ringing", "busy", "wrap_up", "break"}

func (s AgentState) String() string {
	if int(s) < len(agentStateNames) {
		return agentStateNames[s]
	}
	return "state(?)"
}

// MarshalText implements encoding.TextMarshaler.
func (s AgentState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Ticket asks for a message or follow-up ticket (M2, M3, C4).
type Ticket struct {
	Channel interaction.Channel // Message for voicemail and web messages
	Queue   string
	// Parent is the interaction it came from (the chat that chose "answer
	// later", the call that went to voicemail), if any.
	Parent interaction.ID
	// Owner is the agent who keeps it (first-contact responsibility, P4).
	Owner    string
	Taxpayer Taxpayer
	Topic    string
	// Data is stored on the TicketCreated event (recording, text).
	Data map[string]string
	// AnswerWithin overrides the configured working days when > 0.
	AnswerWithin int
}

// TicketAnswer is how a ticket was answered.
type TicketAnswer struct {
	// Agent answered it, if an agent did ("" for a supervisor's token).
	Agent string
	// By is the actor for the audit trail ("agent:1001", "token:ops");
	// default: Agent's actor.
	By          string
	Disposition interaction.Disposition
	// ScopeReason is the configured reason of an out-of-scope answer (P4).
	ScopeReason string
	// Note is what the agent wrote about the answer.
	Note string
}

// TicketInfo is a created ticket with its deadlines.
type TicketInfo struct {
	ID       interaction.ID
	AckBy    time.Time
	AnswerBy time.Time
}

// EventSink receives every event the router produces, in order. Emit must
// not block: the store queues and commits in groups.
type EventSink interface {
	Emit(interaction.Event)
}

// Observer hears about agent changes, e.g. to tell a desk it was paused.
// Like Handler, its methods must not block.
type Observer interface {
	AgentChanged(AgentView)
}

// AgentView is an agent as the router sees it.
type AgentView struct {
	ID     string
	Name   string
	State  AgentState
	Status AgentStatus
	// Reason is the break reason ("autopause" after missed rings).
	Reason string
	Voice  bool // reachable by phone
	Text   bool // desk logged in
	Calls  int
	Chats  int
	// Since is when State last changed.
	Since    time.Time
	Handled  int
	Missed   int // rings missed in a row
	Queues   []string
	MaxChats int
}

// QueueView is one queue's live figures.
type QueueView struct {
	Name        string
	Waiting     int
	LongestWait time.Duration
	// Available agents who could take a call / a chat now.
	AvailableVoice int
	AvailableText  int
	LoggedIn       int
	PhoneOpen      bool
	ChatOpen       bool
}

// Snapshot is the router's state at one instant, for the wallboard, the
// desk and /metrics.
type Snapshot struct {
	At     time.Time
	Queues []QueueView
	Agents []AgentView
	// Live counts interactions by channel that are queued, ringing or
	// connected.
	Live map[interaction.Channel]int
}
