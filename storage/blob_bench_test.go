package storage_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/taxline/taxline/storage"
)

// BenchmarkDirCreate is what a call's recording costs before any audio:
// creating its file (in a day directory, as the SIP gateway names them)
// and closing it. The cost is the file system's, and on ext4 it depends on
// where the directory lands: BENCH_DIR picks the parent (default the
// test's temporary directory), e.g.
//
//	go test -run '^$' -bench DirCreate ./storage/
//	BENCH_DIR=/var/lib/taxline go test -run '^$' -bench DirCreate ./storage/
func BenchmarkDirCreate(b *testing.B) {
	parent := os.Getenv("BENCH_DIR")
	if parent == "" {
		parent = b.TempDir()
	}
	root, err := os.MkdirTemp(parent, "dircreate")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(root) })
	d := storage.Dir{Root: root}
	i := 0
	for b.Loop() {
		f, err := d.Create(fmt.Sprintf("2026/12/04/%08d.wav", i))
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
