package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/taxline/taxline/interaction"
)

// Filter selects interactions for List. Zero fields do not filter.
type Filter struct {
	// Channel keeps only this channel.
	Channel interaction.Channel
	// From and To bound OfferedAt: From ≤ offered_at < To.
	From, To time.Time
	// Agent keeps only interactions whose (last) agent is this one.
	Agent string
	// Taxpayer keeps only interactions with this taxpayer id or phone.
	Taxpayer string
	// Limit caps the result; 0 means no cap.
	Limit int
}

// scanChunk is how many items a long scan reads per read transaction, so a
// slow consumer never holds one open for long.
const scanChunk = 1000

// view runs fn in a read transaction; after Close it returns ErrClosed.
func (db *DB) view(fn func(*bolt.Tx) error) error {
	err := db.bolt.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Interaction returns the record of id, or ErrNotFound.
func (db *DB) Interaction(id interaction.ID) (interaction.Record, error) {
	var r interaction.Record
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		r, err = getRecord(tx, id)
		return err
	})
	return r, err
}

func getRecord(tx *bolt.Tx, id interaction.ID) (interaction.Record, error) {
	var r interaction.Record
	v := tx.Bucket(bucketInteractions).Get([]byte(id))
	if v == nil {
		return r, fmt.Errorf("%w: interaction %q", ErrNotFound, id)
	}
	if err := decodeRecord(v, &r); err != nil {
		return r, fmt.Errorf("storage: decode record %s: %w", id, err)
	}
	return r, nil
}

func getEvent(tx *bolt.Tx, seq uint64) (interaction.Event, error) {
	var ev interaction.Event
	v := tx.Bucket(bucketEvents).Get(seqKey(seq))
	if v == nil {
		return ev, fmt.Errorf("%w: event %d", ErrNotFound, seq)
	}
	if err := json.Unmarshal(v, &ev); err != nil {
		return ev, fmt.Errorf("storage: decode event %d: %w", seq, err)
	}
	return ev, nil
}

// Events returns the events of id in log order (its Audit events included).
// An id with no events gives an empty slice and no error.
func (db *DB) Events(id interaction.ID) ([]interaction.Event, error) {
	var out []interaction.Event
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		out, err = eventsOf(tx, id)
		return err
	})
	return out, err
}

func eventsOf(tx *bolt.Tx, id interaction.ID) ([]interaction.Event, error) {
	var out []interaction.Event
	prefix := ieventPrefix(id)
	c := tx.Bucket(bucketIEvents).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != len(prefix)+8 {
			continue
		}
		ev, err := getEvent(tx, binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// List returns the interactions that match f, newest offered first. It
// walks the most selective index (agent, taxpayer, channel, then time) and
// checks the other fields on each record.
func (db *DB) List(f Filter) ([]interaction.Record, error) {
	bucket, prefix := bucketByTime, []byte(nil)
	switch {
	case f.Agent != "":
		bucket, prefix = bucketByAgent, namePrefix(f.Agent)
	case f.Taxpayer != "":
		bucket, prefix = bucketByTaxpayer, namePrefix(f.Taxpayer)
	case f.Channel != interaction.ChannelUnknown:
		bucket, prefix = bucketByChannel, []byte{byte(f.Channel)}
	}
	lo := timeKey(f.From)
	hi := uint64(maxTimeKey)
	if !f.To.IsZero() {
		hi = timeKey(f.To)
	}
	var out []interaction.Record
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		upper := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), hi)
		// Everything at or after upper is excluded (To is exclusive).
		k, _ := c.Seek(upper)
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
			if len(k) < len(prefix)+8 {
				continue
			}
			if binary.BigEndian.Uint64(k[len(prefix):]) < lo {
				break
			}
			id := interaction.ID(k[len(prefix)+8:])
			r, err := getRecord(tx, id)
			if err != nil {
				return err
			}
			if !f.match(&r) {
				continue
			}
			out = append(out, r)
			if f.Limit > 0 && len(out) >= f.Limit {
				break
			}
		}
		return nil
	})
	return out, err
}

func (f *Filter) match(r *interaction.Record) bool {
	if f.Channel != interaction.ChannelUnknown && r.Channel != f.Channel {
		return false
	}
	if f.Agent != "" && r.Agent != f.Agent {
		return false
	}
	if f.Taxpayer != "" && r.TaxpayerID != f.Taxpayer && r.TaxpayerPhone != f.Taxpayer {
		return false
	}
	return true
}

// OpenTickets returns every ticket in StateOpen, so the router can re-arm
// their deadlines from the stored AckBy and AnswerBy after a restart.
func (db *DB) OpenTickets() ([]interaction.Record, error) {
	var out []interaction.Record
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOpen).ForEach(func(k, _ []byte) error {
			r, err := getRecord(tx, interaction.ID(k))
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// ScanEvents calls fn with every event whose At is in [from, to) (a zero to
// means no upper bound), in time order and log order within the same
// instant. It reads in chunks, so fn runs outside any transaction and may
// take its time; events appended during the scan may or may not be seen.
// An error from fn stops the scan and is returned.
func (db *DB) ScanEvents(from, to time.Time, fn func(interaction.Event) error) error {
	hi := uint64(maxTimeKey)
	if !to.IsZero() {
		hi = timeKey(to)
	}
	next := binary.BigEndian.AppendUint64(nil, timeKey(from))
	for next != nil {
		var chunk []interaction.Event
		cursor := next
		next = nil
		err := db.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketEventTime).Cursor()
			for k, _ := c.Seek(cursor); k != nil; k, _ = c.Next() {
				if len(k) != 16 {
					continue
				}
				if binary.BigEndian.Uint64(k) >= hi {
					return nil
				}
				if len(chunk) == scanChunk {
					next = append([]byte(nil), k...)
					return nil
				}
				ev, err := getEvent(tx, binary.BigEndian.Uint64(k[8:]))
				if err != nil {
					return err
				}
				chunk = append(chunk, ev)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, ev := range chunk {
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
	return nil
}
