package media

import (
	"fmt"
	"sync"
	"time"
)

// Recorder writes a call as a WAV: stereo with the caller on the left
// channel and the agent on the right, or mono (a voice message), paced by its own 20 ms clock so both channels stay
// aligned in time: each tick takes one frame from each side, or silence
// where a side sent nothing (jitter, hold, lost packets). The audio is
// written and the header sizes rewritten once a second. Close stops the clock and finishes the file.
type Recorder struct {
	w    *WAVWriter
	ch   int
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex // guards queue and err
	queue [2][]int16
	err   error
}

// maxBuffered bounds what one side may queue (200 ms); older audio is
// dropped so a bursty peer cannot shift its channel later.
const maxBuffered = 10 * frameSamples

// Channels of a Recorder.
const (
	Caller = 0
	Agent  = 1
)

// NewRecorder starts recording into f with 1 or 2 channels.
func NewRecorder(f WAVFile, channels int) (*Recorder, error) {
	channels = max(1, min(channels, 2))
	w, err := NewWAVWriter(f, channels, 8000)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	r := &Recorder{w: w, ch: channels, stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r, nil
}

// Write queues samples heard from one side (Caller or Agent). A mono
// recorder keeps only the caller's side.
func (r *Recorder) Write(side int, pcm []int16) {
	if side < 0 || side >= r.ch {
		return
	}
	r.mu.Lock()
	q := append(r.queue[side], pcm...)
	if len(q) > maxBuffered {
		q = q[len(q)-maxBuffered:]
	}
	r.queue[side] = q
	r.mu.Unlock()
}

func (r *Recorder) run() {
	defer close(r.done)
	start := time.Now()
	frame := make([]int16, r.ch*frameSamples)
	// A second of audio is written at once, with the header update after
	// it: one write a second instead of fifty, and a crash still loses at
	// most the last second.
	pending := make([]int16, 0, flushFrames*len(frame))
	flush := func() {
		err := r.w.Write(pending)
		pending = pending[:0]
		if err == nil {
			err = r.w.UpdateHeader()
		}
		if err != nil {
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
		}
	}
	t := time.NewTimer(FrameDuration)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-r.stop:
			if len(pending) > 0 {
				flush()
			}
			return
		case <-t.C:
		}
		r.mu.Lock()
		for side := 0; side < r.ch; side++ {
			q := r.queue[side]
			k := min(len(q), frameSamples)
			for i := 0; i < frameSamples; i++ {
				var s int16
				if i < k {
					s = q[i]
				}
				frame[r.ch*i+side] = s
			}
			r.queue[side] = q[:copy(q, q[k:])]
		}
		r.mu.Unlock()
		pending = append(pending, frame...)
		if n%flushFrames == 0 {
			flush()
			r.mu.Lock()
			failed := r.err != nil
			r.mu.Unlock()
			if failed {
				return
			}
		}
		t.Reset(time.Until(start.Add(time.Duration(n+1) * FrameDuration)))
	}
}

// flushFrames is how many 20 ms frames the recorder writes at once (1 s).
const flushFrames = 50

// Duration is how much audio has been written.
func (r *Recorder) Duration() time.Duration {
	<-r.done
	return time.Duration(r.w.Samples()) * time.Second / 8000
}

// Close stops recording and closes the file with its final header.
func (r *Recorder) Close() error {
	close(r.stop)
	<-r.done
	err := r.w.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return fmt.Errorf("media: recording: %w", r.err)
	}
	return err
}
