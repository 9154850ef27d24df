package interaction

import (
	"fmt"
	"strconv"
	"time"
)

// EventType names one kind of state change. Stored values only ever gain new
// members at the end.
type EventType uint8

// Event types.
const (
	EventUnknown EventType = iota
	// Offered: the interaction entered a queue (Channel, Queue, Data: skills,
	// priority, taxpayer fields). Its At is the entry time that every wait
	// is measured from.
	Offered
	// Holding: the taxpayer was sent the holding message (C3) or a position
	// announcement (P5). Data: position, ewt_seconds.
	Holding
	// RingStarted: the router reserved Agent and asked the channel to ring.
	RingStarted
	// RingFailed: the ring ended without an answer. Data: cause
	// (no_answer, busy, declined, lost).
	RingFailed
	// Answered: Agent accepted the interaction.
	Answered
	// FirstResponse: the agent's first message in a chat (C2).
	FirstResponse
	// FirstResponseMissed: no agent message within the C2 target.
	FirstResponseMissed
	// AnswerTargetMissed: a call still waiting at the P3 answer target.
	AnswerTargetMissed
	// AgentSilence: C4 fired; the agent was prompted and the taxpayer
	// offered the keep-waiting / answer-later choice.
	AgentSilence
	// CustomerChoice: the taxpayer's answer to the C4 choice. Data: choice.
	CustomerChoice
	// CustomerReminder: C5 reminder sent after the taxpayer's silence.
	CustomerReminder
	// ChatMessage: one line of a chat transcript. Actor says who; Data: text,
	// client_id, seq, kind (text, image, system).
	ChatMessage
	// Requeued: the interaction went back to its queue keeping its entry time.
	Requeued
	// Overflowed: moved to another queue (Queue is the new queue).
	Overflowed
	// Transferred: sent elsewhere by an agent or the API. Data: target, reason.
	Transferred
	// Ended: the interaction is over (Reason, Disposition; Data: scope_reason).
	Ended
	// RecordingStarted: Data: recording (blob name).
	RecordingStarted
	// SurveyScore: the taxpayer's satisfaction score. Data: score, comment.
	SurveyScore
	// TicketCreated: a message or follow-up ticket. Data: ack_by, answer_by
	// (RFC 3339), parent (the interaction it came from).
	TicketCreated
	// TicketAcknowledged: an agent listened to or read the message (M3).
	TicketAcknowledged
	// TicketAnswered: the ticket was answered (M3).
	TicketAnswered
	// TicketOverdue: a ticket deadline passed. Data: deadline (ack, answer).
	TicketOverdue
	// AgentState: an agent changed state (ID is empty; Agent set; Data:
	// state, reason).
	AgentState
	// Audit: someone read a recording or a transcript (ID is what was read;
	// Actor who; Data: what).
	Audit
	// ConfigReloaded: a new configuration took effect (ID empty).
	ConfigReloaded
)

var eventNames = [...]string{
	"unknown", "offered", "holding", "ring_started", "ring_failed", "answered",
	"first_response", "first_response_missed", "answer_target_missed",
	"agent_silence", "customer_choice", "customer_reminder", "chat_message",
	"requeued", "overflowed", "transferred", "ended", "recording_started",
	"survey_score", "ticket_created", "ticket_acknowledged", "ticket_answered",
	"ticket_overdue", "agent_state", "audit", "config_reloaded",
}

func (t EventType) String() string {
	if int(t) < len(eventNames) {
		return eventNames[t]
	}
	return "event(" + strconv.Itoa(int(t)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (t EventType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *EventType) UnmarshalText(b []byte) error {
	for i, n := range eventNames {
		if n == string(b) {
			*t = EventType(i)
			return nil
		}
	}
	return fmt.Errorf("interaction: unknown event type %q", b)
}

// Event is one state change. Events are the truth: the Record, every report
// and every metric is derived from them.
type Event struct {
	// Seq is the position in the event log, set by the store on append.
	Seq  uint64    `json:"seq,omitempty"`
	Type EventType `json:"type"`
	At   time.Time `json:"at"`
	// ID is the interaction this event belongs to; empty for agent and
	// system events.
	ID ID `json:"id,omitempty"`
	// Actor is who caused it: "system", "taxpayer", "agent:1001",
	// "token:ops" and so on.
	Actor string `json:"actor,omitempty"`

	Channel     Channel     `json:"channel,omitempty"`
	Queue       string      `json:"queue,omitempty"`
	Agent       string      `json:"agent,omitempty"`
	Reason      Reason      `json:"reason,omitempty"`
	Disposition Disposition `json:"disposition,omitempty"`
	// Data carries the fields particular to the event type (see each type).
	Data map[string]string `json:"data,omitempty"`
}

// Well-known actors.
const (
	ActorSystem   = "system"
	ActorTaxpayer = "taxpayer"
)

// AgentActor is the Actor string for an agent.
func AgentActor(agent string) string { return "agent:" + agent }
