package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/taxline/taxline/api"
	"github.com/taxline/taxline/sla"
	"github.com/taxline/taxline/storage"
)

func report(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "monthly" {
		fmt.Fprintln(stderr, "usage: taxline report monthly -month YYYY-MM [-config FILE] [-data DIR] [-format json|csv|xlsx] [-o FILE]")
		return 2
	}
	fs := flag.NewFlagSet("report monthly", flag.ContinueOnError)
	fs.SetOutput(stderr)
	month := fs.String("month", time.Now().AddDate(0, -1, 0).Format("2006-01"), "the month, YYYY-MM (default: last month)")
	path := fs.String("config", "", "config file (default: the embedded demo config)")
	data := fs.String("data", "", "data directory (overrides server.data)")
	format := fs.String("format", "json", "json, csv or xlsx")
	out := fs.String("o", "", "output file (default: standard output)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "taxline: %v\n", err)
		return 1
	}
	overrides{data: *data}.apply(cfg)
	db, err := storage.Open(cfg.Server.Data, storage.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "taxline: %v (is taxline serve running? use GET /api/v1/reports/monthly)\n", err)
		return 1
	}
	defer func() {
		if err := db.Close(); err != nil {
			fmt.Fprintf(stderr, "taxline: %v\n", err)
		}
	}()
	rep, err := api.MonthlyReport(cfg, db, *month)
	if err != nil {
		fmt.Fprintf(stderr, "taxline: %v\n", err)
		return 1
	}
	var write func(io.Writer) error
	switch *format {
	case "json":
		write = func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(rep)
		}
	case "csv":
		write = rep.CSV
	case "xlsx":
		write = func(w io.Writer) error { return api.WriteXLSX(&rep, w) }
	default:
		fmt.Fprintf(stderr, "taxline: unknown format %q (json, csv, xlsx)\n", *format)
		return 2
	}
	if err := writeOutput(*out, stdout, write); err != nil {
		fmt.Fprintf(stderr, "taxline: %v\n", err)
		return 1
	}
	return 0
}

func score(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	fs.SetOutput(stderr)
	standard := fs.Float64("standard", 100, "the standard score (标准分值) of Art. 23")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	scores, err := sla.ReadScores(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "taxline: %v\n", err)
		return 1
	}
	res, err := sla.Score(scores, *standard)
	if err != nil {
		fmt.Fprintf(stderr, "taxline: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "provider,score,rank,baseline,final")
	for _, r := range res {
		fmt.Fprintf(stdout, "%s,%g,%d,%t,%.2f\n", r.Provider, r.Score, r.Rank, r.Baseline, r.Final)
	}
	return 0
}

func fee(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fee", flag.ContinueOnError)
	fs.SetOutput(stderr)
	contract := fs.Float64("contract", 0, "the annual contract amount in yuan (当年合同金额)")
	complaints := fs.Int("complaints", 0, "valid complaints in the quarter (有效投诉次数)")
	failed := fs.Bool("failed", false, "the quarter was assessed as failed (考核不合格)")
	asJSON := fs.Bool("json", false, "print the calculation as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *contract <= 0 {
		fmt.Fprintln(stderr, "taxline: -contract must be a positive amount")
		return 2
	}
	if *complaints < 0 {
		fmt.Fprintln(stderr, "taxline: -complaints cannot be negative")
		return 2
	}
	f := sla.QuarterFee(*contract, *complaints, *failed)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(f)
		return 0
	}
	fmt.Fprintf(stdout, "quarter fee        %12.2f\n", f.Quarter)
	if f.Failed {
		fmt.Fprintf(stdout, "failed quarter     %12.2f\n", -f.FailurePenalty)
	}
	fmt.Fprintf(stdout, "complaints (%3d)   %12.2f\n", f.Complaints, -f.ComplaintDeduction)
	fmt.Fprintf(stdout, "payable            %12.2f\n", f.Payable)
	return 0
}
