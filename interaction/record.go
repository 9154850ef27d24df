package interaction

import (
	"strconv"
	"time"
)

// Record is the summary of one interaction, folded from its events in order
// by Apply. It is what the store indexes and the API lists.
type Record struct {
	ID       ID      `json:"id"`
	Channel  Channel `json:"channel"`
	Queue    string  `json:"queue"`
	State    State   `json:"state"`
	Agent    string  `json:"agent"`
	Priority int     `json:"priority,omitempty"`
	Skills   string  `json:"skills,omitempty"`

	TaxpayerID    string `json:"taxpayer_id,omitempty"`
	TaxpayerName  string `json:"taxpayer_name,omitempty"`
	TaxpayerPhone string `json:"taxpayer_phone,omitempty"`
	Topic         string `json:"topic,omitempty"`

	OfferedAt       time.Time `json:"offered_at"`
	AnsweredAt      time.Time `json:"answered_at"`
	FirstResponseAt time.Time `json:"first_response_at"`
	EndedAt         time.Time `json:"ended_at"`

	Reason      Reason      `json:"reason,omitempty"`
	Disposition Disposition `json:"disposition,omitempty"`
	ScopeReason string      `json:"scope_reason,omitempty"`
	Transfer    string      `json:"transfer,omitempty"`
	Recording   string      `json:"recording,omitempty"`
	Rings       int         `json:"rings,omitempty"`
	Score       int         `json:"score,omitempty"`
	// Note is what the agent wrote when answering a ticket.
	Note    string `json:"note,omitempty"`
	Comment string `json:"comment,omitempty"`

	// Ticket fields, for messages and follow-ups (M3).
	Parent         ID        `json:"parent,omitempty"`
	AckBy          time.Time `json:"ack_by"`
	AnswerBy       time.Time `json:"answer_by"`
	AcknowledgedAt time.Time `json:"acknowledged_at"`
	TicketAnswered time.Time `json:"ticket_answered_at"`
	Overdue        bool      `json:"overdue,omitempty"`

	// FirstResponseMissed and AnswerTargetMissed record that a live timer
	// fired (C2, P3). The metrics recompute both from the times above.
	FirstResponseMissed bool `json:"first_response_missed,omitempty"`
	AnswerTargetMissed  bool `json:"answer_target_missed,omitempty"`
}

// Live reports whether the interaction is still in progress: queued,
// ringing or connected. Tickets are not live; they are open work.
func (r *Record) Live() bool {
	return r.State == StateQueued || r.State == StateRinging || r.State == StateConnected
}

// Wait is how long the taxpayer waited from entering the queue until an agent
// answered or the interaction ended unanswered.
func (r *Record) Wait() time.Duration {
	switch {
	case !r.AnsweredAt.IsZero():
		return r.AnsweredAt.Sub(r.OfferedAt)
	case !r.EndedAt.IsZero():
		return r.EndedAt.Sub(r.OfferedAt)
	}
	return 0
}

// Apply folds one event into the record. Events must be applied in log order.
func (r *Record) Apply(e Event) {
	if r.ID == "" {
		r.ID = e.ID
	}
	switch e.Type {
	case Offered:
		r.Channel = e.Channel
		r.Queue = e.Queue
		r.State = StateQueued
		r.OfferedAt = e.At
		r.Skills = e.Data["skills"]
		r.Priority, _ = strconv.Atoi(e.Data["priority"])
		r.TaxpayerID = e.Data["taxpayer_id"]
		r.TaxpayerName = e.Data["taxpayer_name"]
		r.TaxpayerPhone = e.Data["taxpayer_phone"]
		r.Topic = e.Data["topic"]
	case RingStarted:
		r.State = StateRinging
		r.Agent = e.Agent
		r.Rings++
	case RingFailed, Requeued:
		r.State = StateQueued
		r.Agent = ""
	case Answered:
		r.State = StateConnected
		r.Agent = e.Agent
		r.AnsweredAt = e.At
	case FirstResponse:
		if r.FirstResponseAt.IsZero() {
			r.FirstResponseAt = e.At
		}
	case FirstResponseMissed:
		r.FirstResponseMissed = true
	case AnswerTargetMissed:
		r.AnswerTargetMissed = true
	case Overflowed:
		r.Queue = e.Queue
		r.State = StateQueued
		r.Agent = ""
	case Transferred:
		r.Transfer = e.Data["target"]
		if e.Data["reason"] != "" {
			r.ScopeReason = e.Data["reason"]
		}
	case Ended:
		r.State = StateEnded
		r.EndedAt = e.At
		r.Reason = e.Reason
		if e.Disposition != DispositionNone {
			r.Disposition = e.Disposition
		}
		if s := e.Data["scope_reason"]; s != "" {
			r.ScopeReason = s
		}
	case RecordingStarted:
		r.Recording = e.Data["recording"]
	case SurveyScore:
		r.Score, _ = strconv.Atoi(e.Data["score"])
		if c := e.Data["comment"]; c != "" {
			r.Comment = c
		}
	case TicketCreated:
		if r.OfferedAt.IsZero() {
			r.OfferedAt = e.At
		}
		if r.Channel == ChannelUnknown {
			r.Channel = e.Channel
		}
		if r.Queue == "" {
			r.Queue = e.Queue
		}
		if e.Agent != "" {
			r.Agent = e.Agent
		}
		r.State = StateOpen
		r.Parent = ID(e.Data["parent"])
		r.AckBy, _ = time.Parse(time.RFC3339, e.Data["ack_by"])
		r.AnswerBy, _ = time.Parse(time.RFC3339, e.Data["answer_by"])
		if v := e.Data["taxpayer_id"]; v != "" {
			r.TaxpayerID = v
		}
		if v := e.Data["taxpayer_phone"]; v != "" {
			r.TaxpayerPhone = v
		}
		if v := e.Data["topic"]; v != "" {
			r.Topic = v
		}
	case TicketAcknowledged:
		r.AcknowledgedAt = e.At
		if r.Agent == "" {
			// The first agent to pick up an unowned message owns it (P4).
			r.Agent = e.Agent
		}
	case TicketAnswered:
		r.TicketAnswered = e.At
		r.State = StateEnded
		r.EndedAt = e.At
		r.Reason = ReasonCompleted
		if e.Disposition != DispositionNone {
			r.Disposition = e.Disposition
		} else {
			r.Disposition = Resolved
		}
		if r.Agent == "" {
			// The owner keeps the ticket when a supervisor answers it.
			r.Agent = e.Agent
		}
		if s := e.Data["scope_reason"]; s != "" {
			r.ScopeReason = s
		}
		r.Note = e.Data["note"]
	case TicketOverdue:
		r.Overdue = true
	}
}
