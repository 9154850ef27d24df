package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
)

// BenchmarkEmitPaced emits events at a steady 2,000/s (200 calls/s at
// about ten events a call), as the router does under load, and reports
// how many commits (each two fsyncs) the writer made per event, with the
// emit linger off, at 5ms and at its default.
//
//	go test -run '^$' -bench EmitPaced -benchtime 2000x ./storage/
func BenchmarkEmitPaced(b *testing.B) {
	for _, linger := range []time.Duration{-1, 5 * time.Millisecond, DefaultEmitLinger} {
		b.Run(fmt.Sprintf("linger=%v", max(linger, 0)), func(b *testing.B) {
			db, err := Open(b.TempDir(), Options{EmitLinger: linger})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			tick := time.NewTicker(500 * time.Microsecond) // paces the load; nothing waits on it
			defer tick.Stop()
			t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
			before := db.commits.Load()
			i := 0
			for b.Loop() {
				<-tick.C
				db.Emit(interaction.Event{Type: interaction.Offered, At: t0.Add(time.Duration(i) * time.Millisecond),
					ID: interaction.NewID(t0.Add(time.Duration(i) * time.Millisecond)), Channel: interaction.Phone, Queue: "etax"})
				i++
			}
			if err := db.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(db.commits.Load()-before)/float64(b.N), "commits/event")
		})
	}
}
