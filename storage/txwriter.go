package storage

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/taxline/taxline/interaction"
)

// txWriter appends events inside one write transaction and folds them into
// their records. Records touched by several events of the batch are read and
// written once; their index keys are fixed up in flush.
type txWriter struct {
	tx           *bolt.Tx
	events       *bolt.Bucket
	eventTime    *bolt.Bucket
	ievents      *bolt.Bucket
	interactions *bolt.Bucket
	touched      map[interaction.ID]*touchedRecord
	order        []interaction.ID
}

type touchedRecord struct {
	old     interaction.Record
	existed bool
	cur     interaction.Record
}

func newTxWriter(tx *bolt.Tx) *txWriter {
	return &txWriter{
		tx:           tx,
		events:       tx.Bucket(bucketEvents),
		eventTime:    tx.Bucket(bucketEventTime),
		ievents:      tx.Bucket(bucketIEvents),
		interactions: tx.Bucket(bucketInteractions),
		touched:      make(map[interaction.ID]*touchedRecord),
	}
}

// append gives ev the next sequence number, writes it to the log and folds
// it into its record. Events without an ID (agent state, config reloads)
// only go to the log; Audit events are indexed under the interaction they
// read but do not change its record.
func (w *txWriter) append(ev interaction.Event) (uint64, error) {
	seq, err := w.events.NextSequence()
	if err != nil {
		return 0, err
	}
	ev.Seq = seq
	data, err := json.Marshal(ev)
	if err != nil {
		return 0, fmt.Errorf("encode event: %w", err)
	}
	if err := w.events.Put(seqKey(seq), data); err != nil {
		return 0, err
	}
	if err := w.eventTime.Put(eventTimeKey(ev.At, seq), nil); err != nil {
		return 0, err
	}
	if ev.ID == "" {
		return seq, nil
	}
	if err := w.ievents.Put(ieventKey(ev.ID, seq), nil); err != nil {
		return 0, err
	}
	if ev.Type == interaction.Audit {
		return seq, nil
	}
	t, err := w.record(ev.ID)
	if err != nil {
		return 0, err
	}
	t.cur.Apply(ev)
	return seq, nil
}

func (w *txWriter) record(id interaction.ID) (*touchedRecord, error) {
	if t, ok := w.touched[id]; ok {
		return t, nil
	}
	t := &touchedRecord{}
	if v := w.interactions.Get([]byte(id)); v != nil {
		if err := decodeRecord(v, &t.old); err != nil {
			return nil, fmt.Errorf("decode record %s: %w", id, err)
		}
		t.existed = true
	}
	t.cur = t.old
	w.touched[id] = t
	w.order = append(w.order, id)
	return t, nil
}

// flush writes the touched records and moves their index keys.
func (w *txWriter) flush() error {
	for _, id := range w.order {
		t := w.touched[id]
		data, err := encodeRecord(&t.cur)
		if err != nil {
			return fmt.Errorf("encode record %s: %w", id, err)
		}
		if err := w.interactions.Put([]byte(id), data); err != nil {
			return err
		}
		var old []indexEntry
		if t.existed {
			old = indexEntries(&t.old)
		}
		if err := moveIndex(w.tx, old, indexEntries(&t.cur)); err != nil {
			return err
		}
		if err := setMember(w.tx.Bucket(bucketLive), id, t.cur.Live()); err != nil {
			return err
		}
		if err := setMember(w.tx.Bucket(bucketOpen), id, t.cur.State == interaction.StateOpen); err != nil {
			return err
		}
	}
	return nil
}

// moveIndex deletes the keys in old that are not in cur and puts the keys
// in cur that are not in old.
func moveIndex(tx *bolt.Tx, old, cur []indexEntry) error {
	keep := make(map[indexEntry]bool, len(cur))
	for _, e := range cur {
		keep[e] = true
	}
	had := make(map[indexEntry]bool, len(old))
	for _, e := range old {
		had[e] = true
		if !keep[e] {
			if err := tx.Bucket([]byte(e.bucket)).Delete([]byte(e.key)); err != nil {
				return err
			}
		}
	}
	for _, e := range cur {
		if !had[e] {
			if err := tx.Bucket([]byte(e.bucket)).Put([]byte(e.key), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func setMember(b *bolt.Bucket, id interaction.ID, in bool) error {
	if in {
		return b.Put([]byte(id), nil)
	}
	return b.Delete([]byte(id))
}
