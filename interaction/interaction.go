// Package interaction defines what every part of taxline agrees on: an
// interaction (one call, chat, message or visit), the events that record each
// step of it, and the record folded from those events.
//
// It is a leaf package with no behaviour beyond folding events, so that the
// router (queue), the rules (sla), the store (storage) and the channel
// gateways (sip, chat) can share one vocabulary without importing each other.
package interaction

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
)

// ID identifies one interaction. It sorts by creation time: twelve base-36
// digits of milliseconds since the Unix epoch, then eight random hex digits.
type ID string

// NewID returns a fresh ID for an interaction created at t.
func NewID(t time.Time) ID {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
	ms := strconv.FormatInt(t.UnixMilli(), 36)
	for len(ms) < 12 {
		ms = "0" + ms
	}
	return ID(fmt.Sprintf("%s%08x", ms, binary.BigEndian.Uint32(b[:])))
}

// Valid reports whether id has the shape NewID produces. The HTTP API uses it
// to refuse malformed ids before they reach the store.
func (id ID) Valid() bool {
	if len(id) != 20 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// Channel is how the taxpayer reached the desk.
type Channel uint8

// Channels. Stored values only ever gain new members at the end.
const (
	ChannelUnknown Channel = iota
	Phone
	Chat
	Message
	Visit
)

var channelNames = [...]string{"unknown", "phone", "chat", "message", "visit"}

func (c Channel) String() string {
	if int(c) < len(channelNames) {
		return channelNames[c]
	}
	return "channel(" + strconv.Itoa(int(c)) + ")"
}

// ParseChannel is the inverse of String.
func ParseChannel(s string) (Channel, error) {
	for i, n := range channelNames {
		if i > 0 && n == s {
			return Channel(i), nil
		}
	}
	return ChannelUnknown, fmt.Errorf("interaction: unknown channel %q", s)
}

// MarshalText implements encoding.TextMarshaler.
func (c Channel) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. It accepts what
// MarshalText writes, "unknown" included.
func (c *Channel) UnmarshalText(b []byte) error {
	if string(b) == channelNames[ChannelUnknown] {
		*c = ChannelUnknown
		return nil
	}
	v, err := ParseChannel(string(b))
	*c = v
	return err
}

// State is where an interaction is in its life.
type State uint8

// States. Stored values only ever gain new members at the end.
const (
	StateUnknown   State = iota
	StateQueued          // waiting for an agent
	StateRinging         // offered to one agent, not yet accepted
	StateConnected       // an agent is handling it
	StateEnded           // finished; see Record.Reason and Record.Disposition
	StateOpen            // a ticket (message, follow-up) waiting to be worked
)

var stateNames = [...]string{"unknown", "queued", "ringing", "connected", "ended", "open"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("interaction: unknown state %q", b)
}

// Reason says why an interaction ended. The metrics keep these apart: a
// caller who hung up is not a call that timed out (RULES.md P2).
type Reason uint8

// Reasons. Stored values only ever gain new members at the end.
const (
	ReasonNone            Reason = iota
	ReasonCompleted              // handled by an agent and ended normally
	ReasonAbandoned              // the taxpayer left while queued or ringing
	ReasonTimeout                // max wait reached with nowhere to overflow
	ReasonOverflow               // moved out of this queue to an overflow target
	ReasonVoicemail              // diverted to leave a message
	ReasonCallback               // taxpayer chose to be answered later (C4)
	ReasonAfterHours             // arrived outside service hours
	ReasonQueueFull              // the queue was at its maximum length
	ReasonCustomerSilence        // C5: closed after the reminder and grace period
	ReasonTransferred            // sent to another queue or back to 12366
	ReasonSystemRestart          // was live when the process stopped
	ReasonShutdown               // drained at shutdown past the drain limit
	ReasonNoAgents               // no agent logged in to a queue that leaves when empty
)

var reasonNames = [...]string{
	"", "completed", "abandoned", "timeout", "overflow", "voicemail", "callback",
	"after_hours", "queue_full", "customer_silence", "transferred", "system_restart",
	"shutdown", "no_agents",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Reason) UnmarshalText(b []byte) error {
	for i, n := range reasonNames {
		if n == string(b) {
			*r = Reason(i)
			return nil
		}
	}
	return fmt.Errorf("interaction: unknown reason %q", b)
}

// Disposition is the agent's verdict on a handled interaction (RULES.md P4).
type Disposition uint8

// Dispositions. Stored values only ever gain new members at the end.
const (
	DispositionNone Disposition = iota
	Resolved
	FollowUp
	OutOfScope
	DispositionTransferred
)

var dispositionNames = [...]string{"", "resolved", "follow_up", "out_of_scope", "transferred"}

func (d Disposition) String() string {
	if int(d) < len(dispositionNames) {
		return dispositionNames[d]
	}
	return "disposition(" + strconv.Itoa(int(d)) + ")"
}

// ParseDisposition is the inverse of String.
func ParseDisposition(s string) (Disposition, error) {
	for i, n := range dispositionNames {
		if i > 0 && n == s {
			return Disposition(i), nil
		}
	}
	return DispositionNone, fmt.Errorf("interaction: unknown disposition %q", s)
}

// MarshalText implements encoding.TextMarshaler.
func (d Disposition) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Disposition) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = DispositionNone
		return nil
	}
	v, err := ParseDisposition(string(b))
	*d = v
	return err
}
