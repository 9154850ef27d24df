// Package configs embeds taxline's default configuration, the holiday
// calendars and the prompt audio, so that `taxline serve` runs with no file.
package configs

import "embed"

// Demo is configs/demo.yaml, the loopback demo that runs by default.
//
//go:embed demo.yaml
var Demo []byte

// Calendars holds calendar-YYYY.yaml, one per year.
//
//go:embed calendar-*.yaml
var Calendars embed.FS
