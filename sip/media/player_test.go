package media

import (
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
		err := p.Play(context.Background(), pcm, false, func(f []int16) error {
			at = append(at, time.Since(start))
			// The writer is slow sometimes; the schedule must not slip.
			if len(at)%7 == 0 {
				time.Sleep(13 * time.Millisecond)
			}
			last = append(last[:0], f...)
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
	})
}

func TestPlayLoopUntilCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p Pacer
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		pcm := make([]int16, 100) // shorter than a frame: loops inside frames
		for i := range pcm {
			pcm[i] = int16(i + 1)
		}
		frames := 0
		err := p.Play(ctx, pcm, true, func(f []int16) error {
			for _, s := range f {
				if s == 0 {
					t.Fatal("gap in looped audio")
				}
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
			doneA <- p.Play(ctx, nil, true, func([]int16) error {
				if afterCancel.Load() {
					t.Error("write after Play returned")
				}
				ticksA = append(ticksA, time.Since(start))
				return nil
			})
		}()
		time.Sleep(50 * time.Millisecond)
		if err := p.Play(context.Background(), make([]int16, 160*3), false, func([]int16) error {
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
