package media

import (
	"testing"
	"time"
)

// TestSequencerContinuity switches the stream a leg sends from a prompt to
// the other leg and back, each with its own random numbering, and checks
// the receiver sees +1 sequence and frame-spaced timestamps throughout.
func TestSequencerContinuity(t *testing.T) {
	var s Sequencer
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	type pkt struct {
		src    uint32
		seq    uint16
		ts     uint32
		gapped bool // a source switch: the timestamp follows wall time
	}
	var in []pkt
	// Prompt: 10 frames starting near the wrap-around.
	for i := 0; i < 10; i++ {
		in = append(in, pkt{src: 1, seq: 65530 + uint16(i), ts: 4294967000 + uint32(i*160)})
	}
	// Other leg: 10 frames from a far-away base.
	for i := 0; i < 10; i++ {
		in = append(in, pkt{src: 2, seq: 100 + uint16(i), ts: 5000 + uint32(i*160), gapped: i == 0})
	}
	// Back to a prompt (survey) source.
	for i := 0; i < 5; i++ {
		in = append(in, pkt{src: 3, seq: uint16(i), ts: uint32(i * 160), gapped: i == 0})
	}
	var lastSeq uint16
	var lastTS uint32
	for i, p := range in {
		seq, ts, marker, ok := s.Map(p.src, p.seq, p.ts, now)
		if !ok {
			t.Fatalf("packet %d dropped", i)
		}
		if i > 0 {
			if seq != lastSeq+1 {
				t.Fatalf("packet %d: seq %d after %d", i, seq, lastSeq)
			}
			if ts-lastTS != 160 {
				t.Fatalf("packet %d: timestamp step %d", i, ts-lastTS)
			}
			if marker != p.gapped {
				t.Fatalf("packet %d: marker %v", i, marker)
			}
		}
		lastSeq, lastTS = seq, ts
		now = now.Add(20 * time.Millisecond)
	}
	// A duplicate of the current source is dropped; a lost packet leaves a
	// gap of the same size.
	if _, _, _, ok := s.Map(3, 4, 640, now); ok {
		t.Fatal("duplicate forwarded")
	}
	seq, ts, _, _ := s.Map(3, 6, 960, now)
	if seq != lastSeq+2 || ts != lastTS+320 {
		t.Fatalf("gap: seq +%d ts +%d", seq-lastSeq, ts-lastTS)
	}
	// A switch after 1 s of silence advances the timestamp by 1 s.
	lastSeq, lastTS = seq, ts
	seq, ts, marker, _ := s.Map(9, 0, 0, now.Add(time.Second))
	if seq != lastSeq+1 || ts-lastTS != 8000 || !marker {
		t.Fatalf("after silence: seq +%d ts +%d marker %v", seq-lastSeq, ts-lastTS, marker)
	}
}

// TestSequencerRestart: a source that starts numbering again (same SSRC,
// sequence and timestamp back to where they began, as a replayed file or a
// restarted stream does) keeps flowing, as a switch; a late or duplicate
// packet is still dropped.
func TestSequencerRestart(t *testing.T) {
	var s Sequencer
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var lastSeq uint16
	for round := 0; round < 3; round++ {
		for i := 0; i < 236; i++ {
			seq, _, marker, ok := s.Map(7, 1000+uint16(i), 80000+uint32(i*240), now)
			if !ok {
				t.Fatalf("round %d packet %d dropped", round, i)
			}
			if (round > 0 || i > 0) && seq != lastSeq+1 {
				t.Fatalf("round %d packet %d: seq %d after %d", round, i, seq, lastSeq)
			}
			if marker != (i == 0) {
				t.Fatalf("round %d packet %d: marker %v", round, i, marker)
			}
			lastSeq = seq
			now = now.Add(30 * time.Millisecond)
			if i == 100 {
				if _, _, _, ok := s.Map(7, 1000+uint16(i-1), 80000+uint32((i-1)*240), now); ok {
					t.Fatal("a duplicate packet was relayed")
				}
				if _, _, _, ok := s.Map(7, 1000+uint16(i-50), 80000+uint32((i-50)*240), now); ok {
					t.Fatal("a late packet was relayed")
				}
			}
		}
	}
}
