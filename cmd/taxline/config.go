package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/configs"
)

// loadConfig reads path, or the embedded demo when path is empty.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Parse("configs/demo.yaml (embedded)", configs.Demo)
	}
	return config.Load(path)
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: taxline check-config FILE")
		return 2
	}
	if _, err := config.Load(fs.Arg(0)); err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				fmt.Fprintln(stdout, p)
			}
		} else {
			fmt.Fprintf(stdout, "%s:0: %v\n", fs.Arg(0), err)
		}
		return 1
	}
	return 0
}
