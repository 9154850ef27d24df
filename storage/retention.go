package storage

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/taxline/taxline/interaction"
)

// purgeChunk is how many interactions one Purge transaction deletes.
const purgeChunk = 500

// Purge deletes every interaction that ended before the cutoff: its record,
// its events, its index keys and its recording blob. It also deletes log
// events older than the cutoff that belong to no stored interaction (agent
// states, config reloads). Live interactions and open tickets are kept
// whatever their age. It returns how many interactions it deleted.
//
// RULES.md S3 asks for three years: call Purge(now.AddDate(-3, 0, 0)).
// bbolt reuses freed pages but does not zero them; to leave no bytes of
// purged data in the file, run Compact on the closed store afterwards.
func (db *DB) Purge(before time.Time) (int, error) {
	if err := db.Healthy(); errors.Is(err, ErrClosed) {
		return 0, err
	}
	n := 0
	resume := []byte{}
	limit := timeKey(before)
	for resume != nil {
		var ids []interaction.ID
		cursor := resume
		resume = nil
		err := db.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketByTime).Cursor()
			for k, _ := c.Seek(cursor); k != nil; k, _ = c.Next() {
				if len(k) < 8 || binary.BigEndian.Uint64(k) >= limit {
					return nil
				}
				if len(ids) == purgeChunk {
					resume = append([]byte(nil), k...)
					return nil
				}
				id := interaction.ID(k[8:])
				r, err := getRecord(tx, id)
				if err != nil {
					return err
				}
				if purgeable(&r, before) {
					ids = append(ids, id)
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		var blobs []string
		deleted := 0
		err = db.bolt.Update(func(tx *bolt.Tx) error {
			blobs, deleted = blobs[:0], 0
			for _, id := range ids {
				r, err := getRecord(tx, id)
				if errors.Is(err, ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				if !purgeable(&r, before) {
					continue // an event arrived since the scan
				}
				evs, err := eventsOf(tx, id)
				if err != nil {
					return err
				}
				if err := deleteInteraction(tx, &r); err != nil {
					return fmt.Errorf("storage: purge %s: %w", id, err)
				}
				deleted++
				blobs = append(blobs, recordingsOf(&r, evs)...)
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += deleted
		for _, name := range blobs {
			err := db.blobs.Remove(name)
			if errors.Is(err, ErrBadBlobName) {
				db.log.Warn("storage: purge: recording name is not a blob name; skipped", "name", name)
				continue
			}
			if err != nil {
				return n, fmt.Errorf("storage: purge recording %q: %w", name, err)
			}
		}
	}
	return n, db.purgeLooseEvents(before)
}

// recordingsOf lists the blob names of an interaction: one per
// RecordingStarted (a transferred call can have several) and the record's.
func recordingsOf(r *interaction.Record, evs []interaction.Event) []string {
	var names []string
	add := func(n string) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, ev := range evs {
		if ev.Type == interaction.RecordingStarted {
			add(ev.Data["recording"])
		}
	}
	add(r.Recording)
	return names
}

func purgeable(r *interaction.Record, before time.Time) bool {
	return r.State == interaction.StateEnded && !r.EndedAt.IsZero() && r.EndedAt.Before(before)
}

// deleteInteraction removes r and everything that points at it.
func deleteInteraction(tx *bolt.Tx, r *interaction.Record) error {
	prefix := ieventPrefix(r.ID)
	var keys [][]byte
	c := tx.Bucket(bucketIEvents).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if len(k) == len(prefix)+8 {
			seq := binary.BigEndian.Uint64(k[len(prefix):])
			if err := deleteEvent(tx, seq); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketIEvents).Delete(k); err != nil {
			return err
		}
	}
	if err := moveIndex(tx, indexEntries(r), nil); err != nil {
		return err
	}
	for _, b := range [][]byte{bucketLive, bucketOpen, bucketInteractions} {
		if err := tx.Bucket(b).Delete([]byte(r.ID)); err != nil {
			return err
		}
	}
	return nil
}

func deleteEvent(tx *bolt.Tx, seq uint64) error {
	ev, err := getEvent(tx, seq)
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if err := tx.Bucket(bucketEventTime).Delete(eventTimeKey(ev.At, seq)); err != nil {
		return err
	}
	return tx.Bucket(bucketEvents).Delete(seqKey(seq))
}

// purgeLooseEvents deletes events older than before that have no stored
// interaction: id-less events and leftovers of purged ones.
func (db *DB) purgeLooseEvents(before time.Time) error {
	limit := timeKey(before)
	resume := []byte{}
	for resume != nil {
		cursor := resume
		resume = nil
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			var doomed []uint64
			var ids []interaction.ID
			c := tx.Bucket(bucketEventTime).Cursor()
			seen := 0
			for k, _ := c.Seek(cursor); k != nil; k, _ = c.Next() {
				if len(k) != 16 || binary.BigEndian.Uint64(k) >= limit {
					break
				}
				if seen == scanChunk {
					resume = append([]byte(nil), k...)
					break
				}
				seen++
				seq := binary.BigEndian.Uint64(k[8:])
				ev, err := getEvent(tx, seq)
				if err != nil {
					return err
				}
				if ev.ID != "" && tx.Bucket(bucketInteractions).Get([]byte(ev.ID)) != nil {
					continue
				}
				doomed = append(doomed, seq)
				ids = append(ids, ev.ID)
			}
			for i, seq := range doomed {
				if err := deleteEvent(tx, seq); err != nil {
					return err
				}
				if ids[i] != "" {
					if err := tx.Bucket(bucketIEvents).Delete(ieventKey(ids[i], seq)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("storage: purge events: %w", err)
		}
	}
	return nil
}

// Export line kinds.
const (
	KindInteraction = "interaction"
	KindEvent       = "event"
	KindManifest    = "manifest"
)

// ExportLine is one line of an export: Data is the payload and SHA256 the
// hex SHA-256 of Data's exact bytes.
type ExportLine struct {
	Kind   string          `json:"kind"`
	SHA256 string          `json:"sha256"`
	Data   json.RawMessage `json:"data"`
}

// ExportInteractionData is the payload of an "interaction" line.
type ExportInteractionData struct {
	Record     interaction.Record  `json:"record"`
	Events     []interaction.Event `json:"events"`
	Recordings []*ExportRecording  `json:"recordings,omitempty"`
}

// ExportRecording describes a recording blob of an interaction; the blob
// itself is handed over as a file (dir/recordings/NAME).
type ExportRecording struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256,omitempty"`
	Missing bool   `json:"missing,omitempty"`
}

// ExportManifest is the payload of the last line. Chain is the hex SHA-256
// of every earlier line's SHA256 followed by a newline, in order, so a
// dropped, reordered or added line is detected.
type ExportManifest struct {
	Format       string    `json:"format"`
	Schema       int       `json:"schema"`
	ExportedAt   time.Time `json:"exported_at"`
	Interactions int       `json:"interactions"`
	Events       int       `json:"events"`
	Recordings   int       `json:"recordings"`
	Lines        int       `json:"lines"`
	Chain        string    `json:"chain"`
}

// ExportFormat names the export format in its manifest.
const ExportFormat = "taxline-export/1"

// Export writes every interaction (record, events, recording checksum) and
// every event that belongs to no interaction as JSON lines, each with the
// SHA-256 of its payload, then a manifest line (RULES.md D2). It reads in
// chunks, so it does not stall the writer. Verify checks the result.
func (db *DB) Export(w io.Writer) error {
	bw := bufio.NewWriter(w)
	chain := sha256.New()
	var m ExportManifest
	line := func(kind string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		fmt.Fprintf(bw, `{"kind":%q,"sha256":%q,"data":`, kind, h)
		_, _ = bw.Write(data) // bufio errors are sticky: the next write reports them
		if _, err := bw.WriteString("}\n"); err != nil {
			return err
		}
		if kind != KindManifest {
			chain.Write([]byte(h + "\n"))
			m.Lines++
		}
		return nil
	}

	// Interactions in id order.
	resume := []byte{}
	for resume != nil {
		var chunk []ExportInteractionData
		cursor := resume
		resume = nil
		err := db.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketInteractions).Cursor()
			for k, v := c.Seek(cursor); k != nil; k, v = c.Next() {
				if len(chunk) == scanChunk {
					resume = append([]byte(nil), k...)
					return nil
				}
				var d ExportInteractionData
				if err := decodeRecord(v, &d.Record); err != nil {
					return fmt.Errorf("storage: decode record %s: %w", k, err)
				}
				evs, err := eventsOf(tx, interaction.ID(k))
				if err != nil {
					return err
				}
				d.Events = evs
				chunk = append(chunk, d)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := range chunk {
			d := &chunk[i]
			for _, name := range recordingsOf(&d.Record, d.Events) {
				d.Recordings = append(d.Recordings, db.hashBlob(name))
				m.Recordings++
			}
			if d.Events == nil {
				d.Events = []interaction.Event{}
			}
			if err := line(KindInteraction, d); err != nil {
				return fmt.Errorf("storage: export: %w", err)
			}
			m.Interactions++
			m.Events += len(d.Events)
		}
	}

	// Events that belong to no stored interaction, in log order.
	resume = []byte{}
	for resume != nil {
		var chunk []interaction.Event
		cursor := resume
		resume = nil
		err := db.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketEvents).Cursor()
			seen := 0
			for k, v := c.Seek(cursor); k != nil; k, v = c.Next() {
				if seen == scanChunk {
					resume = append([]byte(nil), k...)
					return nil
				}
				seen++
				var ev interaction.Event
				if err := json.Unmarshal(v, &ev); err != nil {
					return fmt.Errorf("storage: decode event: %w", err)
				}
				if ev.ID != "" && tx.Bucket(bucketInteractions).Get([]byte(ev.ID)) != nil {
					continue
				}
				chunk = append(chunk, ev)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, ev := range chunk {
			if err := line(KindEvent, ev); err != nil {
				return fmt.Errorf("storage: export: %w", err)
			}
			m.Events++
		}
	}

	m.Format = ExportFormat
	m.Schema = SchemaVersion
	m.ExportedAt = db.now().UTC()
	m.Chain = hex.EncodeToString(chain.Sum(nil))
	if err := line(KindManifest, m); err != nil {
		return fmt.Errorf("storage: export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("storage: export: %w", err)
	}
	return nil
}

func (db *DB) hashBlob(name string) *ExportRecording {
	rec := &ExportRecording{Name: name}
	f, err := db.blobs.Open(name)
	if err != nil {
		rec.Missing = true
		return rec
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		rec.Missing = true
		return rec
	}
	rec.Size = n
	rec.SHA256 = hex.EncodeToString(h.Sum(nil))
	return rec
}

// ErrExportInvalid is returned by Verify for an export that does not check.
var ErrExportInvalid = errors.New("storage: export does not verify")

// Verify reads an export written by Export and checks every line's
// checksum, the manifest's counts and chain, and, when blobs is not nil,
// every recording's size and checksum against blobs. It returns the
// manifest.
func Verify(r io.Reader, blobs Blobs) (ExportManifest, error) {
	dec := json.NewDecoder(r)
	chain := sha256.New()
	var got ExportManifest
	var manifest *ExportManifest
	for lineNo := 1; ; lineNo++ {
		var l ExportLine
		err := dec.Decode(&l)
		if err == io.EOF {
			break
		}
		if err != nil {
			return got, fmt.Errorf("%w: line %d: %w", ErrExportInvalid, lineNo, err)
		}
		if manifest != nil {
			return got, fmt.Errorf("%w: line %d: data after the manifest", ErrExportInvalid, lineNo)
		}
		sum := sha256.Sum256(l.Data)
		if hex.EncodeToString(sum[:]) != l.SHA256 {
			return got, fmt.Errorf("%w: line %d: checksum mismatch", ErrExportInvalid, lineNo)
		}
		switch l.Kind {
		case KindInteraction:
			// Not ExportInteractionData: Verify checks the framing and
			// must not depend on decoding every record field.
			var d struct {
				Events     []json.RawMessage  `json:"events"`
				Recordings []*ExportRecording `json:"recordings"`
			}
			if err := json.Unmarshal(l.Data, &d); err != nil {
				return got, fmt.Errorf("%w: line %d: %w", ErrExportInvalid, lineNo, err)
			}
			got.Interactions++
			got.Events += len(d.Events)
			for _, rec := range d.Recordings {
				got.Recordings++
				if blobs != nil {
					if err := verifyBlob(blobs, rec); err != nil {
						return got, fmt.Errorf("%w: line %d: %w", ErrExportInvalid, lineNo, err)
					}
				}
			}
		case KindEvent:
			got.Events++
		case KindManifest:
			manifest = new(ExportManifest)
			if err := json.Unmarshal(l.Data, manifest); err != nil {
				return got, fmt.Errorf("%w: line %d: %w", ErrExportInvalid, lineNo, err)
			}
			continue
		default:
			return got, fmt.Errorf("%w: line %d: unknown kind %q", ErrExportInvalid, lineNo, l.Kind)
		}
		chain.Write([]byte(l.SHA256 + "\n"))
		got.Lines++
	}
	if manifest == nil {
		return got, fmt.Errorf("%w: no manifest (truncated?)", ErrExportInvalid)
	}
	got.Chain = hex.EncodeToString(chain.Sum(nil))
	m := *manifest
	if m.Format != ExportFormat || m.Interactions != got.Interactions || m.Events != got.Events ||
		m.Recordings != got.Recordings || m.Lines != got.Lines || m.Chain != got.Chain {
		return m, fmt.Errorf("%w: manifest says %d interactions, %d events, %d recordings, %d lines, chain %s; found %d, %d, %d, %d, %s",
			ErrExportInvalid, m.Interactions, m.Events, m.Recordings, m.Lines, m.Chain,
			got.Interactions, got.Events, got.Recordings, got.Lines, got.Chain)
	}
	return m, nil
}

func verifyBlob(blobs Blobs, rec *ExportRecording) error {
	if rec.Missing {
		return nil // reported missing at export time; nothing to compare
	}
	f, err := blobs.Open(rec.Name)
	if err != nil {
		return fmt.Errorf("recording %q: %w", rec.Name, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("recording %q: %w", rec.Name, err)
	}
	if n != rec.Size || hex.EncodeToString(h.Sum(nil)) != rec.SHA256 {
		return fmt.Errorf("recording %q: size or checksum mismatch", rec.Name)
	}
	return nil
}
