package storage_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/storage"
	"github.com/taxline/taxline/storage/storagetest"
)

// FuzzVerify feeds Verify arbitrary input: an export handed over by another
// provider is outside input. Verify must never panic, and must only accept
// input whose manifest matches what it counted.
func FuzzVerify(f *testing.F) {
	db, err := storage.Open(f.TempDir(), storage.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		f.Fatal(err)
	}
	id := interaction.ID("fuzz")
	if err := db.Append(f.Context(), storagetest.Call(id, t0, "etax", "1001", "tp")...); err != nil {
		f.Fatal(err)
	}
	db.Emit(interaction.Event{Type: interaction.AgentState, At: t0, Agent: "1001"})
	var buf bytes.Buffer
	if err := db.Export(&buf); err != nil {
		f.Fatal(err)
	}
	if err := db.Close(); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"kind":"manifest","sha256":"","data":{}}`))
	f.Add([]byte(`{"kind":"interaction","sha256":"x","data":{"events":[]}}` + "\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := storage.Verify(bytes.NewReader(in), nil)
		if err != nil {
			if !errors.Is(err, storage.ErrExportInvalid) {
				t.Fatalf("error not wrapping ErrExportInvalid: %v", err)
			}
			return
		}
		if m.Format != storage.ExportFormat || m.Lines < m.Interactions {
			t.Fatalf("accepted an inconsistent manifest: %+v", m)
		}
	})
}
