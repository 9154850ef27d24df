// Package storage keeps taxline's durable state in one embedded bbolt file:
// the append-only event log, the interaction records folded from it, the
// indexes the API and reports read, retention (Purge) and the hand-over
// export (Export). Recordings live outside bbolt, behind Blobs.
//
// One writer goroutine owns every write. Producers hand it events (Emit
// never blocks; Append and Sync wait); it commits whatever has queued in a
// single bbolt transaction, so one fsync covers many events (group commit).
// Nothing is ever written with NoSync.
//
// The layout is in schema.go; docs/STORAGE.md explains it with the recovery
// rules and the sizing.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/taxline/taxline/interaction"
)

// Errors.
var (
	// ErrNotFound is returned for an interaction the store does not hold.
	ErrNotFound = errors.New("storage: not found")
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("storage: closed")
	// ErrCorrupt is returned by Open when the consistency check fails.
	ErrCorrupt = errors.New("storage: database file is inconsistent")
)

// File names inside the data directory.
const (
	// DBFile is the bbolt file.
	DBFile = "taxline.db"
	// RecordingsDir is where Dir keeps the blobs.
	RecordingsDir = "recordings"
)

// maxBatchEvents bounds one group commit, so a burst does not make one huge
// transaction; whatever is left goes in the next one at once.
const maxBatchEvents = 4096

// Options configure Open. The zero value is usable.
type Options struct {
	// Logger receives recovery and write-error reports; nil discards.
	Logger *slog.Logger
	// Now stamps the events Open writes during recovery; default time.Now.
	Now func() time.Time
	// EmitLinger is how long the writer lets emitted events gather before
	// a commit when nobody waits on them (Append and Sync never linger).
	// Each commit costs two fsyncs and rewrites every page it touches, so
	// at 200 calls/s a few milliseconds turn hundreds of commits a second
	// into tens. Default DefaultEmitLinger; negative turns it off.
	EmitLinger time.Duration
}

// DefaultEmitLinger is Options.EmitLinger's default.
const DefaultEmitLinger = 20 * time.Millisecond

// DB is the store. Its methods are safe for concurrent use.
type DB struct {
	bolt      *bolt.DB
	dir       string
	log       *slog.Logger
	now       func() time.Time
	blobs     Dir
	recovered []interaction.Record

	mu     sync.Mutex // guards queue and closed
	queue  []*request
	closed bool

	kick       chan struct{} // cap 1: the queue went from empty to non-empty
	urgent     chan struct{} // cap 1: someone waits for a commit; stop lingering
	linger     time.Duration
	stop       chan struct{} // closed by Close
	writerDone chan struct{} // closed when the writer goroutine returns

	errMu   sync.Mutex // guards lastErr
	lastErr error      // the last commit failure; nil after a good commit

	// commitStart is the wall-clock Unix nanoseconds at which the running
	// commit began, 0 when the writer is idle; Healthy reports a stall.
	commitStart atomic.Int64
	// lost counts emitted events whose commit failed, so Sync can say so;
	// lostReported is how many of them a Sync has reported.
	lost, lostReported atomic.Uint64
	// commits counts write transactions, for benchmarks.
	commits atomic.Uint64
}

// stallLimit is how long one commit may run before Healthy reports it: a
// disk that stops answering fsync must show on /healthz.
const stallLimit = 10 * time.Second

// request is one unit handed to the writer. Its events are committed
// together; done (nil for Emit) gets the result.
type request struct {
	evs  []interaction.Event
	done chan result
}

type result struct {
	seqs []uint64
	err  error
}

// Open opens (or creates) the store in dir: dir/taxline.db (mode 0600) and
// dir/recordings/. When the last run did not Close cleanly it first checks
// the file's consistency. Then every interaction that was still live is
// closed with an Ended event (ReasonSystemRestart, actor "system"); see
// Recovered.
func Open(dir string, opt Options) (*DB, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.EmitLinger == 0 {
		opt.EmitLinger = DefaultEmitLinger
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Join(dir, RecordingsDir), 0o750); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	bdb, err := bolt.Open(filepath.Join(dir, DBFile), 0o600, &bolt.Options{
		// Another process holding the file: fail instead of hanging.
		Timeout:      5 * time.Second,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	db := &DB{
		bolt:       bdb,
		dir:        dir,
		log:        opt.Logger,
		now:        opt.Now,
		blobs:      Dir{Root: filepath.Join(dir, RecordingsDir)},
		kick:       make(chan struct{}, 1),
		urgent:     make(chan struct{}, 1),
		linger:     opt.EmitLinger,
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	if err := db.start(); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	go db.writer()
	return db, nil
}

// start checks the file if needed, brings the schema up to date, clears the
// clean flag and runs recovery. The writer is not running yet.
func (db *DB) start() error {
	var existed, clean bool
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			existed = true
			v := m.Get(keyClean)
			clean = len(v) == 1 && v[0] == 1
		}
		return nil
	}); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if existed && !clean {
		db.log.Warn("storage: last shutdown was not clean; checking the database", "dir", db.dir)
		if err := db.check(); err != nil {
			return err
		}
	}
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := ensureSchema(tx); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyClean)
	}); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return db.recover()
}

// check runs bbolt's consistency check. It reads every page, so it only runs
// after an unclean stop.
func (db *DB) check() error {
	var problems []error
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			if len(problems) < 10 {
				problems = append(problems, e)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %w", ErrCorrupt, errors.Join(problems...))
	}
	return nil
}

// recover closes every interaction that was live when the process stopped.
// Channels cannot resume a call or a socket that died with the process, so
// each gets an explicit Ended event rather than being left open forever.
func (db *DB) recover() error {
	var ids []interaction.ID
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLive).ForEach(func(k, _ []byte) error {
			ids = append(ids, interaction.ID(k))
			return nil
		})
	}); err != nil {
		return fmt.Errorf("storage: recovery: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	at := db.now()
	evs := make([]interaction.Event, len(ids))
	for i, id := range ids {
		evs[i] = interaction.Event{
			Type:   interaction.Ended,
			At:     at,
			ID:     id,
			Actor:  interaction.ActorSystem,
			Reason: interaction.ReasonSystemRestart,
		}
	}
	if _, err := db.commit([]*request{{evs: evs}}); err != nil {
		return fmt.Errorf("storage: recovery: %w", err)
	}
	for _, id := range ids {
		r, err := db.Interaction(id)
		if err != nil {
			return fmt.Errorf("storage: recovery: %w", err)
		}
		db.recovered = append(db.recovered, r)
		db.log.Warn("storage: closed interaction that was live at the last stop",
			"id", r.ID, "channel", r.Channel, "queue", r.Queue, "agent", r.Agent, "reason", r.Reason)
	}
	return nil
}

// Recovered returns the interactions Open closed with ReasonSystemRestart,
// as they are after closing.
func (db *DB) Recovered() []interaction.Record {
	return append([]interaction.Record(nil), db.recovered...)
}

// Blobs returns the recording store (dir/recordings).
func (db *DB) Blobs() Blobs { return db.blobs }

// Emit queues ev for the writer and returns at once; it never blocks. The
// event is durable soon after (see Sync). Emit implements queue.EventSink.
// After Close the event is dropped and logged.
func (db *DB) Emit(ev interaction.Event) {
	if ev.Data != nil {
		ev.Data = maps.Clone(ev.Data) // the caller may reuse its map
	}
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		db.log.Error("storage: event emitted after close; dropped", "type", ev.Type, "id", ev.ID)
		return
	}
	// Consecutive Emits share one request.
	if n := len(db.queue); n > 0 && db.queue[n-1].done == nil && len(db.queue[n-1].evs) < maxBatchEvents {
		db.queue[n-1].evs = append(db.queue[n-1].evs, ev)
	} else {
		db.queue = append(db.queue, &request{evs: []interaction.Event{ev}})
	}
	db.mu.Unlock()
	db.wake()
}

// Append writes evs in one transaction, in order, and returns once they are
// fsynced. If ctx ends first Append returns its error, but the events are
// still written.
func (db *DB) Append(ctx context.Context, evs ...interaction.Event) error {
	_, err := db.appendSeq(ctx, evs...)
	return err
}

// appendSeq is Append that also returns the sequence numbers given.
func (db *DB) appendSeq(ctx context.Context, evs ...interaction.Event) ([]uint64, error) {
	own := make([]interaction.Event, len(evs))
	for i, ev := range evs {
		if ev.Data != nil {
			ev.Data = maps.Clone(ev.Data)
		}
		own[i] = ev
	}
	return db.wait(ctx, &request{evs: own, done: make(chan result, 1)})
}

// Sync returns once every event emitted or appended before the call is
// durable. If emitted events could not be written since the last Sync
// (their commit failed; the error is logged), Sync returns an error; the
// next one does not report them again.
func (db *DB) Sync(ctx context.Context) error {
	if _, err := db.wait(ctx, &request{done: make(chan result, 1)}); err != nil {
		return err
	}
	lost := db.lost.Load()
	for {
		seen := db.lostReported.Load()
		if lost <= seen {
			return nil
		}
		if db.lostReported.CompareAndSwap(seen, lost) {
			return fmt.Errorf("storage: %d emitted events could not be written: %w", lost-seen, db.Healthy())
		}
	}
}

func (db *DB) wait(ctx context.Context, r *request) ([]uint64, error) {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil, ErrClosed
	}
	db.queue = append(db.queue, r)
	db.mu.Unlock()
	select {
	case db.urgent <- struct{}{}:
	default:
	}
	db.wake()
	select {
	case res := <-r.done:
		return res.seqs, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("storage: %w", context.Cause(ctx))
	}
}

func (db *DB) wake() {
	select {
	case db.kick <- struct{}{}:
	default:
	}
}

// writer is the single goroutine that writes. It ends when Close closes
// stop, after committing everything queued.
func (db *DB) writer() {
	defer close(db.writerDone)
	for {
		stopping := false
		select {
		case <-db.kick:
		case <-db.stop:
			stopping = true
		}
		for {
			if !stopping && db.lingerForEmits() {
				stopping = true
			}
			batch := db.take()
			if len(batch) == 0 {
				break
			}
			db.commitAndAck(batch)
		}
		if stopping {
			// Close set closed before closing stop, so nothing more can
			// queue: everything accepted has been answered.
			return
		}
	}
}

// lingerForEmits waits up to db.linger while the queue holds only emitted
// events (nobody waiting) and less than a full batch, so that one commit
// takes more of them. It reports whether Close began meanwhile.
func (db *DB) lingerForEmits() (stopping bool) {
	if db.linger <= 0 {
		return false
	}
	db.mu.Lock()
	quiet, events := true, 0
	for _, r := range db.queue {
		events += len(r.evs)
		if r.done != nil {
			quiet = false
		}
	}
	db.mu.Unlock()
	if !quiet || events == 0 || events >= maxBatchEvents {
		return false
	}
	t := time.NewTimer(db.linger)
	defer t.Stop()
	select {
	case <-t.C:
	case <-db.urgent:
	case <-db.stop:
		return true
	}
	return false
}

// take removes whole requests from the queue, up to about maxBatchEvents.
func (db *DB) take() []*request {
	db.mu.Lock()
	defer db.mu.Unlock()
	n, events := 0, 0
	for n < len(db.queue) && (n == 0 || events+len(db.queue[n].evs) <= maxBatchEvents) {
		events += len(db.queue[n].evs)
		n++
	}
	batch := db.queue[:n:n]
	if n == len(db.queue) {
		db.queue = nil
	} else {
		db.queue = db.queue[n:]
	}
	return batch
}

func (db *DB) commitAndAck(batch []*request) {
	seqs, err := db.commit(batch)
	if err != nil && len(batch) > 1 {
		// One bad request (an id too long for a key, a damaged record)
		// must not sink the others that shared its transaction.
		for _, r := range batch {
			db.commitAndAck([]*request{r})
		}
		return
	}
	if err != nil || hasEvents(batch) {
		db.errMu.Lock()
		db.lastErr = err
		db.errMu.Unlock()
	}
	if err != nil {
		dropped := 0
		for _, r := range batch {
			if r.done == nil {
				dropped += len(r.evs)
			}
		}
		db.lost.Add(uint64(dropped))
		db.log.Error("storage: commit failed", "err", err, "requests", len(batch), "emitted_events_lost", dropped)
	}
	for i, r := range batch {
		if r.done != nil {
			res := result{err: err}
			if err == nil {
				res.seqs = seqs[i]
			}
			r.done <- res
		}
	}
}

func hasEvents(batch []*request) bool {
	for _, r := range batch {
		if len(r.evs) > 0 {
			return true
		}
	}
	return false
}

// commit writes batch in one bbolt transaction (one fsync) and returns the
// sequence numbers given to each request's events.
func (db *DB) commit(batch []*request) ([][]uint64, error) {
	seqs := make([][]uint64, len(batch))
	n := 0
	for _, r := range batch {
		n += len(r.evs)
	}
	if n == 0 {
		return seqs, nil // a Sync: everything before it is already committed
	}
	db.commits.Add(1)
	db.commitStart.Store(time.Now().UnixNano())
	defer db.commitStart.Store(0)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		w := newTxWriter(tx)
		for i, r := range batch {
			seqs[i] = make([]uint64, len(r.evs))
			for j, ev := range r.evs {
				seq, err := w.append(ev)
				if err != nil {
					return err
				}
				seqs[i][j] = seq
			}
		}
		return w.flush()
	})
	if err != nil {
		return nil, fmt.Errorf("storage: commit %d events: %w", n, err)
	}
	return seqs, nil
}

// Healthy returns nil while the store is open, its last commit worked and
// the running one (if any) has not been stuck for 10 s.
func (db *DB) Healthy() error {
	db.mu.Lock()
	closed, queued := db.closed, len(db.queue)
	db.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if t := db.commitStart.Load(); t != 0 {
		if d := time.Since(time.Unix(0, t)); d > stallLimit {
			return fmt.Errorf("storage: a commit has been running for %v (%d requests queued)", d.Round(time.Second), queued)
		}
	}
	db.errMu.Lock()
	defer db.errMu.Unlock()
	return db.lastErr
}

// Close stops taking events, commits everything already queued, marks the
// file as cleanly closed and closes it. A second Close returns ErrClosed.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return ErrClosed
	}
	db.closed = true
	db.mu.Unlock()
	close(db.stop)
	<-db.writerDone
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyClean, []byte{1})
	})
	if err != nil {
		err = fmt.Errorf("storage: mark clean: %w", err)
	}
	if cerr := db.bolt.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("storage: close: %w", cerr))
	}
	return err
}
