package storage_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/storage"
)

// benchProducers is how many goroutines write at once in both benchmarks,
// about the event sources of a busy desk (router, chat sessions, calls).
const benchProducers = 64

// benchEvents builds n events: whole chats (offered, ring, answer, two
// messages, end), each producer writing its own interactions in order.
func benchEvents(n int) [][]interaction.Event {
	per := make([][]interaction.Event, benchProducers)
	for i := range n {
		p := i % benchProducers
		k := len(per[p])
		at := t0.Add(time.Duration(i) * time.Millisecond)
		// Ids sort by creation time, as interaction.NewID's do.
		started := t0.Add(time.Duration(p+benchProducers*(k-k%6)) * time.Millisecond)
		id := interaction.ID(fmt.Sprintf("%012d%08d", started.UnixMilli(), p))
		agent := strconv.Itoa(1001 + p)
		var ev interaction.Event
		switch k % 6 {
		case 0:
			ev = interaction.Event{Type: interaction.Offered, Channel: interaction.Chat, Queue: "etax", Data: map[string]string{"taxpayer_id": "tp" + strconv.Itoa(i)}}
		case 1:
			ev = interaction.Event{Type: interaction.RingStarted, Agent: agent}
		case 2:
			ev = interaction.Event{Type: interaction.Answered, Agent: agent}
		case 3, 4:
			ev = interaction.Event{Type: interaction.ChatMessage, Actor: interaction.ActorTaxpayer, Data: map[string]string{"text": "请问电子税务局怎么开票？"}}
		case 5:
			ev = interaction.Event{Type: interaction.Ended, Reason: interaction.ReasonCompleted, Disposition: interaction.Resolved}
		}
		ev.At, ev.ID = at, id
		per[p] = append(per[p], ev)
	}
	return per
}

// runProducers runs write for every event from benchProducers goroutines and
// reports events per second.
func runProducers(b *testing.B, write func(interaction.Event) error) {
	per := benchEvents(b.N)
	var failed atomic.Bool
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for _, evs := range per {
		wg.Go(func() {
			for _, ev := range evs {
				if err := write(ev); err != nil {
					if failed.CompareAndSwap(false, true) {
						b.Error(err)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

func benchDB(b *testing.B) *storage.DB {
	db, err := storage.Open(b.TempDir(), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// BenchmarkAppendGroupCommit: every producer calls Append (waits for fsync)
// per event; the writer commits whatever has queued in one transaction.
func BenchmarkAppendGroupCommit(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	runProducers(b, func(ev interaction.Event) error { return db.Append(ctx, ev) })
	reportSize(b, db)
}

// reportSize reports the file's bytes in use per event, for sizing
// (docs/STORAGE.md); it includes records and every index.
func reportSize(b *testing.B, db *storage.DB) {
	if n, err := storage.DataSize(db); err == nil && b.N >= 1000 {
		b.ReportMetric(float64(n)/float64(b.N), "B/event")
	}
}

// BenchmarkAppendUpdatePerEvent: the same events and producers, but each
// event is its own bbolt Update (fsync) made by the producer, as a store
// without a writer goroutine would do.
func BenchmarkAppendUpdatePerEvent(b *testing.B) {
	db := benchDB(b)
	runProducers(b, func(ev interaction.Event) error { return storage.CommitDirect(db, ev) })
	reportSize(b, db)
}

// BenchmarkEmit: one producer (the router is one goroutine) emits without
// waiting, then Syncs once; the rate is what the writer sustains.
func BenchmarkEmit(b *testing.B) {
	db := benchDB(b)
	per := benchEvents(b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		p := i % benchProducers
		db.Emit(per[p][i/benchProducers])
	}
	if err := db.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	reportSize(b, db)
}

// BenchmarkOpenAfterCrash measures Open on a store whose last run did not
// Close, so bbolt's consistency check reads the whole file: MB/s says how
// long a restart after a crash takes at a given file size.
func BenchmarkOpenAfterCrash(b *testing.B) {
	dir := b.TempDir()
	db, err := storage.Open(dir, storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	const events = 120000
	per := benchEvents(events)
	for _, evs := range per {
		if err := db.Append(context.Background(), evs...); err != nil {
			b.Fatal(err)
		}
	}
	size, _ := storage.DataSize(db)
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := storage.MarkUnclean(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		db, err := storage.Open(dir, storage.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(size)/1e6, "MB")
	b.ReportMetric(float64(size)/1e6/(b.Elapsed().Seconds()/float64(b.N)), "MB/s")
}
