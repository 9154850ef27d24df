package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrNotClean is returned by Compact for a store whose last run did not
// Close cleanly: Open it once (check and recovery) and Close it first.
var ErrNotClean = errors.New("storage: store was not closed cleanly")

// Compact rewrites the bbolt file of the store in dir, which must not be
// open, into a fresh file and replaces the old one. bbolt reuses the pages
// Purge frees but never zeroes them, so Compact is what makes purged data
// unrecoverable from the file (RULES.md D2) and gives the space back.
func Compact(dir string) error {
	src := filepath.Join(dir, DBFile)
	tmp := src + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: compact: %w", err)
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("storage: compact: %w", err)
	}
	from, err := bolt.Open(src, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("storage: compact: open %s: %w", src, err)
	}
	err = compactInto(from, tmp)
	if cerr := from.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("storage: compact: %w", cerr)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, src); err != nil {
		return fmt.Errorf("storage: compact: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: compact: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("storage: compact: sync dir: %w", err)
	}
	return nil
}

func compactInto(from *bolt.DB, tmp string) error {
	clean := false
	if err := from.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			v := m.Get(keyClean)
			clean = len(v) == 1 && v[0] == 1
		}
		return nil
	}); err != nil {
		return fmt.Errorf("storage: compact: %w", err)
	}
	if !clean {
		return ErrNotClean
	}
	to, err := bolt.Open(tmp, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("storage: compact: %w", err)
	}
	// 64 MiB per transaction bounds memory on a large store.
	err = bolt.Compact(to, from, 64<<20)
	if cerr := to.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storage: compact: %w", err)
	}
	return nil
}
