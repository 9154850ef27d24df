package storage

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/taxline/taxline/interaction"
)

// Hooks for the external tests and benchmarks.

// AppendSeq is Append that returns the sequence numbers given.
func AppendSeq(ctx context.Context, db *DB, evs ...interaction.Event) ([]uint64, error) {
	return db.appendSeq(ctx, evs...)
}

// CommitDirect writes evs in its own bbolt Update from the caller's
// goroutine, bypassing the group-committing writer.
func CommitDirect(db *DB, evs ...interaction.Event) error {
	_, err := db.commit([]*request{{evs: evs}})
	return err
}

// EventBySeq reads one event from the log.
func EventBySeq(db *DB, seq uint64) (interaction.Event, error) {
	var ev interaction.Event
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		ev, err = getEvent(tx, seq)
		return err
	})
	return ev, err
}

// LiveIDs lists the live bucket.
func LiveIDs(db *DB) ([]interaction.ID, error) {
	var ids []interaction.ID
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLive).ForEach(func(k, _ []byte) error {
			ids = append(ids, interaction.ID(k))
			return nil
		})
	})
	return ids, err
}

// IndexKeys counts the keys of every index bucket.
func IndexKeys(db *DB) (map[string]int, error) {
	out := map[string]int{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if string(b) == string(bucketMeta) {
				continue
			}
			out[string(b)] = tx.Bucket(b).Stats().KeyN
		}
		return nil
	})
	return out, err
}

// DataSize is the size of the bbolt data in use (pages up to the high-water
// mark), for the sizing figures.
func DataSize(db *DB) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		n = tx.Size()
		return nil
	})
	return n, err
}

// PretendCommitSince makes Healthy believe a commit started at t (zero:
// the writer is idle).
func PretendCommitSince(db *DB, t time.Time) {
	if t.IsZero() {
		db.commitStart.Store(0)
		return
	}
	db.commitStart.Store(t.UnixNano())
}

// MarkUnclean clears the clean flag of the closed store in dir, as a crash
// would leave it.
func MarkUnclean(dir string) error {
	b, err := bolt.Open(filepath.Join(dir, DBFile), 0o600, nil)
	if err != nil {
		return err
	}
	err = b.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyClean) })
	return errors.Join(err, b.Close())
}
