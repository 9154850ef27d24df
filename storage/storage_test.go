package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/storage"
	"github.com/taxline/taxline/storage/storagetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is a weekday morning in Shanghai, in UTC so JSON round trips compare.
var t0 = time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAppendReadBack(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	id := interaction.NewID(t0)
	evs := storagetest.Call(id, t0, "etax", "1001", "91310000X")
	if err := db.Append(ctx(t), evs...); err != nil {
		t.Fatal(err)
	}
	got, err := db.Events(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(evs) {
		t.Fatalf("got %d events, want %d", len(got), len(evs))
	}
	for i := range got {
		if got[i].Seq != uint64(i+1) {
			t.Errorf("event %d: seq %d, want %d", i, got[i].Seq, i+1)
		}
		want := evs[i]
		want.Seq = got[i].Seq
		if jsonOf(t, got[i]) != jsonOf(t, want) {
			t.Errorf("event %d:\n got %s\nwant %s", i, jsonOf(t, got[i]), jsonOf(t, want))
		}
	}
	if _, err := db.Interaction("nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Interaction(nope) = %v, want ErrNotFound", err)
	}
	if evs, err := db.Events("nope"); err != nil || len(evs) != 0 {
		t.Errorf("Events(nope) = %v, %v; want empty", evs, err)
	}
}

func TestRecordFolding(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	id := interaction.NewID(t0)
	evs := []interaction.Event{
		{Type: interaction.Offered, At: t0, ID: id, Channel: interaction.Phone, Queue: "etax",
			Data: map[string]string{"skills": "its", "priority": "3", "taxpayer_id": "91310000X", "taxpayer_phone": "13800000000", "topic": "invoice"}},
		{Type: interaction.RingStarted, At: t0.Add(time.Second), ID: id, Agent: "1001"},
		{Type: interaction.RingFailed, At: t0.Add(21 * time.Second), ID: id, Agent: "1001", Data: map[string]string{"cause": "no_answer"}},
		{Type: interaction.RingStarted, At: t0.Add(22 * time.Second), ID: id, Agent: "1002"},
		{Type: interaction.Answered, At: t0.Add(25 * time.Second), ID: id, Agent: "1002"},
		{Type: interaction.RecordingStarted, At: t0.Add(25 * time.Second), ID: id, Data: map[string]string{"recording": "2026/03/02/" + string(id) + ".wav"}},
		{Type: interaction.Audit, At: t0.Add(26 * time.Second), ID: id, Actor: "token:ops", Data: map[string]string{"what": "recording"}},
		{Type: interaction.Ended, At: t0.Add(300 * time.Second), ID: id, Reason: interaction.ReasonCompleted, Disposition: interaction.Resolved},
		{Type: interaction.SurveyScore, At: t0.Add(310 * time.Second), ID: id, Data: map[string]string{"score": "5", "comment": "好"}},
	}
	// Two commits, so the fold reads back a stored record half way.
	if err := db.Append(ctx(t), evs[:3]...); err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs[3:] {
		db.Emit(ev)
	}
	if err := db.Sync(ctx(t)); err != nil {
		t.Fatal(err)
	}
	var want interaction.Record
	for _, ev := range evs {
		want.Apply(ev)
	}
	got, err := db.Interaction(id)
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(t, got) != jsonOf(t, want) {
		t.Errorf("record:\n got %s\nwant %s", jsonOf(t, got), jsonOf(t, want))
	}
	if got.Agent != "1002" || got.Rings != 2 || got.State != interaction.StateEnded || got.Score != 5 {
		t.Errorf("unexpected fold: %+v", got)
	}
	// The agent index follows the record: 1001 no longer has it.
	if l, _ := db.List(storage.Filter{Agent: "1001"}); len(l) != 0 {
		t.Errorf("List(agent 1001) = %d records, want 0", len(l))
	}
	if l, _ := db.List(storage.Filter{Agent: "1002"}); len(l) != 1 {
		t.Errorf("List(agent 1002) = %d records, want 1", len(l))
	}
	for _, who := range []string{"91310000X", "13800000000"} {
		if l, _ := db.List(storage.Filter{Taxpayer: who}); len(l) != 1 {
			t.Errorf("List(taxpayer %s) = %d records, want 1", who, len(l))
		}
	}
	// Events without an interaction only go to the log.
	db.Emit(interaction.Event{Type: interaction.AgentState, At: t0, Agent: "1001", Data: map[string]string{"state": "break"}})
	if err := db.Sync(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Interaction(""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an id-less event made a record: %v", err)
	}
	if l, _ := db.List(storage.Filter{}); len(l) != 1 {
		t.Errorf("List() = %d records, want 1", len(l))
	}
}

// fixture writes n interactions with varied channel, agent, taxpayer and
// offered time, and returns their final records.
func fixture(t *testing.T, db *storage.DB, n int) []interaction.Record {
	t.Helper()
	var all []interaction.Event
	recs := map[interaction.ID]*interaction.Record{}
	var order []interaction.ID
	channels := []interaction.Channel{interaction.Phone, interaction.Chat, interaction.Message}
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Minute)
		id := interaction.ID(fmt.Sprintf("%012d%08d", at.UnixMilli(), i))
		ch := channels[i%3]
		agent := "100" + strconv.Itoa(i%4)
		evs := []interaction.Event{
			{Type: interaction.Offered, At: at, ID: id, Channel: ch, Queue: "etax",
				Data: map[string]string{"taxpayer_id": "tp" + strconv.Itoa(i%5)}},
		}
		if i%7 != 0 { // every 7th stays queued: no agent
			evs = append(evs,
				interaction.Event{Type: interaction.RingStarted, At: at.Add(time.Second), ID: id, Agent: agent},
				interaction.Event{Type: interaction.Answered, At: at.Add(2 * time.Second), ID: id, Agent: agent},
				interaction.Event{Type: interaction.Ended, At: at.Add(30 * time.Second), ID: id, Reason: interaction.ReasonCompleted})
		}
		r := &interaction.Record{}
		for _, ev := range evs {
			r.Apply(ev)
		}
		recs[id] = r
		order = append(order, id)
		all = append(all, evs...)
	}
	// Interleave: first every Offered, then the rest, as a busy desk would.
	slices.SortStableFunc(all, func(a, b interaction.Event) int {
		return int(a.Type) - int(b.Type)
	})
	if err := db.Append(ctx(t), all...); err != nil {
		t.Fatal(err)
	}
	out := make([]interaction.Record, 0, n)
	for _, id := range order {
		out = append(out, *recs[id])
	}
	return out
}

func TestList(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	recs := fixture(t, db, 60)
	tests := []storage.Filter{
		{},
		{Limit: 5},
		{Channel: interaction.Chat},
		{Channel: interaction.Message, Limit: 3},
		{From: t0.Add(10 * time.Minute), To: t0.Add(20 * time.Minute)},
		{From: t0.Add(10 * time.Minute)},
		{To: t0.Add(10 * time.Minute)},
		{Agent: "1002"},
		{Agent: "1002", Channel: interaction.Chat},
		{Agent: "1003", From: t0.Add(30 * time.Minute), Limit: 2},
		{Taxpayer: "tp3"},
		{Taxpayer: "tp3", Channel: interaction.Phone, To: t0.Add(40 * time.Minute)},
		{Agent: "nobody"},
		{From: t0.Add(time.Hour * 5)},
	}
	for _, f := range tests {
		t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
			var want []interaction.ID
			for i := len(recs) - 1; i >= 0; i-- {
				r := recs[i]
				if f.Channel != 0 && r.Channel != f.Channel ||
					f.Agent != "" && r.Agent != f.Agent ||
					f.Taxpayer != "" && r.TaxpayerID != f.Taxpayer ||
					!f.From.IsZero() && r.OfferedAt.Before(f.From) ||
					!f.To.IsZero() && !r.OfferedAt.Before(f.To) {
					continue
				}
				if f.Limit > 0 && len(want) == f.Limit {
					break
				}
				want = append(want, r.ID)
			}
			got, err := db.List(f)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []interaction.ID
			for _, r := range got {
				gotIDs = append(gotIDs, r.ID)
			}
			if !slices.Equal(gotIDs, want) {
				t.Errorf("got  %v\nwant %v", gotIDs, want)
			}
		})
	}
}

func TestSyncAndClose(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := interaction.NewID(t0)
	for i := range 500 {
		db.Emit(interaction.Event{Type: interaction.ChatMessage, At: t0.Add(time.Duration(i)), ID: id, Data: map[string]string{"seq": strconv.Itoa(i)}})
	}
	if err := db.Sync(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if evs, _ := db.Events(id); len(evs) != 500 {
		t.Fatalf("after Sync: %d events, want 500", len(evs))
	}
	// Close drains what is still queued.
	for i := 500; i < 1500; i++ {
		db.Emit(interaction.Event{Type: interaction.ChatMessage, At: t0.Add(time.Duration(i)), ID: id, Data: map[string]string{"seq": strconv.Itoa(i)}})
	}
	if err := db.Healthy(); err != nil {
		t.Errorf("Healthy = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Healthy(); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Healthy after Close = %v, want ErrClosed", err)
	}
	if err := db.Sync(ctx(t)); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Sync after Close = %v, want ErrClosed", err)
	}
	if err := db.Append(ctx(t), interaction.Event{ID: id}); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	db.Emit(interaction.Event{ID: id}) // dropped, must not block or panic
	if err := db.Close(); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}

	db = storagetest.OpenDir(t, dir, storage.Options{})
	evs, err := db.Events(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1500 {
		t.Fatalf("after reopen: %d events, want 1500", len(evs))
	}
	for i, ev := range evs {
		if ev.Data["seq"] != strconv.Itoa(i) {
			t.Fatalf("event %d has seq %s", i, ev.Data["seq"])
		}
	}
}

func TestAppendContextEnds(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	c, cancel := context.WithCancel(context.Background())
	cancel()
	id := interaction.NewID(t0)
	// The wait ends with ctx, but the events are still written.
	if err := db.Append(c, storagetest.Call(id, t0, "etax", "1001", "")...); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context = %v, want context.Canceled", err)
	}
	if err := db.Sync(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if evs, _ := db.Events(id); len(evs) != 4 {
		t.Errorf("%d events, want 4", len(evs))
	}
}

func TestConcurrentEmitKeepsProducerOrder(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	const producers, each = 32, 200
	var wg sync.WaitGroup
	ids := make([]interaction.ID, producers)
	for p := range producers {
		ids[p] = interaction.ID(fmt.Sprintf("producer%02d", p))
		wg.Go(func() {
			for i := range each {
				ev := interaction.Event{Type: interaction.ChatMessage, At: t0, ID: ids[p], Data: map[string]string{"n": strconv.Itoa(i)}}
				if i%50 == 49 {
					if err := db.Append(context.Background(), ev); err != nil {
						t.Error(err)
					}
					continue
				}
				db.Emit(ev)
			}
		})
	}
	wg.Wait()
	if err := db.Sync(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		evs, err := db.Events(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != each {
			t.Fatalf("%s: %d events, want %d", id, len(evs), each)
		}
		for i, ev := range evs {
			if ev.Data["n"] != strconv.Itoa(i) || (i > 0 && ev.Seq <= evs[i-1].Seq) {
				t.Fatalf("%s: event %d is n=%s seq=%d (previous seq %d)", id, i, ev.Data["n"], ev.Seq, evs[max(i-1, 0)].Seq)
			}
		}
	}
}

func TestRecoveryClosesLiveInteractions(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	queued, ringing, connected, done, ticket := interaction.ID("queued"), interaction.ID("ringing"), interaction.ID("connected"), interaction.ID("done"), interaction.ID("ticket")
	ackBy := t0.Add(24 * time.Hour)
	answerBy := t0.Add(48 * time.Hour)
	evs := []interaction.Event{
		{Type: interaction.Offered, At: t0, ID: queued, Channel: interaction.Chat, Queue: "etax"},
		{Type: interaction.Offered, At: t0, ID: ringing, Channel: interaction.Phone, Queue: "etax"},
		{Type: interaction.RingStarted, At: t0, ID: ringing, Agent: "1001"},
		{Type: interaction.Offered, At: t0, ID: connected, Channel: interaction.Phone, Queue: "etax"},
		{Type: interaction.Answered, At: t0, ID: connected, Agent: "1002"},
		{Type: interaction.Offered, At: t0, ID: done, Channel: interaction.Phone, Queue: "etax"},
		{Type: interaction.Ended, At: t0, ID: done, Reason: interaction.ReasonAbandoned},
		{Type: interaction.TicketCreated, At: t0, ID: ticket, Channel: interaction.Message, Queue: "etax",
			Data: map[string]string{"ack_by": ackBy.Format(time.RFC3339), "answer_by": answerBy.Format(time.RFC3339)}},
	}
	if err := db.Append(ctx(t), evs...); err != nil {
		t.Fatal(err)
	}
	if live, _ := storage.LiveIDs(db); len(live) != 3 {
		t.Fatalf("live = %v, want 3 ids", live)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	restart := t0.Add(time.Hour)
	db = storagetest.OpenDir(t, dir, storage.Options{Now: func() time.Time { return restart }})
	var got []interaction.ID
	for _, r := range db.Recovered() {
		got = append(got, r.ID)
		if r.State != interaction.StateEnded || r.Reason != interaction.ReasonSystemRestart || !r.EndedAt.Equal(restart) {
			t.Errorf("recovered %s: state %v reason %v ended %v", r.ID, r.State, r.Reason, r.EndedAt)
		}
		evs, _ := db.Events(r.ID)
		last := evs[len(evs)-1]
		if last.Type != interaction.Ended || last.Actor != interaction.ActorSystem || last.Reason != interaction.ReasonSystemRestart {
			t.Errorf("recovered %s: last event %+v", r.ID, last)
		}
	}
	slices.Sort(got)
	if want := []interaction.ID{connected, queued, ringing}; !slices.Equal(got, want) {
		t.Errorf("Recovered = %v, want %v", got, want)
	}
	if live, _ := storage.LiveIDs(db); len(live) != 0 {
		t.Errorf("live after recovery = %v", live)
	}
	if r, _ := db.Interaction(done); r.Reason != interaction.ReasonAbandoned {
		t.Errorf("ended interaction changed: %+v", r)
	}
	// Open tickets are not live: they stay open, with their stored deadlines.
	open, err := db.OpenTickets()
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].ID != ticket || !open[0].AckBy.Equal(ackBy) || !open[0].AnswerBy.Equal(answerBy) {
		t.Errorf("OpenTickets = %+v", open)
	}
	// Answering the ticket takes it out of the open set.
	if err := db.Append(ctx(t), interaction.Event{Type: interaction.TicketAnswered, At: restart, ID: ticket, Agent: "1001"}); err != nil {
		t.Fatal(err)
	}
	if open, _ := db.OpenTickets(); len(open) != 0 {
		t.Errorf("OpenTickets after answer = %+v", open)
	}
}

func TestScanEvents(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	// Append out of time order: ScanEvents returns time order.
	var evs []interaction.Event
	for i := range 2500 {
		at := t0.Add(time.Duration((i*7919)%2500) * time.Second)
		evs = append(evs, interaction.Event{Type: interaction.AgentState, At: at, Agent: "1001", Data: map[string]string{"i": strconv.Itoa(i)}})
	}
	if err := db.Append(ctx(t), evs...); err != nil {
		t.Fatal(err)
	}
	var got []time.Time
	from, to := t0.Add(100*time.Second), t0.Add(2200*time.Second)
	if err := db.ScanEvents(from, to, func(ev interaction.Event) error {
		got = append(got, ev.At)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2100 {
		t.Fatalf("scanned %d events, want 2100", len(got))
	}
	if !got[0].Equal(from) || !got[len(got)-1].Equal(to.Add(-time.Second)) {
		t.Errorf("range %v..%v", got[0], got[len(got)-1])
	}
	if !slices.IsSortedFunc(got, func(a, b time.Time) int { return a.Compare(b) }) {
		t.Error("not in time order")
	}
	stop := errors.New("stop")
	n := 0
	if err := db.ScanEvents(time.Time{}, time.Time{}, func(interaction.Event) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	}); !errors.Is(err, stop) || n != 10 {
		t.Errorf("stopping scan: err %v after %d", err, n)
	}
}

func TestBlobsDir(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	b := db.Blobs()
	for _, name := range []string{"../x", "a/../../x", "/etc/passwd", "", "a/./b", ".."} {
		if _, err := b.Create(name); !errors.Is(err, storage.ErrBadBlobName) {
			t.Errorf("Create(%q) = %v, want ErrBadBlobName", name, err)
		}
		if _, err := b.Open(name); !errors.Is(err, storage.ErrBadBlobName) {
			t.Errorf("Open(%q) = %v, want ErrBadBlobName", name, err)
		}
	}
	w, err := b.Create("2026/03/02/a.wav")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("RIFF")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := b.List(func(n string) error { names = append(names, n); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"2026/03/02/a.wav"}) {
		t.Errorf("List = %v", names)
	}
}

func TestIndexesFollowUpdates(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	id := interaction.ID("moving")
	if err := db.Append(ctx(t),
		interaction.Event{Type: interaction.Offered, At: t0, ID: id, Channel: interaction.Chat},
		interaction.Event{Type: interaction.RingStarted, At: t0, ID: id, Agent: "1001"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Append(ctx(t),
		interaction.Event{Type: interaction.RingFailed, At: t0, ID: id, Agent: "1001"},
		interaction.Event{Type: interaction.Requeued, At: t0, ID: id}); err != nil {
		t.Fatal(err)
	}
	// Re-offered (a transfer into a new queue) moves the time key.
	if err := db.Append(ctx(t), interaction.Event{Type: interaction.Offered, At: t0.Add(time.Hour), ID: id, Channel: interaction.Phone}); err != nil {
		t.Fatal(err)
	}
	keys, err := storage.IndexKeys(db)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"by_time": 1, "by_channel": 1, "by_agent": 0, "by_taxpayer": 0, "live": 1, "open": 0, "interactions": 1}
	for b, n := range want {
		if keys[b] != n {
			t.Errorf("%s has %d keys, want %d (all: %v)", b, keys[b], n, keys)
		}
	}
	if l, _ := db.List(storage.Filter{Channel: interaction.Chat}); len(l) != 0 {
		t.Errorf("stale channel index: %v", l)
	}
	if l, _ := db.List(storage.Filter{From: t0.Add(time.Minute)}); len(l) != 1 {
		t.Errorf("time index not moved: %v", l)
	}
}

func TestBadEventDoesNotSinkOthers(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	good := interaction.ID("good")
	bad := interaction.ID(strings.Repeat("x", 40000)) // longer than a bbolt key may be
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		db.Emit(interaction.Event{Type: interaction.ChatMessage, At: t0, ID: good, Data: map[string]string{"n": strconv.Itoa(i)}})
		wg.Go(func() {
			errs <- db.Append(context.Background(), interaction.Event{Type: interaction.ChatMessage, At: t0, ID: bad})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			t.Error("Append of an oversized id succeeded")
		}
	}
	if err := db.Healthy(); err == nil {
		t.Error("Healthy = nil after a failed commit")
	}
	if err := db.Sync(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// An emitted event that cannot be written makes the next Sync fail.
	db.Emit(interaction.Event{Type: interaction.ChatMessage, At: t0, ID: bad})
	if err := db.Sync(ctx(t)); err == nil {
		t.Error("Sync = nil after an emitted event was lost")
	}
	if err := db.Sync(ctx(t)); err != nil {
		t.Errorf("next Sync = %v", err)
	}
	if evs, _ := db.Events(good); len(evs) != 10 {
		t.Errorf("good events stored: %d, want 10", len(evs))
	}
	if err := db.Append(ctx(t), interaction.Event{Type: interaction.ConfigReloaded, At: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.Healthy(); err != nil {
		t.Errorf("Healthy after a good commit = %v", err)
	}
}

func TestHealthyReportsStalledCommit(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	storage.PretendCommitSince(db, time.Now().Add(-time.Minute))
	if err := db.Healthy(); err == nil {
		t.Error("Healthy = nil with a commit stuck for a minute")
	}
	storage.PretendCommitSince(db, time.Time{})
	if err := db.Healthy(); err != nil {
		t.Errorf("Healthy = %v when idle", err)
	}
}
