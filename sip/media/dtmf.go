package media

import (
	"errors"
	"fmt"
)

// ErrShortEvent is returned for a telephone-event payload under 4 bytes.
var ErrShortEvent = errors.New("media: telephone-event payload too short")

// TelephoneEvent is one RFC 4733 §2.3 event payload.
type TelephoneEvent struct {
	Event    uint8 // 0–9, 10 = *, 11 = #, 12–15 = A–D
	End      bool
	Volume   uint8
	Duration uint16 // in timestamp units
}

// ParseTelephoneEvent decodes the 4-byte payload (RFC 4733 §2.3). Extra
// bytes (further events in one packet) are ignored.
func ParseTelephoneEvent(p []byte) (TelephoneEvent, error) {
	if len(p) < 4 {
		return TelephoneEvent{}, fmt.Errorf("%w: %d bytes", ErrShortEvent, len(p))
	}
	return TelephoneEvent{
		Event:    p[0],
		End:      p[1]&0x80 != 0,
		Volume:   p[1] & 0x3F,
		Duration: uint16(p[2])<<8 | uint16(p[3]),
	}, nil
}

// Digit is the keypad character for a DTMF event (RFC 4733 §3.2), or 0 for
// events that are not DTMF.
func (e TelephoneEvent) Digit() byte {
	switch {
	case e.Event <= 9:
		return '0' + e.Event
	case e.Event == 10:
		return '*'
	case e.Event == 11:
		return '#'
	case e.Event <= 15:
		return 'A' + e.Event - 12
	}
	return 0
}

// DTMFDetector turns a stream of telephone-event packets into digits, one
// per key press. An event is the set of packets with one RTP timestamp
// (RFC 4733 §2.5.1.2); its end packet is sent three times (§2.5.1.4), and
// the detector reports it once. A press whose end packets are all lost is
// reported when the next event starts. It is not safe for concurrent use.
type DTMFDetector struct {
	have     bool
	ts       uint32
	reported bool
	pending  byte
}

// Packet feeds one telephone-event packet with its RTP timestamp and
// returns the digit completed by it, if any.
func (d *DTMFDetector) Packet(ts uint32, payload []byte) (byte, bool) {
	ev, err := ParseTelephoneEvent(payload)
	if err != nil {
		return 0, false
	}
	digit := ev.Digit()
	var out byte
	var ok bool
	if !d.have || ts != d.ts {
		// A new event: a previous one that never saw its end counts now.
		if d.have && !d.reported && d.pending != 0 {
			out, ok = d.pending, true
		}
		d.have, d.ts, d.reported, d.pending = true, ts, false, digit
	}
	if ev.End && !d.reported && digit != 0 {
		d.reported = true
		if ok { // two digits completed by one packet: report the older one
			d.reported = false
			return out, true
		}
		return digit, true
	}
	return out, ok
}
