package media

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Recorder writes a call as a WAV: stereo with the caller on the left
// channel and the agent on the right, or mono (a voice message).
//
// Audio is placed by when it arrives, not by a clock of its own: each side
// has a cursor, the sample position where its next audio goes. Audio that
// arrives in step with the recording's time is appended at the cursor, so
// jitter and small bursts do not cut the stream; when a side has been quiet
// for longer than gapAfter (hold, silence suppression, lost packets) its
// cursor jumps to the arrival time and the gap stays silent, so both
// channels stay aligned in time; audio more than maxAhead in advance of
// the recording's time is dropped, so a bursty peer cannot shift its
// channel later. Once a second the recorder's goroutine interleaves what is
// older than holdBack, writes it, and rewrites the header sizes, so a
// crash loses at most the last second or so. Nothing runs per frame: the
// recorder wakes once a second, whatever the number of packets.
type Recorder struct {
	w     *WAVWriter
	ch    int
	start time.Time
	stop  chan struct{}
	done  chan struct{}

	mu     sync.Mutex // guards the fields below
	base   int64      // sample position of buf[side][0]; everything before it is written
	buf    [2][]int16
	cursor [2]int64 // where each side's next sample goes
	err    error
}

// Placement rules, in samples at 8 kHz.
const (
	gapAfter = 200 * 8 // a side this far behind the clock has had a gap
	maxAhead = 200 * 8 // audio this far ahead of the clock is dropped
	holdBack = 250 * 8 // what is younger than this is not written yet
)

// recorderFlush is how often the recorder writes (and how much a crash
// can lose beyond holdBack).
const recorderFlush = time.Second

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
	r := &Recorder{w: w, ch: channels, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r, nil
}

// now is the recording's time as a sample position.
func (r *Recorder) now() int64 {
	return int64(time.Since(r.start) * 8000 / time.Second)
}

// Write places samples heard from one side (Caller or Agent) just now. A
// mono recorder keeps only the caller's side. Write does not block on the
// file; it is meant for a leg's reader.
func (r *Recorder) Write(side int, pcm []int16) {
	if side < 0 || side >= r.ch || len(pcm) == 0 {
		return
	}
	now := r.now()
	at := now - int64(len(pcm)) // where the audio began if it came on time
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	c := r.cursor[side]
	if c < at-gapAfter {
		c = at
	}
	c = max(c, r.base)
	end := c + int64(len(pcm))
	if end > now+maxAhead {
		return
	}
	b := r.buf[side]
	off, need := int(c-r.base), int(end-r.base)
	if need > len(b) {
		b = append(b, make([]int16, need-len(b))...)
	}
	copy(b[off:], pcm)
	r.buf[side], r.cursor[side] = b, end
}

func (r *Recorder) run() {
	defer close(r.done)
	var out []byte
	t := time.NewTicker(recorderFlush)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			r.flush(r.now(), &out)
			return
		case <-t.C:
		}
		if !r.flush(r.now()-holdBack, &out) {
			return
		}
	}
}

// flush writes both channels up to the sample position upto, silence where
// a side had nothing, then the header. It reports false once writing has
// failed.
func (r *Recorder) flush(upto int64, out *[]byte) bool {
	r.mu.Lock()
	n := int(upto - r.base)
	if n <= 0 || r.err != nil {
		ok := r.err == nil
		r.mu.Unlock()
		return ok
	}
	// Interleaved 16-bit little-endian samples, as the WAV stores them.
	stride := 2 * r.ch
	o := slices.Grow((*out)[:0], n*stride)[:n*stride]
	for side := 0; side < r.ch; side++ {
		b := r.buf[side]
		k := min(len(b), n)
		for i, s := range b[:k] {
			binary.LittleEndian.PutUint16(o[i*stride+2*side:], uint16(s))
		}
		for i := k; i < n; i++ {
			binary.LittleEndian.PutUint16(o[i*stride+2*side:], 0)
		}
		r.buf[side] = b[:copy(b, b[k:])]
	}
	r.base = upto
	r.mu.Unlock()
	*out = o
	err := r.w.WriteLE(o)
	if err == nil {
		err = r.w.UpdateHeader()
	}
	if err != nil {
		r.mu.Lock()
		r.err = err
		r.buf = [2][]int16{}
		r.mu.Unlock()
		return false
	}
	return true
}

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
