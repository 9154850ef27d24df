package media

import (
	"math/rand/v2"
	"time"
)

// Sequencer rewrites the sequence numbers and timestamps of the RTP stream
// sent on one leg so that the receiver sees a single continuous source even
// when what feeds it switches: welcome prompt, hold music, the other leg,
// the survey prompt (RFC 3550 §5.1: sequence +1 per packet, timestamp in
// sampling instants; §8.2: the SSRC does not change while the stream does).
//
// Within one source the original spacing is kept (gaps from loss or
// silence suppression stay gaps). On a switch the sequence continues at +1
// and the timestamp advances by the wall-clock time since the last packet,
// rounded to whole 20 ms frames, and the marker bit is set (RFC 3551 §4.1:
// the first packet after a silence). It is not safe for concurrent use.
type Sequencer struct {
	started bool
	seq     uint16
	ts      uint32
	src     uint32
	srcSeq  uint16
	srcTS   uint32
	wall    time.Time
	// The telephone-event being relayed, by its source timestamp.
	evHave  bool
	evSrcTS uint32
}

// frameSamples is one 20 ms frame at 8 kHz.
const frameSamples = 160

// FrameDuration is the packetisation time of everything this package sends.
const FrameDuration = 20 * time.Millisecond

// Map returns the sequence number and timestamp to send for a packet that
// source src numbered inSeq and stamped inTS, arriving at now. ok is false
// for a late or duplicate packet of the current source (up to maxMisorder
// behind), which is dropped; a source that numbers from further back is
// taken to have restarted, as if it were a new one.
func (s *Sequencer) Map(src uint32, inSeq uint16, inTS uint32, now time.Time) (seq uint16, ts uint32, marker, ok bool) {
	switch {
	case !s.started:
		s.started = true
		s.seq = uint16(rand.Uint32()) // RFC 3550 §5.1: random initial values
		s.ts = rand.Uint32()
		marker = true
	case src != s.src:
		frames := int64((now.Sub(s.wall) + FrameDuration/2) / FrameDuration)
		if frames < 1 {
			frames = 1
		}
		s.seq++
		s.ts += uint32(frames * frameSamples)
		marker = true
	default:
		d := int16(inSeq - s.srcSeq)
		switch {
		case d > 0:
			s.seq += uint16(d)
			s.ts += inTS - s.srcTS
		case d > -maxMisorder:
			return 0, 0, false, false
		default:
			// Far behind the last packet: not a late packet but the source
			// numbering again (a restarted stream, a replayed file; RFC 3550
			// A.1 resynchronises on such jumps). Dropping until its numbers
			// catch up would silence it for up to 32,768 packets, so it is
			// taken as a switch.
			s.seq++
			s.ts += uint32(max(1, int64((now.Sub(s.wall)+FrameDuration/2)/FrameDuration)) * frameSamples)
			marker = true
		}
	}
	s.src, s.srcSeq, s.srcTS, s.wall = src, inSeq, inTS, now
	return s.seq, s.ts, marker, true
}

// maxMisorder is how far behind the last packet (in sequence numbers) a
// packet is still taken for a late or duplicate one and dropped; further
// back, the source restarted its numbering (RFC 3550 A.1 uses 100 too).
const maxMisorder = 100

// Event returns the sequence number and timestamp for a relayed RFC 4733
// telephone-event packet that source src numbered inSeq and stamped inTS
// (the event's start), arriving at now. Event packets belong to their
// source's stream: they are numbered and timed like its audio (the
// event's start maps onto our clock as the audio does, RFC 4733
// §2.5.1.1), without moving the clock on. marker is set on the first
// packet of each event (§2.5.1.3); ok is false for a late or duplicate
// packet.
func (s *Sequencer) Event(src uint32, inSeq uint16, inTS uint32, now time.Time) (seq uint16, ts uint32, marker, ok bool) {
	if !s.started || src != s.src {
		// The event starts a source: a switch, as for audio.
		seq, ts, _, ok = s.Map(src, inSeq, inTS, now)
	} else {
		d := int16(inSeq - s.srcSeq)
		if d <= 0 {
			return 0, 0, false, false
		}
		s.seq += uint16(d)
		s.srcSeq, s.wall = inSeq, now
		seq, ts, ok = s.seq, s.ts+(inTS-s.srcTS), true
	}
	if !s.evHave || inTS != s.evSrcTS {
		s.evHave, s.evSrcTS, marker = true, inTS, true
	}
	return seq, ts, marker, ok
}
