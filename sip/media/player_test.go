package media

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestPlayPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pcm := make([]int16, 160*50+80) // 1.01 s: 51 frames, the last half silent
		for i := range pcm {
			pcm[i] = 1
		}
		start := time.Now()
		var at []time.Duration
		var last []int16
		err := Play(context.Background(), pcm, false, func(f []int16) error {
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
			if d != time.Duration(i)*20*time.Millisecond {
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
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		pcm := make([]int16, 100) // shorter than a frame: loops inside frames
		for i := range pcm {
			pcm[i] = int16(i + 1)
		}
		frames := 0
		err := Play(ctx, pcm, true, func(f []int16) error {
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
		if frames != 50 && frames != 51 { // frame 50 is due exactly at the deadline
			t.Fatalf("%d frames in 1 s, want 50", frames)
		}
	})
}
