package storage

// This file is the whole on-disk schema: bucket names, key encodings and the
// schema version with its migrations. Nothing else in the package invents a
// bucket or a key layout.
//
// Buckets (all top level):
//
//	meta          "version" → uint64 BE schema version
//	              "clean"   → 1 byte, 1 when the last Close finished; cleared on Open
//	events        seq (uint64 BE, from the bucket's sequence) → JSON interaction.Event
//	event_time    timeKey(At) ‖ seq → empty        (ScanEvents, Purge of id-less events)
//	ievents       id ‖ 0x00 ‖ seq → empty         (Events(id), in log order)
//	interactions  id → JSON interaction.Record
//	by_time       timeKey(OfferedAt) ‖ id → empty
//	by_channel    channel (1 byte) ‖ timeKey(OfferedAt) ‖ id → empty
//	by_agent      agent ‖ 0x00 ‖ timeKey(OfferedAt) ‖ id → empty
//	by_taxpayer   taxpayer ‖ 0x00 ‖ timeKey(OfferedAt) ‖ id → empty
//	              (one key for TaxpayerID and one for TaxpayerPhone)
//	live          id → empty, while the record is queued, ringing or connected
//	open          id → empty, while the record is an open ticket
//
// timeKey is 8 bytes big-endian: the Unix nanoseconds with the sign bit
// flipped, so keys sort by time (also before 1970); the zero time is 0.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/taxline/taxline/interaction"
)

// SchemaVersion is the layout this code writes. Open migrates older files
// up to it and refuses newer ones.
const SchemaVersion = 1

var (
	bucketMeta         = []byte("meta")
	bucketEvents       = []byte("events")
	bucketEventTime    = []byte("event_time")
	bucketIEvents      = []byte("ievents")
	bucketInteractions = []byte("interactions")
	bucketByTime       = []byte("by_time")
	bucketByChannel    = []byte("by_channel")
	bucketByAgent      = []byte("by_agent")
	bucketByTaxpayer   = []byte("by_taxpayer")
	bucketLive         = []byte("live")
	bucketOpen         = []byte("open")

	keyVersion = []byte("version")
	keyClean   = []byte("clean")
)

// allBuckets is every bucket of SchemaVersion, created on Open.
var allBuckets = [][]byte{
	bucketMeta, bucketEvents, bucketEventTime, bucketIEvents, bucketInteractions,
	bucketByTime, bucketByChannel, bucketByAgent, bucketByTaxpayer, bucketLive, bucketOpen,
}

// migrations[v] upgrades a file at schema version v to v+1, inside the same
// transaction that records the new version. Version 0 is an empty file.
var migrations = map[uint64]func(tx *bolt.Tx) error{
	0: func(tx *bolt.Tx) error { return nil }, // buckets are created by ensureSchema
}

// ErrSchema is returned when the file's schema is newer than this code.
var ErrSchema = errors.New("storage: unsupported schema version")

// ensureSchema creates missing buckets and runs pending migrations.
func ensureSchema(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("storage: create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	var v uint64
	if b := meta.Get(keyVersion); len(b) == 8 {
		v = binary.BigEndian.Uint64(b)
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: file has %d, code knows %d", ErrSchema, v, SchemaVersion)
	}
	for ; v < SchemaVersion; v++ {
		m, ok := migrations[v]
		if !ok {
			return fmt.Errorf("%w: no migration from %d", ErrSchema, v)
		}
		if err := m(tx); err != nil {
			return fmt.Errorf("storage: migrate schema %d→%d: %w", v, v+1, err)
		}
	}
	return meta.Put(keyVersion, u64(SchemaVersion))
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// timeKey encodes t so that byte order is time order.
func timeKey(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano()) ^ (1 << 63)
}

// maxTimeKey sorts after every real time; used as an open upper bound.
const maxTimeKey = ^uint64(0)

func seqKey(seq uint64) []byte { return u64(seq) }

func eventTimeKey(at time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, timeKey(at))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

func ieventPrefix(id interaction.ID) []byte {
	k := make([]byte, 0, len(id)+1)
	k = append(k, id...)
	return append(k, 0)
}

func ieventKey(id interaction.ID, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(ieventPrefix(id), seq)
}

// indexKey is prefix ‖ timeKey ‖ id; prefix is empty (by_time), one channel
// byte (by_channel), or a name and 0x00 (by_agent, by_taxpayer).
func indexKey(prefix []byte, t time.Time, id interaction.ID) []byte {
	k := make([]byte, 0, len(prefix)+8+len(id))
	k = append(k, prefix...)
	k = binary.BigEndian.AppendUint64(k, timeKey(t))
	return append(k, id...)
}

// namePrefix is the by_agent / by_taxpayer prefix for name.
func namePrefix(name string) []byte {
	k := make([]byte, 0, len(name)+1)
	k = append(k, name...)
	return append(k, 0)
}

// indexEntry is one key in one index bucket.
type indexEntry struct {
	bucket string
	key    string
}

// indexEntries lists every index key a record has in the buckets that
// depend on its fields (not live/open; those are kept by state).
func indexEntries(r *interaction.Record) []indexEntry {
	if r.ID == "" {
		return nil
	}
	out := []indexEntry{
		{string(bucketByTime), string(indexKey(nil, r.OfferedAt, r.ID))},
		{string(bucketByChannel), string(indexKey([]byte{byte(r.Channel)}, r.OfferedAt, r.ID))},
	}
	if r.Agent != "" {
		out = append(out, indexEntry{string(bucketByAgent), string(indexKey(namePrefix(r.Agent), r.OfferedAt, r.ID))})
	}
	if r.TaxpayerID != "" {
		out = append(out, indexEntry{string(bucketByTaxpayer), string(indexKey(namePrefix(r.TaxpayerID), r.OfferedAt, r.ID))})
	}
	if r.TaxpayerPhone != "" && r.TaxpayerPhone != r.TaxpayerID {
		out = append(out, indexEntry{string(bucketByTaxpayer), string(indexKey(namePrefix(r.TaxpayerPhone), r.OfferedAt, r.ID))})
	}
	return out
}

// Values: events are stored as the JSON of interaction.Event, records as
// the JSON of interaction.Record, except that the record's channel is
// decoded leniently: interaction.Channel writes "unknown" for its zero value
// but does not read it back, and a record may have no channel yet (an event
// that arrived before its Offered, a ticket without one).
type storedRecord struct {
	interaction.Record
	Channel storedChannel `json:"channel"`
}

type storedChannel interaction.Channel

func (c storedChannel) MarshalText() ([]byte, error) {
	return interaction.Channel(c).MarshalText()
}

func (c *storedChannel) UnmarshalText(b []byte) error {
	if string(b) == interaction.ChannelUnknown.String() || len(b) == 0 {
		*c = storedChannel(interaction.ChannelUnknown)
		return nil
	}
	v, err := interaction.ParseChannel(string(b))
	*c = storedChannel(v)
	return err
}

func encodeRecord(r *interaction.Record) ([]byte, error) {
	return json.Marshal(storedRecord{Record: *r, Channel: storedChannel(r.Channel)})
}

func decodeRecord(b []byte, r *interaction.Record) error {
	var s storedRecord
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*r = s.Record
	r.Channel = interaction.Channel(s.Channel)
	return nil
}
