package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/taxline/taxline/api"
	"github.com/taxline/taxline/chat"
	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/sip"
	"github.com/taxline/taxline/storage"
)

// gateway is a channel gateway the serve command runs beside the router.
type gateway interface {
	Name() string
	Run(ctx context.Context) error
	// Reload applies a new config; an error keeps the gateway's old one.
	Reload(cfg *config.Config) error
}

// observers fans the router's agent changes out to gateways built after the
// router (they need the router to be built first).
type observers struct {
	list atomic.Pointer[[]queue.Observer]
}

func (o *observers) add(obs queue.Observer) {
	var next []queue.Observer
	if cur := o.list.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, obs)
	o.list.Store(&next)
}

// AgentChanged implements queue.Observer.
func (o *observers) AgentChanged(v queue.AgentView) {
	if cur := o.list.Load(); cur != nil {
		for _, obs := range *cur {
			obs.AgentChanged(v)
		}
	}
}

// mountGateways builds the SIP and chat gateways and mounts the HTTP parts
// (WebSockets, pages) on srv.
func mountGateways(cfg *config.Config, srv *api.Server, router *queue.Router, obs *observers, db *storage.DB, log *slog.Logger) ([]gateway, error) {
	sg, err := sip.NewGateway(cfg, router, db, log.With("component", "sip"))
	if err != nil {
		return nil, err
	}
	cs := chat.NewServer(cfg, router, db, log)
	obs.add(cs)
	srv.Handle("GET /ws/chat", cs.TaxpayerHandler())
	srv.Handle("GET /ws/agent", cs.AgentHandler())
	mountPages(srv)
	sipgw := &sipGateway{Gateway: sg}
	srv.AddHealthCheck("sip", sipgw.healthy)
	return []gateway{sipgw, chatGateway{cs}}, nil
}

// sipGateway runs the SIP gateway and tells /healthz whether its listeners
// are serving.
type sipGateway struct {
	*sip.Gateway
	running atomic.Bool
}

func (*sipGateway) Name() string { return "sip" }

// Run implements gateway.
func (g *sipGateway) Run(ctx context.Context) error {
	g.running.Store(true)
	defer g.running.Store(false)
	return g.Gateway.Run(ctx)
}

func (g *sipGateway) healthy() error {
	if !g.running.Load() {
		return errors.New("listeners not serving")
	}
	return nil
}

type chatGateway struct{ *chat.Server }

func (chatGateway) Name() string { return "chat" }

// Run waits for ctx and then closes every chat socket.
func (c chatGateway) Run(ctx context.Context) error {
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Shutdown(sctx)
}

// Reload implements gateway.
func (c chatGateway) Reload(cfg *config.Config) error {
	c.Server.Reload(cfg)
	return nil
}
