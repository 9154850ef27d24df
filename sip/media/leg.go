package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// ErrNoPorts is returned when every port of the RTP range is in use.
var ErrNoPorts = errors.New("media: no free RTP port")

// Ports hands out even UDP ports from the configured range (RFC 3550 §11:
// RTP on even ports, RTCP on the next odd one, which we leave unused) and
// says how the legs' sockets are read.
type Ports struct {
	lo, hi  int
	readers *pollers   // nil: a reader goroutine per leg
	mu      sync.Mutex // guards next and used
	next    int
	used    map[int]bool
}

// NewPorts parses a "low-high" range such as "20000-29999". With batch
// above zero, where the platform allows it (Linux), the legs' sockets are
// read in rounds every batch by one goroutine per CPU instead of a
// goroutine per leg woken for every packet: a packet waits at most batch
// longer, and the relay's CPU per packet drops (no wake-up per packet; one
// recvmmsg per ready socket per round). See docs/PERFORMANCE.md.
func NewPorts(spec string, batch time.Duration) (*Ports, error) {
	a, b, ok := strings.Cut(spec, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || hi <= lo {
		return nil, fmt.Errorf("media: bad RTP port range %q", spec)
	}
	lo += lo % 2
	p := &Ports{lo: lo, hi: hi, next: lo + 2*rand.IntN((hi-lo)/2+1), used: map[int]bool{}}
	if batch > 0 {
		p.readers = newPollers(batch)
	}
	return p, nil
}

// Batched reports whether legs are read in rounds (NewPorts).
func (p *Ports) Batched() bool { return p.readers != nil }

// Open binds a leg on ip at the next free even port, trying each port of
// the range at most once.
func (p *Ports) Open(ip netip.Addr, log *slog.Logger) (*Leg, error) {
	n := (p.hi-p.lo)/2 + 1
	for i := 0; i < n; i++ {
		p.mu.Lock()
		port := p.next
		p.next += 2
		if p.next > p.hi {
			p.next = p.lo
		}
		if p.used[port] {
			p.mu.Unlock()
			continue
		}
		p.used[port] = true
		p.mu.Unlock()
		l := newLeg(func() { p.release(port) }, log)
		ap := netip.AddrPortFrom(ip, uint16(port))
		var err error
		if p.readers != nil {
			l.sock, err = p.readers.open(ap, l.handle)
		} else {
			l.sock, err = openNetSocket(ap, l.handle)
		}
		if err != nil {
			p.release(port)
			continue
		}
		return l, nil
	}
	return nil, ErrNoPorts
}

func (p *Ports) release(port int) {
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}

// InUse is how many ports are bound.
func (p *Ports) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}

// Frame is 20 ms (or whatever the peer sent) of audio with where it came
// from: the SSRC, sequence number and timestamp of its source stream.
// A frame received from a peer also carries its G.711 payload as it came,
// so a leg with the same law sends those bytes on instead of encoding the
// samples again.
type Frame struct {
	SSRC    uint32
	Seq     uint16
	TS      uint32
	PCM     []int16
	Law     Law    // Payload's law, or LawUnknown
	Payload []byte // the encoded samples, valid only during the sink call
}

// Source numbers the frames of locally generated audio (a prompt, hold
// music) so that it is one stream to a leg's Sequencer.
type Source struct {
	ssrc uint32
	seq  uint16
	ts   uint32
}

// NewSource returns a source with a random identity.
func NewSource() *Source {
	return &Source{ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32()}
}

// Frame wraps pcm as the source's next frame.
func (s *Source) Frame(pcm []int16) Frame {
	f := Frame{SSRC: s.ssrc, Seq: s.seq, TS: s.ts, PCM: pcm}
	s.seq++
	s.ts += uint32(len(pcm))
	return f
}

// Leg is one RTP stream between the gateway and a peer: a UDP socket whose
// datagrams are decoded as they are read (by the leg's own goroutine, or
// by a poller serving many legs, see NewPorts), and a writer that sends
// with a single SSRC and continuous numbering whatever feeds it.
//
// The remote address comes from SDP and is replaced by the source of the
// first packet received (symmetric RTP, RFC 4961), so peers behind NAT
// work.
type Leg struct {
	sock    legSocket
	release func()
	log     *slog.Logger
	ssrc    uint32
	digits  chan byte
	rx, tx  atomic.Uint64
	lastRx  atomic.Int64 // unix ns of the last RTP packet, or of Configure

	// Used only by whoever delivers the leg's packets (handle).
	rxPkt rtp.Packet
	rxPCM []int16

	mu      sync.Mutex // guards the fields below
	remote  netip.AddrPort
	learned bool
	codec   Codec
	sending bool
	peerDir Direction
	seq     Sequencer
	sink    func(Frame)
	evSink  func(Event)
	dtmf    DTMFDetector
	buf     []byte
	closed  bool
}

func newLeg(release func(), log *slog.Logger) *Leg {
	l := &Leg{
		release: release, log: log, ssrc: rand.Uint32(),
		digits: make(chan byte, 32),
		codec:  Codec{Law: ALaw, PT: 8, DTMF: -1}, peerDir: Inactive,
	}
	l.lastRx.Store(time.Now().UnixNano())
	return l
}

// Addr is the leg's local RTP address.
func (l *Leg) Addr() netip.AddrPort { return l.sock.localAddr() }

// Configure applies the peer's SDP: where to send, the codec, and the
// peer's direction (we do not send to a peer that said sendonly or
// inactive, RFC 3264 §5.1). A changed address is learned again from the
// next packet.
func (l *Leg) Configure(remote netip.AddrPort, c Codec, peerDir Direction) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if remote != l.remote {
		l.remote, l.learned = remote, false
	}
	l.codec = c
	l.sending = remote.Port() != 0 && (peerDir == SendRecv || peerDir == RecvOnly)
	if peerDir != l.peerDir || remote.Port() == 0 {
		// Silence is counted afresh from a change of direction (unhold).
		l.lastRx.Store(time.Now().UnixNano())
	}
	l.peerDir = peerDir
	if remote.Port() == 0 {
		l.peerDir = Inactive
	}
}

// Silent is how long the peer has sent no RTP, counted from the last
// packet or from the last change of direction, and whether it is
// expected to send at all: a peer whose SDP says sendrecv is; one that put
// the stream on hold (sendonly, recvonly, inactive) or rejected it is not
// watched, since hold music or silence suppression may legitimately stop
// its packets.
func (l *Leg) Silent(now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	watched := l.peerDir == SendRecv
	l.mu.Unlock()
	return now.Sub(time.Unix(0, l.lastRx.Load())), watched
}

// Codec is the leg's negotiated codec.
func (l *Leg) Codec() Codec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.codec
}

// SetSink sets where decoded audio received on the leg goes; nil drops it.
// The sink runs on the goroutine that reads the leg's socket, which may
// serve other legs too: it must not block, nor close a leg.
func (l *Leg) SetSink(f func(Frame)) {
	l.mu.Lock()
	l.sink = f
	l.mu.Unlock()
}

// Event is one RFC 4733 telephone-event packet as received: its source's
// SSRC and sequence number, the RTP timestamp that identifies the event,
// and the 4-byte payload (event, end bit, volume, duration).
type Event struct {
	SSRC    uint32
	Seq     uint16
	TS      uint32
	Payload [4]byte
}

// SetEventSink sets where the telephone-event packets received on the leg
// go, one by one, for relaying to another leg (WriteEvent); nil drops them.
// Digits are reported on Digits either way. The sink runs on the leg's
// reading goroutine and must not block.
func (l *Leg) SetEventSink(f func(Event)) {
	l.mu.Lock()
	l.evSink = f
	l.mu.Unlock()
}

// ErrNoTelephoneEvent is returned by WriteEvent when the peer did not
// negotiate telephone-event, so DTMF cannot be relayed to it as RFC 4733
// events.
var ErrNoTelephoneEvent = errors.New("media: peer has no telephone-event payload type")

// WriteEvent relays a telephone-event packet to the peer with the peer's
// telephone-event payload type, numbered into the leg's stream (see
// Sequencer.Event).
func (l *Leg) WriteEvent(e Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || !l.sending || !l.remote.IsValid() {
		return nil
	}
	if l.codec.DTMF < 0 {
		return ErrNoTelephoneEvent
	}
	seq, ts, marker, ok := l.seq.Event(e.SSRC, e.Seq, e.TS, time.Now())
	if !ok {
		return nil
	}
	l.buf = append(appendHeader(l.buf[:0], marker, uint8(l.codec.DTMF), seq, ts, l.ssrc), e.Payload[:]...)
	l.send()
	return nil
}

// Digits delivers DTMF digits received as RFC 4733 events.
func (l *Leg) Digits() <-chan byte { return l.digits }

// Packets reports how many RTP packets were received and sent.
func (l *Leg) Packets() (rx, tx uint64) { return l.rx.Load(), l.tx.Load() }

// Write sends one frame, renumbered by the leg's Sequencer.
func (l *Leg) Write(f Frame) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || !l.sending || !l.remote.IsValid() {
		return nil
	}
	seq, ts, marker, ok := l.seq.Map(f.SSRC, f.Seq, f.TS, time.Now())
	if !ok {
		return nil
	}
	l.buf = appendHeader(l.buf[:0], marker, l.codec.PT, seq, ts, l.ssrc)
	if f.Law == l.codec.Law && len(f.Payload) == len(f.PCM) {
		l.buf = append(l.buf, f.Payload...)
	} else {
		l.buf = l.codec.Law.Encode(l.buf, f.PCM)
	}
	l.send()
	return nil
}

// send sends l.buf to the peer; l.mu is held. The packet is counted before
// it leaves, so whoever has received it sees it counted. A failed send
// (ICMP unreachable and the like: the peer may come back) is not counted.
func (l *Leg) send() {
	l.tx.Add(1)
	if err := l.sock.writeTo(l.buf, l.remote); err != nil {
		l.tx.Add(^uint64(0))
		l.log.Debug("rtp send failed", "remote", l.remote, "err", err)
	}
}

// appendHeader appends a fixed RTP header (RFC 3550 §5.1): version 2, no
// padding, extension or CSRC list.
func appendHeader(b []byte, marker bool, pt uint8, seq uint16, ts, ssrc uint32) []byte {
	if marker {
		pt |= 0x80
	}
	b = append(b, 0x80, pt)
	b = binary.BigEndian.AppendUint16(b, seq)
	b = binary.BigEndian.AppendUint32(b, ts)
	return binary.BigEndian.AppendUint32(b, ssrc)
}

// handle takes one datagram received on the leg's socket from the address
// from. It runs on the goroutine that reads the socket, one datagram at a
// time; b is valid only during the call.
func (l *Leg) handle(b []byte, from netip.AddrPort) {
	p := &l.rxPkt
	if p.Unmarshal(b) != nil || p.Version != 2 {
		return
	}
	if p.PayloadType >= 72 && p.PayloadType <= 76 { // RTCP (RFC 5761 §4)
		return
	}
	l.rx.Add(1)
	l.lastRx.Store(time.Now().UnixNano())
	l.mu.Lock()
	if !l.learned {
		l.remote, l.learned = netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), true
	}
	c, sink, evSink := l.codec, l.sink, l.evSink
	var digit byte
	var gotDigit bool
	isDTMF := c.DTMF >= 0 && int(p.PayloadType) == c.DTMF
	if isDTMF {
		digit, gotDigit = l.dtmf.Packet(p.Timestamp, p.Payload)
	}
	l.mu.Unlock()
	if isDTMF {
		if gotDigit {
			select {
			case l.digits <- digit:
			default:
			}
		}
		if evSink != nil && len(p.Payload) >= 4 {
			e := Event{SSRC: p.SSRC, Seq: p.SequenceNumber, TS: p.Timestamp}
			copy(e.Payload[:], p.Payload)
			evSink(e)
		}
		return
	}
	law := c.Law
	switch {
	case p.PayloadType == c.PT:
	case p.PayloadType == 0:
		law = ULaw
	case p.PayloadType == 8:
		law = ALaw
	default:
		return
	}
	if sink != nil {
		l.rxPCM = law.Decode(l.rxPCM[:0], p.Payload)
		sink(Frame{SSRC: p.SSRC, Seq: p.SequenceNumber, TS: p.Timestamp, PCM: l.rxPCM, Law: law, Payload: p.Payload})
	}
}

// Close closes the socket, waits until nothing is delivered to the leg
// any more and frees the port. It must not be called from a sink.
func (l *Leg) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	err := l.sock.close()
	l.release()
	return err
}
