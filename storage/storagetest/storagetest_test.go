package storagetest_test

import (
	"context"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/storage"
	"github.com/taxline/taxline/storage/storagetest"
)

// Both the store and the fake satisfy the router's sink.
var (
	_ queue.EventSink = (*storage.DB)(nil)
	_ queue.EventSink = (*storagetest.Sink)(nil)
)

func TestSinkWaitFor(t *testing.T) {
	var s storagetest.Sink
	id := interaction.ID("x")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, ev := range storagetest.Call(id, time.Unix(0, 0), "etax", "1001", "") {
			s.Emit(ev)
		}
	}()
	evs := s.WaitFor(t, 5*time.Second, func(evs []interaction.Event) bool {
		return len(evs) > 0 && evs[len(evs)-1].Type == interaction.Ended
	})
	<-done
	if len(evs) != 4 || evs[3].Seq != 4 {
		t.Errorf("got %d events, last seq %d", len(evs), evs[len(evs)-1].Seq)
	}
}

func TestOpenAndCall(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	id := interaction.NewID(time.Now())
	if err := db.Append(context.Background(), storagetest.Call(id, time.Now(), "etax", "1001", "tp")...); err != nil {
		t.Fatal(err)
	}
	r, err := db.Interaction(id)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != interaction.StateEnded || r.Disposition != interaction.Resolved || r.Agent != "1001" || r.TaxpayerID != "tp" {
		t.Errorf("record %+v", r)
	}
}
