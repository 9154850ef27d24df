package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/taxline/taxline/api"
	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/storage"
)

// overrides are the serve flags that win over the config file, on start
// and on every reload.
type overrides struct {
	http, sip, data string
}

func (o overrides) apply(c *config.Config) {
	if o.http != "" {
		c.Server.HTTP = o.http
	}
	if o.sip != "" {
		c.Server.SIP = o.sip
	}
	if o.data != "" {
		c.Server.Data = o.data
	}
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (default: the embedded demo config)")
	var o overrides
	fs.StringVar(&o.http, "http", "", "HTTP listen address (overrides server.http)")
	fs.StringVar(&o.sip, "sip", "", "SIP listen address, UDP and TCP (overrides server.sip)")
	fs.StringVar(&o.data, "data", "", "data directory (overrides server.data)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "taxline: %v\n", err)
		return 1
	}
	o.apply(cfg)
	if err := runServer(cfg, *path, o, log); err != nil {
		log.Error("taxline stopped", "err", err)
		return 1
	}
	return 0
}

// runServer wires the store, the router, the gateways and the HTTP server,
// and runs until SIGTERM (drain) or SIGINT (at once).
func runServer(cfg *config.Config, path string, o overrides, log *slog.Logger) error {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	db, err := storage.Open(cfg.Server.Data, storage.Options{Logger: log, EmitLinger: cfg.Server.EmitLinger()})
	if err != nil {
		return err
	}
	defer db.Close() //nolint:errcheck // the clean path below closes it and checks; this is for early returns

	metrics := api.NewMetrics()
	obs := &observers{}
	router, err := queue.NewRouter(cfg, queue.Options{Events: api.Tee{db, metrics.Sink()}, Observer: obs, Logger: log})
	if err != nil {
		return err
	}
	metrics.Watch(router.Snapshot)
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(ctx) }()

	open, err := db.OpenTickets()
	if err != nil {
		return err
	}
	if err := router.RestoreTickets(ctx, open); err != nil {
		return err
	}

	srv := api.New(cfg, db, router, metrics, log)
	gateways, err := mountGateways(cfg, srv, router, obs, db, log)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Server.HTTP)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	httpSrv := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpSrv.Serve(ln) }()

	gwCtx, gwStop := context.WithCancel(context.Background())
	defer gwStop()
	gwDone := make(chan error, len(gateways))
	for _, g := range gateways {
		go func() { gwDone <- g.Run(gwCtx) }()
	}
	sipAddr := cfg.Server.SIP
	for _, g := range gateways {
		if sg, ok := g.(*sipGateway); ok {
			sipAddr = sg.Addr().String()
		}
	}
	log.Info("taxline serving", "http", ln.Addr().String(), "sip", sipAddr, "data", cfg.Server.Data,
		"config", cfg.Path, "agents", len(cfg.Agents), "queues", len(cfg.Queues))

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				reload(ctx, path, o, router, srv, gateways, log)
				continue
			case syscall.SIGTERM:
				log.Info("SIGTERM: draining", "limit", cfg.Server.DrainTimeout)
				drain(router, cfg.Server.DrainTimeout, log)
			case syscall.SIGINT:
				log.Info("SIGINT: stopping now")
			}
		case err := <-httpDone:
			return fmt.Errorf("http: %w", err)
		case err := <-routerDone:
			return fmt.Errorf("router stopped: %v", err)
		}
		break
	}

	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = httpSrv.Shutdown(shutCtx)
	gwStop()
	for range gateways {
		if err := <-gwDone; err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("gateway stopped with error", "err", err)
		}
	}
	stop()
	if err := <-routerDone; err != nil {
		log.Warn("router stopped with error", "err", err)
	}
	if err := db.Close(); err != nil {
		return err
	}
	log.Info("taxline stopped")
	return nil
}

// reload re-reads the config. A bad file is refused with its problems
// logged, and the running config stays.
func reload(ctx context.Context, path string, o overrides, router *queue.Router, srv *api.Server, gateways []gateway, log *slog.Logger) {
	cfg, err := loadConfig(path)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				log.Error("config refused; keeping the running one", "problem", p.String())
			}
		} else {
			log.Error("config refused; keeping the running one", "err", err)
		}
		return
	}
	o.apply(cfg)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := router.Reload(rctx, cfg); err != nil {
		log.Error("config refused by the router; keeping the running one", "err", err)
		return
	}
	srv.Reload(cfg)
	for _, g := range gateways {
		if err := g.Reload(cfg); err != nil {
			log.Error("gateway kept its running config", "gateway", g.Name(), "err", err)
		}
	}
	log.Info("config reloaded", "config", cfg.Path)
}

// drain stops admitting new interactions and waits, up to limit, for the
// live ones to finish.
func drain(router *queue.Router, limit time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := router.Drain(ctx); err != nil {
		return
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := router.Snapshot(ctx)
		if err != nil {
			log.Warn("drain limit reached; stopping with live interactions")
			return
		}
		live := 0
		for _, n := range s.Live {
			live += n
		}
		if live == 0 {
			return
		}
		select {
		case <-ctx.Done():
			log.Warn("drain limit reached; stopping with live interactions", "live", live)
			return
		case <-tick.C:
		}
	}
}
