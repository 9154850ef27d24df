package media

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

func TestWAVWriterHeaderStaysCurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.wav")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWAVWriter(f, 2, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]int16{1, -1, 2, -2}); err != nil {
		t.Fatal(err)
	}
	if err := w.UpdateHeader(); err != nil {
		t.Fatal(err)
	}
	// A crash here: what is on disk must already decode.
	b, _ := os.ReadFile(p)
	info, err := ReadWAV(bytes.NewReader(b))
	if err != nil || info.Channels != 2 || info.Rate != 8000 || len(info.Samples) != 4 {
		t.Fatalf("mid-write read: %+v %v", info, err)
	}
	// Written but not yet in the header, then cut mid-sample.
	if err := w.Write([]int16{3, -3, 4, -4}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{9}); err != nil {
		t.Fatal(err)
	}
	changed, err := RepairWAV(f)
	if err != nil || !changed {
		t.Fatalf("repair: %v %v", changed, err)
	}
	if changed, _ := RepairWAV(f); changed {
		t.Fatal("repair not idempotent")
	}
	f.Close()
	b, _ = os.ReadFile(p)
	info, err = ReadWAV(bytes.NewReader(b))
	if err != nil || len(info.Samples) != 8 || info.Samples[7] != -4 {
		t.Fatalf("repaired read: %+v %v", info, err)
	}
}

// TestRecorderAlignment: one side talks steadily, the other in a burst;
// the file is as long as the recording ran and the burst is not smeared.
func TestRecorderAlignment(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		f, err := os.Create(filepath.Join(dir, "r.wav"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRecorder(f, 2)
		if err != nil {
			t.Fatal(err)
		}
		frame := func(v int16) []int16 {
			b := make([]int16, 160)
			for i := range b {
				b[i] = v
			}
			return b
		}
		for i := 0; i < 100; i++ { // 2 s
			r.Write(Caller, frame(1000))
			if i == 50 {
				r.Write(Agent, frame(-500))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if d := r.Duration(); d < 1980*time.Millisecond || d > 2020*time.Millisecond {
			t.Fatalf("duration %v, want 2s", d)
		}
	})
	b, err := os.ReadFile(filepath.Join(dir, "r.wav"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadWAV(bytes.NewReader(b))
	if err != nil || info.Channels != 2 {
		t.Fatal(err)
	}
	var agentFrames, callerSilent int
	for i := 0; i+1 < len(info.Samples); i += 2 * 160 {
		if info.Samples[i] == 0 && i > 2*160 && i < len(info.Samples)-4*160 {
			callerSilent++
		}
		if info.Samples[i+1] == -500 {
			agentFrames++
		}
	}
	if agentFrames != 1 || callerSilent != 0 {
		t.Fatalf("agent frames %d (want 1), caller gaps %d", agentFrames, callerSilent)
	}
}

func TestReadWAVBad(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("RIFF\x00\x00\x00\x00WAVE"), []byte("RIFX0000WAVEfmt ")} {
		if _, err := ReadWAV(bytes.NewReader(b)); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
}
