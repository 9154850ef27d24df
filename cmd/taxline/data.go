package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/taxline/taxline/storage"
)

// dataFlags are the flags of the commands that work on a stopped store.
type dataFlags struct {
	config, data string
}

func (d *dataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.config, "config", "", "config file (default: the embedded demo config)")
	fs.StringVar(&d.data, "data", "", "data directory (overrides server.data)")
}

func (d *dataFlags) dir() (string, error) {
	cfg, err := loadConfig(d.config)
	if err != nil {
		return "", err
	}
	overrides{data: d.data}.apply(cfg)
	return cfg.Server.Data, nil
}

func (d *dataFlags) open(stderr io.Writer) (*storage.DB, int) {
	dir, err := d.dir()
	if err != nil {
		fmt.Fprintf(stderr, "taxline: %v\n", err)
		return nil, 1
	}
	db, err := storage.Open(dir, storage.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "taxline: %v (stop taxline serve first)\n", err)
		return nil, 1
	}
	return db, 0
}

// purge deletes what ended before the retention cutoff (S3): by default
// retention.years ago.
func purge(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("purge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var d dataFlags
	d.register(fs)
	before := fs.String("before", "", "delete interactions that ended before this date, YYYY-MM-DD (default: retention.years ago)")
	all := fs.Bool("all", false, "delete every finished interaction (D2: after the hand-over export)")
	compact := fs.Bool("compact", true, "rewrite the file afterwards so purged bytes are gone from disk")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(d.config)
	if err != nil {
		fmt.Fprintf(stderr, "taxline: %v\n", err)
		return 1
	}
	cutoff := time.Now().AddDate(-cfg.Retention.Years, 0, 0)
	switch {
	case *all:
		cutoff = time.Now().Add(time.Hour)
	case *before != "":
		if cutoff, err = time.ParseInLocation(time.DateOnly, *before, cfg.Location); err != nil {
			fmt.Fprintln(stderr, "taxline: -before must be YYYY-MM-DD")
			return 2
		}
	}
	db, code := d.open(stderr)
	if db == nil {
		return code
	}
	n, err := db.Purge(cutoff)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "taxline: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "purged %d interactions that ended before %s\n", n, cutoff.Format(time.RFC3339))
	if *compact && n > 0 {
		dir, _ := d.dir()
		if err := storage.Compact(dir); err != nil {
			fmt.Fprintf(stderr, "taxline: compact: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, "compacted: purged bytes are gone from the database file")
	}
	return 0
}

// export writes the verifiable hand-over export (D2).
func export(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var d dataFlags
	d.register(fs)
	out := fs.String("o", "", "output file (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	db, code := d.open(stderr)
	if db == nil {
		return code
	}
	defer func() {
		if err := db.Close(); err != nil {
			fmt.Fprintf(stderr, "taxline: %v\n", err)
		}
	}()
	if err := writeOutput(*out, stdout, db.Export); err != nil {
		fmt.Fprintf(stderr, "taxline: %v\n", err)
		return 1
	}
	return 0
}

// writeOutput runs write on the file at path, or on stdout when path is
// empty. A file's close error is reported: it can be the first sign that
// the data did not reach the disk.
func writeOutput(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "" {
		return write(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
