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
