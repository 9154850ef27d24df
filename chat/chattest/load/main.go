// Command load is the chat gateway's load benchmark: N taxpayer sessions
// and M agent desks on loopback, a fixed message rate for a bounded time,
// and a report of delivery latency (taxpayer→agent and agent→taxpayer),
// messages per second, and the server's memory per session.
//
// The server (router + gateway, with a counting event sink) runs in a
// child process so that its memory is measured apart from the clients':
//
//	go run ./chat/chattest/load -sessions 10000 -agents 200 -rate 1000 -duration 30s
//
// scripts/chat-load.sh runs it with the defaults. Every loop is bounded by
// the session count and the duration; traffic stays on 127.0.0.1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/taxline/taxline/chat"
	"github.com/taxline/taxline/chat/chattest"
	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
)

type options struct {
	sessions int
	agents   int
	maxChats int
	rate     float64
	duration time.Duration
	dialers  int
	serve    bool
	jsonOut  string
	// inProcess runs the server in this process (tests); memory figures
	// then include the clients.
	inProcess bool
}

func main() {
	var o options
	flag.IntVar(&o.sessions, "sessions", 10000, "taxpayer sessions (at most 15000)")
	flag.IntVar(&o.agents, "agents", 200, "agent desks (auto-accept)")
	flag.IntVar(&o.maxChats, "max-chats", 20, "chats per agent (config allows up to 20)")
	flag.Float64Var(&o.rate, "rate", 1000, "messages per second, both directions together")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long messages flow (at most 10m)")
	flag.IntVar(&o.dialers, "dialers", 64, "connections opened in parallel during ramp-up")
	flag.BoolVar(&o.serve, "serve", false, "run the server side only (used by the parent process)")
	flag.StringVar(&o.jsonOut, "json", "", "also write the report as JSON to this file")
	flag.Parse()
	o.sessions = min(max(o.sessions, 1), 15000)
	o.agents = min(max(o.agents, 1), 2000)
	o.duration = min(max(o.duration, time.Second), 10*time.Minute)
	raiseFileLimit()
	var err error
	if o.serve {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		// The parent closes our stdin to stop us.
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop() }()
		err = serve(ctx, o, func(addr string) { fmt.Printf("listening %s\n", addr) })
	} else {
		err = drive(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// raiseFileLimit lifts RLIMIT_NOFILE to its hard limit: ten thousand
// sockets need more than the usual 1024.
func raiseFileLimit() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// loadConfig is the demo config with M generated agents and limits fit
// for a load test (desks send a few messages a second each).
func loadConfig(o options) (*config.Config, error) {
	cfg, err := chattest.Config(0, 0, 0, 0)
	if err != nil {
		return nil, err
	}
	cfg.Agents = nil
	for i := range o.agents {
		id := strconv.Itoa(20000 + i)
		cfg.Agents = append(cfg.Agents, config.Agent{ID: id, Name: "load-" + id, Password: "load-" + id,
			Queues: []string{"etax"}, Skills: map[string]int{"etax": 5}, MaxChats: o.maxChats, Mixing: "call_blocks_chat"})
	}
	cfg.Chat.AutoAccept = true
	cfg.Queues[0].MaxWait = 0
	cfg.Queues[0].Overflow = ""
	cfg.Chat.Limits.RatePerSecond = 50
	cfg.Chat.Limits.Burst = 100
	cfg.Chat.Limits.SendQueue = 256
	return cfg, cfg.Validate()
}

// countingSink stands in for the store: it counts events.
type countingSink struct{ n atomic.Uint64 }

func (s *countingSink) Emit(interaction.Event) { s.n.Add(1) }

type serverStats struct {
	RSS         uint64     `json:"rss"`
	HeapInuse   uint64     `json:"heap_inuse"`
	HeapAlloc   uint64     `json:"heap_alloc"`
	Goroutines  int        `json:"goroutines"`
	Events      uint64     `json:"events"`
	Chat        chat.Stats `json:"chat"`
	CPUUserMs   int64      `json:"cpu_user_ms"`
	CPUSystemMs int64      `json:"cpu_system_ms"`
}

// serve runs the router and the gateway on 127.0.0.1:0 until ctx ends,
// telling listening its address.
func serve(ctx context.Context, o options, listening func(addr string)) error {
	cfg, err := loadConfig(o)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	sink := &countingSink{}
	r, err := queue.NewRouter(cfg, queue.Options{Events: sink, Logger: log})
	if err != nil {
		return err
	}
	srv := chat.NewServer(cfg, r, sink, log)
	routerDone := make(chan struct{})
	go func() { defer close(routerDone); _ = r.Run(ctx) }()
	mux := http.NewServeMux()
	mux.Handle("/ws/chat", srv.TaxpayerHandler())
	mux.Handle("/ws/agent", srv.AgentHandler())
	mux.HandleFunc("/stats", func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Query().Get("gc") == "1" {
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		_ = json.NewEncoder(w).Encode(serverStats{RSS: rss(), HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc,
			Goroutines: runtime.NumGoroutine(), Events: sink.n.Load(), Chat: srv.Stats(),
			CPUUserMs: ru.Utime.Nano() / 1e6, CPUSystemMs: ru.Stime.Nano() / 1e6})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	listening(ln.Addr().String())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = hs.Close() }()
	_ = hs.Serve(ln)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-routerDone
	return nil
}

// rss reads the process's resident set size from /proc.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
