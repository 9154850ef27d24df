package media

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

func constFrame(v int16, n int) []int16 {
	b := make([]int16, n)
	for i := range b {
		b[i] = v
	}
	return b
}

// record runs script inside a synctest bubble against a fresh recorder and
// returns the file it wrote.
func record(t *testing.T, channels int, script func(r *Recorder)) WAVInfo {
	t.Helper()
	p := filepath.Join(t.TempDir(), "r.wav")
	synctest.Test(t, func(t *testing.T) {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRecorder(f, channels)
		if err != nil {
			t.Fatal(err)
		}
		script(r)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	})
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadWAV(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if info.Channels != channels {
		t.Fatalf("%d channels, want %d", info.Channels, channels)
	}
	return info
}

// sample is channel ch of the sample at time d.
func sample(info WAVInfo, d time.Duration, ch int) int16 {
	i := int(d/(time.Second/8000))*info.Channels + ch
	if i >= len(info.Samples) {
		return -32768
	}
	return info.Samples[i]
}

// TestRecorderGapAndJitter: the agent is silent for a second, then talks
// with jittery delivery (two frames every 40 ms): its audio starts where it
// arrived, and the jitter leaves no holes.
func TestRecorderGapAndJitter(t *testing.T) {
	info := record(t, 2, func(r *Recorder) {
		for i := 0; i < 150; i++ { // 3 s
			r.Write(Caller, constFrame(100, 160))
			if i >= 50 && i%2 == 1 {
				r.Write(Agent, constFrame(7, 160))
				r.Write(Agent, constFrame(7, 160))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	if got := len(info.Samples) / 2; got != 3*8000 {
		t.Fatalf("%d samples, want 3 s", got)
	}
	for d := 40 * time.Millisecond; d < 2900*time.Millisecond; d += 10 * time.Millisecond {
		if s := sample(info, d, Caller); s != 100 {
			t.Fatalf("caller at %v: %d", d, s)
		}
	}
	if s := sample(info, 900*time.Millisecond, Agent); s != 0 {
		t.Fatalf("agent before it spoke: %d", s)
	}
	for d := 1060 * time.Millisecond; d < 2900*time.Millisecond; d += 5 * time.Millisecond {
		if s := sample(info, d, Agent); s != 7 {
			t.Fatalf("agent at %v: %d (hole in jittery audio)", d, s)
		}
	}
}

// TestRecorderBurstDropped: a side that delivers far more audio than time
// has passed keeps only what fits in maxAhead; its channel does not drift
// later than the other.
func TestRecorderBurstDropped(t *testing.T) {
	info := record(t, 2, func(r *Recorder) {
		time.Sleep(500 * time.Millisecond)
		for i := 0; i < 100; i++ { // 2 s at once
			r.Write(Agent, constFrame(9, 160))
		}
		time.Sleep(1500 * time.Millisecond)
		r.Write(Agent, constFrame(5, 160)) // after a gap: at its own time
		time.Sleep(100 * time.Millisecond)
	})
	var burst int
	for i := 1; i < len(info.Samples); i += 2 {
		if info.Samples[i] == 9 {
			burst++
		}
	}
	// From 480 ms (the first frame's start) to 500 ms + maxAhead.
	if want := 20*8 + maxAhead; burst != want {
		t.Fatalf("%d burst samples kept, want %d", burst, want)
	}
	if s := sample(info, 1990*time.Millisecond, Agent); s != 5 {
		t.Fatalf("frame after the burst at 1.99 s: %d", s)
	}
}

// TestRecorderMono keeps the caller only and is readable while it runs:
// the header is rewritten as the audio is written.
func TestRecorderMono(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.wav")
	synctest.Test(t, func(t *testing.T) {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRecorder(f, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 150; i++ {
			r.Write(Caller, constFrame(3, 160))
			r.Write(Agent, constFrame(4, 160))
			time.Sleep(20 * time.Millisecond)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		mid, err := ReadWAV(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("unreadable while recording: %v", err)
		}
		if d := time.Duration(len(mid.Samples)) * time.Second / 8000; d < 1500*time.Millisecond {
			t.Fatalf("after 3 s only %v written", d)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if d := r.Duration(); d != 3*time.Second {
			t.Fatalf("duration %v", d)
		}
	})
	b, _ := os.ReadFile(p)
	info, err := ReadWAV(bytes.NewReader(b))
	if err != nil || info.Channels != 1 {
		t.Fatalf("%+v %v", info.Channels, err)
	}
	for i, s := range info.Samples[160:] {
		if s != 3 {
			t.Fatalf("sample %d = %d", i+160, s)
		}
	}
}
