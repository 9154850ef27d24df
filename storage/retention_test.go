package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/storage"
	"github.com/taxline/taxline/storage/storagetest"
)

func writeBlob(t *testing.T, b storage.Blobs, name, content string) {
	t.Helper()
	w, err := b.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// retentionFixture stores: an old ended call with a recording, an old call
// still live, an old open ticket, a recent ended call, an old and a recent
// agent event.
func retentionFixture(t *testing.T, db *storage.DB) (old, oldLive, oldTicket, recent interaction.ID, cutoff time.Time) {
	t.Helper()
	oldAt := t0.AddDate(-3, -1, 0)
	cutoff = t0.AddDate(-3, 0, 0)
	old, oldLive, oldTicket, recent = "old", "oldlive", "oldticket", "recent"
	evs := storagetest.Call(old, oldAt, "etax", "1001", "tp1")
	evs = append(evs[:3:3],
		interaction.Event{Type: interaction.RecordingStarted, At: oldAt, ID: old, Data: map[string]string{"recording": "old.wav"}},
		// After a transfer, a second recording: both must be purged and exported.
		interaction.Event{Type: interaction.RecordingStarted, At: oldAt, ID: old, Data: map[string]string{"recording": "2023/old-2.wav"}},
		evs[3])
	evs = append(evs, interaction.Event{Type: interaction.Audit, At: t0, ID: old, Actor: "token:auditor", Data: map[string]string{"what": "recording"}})
	evs = append(evs, storagetest.Call(oldLive, oldAt, "etax", "1002", "tp1")[:3]...)
	evs = append(evs, interaction.Event{Type: interaction.TicketCreated, At: oldAt, ID: oldTicket, Channel: interaction.Message,
		Data: map[string]string{"taxpayer_id": "tp1", "ack_by": oldAt.Add(24 * time.Hour).Format(time.RFC3339)}})
	evs = append(evs, storagetest.Call(recent, t0, "etax", "1001", "tp1")...)
	evs = append(evs,
		interaction.Event{Type: interaction.AgentState, At: oldAt, Agent: "1001", Data: map[string]string{"state": "break"}},
		interaction.Event{Type: interaction.AgentState, At: t0, Agent: "1001", Data: map[string]string{"state": "available"}},
	)
	if err := db.Append(ctx(t), evs...); err != nil {
		t.Fatal(err)
	}
	writeBlob(t, db.Blobs(), "old.wav", "RIFF old audio")
	writeBlob(t, db.Blobs(), "2023/old-2.wav", "RIFF old audio after transfer")
	return
}

func TestPurge(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	old, oldLive, oldTicket, recent, cutoff := retentionFixture(t, db)
	before, err := storage.IndexKeys(db)
	if err != nil {
		t.Fatal(err)
	}

	n, err := db.Purge(cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("Purge = %d, want 1", n)
	}
	if _, err := db.Interaction(old); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("purged record still there: %v", err)
	}
	if evs, _ := db.Events(old); len(evs) != 0 {
		t.Errorf("purged events still there: %v", evs)
	}
	var left []string
	_ = db.Blobs().List(func(n string) error { left = append(left, n); return nil })
	if len(left) != 0 {
		t.Errorf("purged recordings still there: %v", left)
	}
	for _, id := range []interaction.ID{oldLive, oldTicket, recent} {
		if _, err := db.Interaction(id); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	for _, f := range []storage.Filter{{}, {Agent: "1001"}, {Taxpayer: "tp1"}, {Channel: interaction.Phone}} {
		l, _ := db.List(f)
		for _, r := range l {
			if r.ID == old {
				t.Errorf("List(%+v) still has the purged record", f)
			}
		}
	}
	var agentEvents []time.Time
	_ = db.ScanEvents(time.Time{}, time.Time{}, func(ev interaction.Event) error {
		if ev.ID == old {
			t.Errorf("scan still has purged event %+v", ev)
		}
		if ev.ID == "" {
			agentEvents = append(agentEvents, ev.At)
		}
		return nil
	})
	if len(agentEvents) != 1 || !agentEvents[0].Equal(t0) {
		t.Errorf("agent events after purge: %v, want only the recent one", agentEvents)
	}
	after, _ := storage.IndexKeys(db)
	// old had 7 events (4 call + 2 recordings + audit), one old agent event.
	wantGone := map[string]int{"events": 8, "event_time": 8, "ievents": 7, "interactions": 1, "by_time": 1, "by_channel": 1, "by_agent": 1, "by_taxpayer": 1, "live": 0, "open": 0}
	for b, d := range wantGone {
		if before[b]-after[b] != d {
			t.Errorf("%s: %d keys before, %d after; want %d fewer", b, before[b], after[b], d)
		}
	}
	// Idempotent.
	if n, err := db.Purge(cutoff); n != 0 || err != nil {
		t.Errorf("second Purge = %d, %v", n, err)
	}
}

func TestExportVerify(t *testing.T) {
	db := storagetest.Open(t, storage.Options{Now: func() time.Time { return t0 }})
	retentionFixture(t, db)
	var buf bytes.Buffer
	if err := db.Export(&buf); err != nil {
		t.Fatal(err)
	}
	m, err := storage.Verify(bytes.NewReader(buf.Bytes()), db.Blobs())
	if err != nil {
		t.Fatal(err)
	}
	// 4 interactions with 7+3+1+4 events, 2 agent events, 2 recordings.
	if m.Interactions != 4 || m.Events != 17 || m.Recordings != 2 || m.Lines != 6 || !m.ExportedAt.Equal(t0) {
		t.Errorf("manifest %+v", m)
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline

	tamper := map[string]string{
		"changed byte":      strings.Replace(buf.String(), "etax", "etaX", 1),
		"dropped line":      strings.Join(append(append([]string{}, lines[:1]...), lines[2:]...), ""),
		"reordered lines":   lines[1] + lines[0] + strings.Join(lines[2:], ""),
		"truncated":         strings.Join(lines[:len(lines)-1], ""),
		"appended":          buf.String() + lines[0],
		"manifest tampered": strings.Join(lines[:len(lines)-1], "") + strings.Replace(lines[len(lines)-1], `"interactions":4`, `"interactions":3`, 1),
	}
	for name, s := range tamper {
		if s == buf.String() {
			t.Fatalf("%s: tampering changed nothing", name)
		}
		if _, err := storage.Verify(strings.NewReader(s), nil); !errors.Is(err, storage.ErrExportInvalid) {
			t.Errorf("%s: Verify = %v, want ErrExportInvalid", name, err)
		}
	}
	// A changed recording is caught when the blobs are given.
	if err := db.Blobs().Remove("old.wav"); err != nil {
		t.Fatal(err)
	}
	writeBlob(t, db.Blobs(), "old.wav", "RIFF new audio")
	if _, err := storage.Verify(bytes.NewReader(buf.Bytes()), db.Blobs()); !errors.Is(err, storage.ErrExportInvalid) {
		t.Errorf("changed recording: Verify = %v, want ErrExportInvalid", err)
	}
}

func TestPurgeThenCompactLeavesNoTrace(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, recent, cutoff := retentionFixture(t, db)
	const marker = "purge-me-13912345678"
	oldAt := cutoff.AddDate(0, -2, 0)
	var evs []interaction.Event
	for i := range 200 { // enough to fill a few pages
		id := interaction.ID(fmt.Sprintf("gone%03d", i))
		evs = append(evs, storagetest.Call(id, oldAt, "etax", "1001", marker)...)
		evs = append(evs, interaction.Event{Type: interaction.ChatMessage, At: oldAt, ID: id, Data: map[string]string{"text": marker}})
	}
	if err := db.Append(ctx(t), evs...); err != nil {
		t.Fatal(err)
	}
	lastSeq := func(db *storage.DB) uint64 {
		var last uint64
		_ = db.ScanEvents(time.Time{}, time.Time{}, func(ev interaction.Event) error {
			last = max(last, ev.Seq)
			return nil
		})
		return last
	}
	before := lastSeq(db)
	if n, err := db.Purge(cutoff); err != nil || n != 201 {
		t.Fatalf("Purge = %d, %v; want 201", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Interaction(recent); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Interaction after Close = %v, want ErrClosed", err)
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, storage.DBFile)); !bytes.Contains(raw, []byte(marker)) {
		t.Log("note: the freed pages held no copy of the purged data even before Compact")
	}
	if err := storage.Compact(dir); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, storage.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(marker)) {
		t.Error("purged taxpayer data still in the file after Compact")
	}

	db = storagetest.OpenDir(t, dir, storage.Options{})
	if len(db.Recovered()) != 1 { // the old live call, as after any restart
		t.Errorf("Recovered = %d records, want 1", len(db.Recovered()))
	}
	if r, err := db.Interaction(recent); err != nil || r.Agent != "1001" {
		t.Errorf("recent after compact: %+v, %v", r, err)
	}
	if l, _ := db.List(storage.Filter{Taxpayer: marker}); len(l) != 0 {
		t.Errorf("List(marker) = %d records", len(l))
	}
	// Sequence numbers are never reused after purge and compaction.
	seqs, err := storage.AppendSeq(ctx(t), db, interaction.Event{Type: interaction.ConfigReloaded, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	if seqs[0] <= before {
		t.Errorf("new seq %d, want > %d", seqs[0], before)
	}
}
