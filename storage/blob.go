package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Blobs stores recordings and other large files outside bbolt (audio never
// goes in the database). Dir is the local implementation; an S3-compatible
// one can take its place.
type Blobs interface {
	// Create makes a new blob for writing. The writer can seek, so a WAV
	// header can be kept current while audio is appended.
	Create(name string) (BlobWriter, error)
	// Open reads a blob.
	Open(name string) (io.ReadSeekCloser, error)
	// Remove deletes a blob; removing a missing blob is not an error.
	Remove(name string) error
	// List calls fn with the name of every blob.
	List(fn func(name string) error) error
}

// BlobWriter is an open blob being written.
type BlobWriter interface {
	io.Writer
	io.WriterAt
	io.Seeker
	io.Closer
	Sync() error
}

// ErrBadBlobName is returned for names that would escape the store.
var ErrBadBlobName = errors.New("storage: bad blob name")

// Dir keeps blobs as files under a directory.
type Dir struct {
	Root string
}

var _ Blobs = Dir{}

func (d Dir) path(name string) (string, error) {
	clean := filepath.Clean(name)
	if name == "" || filepath.IsAbs(name) || clean != name || strings.HasPrefix(clean, "..") {
		return "", fmt.Errorf("%w: %q", ErrBadBlobName, name)
	}
	return filepath.Join(d.Root, clean), nil
}

// Create implements Blobs.
func (d Dir) Create(name string) (BlobWriter, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return f, nil
}

// Open implements Blobs.
func (d Dir) Open(name string) (io.ReadSeekCloser, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return f, nil
}

// Remove implements Blobs.
func (d Dir) Remove(name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// List implements Blobs.
func (d Dir) List(fn func(name string) error) error {
	return filepath.WalkDir(d.Root, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(d.Root, p)
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel))
	})
}
