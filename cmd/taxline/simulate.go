package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/sla"
)

// simulate runs a day (or more) of synthetic traffic through the router on
// virtual time with a config, and prints the service-level figures it
// would give: a what-if before deploying a config.
func simulate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (default: the embedded demo config)")
	date := fs.String("date", time.Now().AddDate(0, 0, 1).Format(time.DateOnly), "first day, YYYY-MM-DD (in the config's timezone)")
	days := fs.Int("days", 1, "days to simulate")
	var sc queue.Scenario
	fs.Float64Var(&sc.CallsPerHour, "calls-per-hour", 40, "mean call arrivals per hour")
	fs.Float64Var(&sc.ChatsPerHour, "chats-per-hour", 20, "mean chat arrivals per hour")
	fs.DurationVar(&sc.CallHandle, "call-aht", 4*time.Minute, "mean call handle time")
	fs.DurationVar(&sc.ChatHandle, "chat-aht", 8*time.Minute, "mean chat handle time")
	fs.DurationVar(&sc.Patience, "patience", 2*time.Minute, "mean time a taxpayer waits before giving up (0: never)")
	fs.IntVar(&sc.Agents, "agents", 0, "log in only the first N configured agents (0: all)")
	fs.StringVar(&sc.Queue, "queue", "", "queue that receives the traffic (default: the first)")
	fs.Uint64Var(&sc.Seed, "seed", 1, "random seed; the same seed gives the same run")
	asJSON := fs.Bool("json", false, "print all figures as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "taxline: %v\n", err)
		return 1
	}
	start, err := time.ParseInLocation(time.DateOnly, *date, cfg.Location)
	if err != nil || *days < 1 || *days > 31 {
		fmt.Fprintln(stderr, "taxline: -date must be YYYY-MM-DD and -days 1–31")
		return 2
	}
	sc.Start, sc.End = start, start.AddDate(0, 0, *days)
	began := time.Now()
	evs, err := queue.Simulate(cfg, sc)
	if err != nil {
		fmt.Fprintf(stderr, "taxline: %v\n", err)
		return 1
	}
	recs := foldRecords(evs)
	fig := sla.Compute(recs, sla.DefinitionsFromConfig(cfg))
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(fig)
		return 0
	}
	p, c := fig.Phone, fig.Chat
	fmt.Fprintf(stdout, "simulated %s to %s (%d events in %v)\n", sc.Start.Format(time.DateOnly),
		sc.End.Add(-time.Second).Format(time.DateOnly), len(evs), time.Since(began).Round(time.Millisecond))
	fmt.Fprintf(stdout, "phone: offered %d, after hours %d, answered %d, abandoned %d (short %d)\n",
		p.Offered, p.AfterHours, p.Answered, p.Abandoned, p.ShortAbandoned)
	fmt.Fprintf(stdout, "  P2 human answer rate      %7s  (target %.0f%%)\n", p.AnswerRate.Percent(), cfg.Phone.AnswerRateTarget*100)
	fmt.Fprintf(stdout, "  P3 answered within %-5v  %7s  (target %.0f%%)\n", cfg.Phone.AnswerTarget, p.AnsweredWithin.Percent(), cfg.Phone.AnswerWithinTarget*100)
	fmt.Fprintf(stdout, "  average speed of answer   %7v\n", time.Duration(p.ASA).Round(time.Second))
	fmt.Fprintf(stdout, "chat: offered %d, answered %d, abandoned %d\n", c.Offered, c.Answered, c.Abandoned)
	fmt.Fprintf(stdout, "  C2 first response ≤ %-4v %7s\n", cfg.Chat.FirstResponse, c.FirstResponse.Percent())
	return 0
}

// foldRecords folds events into records, in first-seen order.
func foldRecords(evs []interaction.Event) []interaction.Record {
	idx := map[interaction.ID]int{}
	var recs []interaction.Record
	for _, e := range evs {
		if e.ID == "" {
			continue
		}
		i, ok := idx[e.ID]
		if !ok {
			i = len(recs)
			idx[e.ID] = i
			recs = append(recs, interaction.Record{})
		}
		recs[i].Apply(e)
	}
	return recs
}
