package media

import (
	"context"
	"sync"
	"time"
)

// Pacer sends every prompt and hold music of a gateway from one goroutine
// on one 20 ms clock, instead of a timer per call: with hundreds of callers
// queued that is one wake-up per 20 ms rather than one per caller. The
// clock follows an absolute schedule (tick n at start + n·20 ms), so timer
// latency does not accumulate into drift; after a stall of more than
// 100 ms it starts a new schedule instead of bursting. The goroutine runs
// only while something plays. The zero value is ready to use.
type Pacer struct {
	mu    sync.Mutex // guards plays and stop; held while a tick writes
	plays map[*playback]struct{}
	stop  chan struct{} // closed to end the running clock; nil when none runs
}

type playback struct {
	pcm   []int16
	pos   int
	loop  bool
	frame []int16
	write func([]int16) error
	done  chan error // receives once: nil at the end, or write's error
}

// Play sends pcm (8 kHz 16-bit mono) in 20 ms frames to write, one frame
// per tick of the pacer's clock, the last padded with silence. With loop it
// repeats until ctx ends; otherwise it returns nil after the last frame.
// write runs on the pacer's goroutine and must not block; it is never
// called once Play has returned.
func (p *Pacer) Play(ctx context.Context, pcm []int16, loop bool, write func(frame []int16) error) error {
	if len(pcm) == 0 {
		if !loop {
			return nil
		}
		pcm = make([]int16, frameSamples)
	}
	b := &playback{pcm: pcm, loop: loop, frame: make([]int16, frameSamples), write: write, done: make(chan error, 1)}
	p.mu.Lock()
	if p.plays == nil {
		p.plays = map[*playback]struct{}{}
	}
	p.plays[b] = struct{}{}
	if p.stop == nil {
		p.stop = make(chan struct{})
		go p.run(p.stop)
	}
	p.mu.Unlock()
	select {
	case err := <-b.done:
		return err
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.plays, b)
		p.idle()
		p.mu.Unlock()
		return context.Cause(ctx)
	}
}

// idle stops the clock when nothing plays; p.mu is held.
func (p *Pacer) idle() {
	if len(p.plays) == 0 && p.stop != nil {
		close(p.stop)
		p.stop = nil
	}
}

// Playing is how many plays are under way.
func (p *Pacer) Playing() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.plays)
}

func (p *Pacer) run(stop chan struct{}) {
	start := time.Now()
	t := time.NewTimer(FrameDuration)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		for b := range p.plays {
			if end, err := b.next(); end || err != nil {
				delete(p.plays, b)
				b.done <- err
			}
		}
		p.idle()
		p.mu.Unlock()
		next := start.Add(time.Duration(n+1) * FrameDuration)
		if time.Since(next) > 100*time.Millisecond {
			start, n, next = time.Now(), 0, time.Now().Add(FrameDuration)
		}
		t.Reset(time.Until(next))
	}
}

// next writes the playback's next frame and reports whether it was the
// last.
func (b *playback) next() (bool, error) {
	k := 0
	for k < frameSamples && b.pos < len(b.pcm) {
		c := copy(b.frame[k:], b.pcm[b.pos:])
		k += c
		b.pos += c
		if b.pos == len(b.pcm) && b.loop {
			b.pos = 0
		}
	}
	clear(b.frame[k:])
	if err := b.write(b.frame); err != nil {
		return true, err
	}
	return b.pos >= len(b.pcm) && !b.loop, nil
}
