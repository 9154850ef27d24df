package media

import (
	"context"
	"time"
)

// Play sends pcm (8 kHz 16-bit mono) in 20 ms frames to write, paced
// against an absolute schedule (frame n at start + n·20 ms) so that timer
// latency does not accumulate into drift. With loop it repeats until ctx
// ends; otherwise it returns nil after the last frame. If the process
// stalls for more than 100 ms it resynchronises instead of bursting.
func Play(ctx context.Context, pcm []int16, loop bool, write func(frame []int16) error) error {
	if len(pcm) == 0 {
		if !loop {
			return nil
		}
		pcm = make([]int16, frameSamples)
	}
	frame := make([]int16, frameSamples)
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	pos := 0
	for n := 0; ; n++ {
		next := start.Add(time.Duration(n) * FrameDuration)
		if late := time.Since(next); late > 100*time.Millisecond {
			start, n, next = time.Now(), 0, time.Now()
		}
		t.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
		k := 0
		for k < frameSamples && pos < len(pcm) {
			c := copy(frame[k:], pcm[pos:])
			k += c
			pos += c
			if pos == len(pcm) && loop {
				pos = 0
			}
		}
		clear(frame[k:])
		if err := write(frame); err != nil {
			return err
		}
		if pos >= len(pcm) && !loop {
			return nil
		}
	}
}
