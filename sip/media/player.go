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

// Clip is audio ready to play: 8 kHz 16-bit mono samples with their
// A-law and µ-law encodings, made once when the clip is made rather than
// for every frame of every call that plays it.
type Clip struct {
	pcm []int16
	enc [3][]byte // by Law: ALaw, ULaw
}

// NewClip makes a clip of pcm, which it keeps (the caller must not change
// it afterwards).
func NewClip(pcm []int16) *Clip {
	c := &Clip{pcm: pcm}
	for _, l := range []Law{ALaw, ULaw} {
		c.enc[l] = l.Encode(make([]byte, 0, len(pcm)), pcm)
	}
	return c
}

// Len is the clip's length in samples.
func (c *Clip) Len() int { return len(c.pcm) }

type playback struct {
	clips   []*Clip
	law     Law
	ci, pos int // the clip and sample that play next
	loop    bool
	pcm     []int16
	payload []byte
	write   func(pcm []int16, payload []byte) error
	done    chan error // receives once: nil at the end, or write's error
}

// Play sends clips, one after another with no gap, in 20 ms frames to
// write, one frame per tick of the pacer's clock, the last padded with
// silence. write gets each frame's samples and their encoding in law (nil
// for LawUnknown: the writer encodes). With loop it repeats until ctx
// ends; otherwise it returns nil after the last frame. write runs on the
// pacer's goroutine and must not block or keep its arguments; it is never
// called once Play has returned.
func (p *Pacer) Play(ctx context.Context, clips []*Clip, law Law, loop bool, write func(pcm []int16, payload []byte) error) error {
	total := 0
	for _, c := range clips {
		total += c.Len()
	}
	if total == 0 {
		if !loop {
			return nil
		}
		clips = []*Clip{silence}
	}
	b := newPlayback(clips, law, loop, write)
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

func newPlayback(clips []*Clip, law Law, loop bool, write func(pcm []int16, payload []byte) error) *playback {
	b := &playback{clips: clips, law: law, loop: loop, pcm: make([]int16, frameSamples), write: write, done: make(chan error, 1)}
	if law == ALaw || law == ULaw {
		b.payload = make([]byte, frameSamples)
	}
	return b
}

// silence is what an empty looped play sends.
var silence = NewClip(make([]int16, frameSamples))

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
	for k < frameSamples && b.ci < len(b.clips) {
		c := b.clips[b.ci]
		n := copy(b.pcm[k:], c.pcm[b.pos:])
		if b.payload != nil {
			copy(b.payload[k:], c.enc[b.law][b.pos:b.pos+n])
		}
		k += n
		b.pos += n
		if b.pos == c.Len() {
			b.ci, b.pos = b.ci+1, 0
			if b.ci == len(b.clips) && b.loop {
				b.ci = 0
			}
		}
	}
	clear(b.pcm[k:])
	var payload []byte
	if b.payload != nil {
		for i := k; i < frameSamples; i++ {
			b.payload[i] = b.law.Silence()
		}
		payload = b.payload
	}
	if err := b.write(b.pcm, payload); err != nil {
		return true, err
	}
	return b.ci == len(b.clips), nil
}
