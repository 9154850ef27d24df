package media

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkLegWrite is the per-packet cost of relaying one 20 ms frame to a
// peer: renumbering, G.711 encoding and the UDP send on loopback. A call
// relays 100 of these a second (50 each way).
func BenchmarkLegWrite(b *testing.B) {
	ports, err := NewPorts("43000-43999", 0)
	if err != nil {
		b.Fatal(err)
	}
	l, err := ports.Open(netip.MustParseAddr("127.0.0.1"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	sink, err := ports.Open(netip.MustParseAddr("127.0.0.1"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	l.Configure(sink.Addr(), Codec{Law: ALaw, PT: 8, DTMF: -1}, SendRecv)
	src := NewSource()
	pcm := make([]int16, 160)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Write(src.Frame(pcm)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSequencer is the renumbering alone.
func BenchmarkSequencer(b *testing.B) {
	var s Sequencer
	now := time.Now()
	var seq uint16
	var ts uint32
	for b.Loop() {
		s.Map(1, seq, ts, now)
		seq++
		ts += 160
	}
}

// BenchmarkDecodeEncode is G.711 transcoding of one 20 ms frame.
func BenchmarkDecodeEncode(b *testing.B) {
	in := make([]byte, 160)
	pcm := make([]int16, 0, 160)
	out := make([]byte, 0, 160)
	for b.Loop() {
		pcm = ALaw.Decode(pcm[:0], in)
		out = ULaw.Encode(out[:0], pcm)
	}
}

// BenchmarkPromptFrame is one 20 ms frame of a looped prompt made ready
// for a PCMA leg: taken from a clip encoded once ("clip"), against
// encoding the frame's samples for every frame of every call ("encode",
// what the leg does with no payload).
func BenchmarkPromptFrame(b *testing.B) {
	pcm := make([]int16, 8000)
	for i := range pcm {
		pcm[i] = int16(i * 31)
	}
	clips := []*Clip{NewClip(pcm)}
	var out []byte
	for _, tc := range []struct {
		name string
		law  Law
	}{{"clip", ALaw}, {"encode", LawUnknown}} {
		b.Run(tc.name, func(b *testing.B) {
			pb := newPlayback(clips, tc.law, true, func(f []int16, payload []byte) error {
				if payload == nil {
					out = ALaw.Encode(out[:0], f)
				}
				return nil
			})
			for b.Loop() {
				if _, err := pb.next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
