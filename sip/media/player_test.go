package media

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestPlayPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p Pacer
		pcm := make([]int16, 160*50+80) // 1.01 s: 51 frames, the last half silent
		for i := range pcm {
			pcm[i] = 1
		}
		start := time.Now()
		var at []time.Duration
		var last []int16
		var lastPayload []byte
		err := p.Play(context.Background(), []*Clip{NewClip(pcm)}, ALaw, false, func(f []int16, payload []byte) error {
			at = append(at, time.Since(start))
			// The writer is slow sometimes; the schedule must not slip.
			if len(at)%7 == 0 {
				time.Sleep(13 * time.Millisecond)
			}
			last = append(last[:0], f...)
			lastPayload = append(lastPayload[:0], payload...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(at) != 51 {
			t.Fatalf("%d frames, want 51", len(at))
		}
		for i, d := range at {
			if d != time.Duration(i+1)*20*time.Millisecond {
				t.Fatalf("frame %d at %v", i, d)
			}
		}
		if last[79] != 1 || last[80] != 0 {
			t.Fatal("last frame not padded with silence")
		}
		if want := ALaw.Encode(nil, last); !bytes.Equal(lastPayload, want) {
			t.Fatalf("last frame's A-law payload %x, want %x", lastPayload, want)
		}
	})
}

func TestPlayLoopUntilCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p Pacer
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		// Two clips shorter than a frame: they join and loop inside frames.
		one, two := make([]int16, 100), make([]int16, 30)
		for i := range one {
			one[i] = int16(i + 1)
		}
		for i := range two {
			two[i] = int16(-i - 1)
		}
		frames := 0
		err := p.Play(ctx, []*Clip{NewClip(one), NewClip(two)}, ULaw, true, func(f []int16, payload []byte) error {
			for _, s := range f {
				if s == 0 {
					t.Fatal("gap in looped audio")
				}
			}
			if frames == 0 && (f[99] != 100 || f[100] != -1 || f[129] != -30 || f[130] != 1) {
				t.Fatalf("first frame %v: clips not joined in order", f)
			}
			if want := ULaw.Encode(nil, f); !bytes.Equal(payload, want) {
				t.Fatalf("frame %d: µ-law payload %x, want %x", frames, payload, want)
			}
			frames++
			return nil
		})
		if err != context.DeadlineExceeded {
			t.Fatalf("err %v", err)
		}
		if frames != 49 && frames != 50 { // frame 50 is due exactly at the deadline
			t.Fatalf("%d frames in 1 s, want 50", frames)
		}
	})
}

// TestPacerShared: plays started at different times are written on the
// same ticks by one goroutine; a cancelled play is never written again;
// the goroutine ends when nothing plays.
func TestPacerShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p Pacer
		start := time.Now()
		var ticksA, ticksB []time.Duration
		var afterCancel atomic.Bool
		ctx, cancel := context.WithCancel(context.Background())
		doneA := make(chan error)
		go func() {
			doneA <- p.Play(ctx, nil, LawUnknown, true, func(_ []int16, payload []byte) error {
				if payload != nil {
					t.Error("a payload for LawUnknown")
				}
				if afterCancel.Load() {
					t.Error("write after Play returned")
				}
				ticksA = append(ticksA, time.Since(start))
				return nil
			})
		}()
		time.Sleep(50 * time.Millisecond)
		if err := p.Play(context.Background(), []*Clip{NewClip(make([]int16, 160*3))}, ALaw, false, func([]int16, []byte) error {
			ticksB = append(ticksB, time.Since(start))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if p.Playing() != 1 {
			t.Fatalf("%d playing, want 1", p.Playing())
		}
		cancel()
		if err := <-doneA; err != context.Canceled {
			t.Fatalf("err %v", err)
		}
		afterCancel.Store(true)
		time.Sleep(100 * time.Millisecond)
		want := []time.Duration{60 * time.Millisecond, 80 * time.Millisecond, 100 * time.Millisecond}
		if len(ticksB) != 3 {
			t.Fatalf("B written at %v", ticksB)
		}
		for i, d := range want {
			if ticksB[i] != d {
				t.Fatalf("B written at %v, want %v (A's ticks %v)", ticksB, want, ticksA)
			}
		}
		synctest.Wait()
		if p.Playing() != 0 {
			t.Fatal("still playing")
		}
	})
}
