// Command load runs taxline's phone path in one process (the event store,
// the router and the SIP gateway, wired as `taxline serve` wires them but
// without HTTP, metrics and chat) so that scripts/call-load.sh can take a
// CPU profile of the calls it drives (PROFILE=file). It logs like `taxline
// serve` (text, INFO, to stderr), so the script reads the same per-leg
// packet counts from its log, and it adds one line per call with the
// gateway's counts from CallEnded.
//
//	go run ./sip/siptest/load -config taxline.yaml -cpuprofile cpu.pprof
//
// It runs until SIGINT or SIGTERM, then stops the gateway (every call torn
// down), writes the profile and exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/sip"
	"github.com/taxline/taxline/storage"
)

func main() {
	cfgPath := flag.String("config", "", "taxline config file")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	debug := flag.Bool("debug", false, "log at DEBUG (RTP send failures, SIP messages)")
	flag.Parse()
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(*cfgPath, *cpuProfile, log); err != nil {
		log.Error("load: stopped", "err", err)
		os.Exit(1)
	}
}

func run(cfgPath, cpuProfile string, log *slog.Logger) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	db, err := storage.Open(cfg.Server.Data, storage.Options{Logger: log, EmitLinger: cfg.Server.EmitLinger()})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil {
			log.Error("load: closing the store", "err", cerr)
		}
	}()
	router, err := queue.NewRouter(cfg, queue.Options{Events: db, Logger: log})
	if err != nil {
		return err
	}
	gw, err := sip.NewGateway(cfg, router, db, log.With("component", "sip"))
	if err != nil {
		return err
	}
	gw.CallEnded = func(s sip.CallStats) {
		log.Info("load: call stats", "id", string(s.ID), "agent", s.Agent,
			"caller_rx", s.CallerRx, "caller_tx", s.CallerTx, "agent_rx", s.AgentRx, "agent_tx", s.AgentTx)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	routerCtx, stopRouter := context.WithCancel(context.Background())
	defer stopRouter()
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(routerCtx) }()
	log.Info("load: serving", "sip", gw.Addr().String(), "agents", len(cfg.Agents))
	err = gw.Run(ctx) // returns once ctx ends and every call is gone
	stopRouter()
	if rerr := <-routerDone; rerr != nil {
		log.Error("load: router", "err", rerr)
	}
	return err
}
